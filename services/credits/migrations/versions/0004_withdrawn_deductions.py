"""Parked deductions whose workout was cancelled before the session's booking arrived.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "withdrawn_deductions",
        sa.Column("workout_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("session_id", sa.BigInteger, nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("withdrawn_deductions")
