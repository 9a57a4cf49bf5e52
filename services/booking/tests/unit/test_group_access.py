"""Who may schedule, see and change a group session, take and give up places in it, and whose
places they see, without any I/O (the same rules through the running services:
tests/system/test_access.py)."""

from __future__ import annotations

import pytest

from booking.access import (
    may_run_group,
    may_schedule_group,
    may_see_group,
    may_take_place,
    places_shown,
)
from booking.models import GroupParticipant, GroupSession
from contracts.identity import Role
from servicekit.auth import Caller

CLIENT, OTHER_CLIENT, TRAINER = 7, 8, 70


def caller(*roles: Role, subject: int | str = CLIENT) -> Caller:
    return Caller(str(subject), frozenset(roles))


THE_CLIENT = caller(Role.CLIENT)
ANOTHER_CLIENT = caller(Role.CLIENT, subject=OTHER_CLIENT)
THE_TRAINER = caller(Role.TRAINER, subject=TRAINER)
ANOTHER_TRAINER = caller(Role.TRAINER, subject=71)
STAFF = caller(Role.STAFF, subject="ana")
SERVICE = caller(Role.SERVICE, subject="kiosk")


def group(status: str, *places: tuple[int, str]) -> GroupSession:
    return GroupSession(
        trainer_id=TRAINER,
        status=status,
        participants=[GroupParticipant(user_id=user, status=place) for user, place in places],
    )


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        (THE_TRAINER, True),
        (STAFF, True),
        (SERVICE, True),
        (ANOTHER_TRAINER, False),
        (THE_CLIENT, False),
    ],
)
def test_a_trainer_schedules_their_own_group_sessions_staff_and_services_anyones(
    who: Caller, allowed: bool
) -> None:
    assert may_schedule_group(who, trainer_id=TRAINER) is allowed


@pytest.mark.parametrize(
    ("session", "client_sees"),
    [
        (group("scheduled"), True),
        (group("completed"), False),
        (group("cancelled"), False),
        (group("completed", (CLIENT, "attended")), True),
        (group("cancelled", (CLIENT, "left")), True),
    ],
    ids=["timetable", "over", "called off", "attended", "left before it was called off"],
)
def test_a_client_sees_the_timetable_and_what_they_had_a_place_in(
    session: GroupSession, client_sees: bool
) -> None:
    assert may_see_group(THE_CLIENT, session) is client_sees
    for who in (THE_TRAINER, STAFF, SERVICE):
        assert may_see_group(who, session)
    # Another trainer sees no other trainer's sessions, not even the timetable.
    assert not may_see_group(ANOTHER_TRAINER, session)


def test_a_client_sees_only_their_own_place_and_who_runs_it_every_place() -> None:
    session = group("scheduled", (CLIENT, "joined"), (OTHER_CLIENT, "joined"))
    assert [p.user_id for p in places_shown(THE_CLIENT, session)] == [CLIENT]
    assert [p.user_id for p in places_shown(caller(Role.CLIENT, subject=9), session)] == []
    for who in (THE_TRAINER, STAFF, SERVICE):
        assert [p.user_id for p in places_shown(who, session)] == [CLIENT, OTHER_CLIENT]


def test_a_client_takes_their_own_place_who_runs_it_anyones() -> None:
    session = group("scheduled")
    assert may_take_place(THE_CLIENT, session, CLIENT)
    assert not may_take_place(THE_CLIENT, session, OTHER_CLIENT)
    assert not may_take_place(ANOTHER_TRAINER, session, CLIENT)
    for who in (THE_TRAINER, STAFF, SERVICE):
        assert may_take_place(who, session, OTHER_CLIENT)


def test_only_who_runs_it_completes_cancels_or_moves_it() -> None:
    session = group("scheduled", (CLIENT, "joined"))
    assert [may_run_group(who, session) for who in (THE_TRAINER, STAFF, SERVICE)] == [True] * 3
    assert not may_run_group(THE_CLIENT, session)
    assert not may_run_group(ANOTHER_TRAINER, session)


def test_a_trainer_who_is_also_a_client_joins_another_trainers_class_as_a_client() -> None:
    both = caller(Role.CLIENT, Role.TRAINER, subject=CLIENT)
    session = group("scheduled", (OTHER_CLIENT, "joined"))
    assert may_see_group(both, session)
    assert may_take_place(both, session, CLIENT)
    assert not may_run_group(both, session)
    assert places_shown(both, session) == []
