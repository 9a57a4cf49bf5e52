"""Helpers for services' Alembic migrations."""

from __future__ import annotations

from collections.abc import Iterable

from alembic import context, op
from alembic.util import CommandError
from sqlalchemy import Connection, text

from servicekit.tables import plumbing_metadata

#: `alembic -x allow-data-loss=true downgrade …`: a downgrade that would lose data goes ahead.
ALLOW_DATA_LOSS = "allow-data-loss"


class DataLossRefused(CommandError):
    """A downgrade stopped before it lost data (the alembic command says why: `FAILED: …`)."""


def create_plumbing_tables() -> None:
    """Create the outbox and processed-events tables (a service's baseline revision)."""
    plumbing_metadata.create_all(bind=op.get_bind())


def drop_plumbing_tables() -> None:
    plumbing_metadata.drop_all(bind=op.get_bind())


def refuse_data_loss(rows: int, what: str, loss: str, *, below: str) -> None:
    """Stop a downgrade below revision `below` that would lose what `rows` rows hold (`what`,
    singular: "trainer-led workout"; `loss`: what becomes of them), unless it was run with
    `-x allow-data-loss=true`. Migrations run in one transaction, so nothing has changed."""
    allowed = context.get_x_argument(as_dictionary=True).get(ALLOW_DATA_LOSS, "")
    if rows == 0 or allowed.strip().lower() in {"true", "yes", "1"}:
        return
    raise DataLossRefused(
        f"refusing to downgrade below revision {below} with {rows} {what}"
        f"{'' if rows == 1 else 's'} in the database: {loss}. To downgrade anyway, losing "
        f"that, add `-x {ALLOW_DATA_LOSS}=true` to the alembic command"
    )


def grant_runtime_privileges(
    connection: Connection, role: str, *, append_only: Iterable[str] = ()
) -> None:
    """What the service's runtime role may do, after every migration run (so that tables a
    migration adds are covered): connect to this database (nobody else but its owner may,
    `PUBLIC` loses the right), read and write the rows of every table (of an append-only
    one: read and insert), use the sequences; no DDL, nor the migrations' own table. Does
    nothing when the runtime role is the owner itself (a deployment with one role)."""
    me = connection.execute(text("select current_user")).scalar_one()
    if not role or role == me:
        return
    found = connection.execute(text("select 1 from pg_roles where rolname = :r"), {"r": role})
    if found.first() is None:
        raise RuntimeError(
            f"the runtime role {role} does not exist: create it (make up does) before migrating"
        )
    database = connection.execute(text("select current_database()")).scalar_one()
    grantee, db = _quoted(connection, role), _quoted(connection, database)
    # Those present at this revision (a downgrade may have dropped some).
    present = [
        table
        for table in append_only
        if connection.execute(text("select to_regclass(:t)"), {"t": table}).scalar() is not None
    ]
    for statement in (
        f"revoke connect, temporary on database {db} from public",
        f"grant connect on database {db} to {grantee}",
        f"grant usage on schema public to {grantee}",
        f"grant select, insert, update, delete on all tables in schema public to {grantee}",
        f"grant usage, select, update on all sequences in schema public to {grantee}",
        f"revoke all on table alembic_version from {grantee}",
        *(
            f"revoke update, delete, truncate on table {_quoted(connection, table)} from {grantee}"
            for table in present
        ),
    ):
        connection.execute(text(statement))


def _quoted(connection: Connection, identifier: str) -> str:
    return str(connection.execute(text("select quote_ident(:i)"), {"i": identifier}).scalar_one())
