"""What time alone decides on the ledger: packages expiring (`Ledger.pass_time`).

Run every few seconds by the service once it has read its history; tests run it with a
time of their choosing. Which clients are due is one query over an index of the packages
still open; each batch of them is then decided under their locks like any other change.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select

from credits.models import Package
from credits.rules import EXPIRY_NOTICE
from credits.store import LedgerStore, Scope
from servicekit.db import Database

#: Clients decided in one transaction.
CLIENTS_PER_TRANSACTION = 200

_PACKAGES = Package.__table__.c


async def pass_time(database: Database, store: LedgerStore, now: datetime) -> int:
    """Expire what is due at `now`, and announce what ends soon; how many clients it
    touched."""
    due = (
        select(_PACKAGES.user_id)
        .where(
            ~_PACKAGES.closed,
            _PACKAGES.valid_until.is_not(None),
            or_(
                _PACKAGES.valid_until <= now - store.expiry_grace,
                ~_PACKAGES.warned & (_PACKAGES.valid_until <= now + EXPIRY_NOTICE),
            ),
        )
        .distinct()
        .order_by(_PACKAGES.user_id)
    )
    async with database.transaction() as db:
        clients = list(await db.scalars(due))
    for start in range(0, len(clients), CLIENTS_PER_TRANSACTION):
        chunk = frozenset(clients[start : start + CLIENTS_PER_TRANSACTION])
        async with (
            database.transaction() as db,
            store.ledger_for(db, Scope(clients=chunk)) as ledger,
        ):
            ledger.pass_time(now)
    return len(clients)
