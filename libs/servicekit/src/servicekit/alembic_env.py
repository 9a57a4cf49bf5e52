"""The body of every service's Alembic `env.py`: migrations run online, as the database's
owner role (`<SERVICE>_OWNER_DATABASE_URL`, or `-x url=...`), with the plumbing tables
included; then the service's runtime role (the user of `<SERVICE>_DATABASE_URL`, or
`-x runtime_role=...`) is given what it needs to run, and no more (see
`servicekit.migrations.grant_runtime_privileges`).

The settings are read straight from the environment: migrating needs neither Kafka nor an
identity provider, so the service's whole settings are not required."""

from __future__ import annotations

import os

from alembic import context
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import MetaData, create_engine, pool

from servicekit.db import libpq_url
from servicekit.migrations import grant_runtime_privileges
from servicekit.settings import ServiceSettings
from servicekit.tables import APPEND_ONLY, plumbing_metadata


def run_migrations(settings_type: type[ServiceSettings], metadata: MetaData) -> None:
    service = settings_type.service
    arguments = context.get_x_argument(as_dictionary=True)
    url = (
        arguments.get("url")
        or os.environ.get(service.owner_database_url_env)
        or service.default_owner_database_url()
    )
    runtime_role = arguments.get("runtime_role") or _role_of(
        os.environ.get(service.database_url_env) or service.default_database_url()
    )
    append_only = [table.name for table in metadata.tables.values() if table.info.get(APPEND_ONLY)]
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=[metadata, plumbing_metadata],
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            grant_runtime_privileges(connection, runtime_role, append_only=append_only)
    engine.dispose()


def _role_of(url: str) -> str:
    return str(conninfo_to_dict(libpq_url(url)).get("user") or "")
