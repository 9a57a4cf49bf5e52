"""What the unit tests of packages, expiry, holds and forfeits share: days of one week
(Monday-based, as weekly caps count them), the studio policy they judge by, and ways to read
a ledger's entries and packages."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.events import CancellationPolicy
from credits.rules import EntryKind, Ledger, Package, purchase_grant_id
from testkit.events import CLIENT

#: A Monday, midnight UTC: weeks start here for a weekly cap.
MONDAY = datetime(2026, 1, 12, tzinfo=UTC)
#: Late cancels within 24 hours and no-shows forfeit.
POLICY = CancellationPolicy(late_cancel_hours=24, no_show_forfeits=True)


def day(number: int, hour: int = 10) -> datetime:
    """`hour` o'clock (UTC) on day `number` after MONDAY (0 is that Monday)."""
    return MONDAY + timedelta(days=number, hours=hour)


def package(ledger: Ledger, purchase_id: str = "order-1") -> Package:
    return ledger.packages[purchase_grant_id(purchase_id)]


def package_id(purchase_id: str) -> uuid.UUID:
    """A purchased package's id: its grant's."""
    return purchase_grant_id(purchase_id)


def rows(ledger: Ledger, kind: EntryKind | None = None) -> list[dict[str, Any]]:
    """The rows of the entries decided on `ledger` (of `kind`, or all), in order."""
    decided = [e.row for e in ledger.entries.values() if e.row is not None]
    return [row for row in decided if kind is None or row["kind"] == kind]


def row(ledger: Ledger, id: uuid.UUID) -> dict[str, Any]:
    decided = ledger.entries[id].row
    assert decided is not None, f"entry {id} was loaded, not decided"
    return decided


def figures(ledger: Ledger, user_id: int = CLIENT) -> tuple[int, int, int, int, int, int]:
    """total, used, held, expired, remaining, available."""
    b = ledger.balance_of(user_id)
    return (b.total, b.used, b.held, b.expired, b.remaining, b.available)
