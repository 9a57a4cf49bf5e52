"""The outbox and processed-events tables every service has.

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence

from servicekit.migrations import create_plumbing_tables, drop_plumbing_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_plumbing_tables()


def downgrade() -> None:
    drop_plumbing_tables()
