"""Group sessions as a projection of `booking.sessions`: scheduled, joined, left, completed,
cancelled and moved by other platform services, they land exactly like the API's own; the
rules hold for them too (refused events are dead-lettered with the reason); a batch ends as
its events one by one would; and a rebuild from the topics gives the very same rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text

from contracts.events import (
    EventPayload,
    GroupSessionCancelled,
    GroupSessionCompleted,
    GroupSessionScheduled,
    ParticipantJoined,
    ParticipantLeft,
    SessionCompleted,
    SessionRescheduled,
)
from contracts.session_ids import SESSION_ID_TAKEN, session_id
from servicekit.consumer import REJECTED, Outcome
from servicekit.runtime import ServiceRuntime
from testkit.events import AT, CLIENT, DATE, TRAINER, booked, moved
from testkit.helpers import Deliver, RecordingDeadLetters, consumed, outbox_events, outbox_records

from .conftest import KIOSK
from .test_projection import book_through_the_api

pytestmark = pytest.mark.infra

#: A group session in the kiosk's own block of ids.
GROUP = session_id(1, 7)
A, B, C = 101, 102, 103
LATER = datetime(2026, 2, 1, 9, tzinfo=UTC)
SENT = datetime(2026, 1, 1, 8, tzinfo=UTC)


def scheduled(group: int = GROUP, capacity: int = 2, **details: Any) -> GroupSessionScheduled:
    return GroupSessionScheduled(
        session_id=group,
        trainer_id=TRAINER,
        session_date=details.pop("session_date", DATE),
        capacity=capacity,
        **details,
    )


def joined(user_id: int, group: int = GROUP, trainer_id: int = TRAINER) -> ParticipantJoined:
    return ParticipantJoined(
        session_id=group, user_id=user_id, trainer_id=trainer_id, session_date=DATE, at=AT
    )


def left(user_id: int, group: int = GROUP) -> ParticipantLeft:
    return ParticipantLeft(session_id=group, user_id=user_id, trainer_id=TRAINER, at=AT)


def completed(
    attended: list[int], no_shows: list[int] | None = None, group: int = GROUP
) -> GroupSessionCompleted:
    return GroupSessionCompleted(
        session_id=group, trainer_id=TRAINER, at=AT, attended=attended, no_shows=no_shows or []
    )


async def group_session(api: AsyncClient, group: int = GROUP) -> dict[str, Any]:
    response = await api.get(f"/api/group-sessions/{group}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def places(found: dict[str, Any]) -> dict[int, str]:
    return {p["userId"]: p["status"] for p in found["participants"]}


async def test_a_group_session_run_by_another_service_lands_like_the_apis_own(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime, dead_letters: RecordingDeadLetters
) -> None:
    story: list[EventPayload] = [
        scheduled(capacity=3, duration=45, location="Kiosk hall"),
        joined(A),
        joined(B),
        joined(C),
        left(C),
        SessionRescheduled(session_id=GROUP, session_date=LATER),
        completed([A], [B]),
    ]
    for n, payload in enumerate(story):
        assert await deliver(payload, event_id=f"kiosk-{n}", source=KIOSK, time=SENT) is (
            Outcome.APPLIED
        )
    found = await group_session(api)
    assert {k: found[k] for k in ("id", "trainerId", "sessionDate", "duration", "capacity")} == {
        "id": GROUP,
        "trainerId": TRAINER,
        "sessionDate": "2026-02-01T09:00:00Z",
        "duration": 45,
        "capacity": 3,
    }
    assert (found["status"], found["location"], found["placesTaken"]) == (
        "completed",
        "Kiosk hall",
        2,
    )
    assert places(found) == {A: "attended", B: "no_show", C: "left"}
    assert (found["createdAt"], found["updatedAt"]) == (
        "2026-01-01T08:00:00Z",
        "2026-01-15T10:05:00Z",
    )
    assert dead_letters.reasons == []
    # The projection announces nothing: the events are already on the topic.
    assert await outbox_events(runtime.database) == []
    assert await deliver(story[1], event_id="kiosk-1") is Outcome.DUPLICATE


async def test_the_api_takes_places_in_a_group_session_another_service_scheduled(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    await deliver(scheduled(capacity=1), source=KIOSK)
    taken = await api.put(
        f"/api/group-sessions/{GROUP}/participants/{A}", json={"allowWithoutCredit": True}
    )
    assert taken.status_code == 201, taken.text
    [announced] = await outbox_events(runtime.database)
    place = announced.payload
    assert isinstance(place, ParticipantJoined)
    assert (place.session_id, place.user_id, place.trainer_id, place.session_date) == (
        GROUP,
        A,
        TRAINER,
        DATE,
    )
    full = await api.put(f"/api/group-sessions/{GROUP}/participants/{B}", json={})
    assert full.status_code == 409


@pytest.mark.parametrize(
    ("story", "reason", "kind"),
    [
        pytest.param(
            [joined(A)],
            f"group session {GROUP} was never scheduled",
            REJECTED,
            id="never scheduled",
        ),
        pytest.param(
            [scheduled(capacity=1), joined(A), joined(B)],
            f"group session {GROUP} is full: 1 of 1 places taken",
            REJECTED,
            id="full",
        ),
        pytest.param(
            [scheduled(), joined(A), left(A), joined(A)],
            f"client {A} left group session {GROUP} and cannot join it again",
            REJECTED,
            id="rejoin",
        ),
        pytest.param(
            [scheduled(), left(A)],
            f"client {A} has no place in group session {GROUP}",
            REJECTED,
            id="leaving no place",
        ),
        pytest.param(
            [scheduled(), joined(A), joined(B), completed([A])],
            f"group session {GROUP} completed without saying whether client {B} attended:"
            " every participant is in attended or noShows",
            REJECTED,
            id="attendance untold",
        ),
        pytest.param(
            [scheduled(), joined(A, trainer_id=CLIENT)],
            f"group session {GROUP} is scheduled with trainer {TRAINER}, not trainer {CLIENT}",
            SESSION_ID_TAKEN,
            id="another trainer",
        ),
        pytest.param(
            [booked(GROUP), scheduled()],
            f"session {GROUP} is a one-to-one session booked for client {CLIENT} with trainer"
            f" {TRAINER}, not a group session",
            SESSION_ID_TAKEN,
            id="a one-to-one id",
        ),
        pytest.param(
            [scheduled(), moved(SessionCompleted, GROUP)],
            f"session {GROUP} is a group session with trainer {TRAINER}, not a one-to-one session",
            SESSION_ID_TAKEN,
            id="a one-to-one event for a group id",
        ),
        pytest.param(
            [scheduled(), scheduled(capacity=5)],
            f"group session {GROUP} is already scheduled for 2026-01-15T10:00:00+00:00 (60 min,"
            " 2 places); a schedule for 2026-01-15T10:00:00+00:00 (60 min, 5 places) cannot"
            " reuse its id",
            SESSION_ID_TAKEN,
            id="another schedule",
        ),
    ],
)
async def test_an_event_the_rules_refuse_is_dead_lettered_with_the_reason(
    deliver: Deliver,
    dead_letters: RecordingDeadLetters,
    story: list[EventPayload],
    reason: str,
    kind: str,
) -> None:
    outcomes = [await deliver(payload, source=KIOSK) for payload in story]
    assert outcomes == [Outcome.APPLIED] * (len(story) - 1) + [Outcome.DEAD_LETTERED]
    assert (dead_letters.reasons, dead_letters.kinds) == ([reason], [kind])


async def test_a_completion_of_a_session_never_scheduled_makes_it_known_until_its_schedule(
    deliver: Deliver, api: AsyncClient, dead_letters: RecordingDeadLetters
) -> None:
    assert await deliver(completed([A], [B]), source=KIOSK) is Outcome.APPLIED
    found = await group_session(api)
    assert (found["status"], found["sessionDate"], found["capacity"]) == (
        "completed",
        "2026-01-15T10:05:00Z",
        100,
    )
    assert places(found) == {A: "attended", B: "no_show"}
    assert await deliver(scheduled(capacity=4, session_date=LATER), source=KIOSK) is (
        Outcome.APPLIED
    )
    found = await group_session(api)
    assert (found["status"], found["sessionDate"], found["capacity"]) == (
        "completed",
        "2026-02-01T09:00:00Z",
        4,
    )
    assert places(found) == {A: "attended", B: "no_show"}
    assert dead_letters.reasons == []


async def test_a_cancellation_of_a_session_never_scheduled_makes_it_known_cancelled(
    deliver: Deliver, api: AsyncClient
) -> None:
    cancellation = GroupSessionCancelled(
        session_id=GROUP, trainer_id=TRAINER, at=AT, reason="storm"
    )
    assert await deliver(cancellation, source=KIOSK) is Outcome.APPLIED
    found = await group_session(api)
    assert (found["status"], found["statusReason"], found["participants"]) == (
        "cancelled",
        "storm",
        [],
    )


async def test_an_outside_group_session_in_the_api_block_moves_the_api_ids_past_it(
    deliver: Deliver, api: AsyncClient
) -> None:
    assert await deliver(scheduled(group=40), source=KIOSK) is Outcome.APPLIED
    assert await deliver(completed([], group=60), source=KIOSK) is Outcome.APPLIED
    assert await book_through_the_api(api) == 61
    next_group = await api.post(
        "/api/group-sessions",
        json={"trainerId": TRAINER, "sessionDate": "2026-02-01T10:00:00Z", "capacity": 2},
    )
    assert next_group.json()["id"] == 62


async def test_a_batch_ends_as_its_events_applied_one_by_one(
    runtime: ServiceRuntime, api: AsyncClient, dead_letters: RecordingDeadLetters
) -> None:
    story: list[EventPayload] = [
        scheduled(capacity=2),
        joined(A),
        joined(B),
        joined(C),  # full: refused, and the batch applied again without it
        left(B),
        joined(C),
        SessionRescheduled(session_id=GROUP, session_date=LATER),
        booked(GROUP + 1),
        completed([A], [C]),
    ]
    records = [
        consumed(payload, event_id=f"b-{n}", time=SENT, offset=n, source=KIOSK)
        for n, payload in enumerate(story)
    ]
    outcomes = (await runtime.consumer.process_batch(records)).outcomes
    assert outcomes.count(Outcome.DEAD_LETTERED) == 1
    assert outcomes[3] is Outcome.DEAD_LETTERED
    found = await group_session(api)
    assert (found["status"], found["sessionDate"]) == ("completed", "2026-02-01T09:00:00Z")
    assert places(found) == {A: "attended", B: "left", C: "no_show"}
    assert (await api.get(f"/api/sessions/{GROUP + 1}")).status_code == 200
    assert dead_letters.reasons == [f"group session {GROUP} is full: 2 of 2 places taken"]


async def rows(runtime: ServiceRuntime, name: str) -> list[Any]:
    async with runtime.database.transaction() as db:
        return list((await db.execute(text(f"select * from {name} order by 1, 2"))).all())  # noqa: S608


async def test_a_rebuild_from_the_topic_gives_the_same_group_sessions(
    runtime: ServiceRuntime,
    api: AsyncClient,
    deliver: Deliver,
    make_app: Callable[[], FastAPI],
    dead_letters: RecordingDeadLetters,
) -> None:
    topic: list[Any] = []

    async def publish(*payloads: EventPayload) -> None:
        """Another service publishes; the original consumes it."""
        for payload in payloads:
            record = consumed(payload, event_id=f"k-{len(topic)}", source=KIOSK, time=SENT)
            topic.append(record)
            assert await runtime.consumer.process(record) is Outcome.APPLIED

    await publish(scheduled(capacity=3), joined(A), joined(B), completed([A], [B]))
    staff = {"allowWithoutCredit": True}
    body = {"trainerId": TRAINER, "sessionDate": "2026-03-01T10:00:00Z", "capacity": 2}
    mine = (await api.post("/api/group-sessions", json=body)).json()
    for client in (A, B):
        await api.put(f"/api/group-sessions/{mine['id']}/participants/{client}", json=staff)
    await api.delete(f"/api/group-sessions/{mine['id']}/participants/{B}", params={"reason": "x"})
    await api.patch(f"/api/group-sessions/{mine['id']}", json={"sessionDate": LATER.isoformat()})
    called_off = (await api.post("/api/group-sessions", json={**body, "capacity": 5})).json()
    await api.put(f"/api/group-sessions/{called_off['id']}/participants/{C}", json=staff)
    await api.patch(
        f"/api/group-sessions/{called_off['id']}", json={"status": "cancelled", "reason": "ill"}
    )
    await api.patch(f"/api/group-sessions/{mine['id']}", json={"status": "completed"})
    topic += await outbox_records(runtime.database)
    assert len(topic) == 4 + 9
    await publish(scheduled(group=GROUP + 1), joined(A, group=GROUP + 1), joined(C, GROUP + 1))

    rebuilt_app = make_app()
    rebuilt: ServiceRuntime = rebuilt_app.state.runtime
    rebuilt.consumer.dead_letters = RecordingDeadLetters()
    try:
        for record in topic:
            assert await rebuilt.consumer.process(record) is Outcome.APPLIED
        for name in ("group_sessions", "group_participants"):
            original = await rows(runtime, name)
            assert original
            assert await rows(rebuilt, name) == original
        async with AsyncClient(
            transport=ASGITransport(app=rebuilt_app), base_url="http://rebuilt", headers=api.headers
        ) as rebuilt_api:
            rebuilt_next = (await rebuilt_api.post("/api/group-sessions", json=body)).json()["id"]
        assert rebuilt_next == (await api.post("/api/group-sessions", json=body)).json()["id"]
    finally:
        await rebuilt.database.dispose()
    assert dead_letters.reasons == []
