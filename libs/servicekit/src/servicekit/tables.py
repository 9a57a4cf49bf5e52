"""Tables every service's database holds beside its own: the outbox and processed events.

They live in their own MetaData so each service's Alembic environment can add them to its
models' metadata, and its baseline migration creates them with `create_plumbing_tables`.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    LargeBinary,
    MetaData,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

plumbing_metadata = MetaData()

#: `Table.info` key of a table whose rows are never updated nor deleted (credits' ledger):
#: the runtime role may only insert and read them (`migrations.grant_runtime_privileges`).
APPEND_ONLY = "append_only"

#: Events written in the same transaction as the change they announce, waiting for the relay
#: to publish them. A published row is deleted: the event lives on in its topic.
outbox = Table(
    "outbox",
    plumbing_metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("event_id", Text, nullable=False, unique=True),
    Column("event_type", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("key", LargeBinary, nullable=False),
    Column("value", LargeBinary, nullable=False),
    # Record headers as [[name, value], ...]; values are text (content type, trace context).
    Column("headers", JSONB, nullable=False, server_default="[]"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

#: The idempotent consumer's memory: an event id is applied at most once per consumer. Rows
#: are permanent, so a replay from the earliest offset is a series of no-ops.
processed_events = Table(
    "processed_events",
    plumbing_metadata,
    Column("consumer", Text, primary_key=True),
    Column("event_id", Text, primary_key=True),
    Column("event_type", Text, nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
