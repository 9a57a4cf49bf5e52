"""Sessions by trainer and client: whether a trainer trains a client (who may read whose
balance) is one index lookup.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("sessions_by_trainer_and_client", "sessions", ["trainer_id", "user_id"])


def downgrade() -> None:
    op.drop_index("sessions_by_trainer_and_client", table_name="sessions")
