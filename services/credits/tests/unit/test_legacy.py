"""A ledger announced before packages, read back: each grant opens a package of its credits
that never expires, and each deduction draws from the oldest grant with a credit left, as
the migration to packages attributes the entries a database already holds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts import events
from contracts.envelope import Event, build_event
from contracts.events import Balance
from credits.handlers import HANDLERS
from credits.rules import Ledger
from testkit.events import CLIENT, TRAINER

BEFORE = datetime(2025, 6, 1, tzinfo=UTC)


def announced(payload: events.EventPayload, number: int) -> Event[events.EventPayload]:
    envelope = build_event(
        payload, source="/swanstudios/credits", event_id=str(uuid.UUID(int=number)), time=BEFORE
    )
    return Event(envelope, payload)


def test_deductions_announced_before_packages_draw_from_the_oldest_grant_first() -> None:
    ledger = Ledger()
    history: list[events.EventPayload] = [
        events.CreditsGranted(
            user_id=CLIENT,
            amount=2,
            purchase_id="old",
            balance=Balance(total=2, used=0, remaining=2),
        ),
        events.CreditsGranted(
            user_id=CLIENT,
            amount=3,
            purchase_id="new",
            balance=Balance(total=5, used=0, remaining=5),
        ),
        *(
            events.SessionCreditDeducted(
                user_id=CLIENT,
                session_id=session,
                trainer_id=TRAINER,
                cause=events.SESSION_COMPLETED,
                balance=Balance(total=5, used=session, remaining=5 - session),
            )
            for session in (1, 2, 3)
        ),
    ]
    for number, payload in enumerate(history, start=1):
        HANDLERS[type(payload)](ledger, announced(payload, number))
    packages = {p.purchase_id: p for p in ledger.packages_of(CLIENT)}
    assert [
        (packages[k].used, packages[k].left, packages[k].valid_until) for k in ("old", "new")
    ] == [
        (2, 0, None),
        (1, 2, None),
    ]
    assert ledger.balance_of(CLIENT).remaining == 2
    assert ledger.announced == []
