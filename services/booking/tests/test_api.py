"""The booking API on a real database: booking, the lifecycle, the events each change
announces, and a clear 4xx for every bad request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient, Response

from contracts.envelope import Event
from contracts.events import (
    EventPayload,
    SessionBooked,
    SessionCancelled,
    SessionCompleted,
    SessionNoShow,
    SessionRescheduled,
    SessionStarted,
    SessionStatusEvent,
)
from contracts.sessions import SessionStatus
from servicekit.consumer import Outcome
from servicekit.runtime import ServiceRuntime
from testkit.helpers import outbox_events, outbox_records

pytestmark = pytest.mark.infra

CLIENT, TRAINER = 123, 456
DATE = "2026-01-15T10:00:00Z"
S = SessionStatus

#: The PATCHes that bring a newly booked session to each status.
WAY_TO: dict[S, list[S]] = {
    S.SCHEDULED: [],
    S.IN_PROGRESS: [S.IN_PROGRESS],
    S.COMPLETED: [S.IN_PROGRESS, S.COMPLETED],
    S.CANCELLED: [S.CANCELLED],
    S.NO_SHOW: [S.NO_SHOW],
}
ALLOWED: list[tuple[S, S, type[SessionStatusEvent]]] = [
    (S.SCHEDULED, S.IN_PROGRESS, SessionStarted),
    (S.IN_PROGRESS, S.COMPLETED, SessionCompleted),
    (S.SCHEDULED, S.CANCELLED, SessionCancelled),
    (S.IN_PROGRESS, S.CANCELLED, SessionCancelled),
    (S.SCHEDULED, S.NO_SHOW, SessionNoShow),
]
REFUSED = [
    (current, target)
    for current in S
    for target in S
    if current != target and (current, target) not in {(c, t) for c, t, _ in ALLOWED}
]


def rfc3339(moment: datetime | None) -> str:
    assert moment is not None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def book(api: AsyncClient, **fields: Any) -> dict[str, Any]:
    """Booked by staff, who may book without credit: credits are not these tests' point
    (test_credit_check.py)."""
    body = {
        "userId": CLIENT,
        "trainerId": TRAINER,
        "sessionDate": DATE,
        "allowWithoutCredit": True,
        **fields,
    }
    response = await api.post("/api/sessions", json=body)
    assert response.status_code == 201, response.text
    booked: dict[str, Any] = response.json()
    # Only the answer to a booking says whether the override was needed: the session as
    # read later does not.
    assert booked.pop("bookedWithoutCredit") is True
    return booked


async def patch(api: AsyncClient, session_id: int, **body: Any) -> Response:
    return await api.patch(f"/api/sessions/{session_id}", json=body)


async def session_in(api: AsyncClient, status: S) -> dict[str, Any]:
    """A session booked and then moved to `status` through the API."""
    session = await book(api)
    for step in WAY_TO[status]:
        response = await patch(api, session["id"], status=step)
        assert response.status_code == 200, response.text
        session = response.json()
    assert session["status"] == status
    return session


async def announced(runtime: ServiceRuntime) -> list[Event[EventPayload]]:
    return await outbox_events(runtime.database)


async def test_a_booking_is_scheduled_and_announced(
    api: AsyncClient, runtime: ServiceRuntime
) -> None:
    session = await book(api)
    [event] = await announced(runtime)
    assert session == {
        "id": 1,
        "userId": CLIENT,
        "trainerId": TRAINER,
        "sessionDate": DATE,
        "duration": 60,
        "status": "scheduled",
        "sessionDeducted": False,
        "location": None,
        "notes": None,
        "statusReason": None,
        "createdAt": rfc3339(event.envelope.time),
        "updatedAt": session["createdAt"],
    }
    assert (event.type, event.envelope.source, event.envelope.subject) == (
        "SessionBooked",
        "/swanstudios/booking",
        None,
    )
    assert event.payload == SessionBooked(
        session_id=1,
        user_id=CLIENT,
        trainer_id=TRAINER,
        session_date=datetime(2026, 1, 15, 10, tzinfo=UTC),
        duration=60,
    )
    assert (await api.get("/api/sessions/1")).json() == session


async def test_a_booking_keeps_its_duration_location_and_notes(
    api: AsyncClient, runtime: ServiceRuntime
) -> None:
    session = await book(
        api,
        sessionDate="2026-01-15T12:00:00+02:00",
        duration=90,
        location="Studio B",
        notes="Bring the bands",
    )
    assert (session["sessionDate"], session["duration"]) == (DATE, 90)
    assert (session["location"], session["notes"]) == ("Studio B", "Bring the bands")
    [event] = await announced(runtime)
    assert isinstance(event.payload, SessionBooked)
    assert (event.payload.duration, event.payload.location, event.payload.notes) == (
        90,
        "Studio B",
        "Bring the bands",
    )


async def test_a_null_duration_is_the_default_hour(api: AsyncClient) -> None:
    assert (await book(api, duration=None))["duration"] == 60


async def test_every_booking_gets_an_id_of_its_own(api: AsyncClient) -> None:
    ids = [(await book(api))["id"] for _ in range(3)]
    assert ids == [1, 2, 3]


@pytest.mark.parametrize(("current", "target", "announcement"), ALLOWED)
async def test_allowed_status_changes_are_made_and_announced(
    api: AsyncClient,
    runtime: ServiceRuntime,
    current: S,
    target: S,
    announcement: type[SessionStatusEvent],
) -> None:
    session = await session_in(api, current)
    before = len(await announced(runtime))
    response = await patch(api, session["id"], status=target)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == target
    assert (await api.get(f"/api/sessions/{session['id']}")).json() == response.json()
    events = await announced(runtime)
    assert len(events) == before + 1
    payload = events[-1].payload
    assert isinstance(payload, announcement)
    assert (payload.session_id, payload.user_id, payload.trainer_id, payload.reason) == (
        session["id"],
        CLIENT,
        TRAINER,
        None,
    )
    assert abs(datetime.now(UTC) - payload.at) < timedelta(minutes=1)
    assert response.json()["updatedAt"] == rfc3339(payload.at)


@pytest.mark.parametrize(("current", "target"), REFUSED)
async def test_any_other_status_change_is_a_409_that_changes_nothing(
    api: AsyncClient, runtime: ServiceRuntime, current: S, target: S
) -> None:
    session = await session_in(api, current)
    before = await announced(runtime)
    response = await patch(api, session["id"], status=target)
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert detail.startswith(f"session {session['id']} ")
    assert current in detail
    assert target in detail
    assert (await api.get(f"/api/sessions/{session['id']}")).json() == session
    assert await announced(runtime) == before


@pytest.mark.parametrize("status", list(S))
async def test_asking_for_the_status_a_session_has_changes_and_announces_nothing(
    api: AsyncClient, runtime: ServiceRuntime, status: S
) -> None:
    session = await session_in(api, status)
    before = await announced(runtime)
    response = await patch(api, session["id"], status=status)
    assert response.status_code == 200
    assert response.json() == session
    assert await announced(runtime) == before


async def test_a_cancellation_keeps_and_announces_its_reason(
    api: AsyncClient, runtime: ServiceRuntime
) -> None:
    session = await book(api)
    response = await patch(api, session["id"], status="cancelled", reason="client is ill")
    assert response.json()["statusReason"] == "client is ill"
    payload = (await announced(runtime))[-1].payload
    assert isinstance(payload, SessionCancelled)
    assert payload.reason == "client is ill"


async def test_a_scheduled_session_can_be_rescheduled(
    api: AsyncClient, runtime: ServiceRuntime
) -> None:
    session = await book(api)
    response = await patch(api, session["id"], sessionDate="2026-01-16T09:30:00+01:00")
    assert response.status_code == 200, response.text
    assert response.json()["sessionDate"] == "2026-01-16T08:30:00Z"
    assert response.json()["status"] == "scheduled"
    payload = (await announced(runtime))[-1].payload
    assert payload == SessionRescheduled(
        session_id=session["id"], session_date=datetime(2026, 1, 16, 8, 30, tzinfo=UTC)
    )
    # The same date again changes and announces nothing.
    count = len(await announced(runtime))
    again = await patch(api, session["id"], sessionDate="2026-01-16T08:30:00Z")
    assert again.json() == response.json()
    assert len(await announced(runtime)) == count


@pytest.mark.parametrize("status", [s for s in S if s is not S.SCHEDULED])
async def test_a_session_that_has_started_or_ended_cannot_be_rescheduled(
    api: AsyncClient, status: S
) -> None:
    session = await session_in(api, status)
    response = await patch(api, session["id"], sessionDate="2026-02-01T10:00:00Z")
    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"session {session['id']} is {status}: only a scheduled session can be rescheduled"
    )


async def test_an_unknown_session_is_a_404(api: AsyncClient) -> None:
    for response in (
        await api.get("/api/sessions/42"),
        await patch(api, 42, status="cancelled"),
        await patch(api, 42, sessionDate=DATE),
    ):
        assert response.status_code == 404
        assert response.json() == {"detail": "session 42 was never booked"}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"trainerId": TRAINER, "sessionDate": DATE}, id="no userId"),
        pytest.param({"userId": CLIENT, "sessionDate": DATE}, id="no trainerId"),
        pytest.param({"userId": CLIENT, "trainerId": TRAINER}, id="no sessionDate"),
        pytest.param({"userId": "123", "trainerId": TRAINER, "sessionDate": DATE}, id="text id"),
        pytest.param({"userId": 1.5, "trainerId": TRAINER, "sessionDate": DATE}, id="float id"),
        pytest.param({"userId": True, "trainerId": TRAINER, "sessionDate": DATE}, id="bool id"),
        pytest.param({"userId": 0, "trainerId": TRAINER, "sessionDate": DATE}, id="zero id"),
        pytest.param({"userId": -5, "trainerId": TRAINER, "sessionDate": DATE}, id="negative"),
        pytest.param({"userId": 2**63, "trainerId": TRAINER, "sessionDate": DATE}, id="huge id"),
        pytest.param(
            {"userId": CLIENT, "trainerId": TRAINER, "sessionDate": "2026-01-15T10:00:00"},
            id="naive date",
        ),
        pytest.param(
            {"userId": CLIENT, "trainerId": TRAINER, "sessionDate": "next tuesday"},
            id="not a date",
        ),
        pytest.param(
            {"userId": CLIENT, "trainerId": TRAINER, "sessionDate": 1768471200}, id="number date"
        ),
        pytest.param(
            {"userId": CLIENT, "trainerId": TRAINER, "sessionDate": "0001-01-01T00:00:00+05:00"},
            id="date out of range",
        ),
        pytest.param(
            {"userId": CLIENT, "trainerId": TRAINER, "sessionDate": DATE, "duration": -30},
            id="negative duration",
        ),
        pytest.param(
            {"userId": CLIENT, "trainerId": TRAINER, "sessionDate": DATE, "duration": 0},
            id="zero duration",
        ),
        pytest.param(
            {"userId": CLIENT, "trainerId": TRAINER, "sessionDate": DATE, "duration": 601},
            id="duration over ten hours",
        ),
        pytest.param(
            {"userId": CLIENT, "trainerId": TRAINER, "sessionDate": DATE, "duration": "1h"},
            id="text duration",
        ),
        pytest.param(
            {"userId": CLIENT, "trainerId": TRAINER, "sessionDate": DATE, "location": "x" * 201},
            id="location too long",
        ),
        pytest.param(
            {"userId": CLIENT, "trainerId": TRAINER, "sessionDate": DATE, "notes": "x" * 2001},
            id="notes too long",
        ),
        pytest.param(
            {"userId": CLIENT, "trainerId": TRAINER, "sessionDate": DATE, "notes": "a\x00b"},
            id="NUL in notes",
        ),
        pytest.param([], id="not an object"),
    ],
)
async def test_a_bad_booking_is_a_422_saying_what_is_wrong(
    api: AsyncClient, runtime: ServiceRuntime, body: Any
) -> None:
    response = await api.post("/api/sessions", json=body)
    assert response.status_code == 422
    assert response.json()["detail"]
    assert await announced(runtime) == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="nothing to change"),
        pytest.param({"status": "finished"}, id="unknown status"),
        pytest.param({"status": 3}, id="number status"),
        pytest.param({"status": None}, id="null status"),
        pytest.param({"status": "cancelled", "sessionDate": DATE}, id="two changes at once"),
        pytest.param({"reason": "why not"}, id="reason alone"),
        pytest.param({"sessionDate": DATE, "reason": "why not"}, id="reason with a date"),
        pytest.param({"status": "cancelled", "reason": ""}, id="empty reason"),
        pytest.param({"status": "cancelled", "reason": "x" * 501}, id="reason too long"),
        pytest.param({"sessionDate": "2026-01-16T10:00:00"}, id="naive date"),
    ],
)
async def test_a_bad_change_is_a_422_saying_what_is_wrong(
    api: AsyncClient, runtime: ServiceRuntime, body: dict[str, Any]
) -> None:
    session = await book(api)
    before = await announced(runtime)
    response = await patch(api, session["id"], **body)
    assert response.status_code == 422
    assert response.json()["detail"]
    assert await announced(runtime) == before
    assert (await api.get(f"/api/sessions/{session['id']}")).json() == session


@pytest.mark.parametrize("session_id", ["0", "-1", "abc", "1.5", str(2**63)])
async def test_an_impossible_session_id_is_a_422(api: AsyncClient, session_id: str) -> None:
    assert (await api.get(f"/api/sessions/{session_id}")).status_code == 422
    response = await api.patch(f"/api/sessions/{session_id}", json={"status": "cancelled"})
    assert response.status_code == 422


@pytest.mark.parametrize(
    "query",
    [
        "status=finished",
        "userId=0",
        "userId=abc",
        f"trainerId={2**63}",
        "limit=0",
        "limit=501",
        "offset=-1",
        f"offset={2**31}",
    ],
)
async def test_a_bad_listing_query_is_a_422(api: AsyncClient, query: str) -> None:
    response = await api.get(f"/api/sessions?{query}")
    assert response.status_code == 422
    assert response.json()["detail"]


async def test_listings_filter_by_client_trainer_and_status_earliest_first(
    api: AsyncClient,
) -> None:
    late = await book(api, sessionDate="2026-03-01T10:00:00Z")
    early = await book(api, sessionDate="2026-01-01T10:00:00Z")
    other_client = await book(api, userId=999, sessionDate="2026-02-01T10:00:00Z")
    other_trainer = await book(api, trainerId=888, sessionDate="2026-02-02T10:00:00Z")
    await patch(api, early["id"], status="cancelled")

    async def ids(query: str) -> list[int]:
        response = await api.get(f"/api/sessions?{query}")
        assert response.status_code == 200, response.text
        return [session["id"] for session in response.json()]

    assert await ids("") == [early["id"], other_client["id"], other_trainer["id"], late["id"]]
    assert await ids(f"userId={CLIENT}") == [early["id"], other_trainer["id"], late["id"]]
    assert await ids(f"trainerId={TRAINER}") == [early["id"], other_client["id"], late["id"]]
    assert await ids(f"userId={CLIENT}&trainerId={TRAINER}&status=scheduled") == [late["id"]]
    assert await ids("status=cancelled") == [early["id"]]
    assert await ids("status=completed") == []
    assert await ids("limit=2") == [early["id"], other_client["id"]]
    assert await ids("limit=2&offset=3") == [late["id"]]


async def test_its_own_events_come_back_as_duplicates_that_change_nothing(
    api: AsyncClient, runtime: ServiceRuntime
) -> None:
    session = await book(api)
    await patch(api, session["id"], sessionDate="2026-01-20T10:00:00Z")
    await patch(api, session["id"], status="in_progress")
    final = (await patch(api, session["id"], status="completed")).json()
    records = await outbox_records(runtime.database)
    assert len(records) == 4
    for record in records:
        assert await runtime.consumer.process(record) is Outcome.DUPLICATE
    assert (await api.get(f"/api/sessions/{session['id']}")).json() == final
