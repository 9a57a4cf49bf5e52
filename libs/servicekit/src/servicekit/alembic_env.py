"""The body of every service's Alembic `env.py`: migrations run online, against the database
named by the service's settings (or by `-x url=...`), with the plumbing tables included."""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData, create_engine, pool

from servicekit.settings import ServiceSettings
from servicekit.tables import plumbing_metadata


def run_migrations(settings_type: type[ServiceSettings], metadata: MetaData) -> None:
    url = context.get_x_argument(as_dictionary=True).get("url") or settings_type().database_url
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=[metadata, plumbing_metadata],
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
