"""Group workouts on a real database: the service's view of group sessions and their places,
fed by booking's events, and the group workouts it takes from that view. A client taking
part in the group session logs one with the group's trainer (or that trainer, or staff, logs
it for them); a client who never joined, left or did not show, another trainer, or a group
session called off is a 409 saying which. A group session not known yet is treated as a
trainer-led workout's unknown booked session is."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select, text

from contracts.events import EventPayload, WorkoutLogged, WorkoutStatusChanged
from contracts.identity import Role
from ops.identity import LocalIdentity
from servicekit.consumer import Outcome
from servicekit.db import Database
from servicekit.runtime import ServiceRuntime
from testkit.events import CLIENT, TRAINER
from testkit.helpers import Deliver, RecordingDeadLetters, consumed, outbox_events
from workouts.models import GroupPlace, GroupSession

from .groups import (
    A_CLASS,
    A_CLASS_PLACES,
    BOOKING,
    GROUP,
    REJOINED_AT,
    called_off,
    completed,
    joined,
    left,
    scheduled,
)

pytestmark = pytest.mark.infra

SESSIONS = "/api/workout/sessions"
OTHER_CLIENT, OTHER_TRAINER = 124, 457


def group_workout(
    user_id: int = CLIENT, trainer_id: int = TRAINER, session_id: int = GROUP, **fields: Any
) -> dict[str, Any]:
    return {
        "userId": user_id,
        "sessionType": "group",
        "sessionId": session_id,
        "trainerId": trainer_id,
        "groupSize": 8,
        "title": "Circuit class",
        **fields,
    }


def as_(identity: LocalIdentity, role: Role, subject: int) -> dict[str, str]:
    return {"authorization": f"Bearer {identity.token(role, str(subject))}"}


async def from_booking(deliver: Deliver, *payloads: EventPayload) -> None:
    for payload in payloads:
        assert await deliver(payload, source=BOOKING) is Outcome.APPLIED, payload


async def known_groups(runtime: ServiceRuntime) -> list[tuple[int, int, bool]]:
    async with runtime.database.transaction() as db:
        rows = await db.scalars(select(GroupSession).order_by(GroupSession.session_id))
        return [(r.session_id, r.trainer_id, r.cancelled) for r in rows]


async def known_places(runtime: ServiceRuntime) -> list[tuple[int, int, str]]:
    async with runtime.database.transaction() as db:
        rows = await db.scalars(
            select(GroupPlace).order_by(GroupPlace.session_id, GroupPlace.user_id)
        )
        return [(r.session_id, r.user_id, r.status) for r in rows]


async def logged_workouts(runtime: ServiceRuntime) -> list[WorkoutLogged]:
    return [
        e.payload
        for e in await outbox_events(runtime.database)
        if isinstance(e.payload, WorkoutLogged)
    ]


# --- the view of group sessions ----------------------------------------------------------


async def test_booking_group_events_make_the_group_session_and_each_place_known(
    deliver: Deliver, runtime: ServiceRuntime
) -> None:
    await from_booking(deliver, *A_CLASS)
    assert await known_groups(runtime) == [(GROUP, TRAINER, False)]
    assert await known_places(runtime) == [
        (GROUP, user_id, place) for user_id, place in sorted(A_CLASS_PLACES.items())
    ]


async def test_calling_a_group_session_off_cancels_every_place_and_any_learnt_later(
    deliver: Deliver, runtime: ServiceRuntime
) -> None:
    await from_booking(deliver, joined(CLIENT), joined(5), left(5), called_off(), joined(6))
    assert await known_groups(runtime) == [(GROUP, TRAINER, True)]
    assert await known_places(runtime) == [
        (GROUP, user_id, "cancelled") for user_id in (5, 6, CLIENT)
    ]


async def test_a_batch_of_group_events_ends_as_they_would_one_by_one(
    deliver: Deliver, runtime: ServiceRuntime
) -> None:
    """The places of a group session known before the batch are loaded with it."""
    await from_booking(deliver, scheduled(), joined(CLIENT))
    batch = [
        consumed(payload, source=BOOKING, offset=n)
        for n, payload in enumerate([joined(5), joined(41, session_id=41), called_off(), left(5)])
    ]
    applied = await runtime.consumer.process_batch(batch)
    assert applied.outcomes == [Outcome.APPLIED] * len(batch)
    assert await known_groups(runtime) == [(GROUP, TRAINER, True), (41, TRAINER, False)]
    assert await known_places(runtime) == [
        (GROUP, 5, "cancelled"),
        (GROUP, CLIENT, "cancelled"),
        (41, 41, "joined"),
    ]


async def test_any_arrival_order_gives_the_same_places(
    deliver: Deliver, runtime: ServiceRuntime, owner_database: Database
) -> None:
    """Orders of one group session's story, as a replay or a rebuild could deliver them."""
    story: list[tuple[str, EventPayload]] = [
        ("scheduled", scheduled()),
        ("join-1", joined(1)),
        ("join-2", joined(2)),
        ("join-3", joined(3)),
        ("leave-3", left(3)),
        ("completed", completed(attended=[1], no_shows=[2])),
    ]
    orders = list(itertools.permutations(story))
    random.Random(7).shuffle(orders)
    for n, order in enumerate(orders[:12]):
        async with owner_database.transaction() as db:
            await db.execute(text("truncate group_places, group_sessions, processed_events"))
        for event_id, payload in order:
            outcome = await deliver(payload, event_id=f"{n}-{event_id}", source=BOOKING)
            assert outcome is Outcome.APPLIED
        assert await known_places(runtime) == [
            (GROUP, 1, "attended"),
            (GROUP, 2, "no_show"),
            (GROUP, 3, "left"),
        ], [event_id for event_id, _ in order]


async def test_a_client_who_left_and_joined_again_takes_part_whichever_arrives_first(
    deliver: Deliver, runtime: ServiceRuntime
) -> None:
    await from_booking(deliver, joined(at=REJOINED_AT), left(), joined())
    async with runtime.database.transaction() as db:
        place = await db.get(GroupPlace, (GROUP, CLIENT))
    assert place is not None
    assert (place.status, place.joined_or_left_at) == ("joined", REJOINED_AT)


async def test_a_replayed_or_resent_group_event_changes_nothing(
    deliver: Deliver, runtime: ServiceRuntime
) -> None:
    assert await deliver(joined(), event_id="join", source=BOOKING) is Outcome.APPLIED
    assert await deliver(left(), event_id="leave", source=BOOKING) is Outcome.APPLIED
    assert await deliver(joined(), event_id="join", source=BOOKING) is Outcome.DUPLICATE
    assert await deliver(joined(), event_id="join-resent", source=BOOKING) is Outcome.APPLIED
    assert await known_places(runtime) == [(GROUP, CLIENT, "left")]


async def test_a_group_event_naming_another_trainer_is_dead_lettered_and_changes_nothing(
    deliver: Deliver, runtime: ServiceRuntime, dead_letters: RecordingDeadLetters
) -> None:
    await from_booking(deliver, scheduled(), joined())
    outcome = await deliver(called_off(trainer_id=OTHER_TRAINER), source=BOOKING)
    assert outcome is Outcome.DEAD_LETTERED
    assert dead_letters.reasons == [
        f"group session {GROUP} is led by trainer {TRAINER}, not trainer {OTHER_TRAINER}"
    ]
    assert await known_groups(runtime) == [(GROUP, TRAINER, False)]
    assert await known_places(runtime) == [(GROUP, CLIENT, "joined")]


# --- logging a group workout -------------------------------------------------------------


async def test_a_participant_logs_their_group_workout_announced_as_version_2(
    api: AsyncClient, deliver: Deliver, runtime: ServiceRuntime, identity: LocalIdentity
) -> None:
    await from_booking(deliver, scheduled(), joined())
    client = as_(identity, Role.CLIENT, CLIENT)
    response = await api.post(SESSIONS, json=group_workout(), headers=client)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["sessionType"], body["sessionId"], body["trainerId"], body["groupSize"]) == (
        "group",
        GROUP,
        TRAINER,
        8,
    )
    assert (body["planId"], body["sessionKnown"]) == (None, True)
    assert (await api.get(f"{SESSIONS}/{body['id']}", headers=client)).json() == body
    [event] = [e for e in await outbox_events(runtime.database) if e.type == "WorkoutLogged"]
    assert event.envelope.dataversion == "2"
    logged = event.payload
    assert isinstance(logged, WorkoutLogged)
    assert (logged.session_type, logged.session_id, logged.group_size) == ("group", GROUP, 8)


async def test_a_client_who_left_and_joined_again_logs_it(
    api: AsyncClient, deliver: Deliver, identity: LocalIdentity
) -> None:
    await from_booking(deliver, joined(), left(), joined(at=REJOINED_AT))
    response = await api.post(
        SESSIONS, json=group_workout(), headers=as_(identity, Role.CLIENT, CLIENT)
    )
    assert response.status_code == 201, response.text


async def test_a_client_who_attended_logs_it_after_the_session(
    api: AsyncClient, deliver: Deliver, identity: LocalIdentity
) -> None:
    await from_booking(deliver, joined(), completed(attended=[CLIENT]))
    response = await api.post(
        SESSIONS, json=group_workout(), headers=as_(identity, Role.CLIENT, CLIENT)
    )
    assert response.status_code == 201, response.text


async def test_the_group_sessions_trainer_logs_reads_and_moves_it_for_a_participant(
    api: AsyncClient, deliver: Deliver, identity: LocalIdentity
) -> None:
    await from_booking(deliver, scheduled(), joined())
    trainer = as_(identity, Role.TRAINER, TRAINER)
    logged = await api.post(SESSIONS, json=group_workout(status="planned"), headers=trainer)
    assert logged.status_code == 201, logged.text
    path = f"{SESSIONS}/{logged.json()['id']}"
    assert (await api.get(path, headers=trainer)).status_code == 200
    listed = await api.get(
        SESSIONS, params={"userId": CLIENT, "sessionType": "group"}, headers=trainer
    )
    assert [w["id"] for w in listed.json()] == [logged.json()["id"]]
    moved = await api.patch(path, json={"status": "completed"}, headers=trainer)
    assert (moved.status_code, moved.json()["status"]) == (200, "completed")
    # Another trainer neither reads, lists nor moves it.
    other = as_(identity, Role.TRAINER, OTHER_TRAINER)
    assert (await api.get(path, headers=other)).status_code == 404
    assert (await api.get(SESSIONS, params={"userId": CLIENT}, headers=other)).json() == []
    assert (await api.patch(path, json={"status": "cancelled"}, headers=other)).status_code == 404


REFUSED = [
    pytest.param(
        [scheduled(), joined(OTHER_CLIENT)],
        group_workout(),
        f"client {CLIENT} has no place in group session {GROUP}: only its participants' "
        "workouts are logged",
        id="non-participant",
    ),
    pytest.param(
        [joined(), left()],
        group_workout(),
        f"client {CLIENT} left group session {GROUP}: only its participants' workouts are logged",
        id="left",
    ),
    pytest.param(
        [joined(), completed(attended=[], no_shows=[CLIENT])],
        group_workout(),
        f"client {CLIENT} was a no-show at group session {GROUP}: no workout can be "
        "delivered for it",
        id="no-show",
    ),
    pytest.param(
        [joined(), called_off()],
        group_workout(),
        f"group session {GROUP} was cancelled: no workout can be delivered for it",
        id="cancelled",
    ),
    pytest.param(
        [joined()],
        group_workout(trainer_id=OTHER_TRAINER),
        f"group session {GROUP} is led by trainer {TRAINER}, not trainer {OTHER_TRAINER}",
        id="wrong-trainer",
    ),
]


@pytest.mark.parametrize("caller", ["client", "staff"])
@pytest.mark.parametrize(("story", "workout", "reason"), REFUSED)
async def test_a_group_workout_its_group_session_does_not_take_is_a_409_saying_why(
    api: AsyncClient,
    deliver: Deliver,
    runtime: ServiceRuntime,
    identity: LocalIdentity,
    story: list[EventPayload],
    workout: dict[str, Any],
    reason: str,
    caller: str,
) -> None:
    await from_booking(deliver, *story)
    headers = as_(identity, Role.CLIENT, CLIENT) if caller == "client" else {}
    response = await api.post(SESSIONS, json=workout, headers=headers)
    assert (response.status_code, response.json()) == (409, {"detail": reason})
    assert await logged_workouts(runtime) == []
    assert (await api.get(SESSIONS, params={"userId": CLIENT})).json() == []


@pytest.mark.parametrize(
    ("role", "caller", "workout"),
    [
        (Role.CLIENT, OTHER_CLIENT, group_workout()),  # a client for another client
        (Role.TRAINER, OTHER_TRAINER, group_workout()),  # a trainer naming another trainer
    ],
    ids=["client-for-another", "trainer-naming-another"],
)
async def test_logging_someone_elses_group_workout_is_a_403(
    api: AsyncClient,
    deliver: Deliver,
    runtime: ServiceRuntime,
    identity: LocalIdentity,
    role: Role,
    caller: int,
    workout: dict[str, Any],
) -> None:
    await from_booking(deliver, joined(), joined(OTHER_CLIENT))
    response = await api.post(SESSIONS, json=workout, headers=as_(identity, role, caller))
    assert response.status_code == 403, response.text
    assert "trainer-led and group workouts of the sessions they train" in response.json()["detail"]
    assert await logged_workouts(runtime) == []


async def test_without_a_token_it_is_401(api: AsyncClient, deliver: Deliver) -> None:
    await from_booking(deliver, joined())
    response = await api.post(SESSIONS, json=group_workout(), headers={"authorization": ""})
    assert response.status_code == 401


# --- a group session not known yet, as a trainer-led workout's session ---------------------


@pytest.mark.parametrize(("role", "subject"), [(Role.CLIENT, CLIENT), (Role.TRAINER, TRAINER)])
async def test_a_client_or_trainer_naming_a_group_session_not_known_yet_gets_a_404(
    api: AsyncClient, runtime: ServiceRuntime, identity: LocalIdentity, role: Role, subject: int
) -> None:
    response = await api.post(SESSIONS, json=group_workout(), headers=as_(identity, role, subject))
    assert (response.status_code, response.json()) == (
        404,
        {
            "detail": f"no group session {GROUP} known here (one scheduled a moment ago may "
            "take a moment to arrive: try again)"
        },
    )
    assert await logged_workouts(runtime) == []


async def test_staff_log_one_for_a_group_session_not_known_yet_and_it_says_so(
    api: AsyncClient, deliver: Deliver
) -> None:
    response = await api.post(SESSIONS, json=group_workout())
    assert (response.status_code, response.json()["sessionKnown"]) == (201, False)
    await from_booking(deliver, scheduled(), joined())
    assert (await api.get(f"{SESSIONS}/{response.json()['id']}")).json()["sessionKnown"] is True


# --- moving a group workout ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("ended", "reason"),
    [
        (left(), f"client {CLIENT} left group session {GROUP}"),
        (called_off(), f"group session {GROUP} was cancelled"),
    ],
)
async def test_a_planned_group_workout_cannot_start_once_its_place_is_gone_but_is_called_off(
    api: AsyncClient,
    deliver: Deliver,
    runtime: ServiceRuntime,
    identity: LocalIdentity,
    ended: EventPayload,
    reason: str,
) -> None:
    await from_booking(deliver, joined())
    client = as_(identity, Role.CLIENT, CLIENT)
    workout = (
        await api.post(SESSIONS, json=group_workout(status="planned"), headers=client)
    ).json()
    path = f"{SESSIONS}/{workout['id']}"
    await from_booking(deliver, ended)
    refused = await api.patch(path, json={"status": "in_progress"}, headers=client)
    assert refused.status_code == 409
    assert refused.json()["detail"].startswith(reason)
    called_off_ = await api.patch(path, json={"status": "cancelled"}, headers=client)
    assert (called_off_.status_code, called_off_.json()["status"]) == (200, "cancelled")
    [change] = [
        e.payload
        for e in await outbox_events(runtime.database)
        if isinstance(e.payload, WorkoutStatusChanged)
    ]
    assert (change.session_type, change.group_size, change.status) == ("group", 8, "cancelled")
