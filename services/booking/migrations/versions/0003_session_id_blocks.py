"""Keep the API's session ids in the API's own block of ids (`contracts.session_ids`).

Before blocks, an id any producer booked moved the sequence past it, so a producer booking
high ids dragged the API along into the ids it would use next. Sessions keep their ids; a
sequence dragged beyond the API's block goes back to the largest id of the block that a
session holds, and the block's end becomes the sequence's maximum. A sequence inside the
block stays where it is: every id below it may be held already.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: `contracts.session_ids.MAX_SERIAL`, written out: a migration does not change with the code.
API_BLOCK_END = 2**40 - 1


def upgrade() -> None:
    op.execute(
        sa.text(
            "select case"
            "  when held.id is null then setval('session_ids', 1, false)"
            "  else setval('session_ids', held.id, true) end"
            " from session_ids,"
            " lateral (select max(id) as id from sessions where id <= :end) as held"
            " where session_ids.last_value > :end"
        ).bindparams(sa.bindparam("end", API_BLOCK_END, type_=sa.BigInteger))
    )
    op.execute(f"alter sequence session_ids maxvalue {API_BLOCK_END}")


def downgrade() -> None:
    op.execute("alter sequence session_ids no maxvalue")
