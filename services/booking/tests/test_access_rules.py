"""Who may book, see and change a session, without any I/O (the same rules through the
running services: tests/system/test_access.py)."""

from __future__ import annotations

import pytest

from booking.access import may_book, may_change, may_see
from booking.models import TrainingSession
from contracts.identity import Role
from contracts.sessions import SessionStatus as S
from servicekit.auth import Caller

CLIENT, TRAINER = 7, 70
SESSION = TrainingSession(user_id=CLIENT, trainer_id=TRAINER)


def caller(*roles: Role, subject: int | str = CLIENT) -> Caller:
    return Caller(str(subject), frozenset(roles))


THE_CLIENT = caller(Role.CLIENT)
THE_TRAINER = caller(Role.TRAINER, subject=TRAINER)
ANOTHER_CLIENT = caller(Role.CLIENT, subject=8)
ANOTHER_TRAINER = caller(Role.TRAINER, subject=71)
STAFF = caller(Role.STAFF, subject="ana")
SERVICE = caller(Role.SERVICE, subject="kiosk")


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        (THE_CLIENT, True),
        (THE_TRAINER, True),
        (ANOTHER_CLIENT, False),
        (ANOTHER_TRAINER, False),
        (STAFF, True),
        (SERVICE, True),
    ],
)
def test_a_session_is_booked_by_its_client_its_trainer_staff_or_a_service(
    who: Caller, allowed: bool
) -> None:
    assert may_book(who, user_id=CLIENT, trainer_id=TRAINER) is allowed
    assert may_see(who, SESSION) is allowed


@pytest.mark.parametrize("change", [S.IN_PROGRESS, S.COMPLETED, S.NO_SHOW])
def test_only_its_trainer_or_staff_start_complete_or_mark_a_no_show(change: S) -> None:
    assert may_change(THE_TRAINER, SESSION, change)
    assert may_change(STAFF, SESSION, change)
    assert may_change(SERVICE, SESSION, change)
    assert not may_change(THE_CLIENT, SESSION, change)
    assert not may_change(ANOTHER_TRAINER, SESSION, change)


@pytest.mark.parametrize("change", [S.CANCELLED, None], ids=["cancel", "reschedule"])
def test_its_client_may_cancel_or_move_it_and_nobody_else_of_their_kind(change: S | None) -> None:
    assert may_change(THE_CLIENT, SESSION, change)
    assert may_change(THE_TRAINER, SESSION, change)
    assert not may_change(ANOTHER_CLIENT, SESSION, change)
    assert not may_change(ANOTHER_TRAINER, SESSION, change)


def test_a_trainer_who_is_also_a_client_books_for_themselves_with_another_trainer() -> None:
    both = caller(Role.CLIENT, Role.TRAINER, subject=CLIENT)

    assert may_book(both, user_id=CLIENT, trainer_id=TRAINER)
    assert not may_change(both, SESSION, S.COMPLETED)
