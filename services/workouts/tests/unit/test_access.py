"""Who may log, read and change a workout, without any I/O (the same rules through the
running services: tests/system/test_access.py)."""

from __future__ import annotations

import pytest

from contracts.events import SessionType
from contracts.identity import Role
from contracts.sessions import SessionStatus
from servicekit.auth import Caller
from workouts.access import (
    SessionNotVisible,
    may_name_group_session,
    may_name_session,
    may_read,
    may_write,
)
from workouts.rules import BookedSessionFacts, GroupSessionFacts

CLIENT, TRAINER = 7, 70
SOLO, TRAINER_LED, GROUP = SessionType.SOLO, SessionType.TRAINER_LED, SessionType.GROUP
BOOKED = BookedSessionFacts(
    session_id=1, user_id=CLIENT, trainer_id=TRAINER, status=SessionStatus.SCHEDULED
)


def caller(role: Role, subject: int | str) -> Caller:
    return Caller(str(subject), frozenset({role}))


THE_CLIENT = caller(Role.CLIENT, CLIENT)
THE_TRAINER = caller(Role.TRAINER, TRAINER)
ANOTHER_CLIENT = caller(Role.CLIENT, 8)
ANOTHER_TRAINER = caller(Role.TRAINER, 71)
STAFF = caller(Role.STAFF, "ana")


def test_a_solo_workout_is_written_by_its_owner_whatever_their_role() -> None:
    assert may_write(THE_CLIENT, owner=CLIENT, session_type=SOLO, trainer=None)
    assert may_write(THE_TRAINER, owner=TRAINER, session_type=SOLO, trainer=None)
    assert may_write(STAFF, owner=CLIENT, session_type=SOLO, trainer=None)
    assert not may_write(THE_TRAINER, owner=CLIENT, session_type=SOLO, trainer=None)
    assert not may_write(ANOTHER_CLIENT, owner=CLIENT, session_type=SOLO, trainer=None)


@pytest.mark.parametrize("kind", [TRAINER_LED, GROUP])
def test_a_trainer_led_or_group_workout_is_written_by_its_client_or_its_trainer(
    kind: SessionType,
) -> None:
    assert may_write(THE_CLIENT, owner=CLIENT, session_type=kind, trainer=TRAINER)
    assert may_write(THE_TRAINER, owner=CLIENT, session_type=kind, trainer=TRAINER)
    assert may_write(STAFF, owner=CLIENT, session_type=kind, trainer=TRAINER)
    assert not may_write(ANOTHER_TRAINER, owner=CLIENT, session_type=kind, trainer=TRAINER)
    assert not may_write(ANOTHER_CLIENT, owner=CLIENT, session_type=kind, trainer=TRAINER)
    # A trainer's own trainer-led workout, trained by someone else, is not theirs to change.
    assert not may_write(THE_TRAINER, owner=TRAINER, session_type=kind, trainer=None)


@pytest.mark.parametrize(
    ("who", "named"),
    [
        (THE_CLIENT, True),
        (THE_TRAINER, True),
        (ANOTHER_CLIENT, False),
        (ANOTHER_TRAINER, False),
        (STAFF, True),
    ],
)
def test_a_booked_session_is_named_by_its_client_its_trainer_or_staff(
    who: Caller, named: bool
) -> None:
    assert may_name_session(who, BOOKED) is named


def test_a_session_not_known_yet_is_named_only_by_staff_and_services() -> None:
    assert may_name_session(STAFF, None)
    assert may_name_session(caller(Role.SERVICE, "kiosk"), None)
    assert not may_name_session(THE_CLIENT, None)
    assert not may_name_session(THE_TRAINER, None)


@pytest.mark.parametrize("who", [THE_CLIENT, THE_TRAINER, ANOTHER_CLIENT, ANOTHER_TRAINER, STAFF])
def test_a_group_session_known_here_is_named_by_anyone_whose_place_the_rules_then_judge(
    who: Caller,
) -> None:
    assert may_name_group_session(who, GroupSessionFacts(session_id=1, trainer_id=TRAINER))


def test_a_group_session_not_known_yet_is_named_only_by_staff_and_services() -> None:
    assert may_name_group_session(STAFF, None)
    assert may_name_group_session(caller(Role.SERVICE, "kiosk"), None)
    assert not may_name_group_session(THE_CLIENT, None)
    assert not may_name_group_session(THE_TRAINER, None)
    assert SessionNotVisible(40, group=True).reason == (
        "no group session 40 known here (one scheduled a moment ago may take a moment to "
        "arrive: try again)"
    )
    assert SessionNotVisible(40).reason.startswith("no session 40 booked for you (one booked")


def test_a_trainer_reads_their_own_workouts_and_those_of_sessions_they_train() -> None:
    assert may_read(THE_TRAINER, owner=TRAINER, session_trainer=None)
    assert may_read(THE_TRAINER, owner=CLIENT, session_trainer=TRAINER)
    assert not may_read(THE_TRAINER, owner=CLIENT, session_trainer=71)
    assert not may_read(ANOTHER_CLIENT, owner=CLIENT, session_trainer=TRAINER)
