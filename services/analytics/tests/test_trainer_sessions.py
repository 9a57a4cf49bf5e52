"""A trainer's sessions (`GET /api/analytics/trainers/{trainerId}/sessions`) on a real
database, from the events of `booking.sessions` and the trainer-assisted workouts: what is
delivered, who was trained, who did not show; duplicates, re-sent facts and a rebuild change
nothing; ranges at their edges; who may read it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text

from contracts.events import (
    EventPayload,
    GroupSessionCancelled,
    GroupSessionCompleted,
    GroupSessionScheduled,
    ParticipantJoined,
    ParticipantLeft,
    SessionBooked,
    SessionCancelled,
    SessionCompleted,
    SessionNoShow,
    SessionRescheduled,
    SessionStarted,
    SessionType,
    WorkoutLogged,
)
from contracts.identity import Role
from ops.identity import LocalIdentity
from servicekit.consumer import Outcome
from servicekit.db import Database
from servicekit.runtime import ServiceRuntime
from testkit.helpers import Deliver, RecordingDeadLetters, consumed

from .stories import caller

pytestmark = pytest.mark.infra

TRAINER = 456
OTHER_TRAINER = 457
#: The group's clients: five join, one of them (C3) leaves, a sixth (C6) joins late.
C1, C2, C3, C4, C5, C6 = 501, 502, 503, 504, 505, 506
GROUP = 9001
ONE_TO_ONE, MISSED, CALLED_OFF, OTHERS = 9002, 9003, 9004, 9005
CLASS_TIME = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
EMPTY = {"total": 0, "oneToOne": 0, "group": 0}


def at(hours: float) -> datetime:
    return CLASS_TIME + timedelta(hours=hours)


def booked(
    session_id: int, user_id: int, trainer_id: int = TRAINER, when: datetime = CLASS_TIME
) -> SessionBooked:
    return SessionBooked(
        session_id=session_id, user_id=user_id, trainer_id=trainer_id, session_date=when
    )


def joined(user_id: int, when: datetime = CLASS_TIME) -> ParticipantJoined:
    return ParticipantJoined(
        session_id=GROUP, user_id=user_id, trainer_id=TRAINER, session_date=when, at=at(-48)
    )


def trainer_assisted(
    trainer_id: int = TRAINER, status: str = "completed", when: datetime = CLASS_TIME
) -> WorkoutLogged:
    return WorkoutLogged(
        workout_id=uuid.uuid4(),
        user_id=C1,
        title="Plan, week 1",
        date=when,
        status=status,
        session_type=SessionType.TRAINER_ASSISTED,
        trainer_id=trainer_id,
        plan_id="strength-base",
    )


def a_month() -> list[tuple[str, EventPayload]]:
    """The trainer's month, each event with its id: a group of five with a late joiner, a
    leaver and a no-show; a one-to-one session delivered (to C1, also in the group), one
    missed, one called off; another trainer's session; trainer-assisted workouts."""
    story: list[EventPayload] = [
        GroupSessionScheduled(
            session_id=GROUP, trainer_id=TRAINER, session_date=CLASS_TIME, capacity=5
        ),
        *(joined(client) for client in (C1, C2, C3, C4, C5)),
        ParticipantLeft(session_id=GROUP, user_id=C3, trainer_id=TRAINER, at=at(-30)),
        joined(C6),
        GroupSessionCompleted(
            session_id=GROUP,
            trainer_id=TRAINER,
            at=at(1),
            attended=[C1, C2, C4, C5],
            no_shows=[C6],
        ),
        booked(ONE_TO_ONE, C1, when=at(24)),
        SessionStarted(session_id=ONE_TO_ONE, user_id=C1, trainer_id=TRAINER, at=at(24)),
        SessionCompleted(session_id=ONE_TO_ONE, user_id=C1, trainer_id=TRAINER, at=at(25)),
        booked(MISSED, C2, when=at(48)),
        SessionNoShow(session_id=MISSED, user_id=C2, trainer_id=TRAINER, at=at(49)),
        booked(CALLED_OFF, C3, when=at(72)),
        SessionCancelled(session_id=CALLED_OFF, user_id=C3, trainer_id=TRAINER, at=at(1)),
        booked(OTHERS, C4, trainer_id=OTHER_TRAINER),
        SessionCompleted(session_id=OTHERS, user_id=C4, trainer_id=OTHER_TRAINER, at=at(1)),
        trainer_assisted(),
        trainer_assisted(),
        trainer_assisted(status="skipped"),
        trainer_assisted(OTHER_TRAINER),
    ]
    return [(f"e{n}", payload) for n, payload in enumerate(story)]


MONTH_FIGURES = {
    "delivered": {"total": 2, "oneToOne": 1, "group": 1},
    "clientsTrained": 4,
    "noShows": 2,
    "trainerAssisted": 2,
}


async def play(deliver: Deliver, story: list[tuple[str, EventPayload]]) -> None:
    for event_id, payload in story:
        # A session started changes no figure: ignored, as any event without a handler.
        expected = Outcome.IGNORED if isinstance(payload, SessionStarted) else Outcome.APPLIED
        assert await deliver(payload, event_id=event_id) is expected, event_id


async def figures(api: AsyncClient, trainer_id: int = TRAINER, query: str = "") -> dict[str, Any]:
    response = await api.get(f"/api/analytics/trainers/{trainer_id}/sessions?{query}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def counted(body: dict[str, Any]) -> dict[str, Any]:
    return {key: body[key] for key in MONTH_FIGURES}


async def test_a_trainers_month_delivered_trained_and_missed(
    deliver: Deliver, api: AsyncClient
) -> None:
    await play(deliver, a_month())
    body = await figures(api)
    assert body == {"trainerId": TRAINER, "from": None, "to": None, **MONTH_FIGURES}
    other = await figures(api, OTHER_TRAINER)
    assert counted(other) == {
        "delivered": {"total": 1, "oneToOne": 1, "group": 0},
        "clientsTrained": 1,
        "noShows": 0,
        "trainerAssisted": 1,
    }


async def test_an_unknown_trainer_has_zeros_not_a_404(api: AsyncClient) -> None:
    body = await figures(api, 424242, "from=2026-01-01&to=2026-12-31")
    assert body == {
        "trainerId": 424242,
        "from": "2026-01-01",
        "to": "2026-12-31",
        "delivered": EMPTY,
        "clientsTrained": 0,
        "noShows": 0,
        "trainerAssisted": 0,
    }


async def test_duplicates_and_re_sent_facts_change_nothing(
    deliver: Deliver, api: AsyncClient
) -> None:
    story = a_month()
    await play(deliver, story)
    for event_id, payload in story:
        if not isinstance(payload, SessionStarted):
            assert await deliver(payload, event_id=event_id) is Outcome.DUPLICATE
    # The same facts again under new ids (another producer re-publishing them): no change,
    # not even a join or a leave after the session is over.
    for event_id, payload in story:
        if not isinstance(payload, WorkoutLogged):
            await deliver(payload, event_id=f"again-{event_id}")
    assert counted(await figures(api)) == MONTH_FIGURES


async def test_a_rebuild_from_the_topics_gives_the_same_answer(
    deliver: Deliver,
    api: AsyncClient,
    runtime: ServiceRuntime,
    owner_database: Database,
) -> None:
    story = a_month()
    await play(deliver, story)
    before = await figures(api)
    async with owner_database.transaction() as db:
        await db.execute(
            text(
                "truncate workouts, session_usage, trainer_clients, trainer_sessions,"
                " session_places, workout_days, processed_events, outbox"
            )
        )
    # Consumed again in batches, as a rebuild reads the topics.
    records = [
        consumed(payload, event_id=event_id, topic_prefix=runtime.settings.kafka_topic_prefix)
        for event_id, payload in story
    ]
    for start in range(0, len(records), 7):
        await runtime.consumer.process_batch(records[start : start + 7])
    assert await figures(api) == before


async def test_a_session_is_dated_by_its_date_and_moves_when_rescheduled(
    deliver: Deliver, api: AsyncClient
) -> None:
    await play(deliver, a_month())
    march_10 = "from=2026-03-10&to=2026-03-10"
    assert (await figures(api, query=march_10))["delivered"] == {
        "total": 1,
        "oneToOne": 0,
        "group": 1,
    }
    # Moved to April (after delivery: booking would refuse, but the date is the session's).
    moved = SessionRescheduled(session_id=GROUP, session_date=datetime(2026, 4, 1, tzinfo=UTC))
    await deliver(moved)
    assert (await figures(api, query=march_10))["delivered"] == EMPTY
    in_april = await figures(api, query="from=2026-04-01&to=2026-04-30")
    assert counted(in_april) == {
        "delivered": {"total": 1, "oneToOne": 0, "group": 1},
        "clientsTrained": 4,
        "noShows": 1,
        "trainerAssisted": 0,
    }


@pytest.mark.parametrize(
    ("query", "group"),
    [
        # Days include both ends (UTC); times: `from` included, `to` excluded.
        ("from=2026-03-10&to=2026-03-10", 1),
        ("to=2026-03-09", 0),
        ("from=2026-03-11", 0),
        ("from=2026-03-10T18:00:00Z", 1),
        ("to=2026-03-10T18:00:00Z", 0),
        ("from=2026-03-10T17:00:00Z&to=2026-03-10T18:00:01Z", 1),
        ("to=2026-03-10T19:00:00%2B01:00", 0),
    ],
)
async def test_ranges_include_and_exclude_at_their_edges(
    deliver: Deliver, api: AsyncClient, query: str, group: int
) -> None:
    await play(deliver, a_month())
    body = await figures(api, query=query)
    assert body["delivered"]["group"] == group
    assert body["noShows"] >= group  # the group's no-show goes with it


async def test_a_session_without_a_known_date_is_counted_only_without_a_range(
    deliver: Deliver, api: AsyncClient
) -> None:
    """A history that starts midway: the completion alone names no date."""
    await deliver(SessionCompleted(session_id=77, user_id=C1, trainer_id=TRAINER, at=at(0)))
    assert (await figures(api))["delivered"]["oneToOne"] == 1
    assert (await figures(api, query="from=2000-01-01"))["delivered"]["oneToOne"] == 0


async def test_a_cancelled_group_session_delivers_nothing(
    deliver: Deliver, api: AsyncClient
) -> None:
    await deliver(
        GroupSessionScheduled(session_id=GROUP, trainer_id=TRAINER, session_date=at(0), capacity=3)
    )
    await deliver(joined(C1))
    await deliver(GroupSessionCancelled(session_id=GROUP, trainer_id=TRAINER, at=at(-1)))
    assert counted(await figures(api)) == {
        "delivered": EMPTY,
        "clientsTrained": 0,
        "noShows": 0,
        "trainerAssisted": 0,
    }


async def test_a_group_event_for_a_one_to_one_session_is_dead_lettered(
    deliver: Deliver, api: AsyncClient, dead_letters: RecordingDeadLetters
) -> None:
    await deliver(booked(ONE_TO_ONE, C1))
    assert await deliver(joined(C2).model_copy(update={"session_id": ONE_TO_ONE})) is (
        Outcome.DEAD_LETTERED
    )
    assert dead_letters.reasons == [f"session {ONE_TO_ONE} is a one-to-one session here, not group"]


async def test_a_booked_or_joined_client_is_one_the_trainer_trains(
    deliver: Deliver, app: FastAPI, identity: LocalIdentity
) -> None:
    """Booking names the trainer and the client together, as the contract defines it."""
    await deliver(booked(ONE_TO_ONE, C1))
    await deliver(joined(C2))
    async with caller(app, identity, Role.TRAINER, TRAINER) as trainer:
        for client in (C1, C2):
            response = await trainer.get(f"/api/analytics/{client}/session-usage")
            assert response.status_code == 200, response.text
        assert (await trainer.get(f"/api/analytics/{C3}/session-usage")).status_code == 403


#: Who may read a trainer's sessions: (role, subject, trainer asked for, status).
ACCESS = [
    (Role.TRAINER, TRAINER, TRAINER, 200),
    (Role.TRAINER, TRAINER, OTHER_TRAINER, 403),
    (Role.TRAINER, TRAINER, 424242, 403),
    (Role.CLIENT, C1, TRAINER, 403),
    (Role.CLIENT, TRAINER, TRAINER, 403),  # a client whose id is the trainer's: still a client
    (Role.STAFF, "desk", TRAINER, 200),
    (Role.STAFF, "desk", 424242, 200),
    (Role.SERVICE, "kiosk", OTHER_TRAINER, 200),
]


@pytest.mark.parametrize(("role", "subject", "trainer_id", "status"), ACCESS)
async def test_who_may_read_a_trainers_sessions(
    app: FastAPI,
    identity: LocalIdentity,
    role: Role,
    subject: int | str,
    trainer_id: int,
    status: int,
) -> None:
    async with caller(app, identity, role, subject) as http:
        response = await http.get(f"/api/analytics/trainers/{trainer_id}/sessions")
    assert response.status_code == status, response.text


async def test_without_a_token_it_is_401(anonymous: AsyncClient) -> None:
    response = await anonymous.get(f"/api/analytics/trainers/{TRAINER}/sessions")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("trainers/0/sessions", "greater than 0"),
        ("trainers/9223372036854775808/sessions", "less than or equal to"),
        ("trainers/someone/sessions", "valid integer"),
        (f"trainers/{TRAINER}/sessions?from=2026-02-02&to=2026-02-01", "is not after `from`"),
        (f"trainers/{TRAINER}/sessions?to=2026-02-01T10:00:00", "needs an offset"),
    ],
)
async def test_bad_input_gets_a_422_saying_what_is_wrong(
    api: AsyncClient, path: str, says: str
) -> None:
    response = await api.get(f"/api/analytics/{path}")
    assert response.status_code == 422, response.text
    assert says in response.text
