"""The group sessions' API on a real database: scheduling, places taken until the session is
full and given up for good, completing with who did not show, cancelling and moving, the
events each change announces, who may do what and see whom, and a clear 4xx for every bad
request."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient, Response

from contracts.events import (
    Balance,
    CreditsGranted,
    EventPayload,
    GroupSessionCancelled,
    GroupSessionCompleted,
    GroupSessionScheduled,
    ParticipantJoined,
    ParticipantLeft,
    SessionRescheduled,
)
from contracts.identity import Role
from servicekit.consumer import Outcome
from servicekit.runtime import ServiceRuntime
from testkit.helpers import Deliver, outbox_events, outbox_records

from .conftest import HeadersOf

pytestmark = pytest.mark.infra

TRAINER, OTHER_TRAINER = 456, 457
A, B, C, D = 101, 102, 103, 104
DATE = "2026-01-15T10:00:00Z"
#: Staff take places without credit: credits are not most of these tests' point.
WITHOUT_CREDIT = {"allowWithoutCredit": True}


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def schedule(
    api: AsyncClient, headers: dict[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    body = {"trainerId": TRAINER, "sessionDate": DATE, "capacity": 3, **fields}
    response = await api.post("/api/group-sessions", json=body, headers=headers)
    assert response.status_code == 201, response.text
    scheduled: dict[str, Any] = response.json()
    return scheduled


async def join(
    api: AsyncClient,
    session_id: int,
    user_id: int,
    headers: dict[str, str] | None = None,
    body: dict[str, Any] | None = WITHOUT_CREDIT,
) -> Response:
    path = f"/api/group-sessions/{session_id}/participants/{user_id}"
    return await api.put(path, json=body, headers=headers)


async def leave(
    api: AsyncClient,
    session_id: int,
    user_id: int,
    headers: dict[str, str] | None = None,
    reason: str | None = None,
) -> Response:
    path = f"/api/group-sessions/{session_id}/participants/{user_id}"
    params = {} if reason is None else {"reason": reason}
    return await api.delete(path, params=params, headers=headers)


async def patch(
    api: AsyncClient, session_id: int, headers: dict[str, str] | None = None, **body: Any
) -> Response:
    return await api.patch(f"/api/group-sessions/{session_id}", json=body, headers=headers)


async def read(api: AsyncClient, session_id: int) -> dict[str, Any]:
    response = await api.get(f"/api/group-sessions/{session_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def with_places(api: AsyncClient, *clients: int, capacity: int = 3) -> dict[str, Any]:
    """A group session scheduled by staff, each client joined in turn."""
    group = await schedule(api, capacity=capacity)
    for client in clients:
        response = await join(api, group["id"], client)
        assert response.status_code == 201, response.text
        group = response.json()
    return group


async def announced(runtime: ServiceRuntime) -> list[EventPayload]:
    return [event.payload for event in await outbox_events(runtime.database)]


def places(group: dict[str, Any]) -> dict[int, str]:
    return {p["userId"]: p["status"] for p in group["participants"]}


# --- scheduling -------------------------------------------------------------------------------


async def test_a_scheduled_group_session_is_answered_and_announced(
    api: AsyncClient, runtime: ServiceRuntime
) -> None:
    group = await schedule(
        api, sessionDate="2026-01-15T12:00:00+02:00", duration=45, location="Studio A"
    )
    [event] = await outbox_events(runtime.database)
    assert group == {
        "id": 1,
        "trainerId": TRAINER,
        "sessionDate": DATE,
        "duration": 45,
        "capacity": 3,
        "status": "scheduled",
        "location": "Studio A",
        "notes": None,
        "statusReason": None,
        "createdAt": rfc3339(event.envelope.time or datetime.now(UTC)),
        "updatedAt": group["createdAt"],
        "placesTaken": 0,
        "participants": [],
    }
    assert event.payload == GroupSessionScheduled(
        session_id=1,
        trainer_id=TRAINER,
        session_date=datetime(2026, 1, 15, 10, tzinfo=UTC),
        capacity=3,
        duration=45,
        location="Studio A",
    )
    assert await read(api, 1) == group


async def test_group_sessions_take_their_ids_from_the_sessions_ids(api: AsyncClient) -> None:
    booked = await api.post(
        "/api/sessions",
        json={"userId": A, "trainerId": TRAINER, "sessionDate": DATE, **WITHOUT_CREDIT},
    )
    group = await schedule(api)
    assert (booked.json()["id"], group["id"]) == (1, 2)
    assert (await api.get("/api/sessions/2")).status_code == 404
    missing = await api.get("/api/group-sessions/1")
    assert (missing.status_code, missing.json()) == (
        404,
        {"detail": "group session 1 was never scheduled"},
    )


async def test_a_trainer_schedules_as_themselves_and_a_client_never(
    api: AsyncClient, runtime: ServiceRuntime, headers_of: HeadersOf
) -> None:
    trainer = headers_of(Role.TRAINER, TRAINER)
    assert (await schedule(api, trainer))["trainerId"] == TRAINER
    for headers in (headers_of(Role.TRAINER, OTHER_TRAINER), headers_of(Role.CLIENT, A)):
        body = {"trainerId": TRAINER, "sessionDate": DATE, "capacity": 3}
        refused = await api.post("/api/group-sessions", json=body, headers=headers)
        assert refused.status_code == 403, refused.text
        assert refused.json()["detail"].startswith("a trainer schedules group sessions only")
    assert (await schedule(api, headers_of(Role.SERVICE, "kiosk")))["id"] == 2
    assert len(await announced(runtime)) == 2


# --- places -----------------------------------------------------------------------------------


async def test_places_are_taken_until_the_session_is_full(
    api: AsyncClient, runtime: ServiceRuntime
) -> None:
    group = await with_places(api, A, B, capacity=2)
    assert (group["placesTaken"], places(group)) == (2, {A: "joined", B: "joined"})
    before = await announced(runtime)
    full = await join(api, group["id"], C)
    assert (full.status_code, full.json()) == (
        409,
        {"detail": f"group session {group['id']} is full: 2 of 2 places taken"},
    )
    assert await announced(runtime) == before
    joined = [p for p in before if isinstance(p, ParticipantJoined)]
    assert [(p.session_id, p.user_id, p.trainer_id) for p in joined] == [
        (group["id"], A, TRAINER),
        (group["id"], B, TRAINER),
    ]
    assert {p.session_date for p in joined} == {datetime(2026, 1, 15, 10, tzinfo=UTC)}
    [a] = group["participants"][:1]
    assert a == {"userId": A, "status": "joined", "joinedAt": rfc3339(joined[0].at), "leftAt": None}


async def test_taking_a_place_held_already_is_200_and_announces_nothing(
    api: AsyncClient, runtime: ServiceRuntime
) -> None:
    group = await with_places(api, A)
    before = await announced(runtime)
    again = await join(api, group["id"], A)
    assert again.status_code == 200, again.text
    assert again.json() == group
    assert await announced(runtime) == before


async def test_a_place_given_up_is_free_again_but_not_for_its_client(
    api: AsyncClient, runtime: ServiceRuntime
) -> None:
    group = await with_places(api, A, B, capacity=2)
    left = await leave(api, group["id"], A, reason="moved away")
    assert left.status_code == 200, left.text
    assert (left.json()["placesTaken"], places(left.json())) == (1, {A: "left", B: "joined"})
    payload = (await announced(runtime))[-1]
    assert isinstance(payload, ParticipantLeft)
    assert (payload.user_id, payload.trainer_id, payload.reason) == (A, TRAINER, "moved away")
    assert left.json()["participants"][0]["leftAt"] == rfc3339(payload.at)
    # Leaving again changes and announces nothing.
    count = len(await announced(runtime))
    again = await leave(api, group["id"], A)
    assert (again.status_code, again.json()) == (200, left.json())
    assert len(await announced(runtime)) == count
    # No way back in for A; the place is C's for the taking.
    rejoin = await join(api, group["id"], A)
    assert (rejoin.status_code, rejoin.json()) == (
        409,
        {"detail": f"client {A} left group session {group['id']} and cannot join it again"},
    )
    assert (await join(api, group["id"], C)).status_code == 201
    assert len(await announced(runtime)) == count + 1


async def test_giving_up_a_place_never_taken_is_a_404(api: AsyncClient) -> None:
    group = await with_places(api, A)
    response = await leave(api, group["id"], B)
    assert (response.status_code, response.json()) == (
        404,
        {"detail": f"client {B} has no place in group session {group['id']}"},
    )


@pytest.mark.parametrize("ending", [{"status": "completed"}, {"status": "cancelled"}])
async def test_a_session_that_is_over_takes_no_place_and_gives_none_up(
    api: AsyncClient, ending: dict[str, Any]
) -> None:
    group = await with_places(api, A)
    status = ending["status"]
    assert (await patch(api, group["id"], **ending)).status_code == 200
    joined = await join(api, group["id"], B)
    assert (joined.status_code, joined.json()["detail"]) == (
        409,
        f"group session {group['id']} is {status}: only a scheduled group session takes"
        " participants",
    )
    left = await leave(api, group["id"], A)
    assert (left.status_code, left.json()["detail"]) == (
        409,
        f"group session {group['id']} is {status}: a participant leaves only a scheduled"
        " group session",
    )


async def test_a_place_is_taken_against_the_clients_credits(
    api: AsyncClient, runtime: ServiceRuntime, deliver: Deliver, headers_of: HeadersOf
) -> None:
    group = await schedule(api)
    client = headers_of(Role.CLIENT, A)
    refused = await join(api, group["id"], A, client, body=None)
    assert refused.status_code == 409
    assert refused.json()["detail"].startswith(f"client {A} has no session credits available")
    asked = await join(api, group["id"], A, client, body=WITHOUT_CREDIT)
    assert (asked.status_code, asked.json()) == (
        403,
        {"detail": "only staff and platform services may book without credit"},
    )
    assert [type(p) for p in await announced(runtime)] == [GroupSessionScheduled]
    granted = CreditsGranted(user_id=A, amount=5, balance=Balance(total=5, used=0, remaining=5))
    assert await deliver(granted) is Outcome.APPLIED
    taken = await join(api, group["id"], A, client, body={"allowWithoutCredit": False})
    assert taken.status_code == 201, taken.text
    assert places(taken.json()) == {A: "joined"}


@pytest.mark.parametrize("role", [Role.STAFF, Role.SERVICE])
async def test_staff_and_services_take_a_place_without_credit_on_record(
    api: AsyncClient, headers_of: HeadersOf, role: Role, caplog: pytest.LogCaptureFixture
) -> None:
    group = await schedule(api)
    with caplog.at_level(logging.WARNING, logger="booking.api"):
        taken = await join(api, group["id"], A, headers_of(role, "ana"))
    assert taken.status_code == 201, taken.text
    assert caplog.messages == [
        f"place in group session {group['id']} taken for client {A} without credit"
        f" (available 0) by {role} ana"
    ]


async def test_a_place_carries_the_studios_policy(
    make_app: Any, staff_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from httpx import ASGITransport

    monkeypatch.setenv("STUDIO_LATE_CANCEL_HOURS", "24")
    app = make_app()
    runtime: ServiceRuntime = app.state.runtime
    async with AsyncClient(
        transport=ASGITransport(app=app), base_url="http://booking", headers=staff_headers
    ) as api:
        group = await with_places(api, A)
    scheduled, joined = await announced(runtime)
    assert isinstance(scheduled, GroupSessionScheduled)
    assert isinstance(joined, ParticipantJoined)
    assert scheduled.policy is not None
    assert scheduled.policy.late_cancel_hours == 24
    assert joined.policy == scheduled.policy
    assert group["placesTaken"] == 1


# --- completing, cancelling, moving ----------------------------------------------------------


async def test_completing_names_who_did_not_show_and_everyone_else_joined_attended(
    api: AsyncClient, runtime: ServiceRuntime
) -> None:
    group = await with_places(api, A, B, C, D, capacity=4)
    assert (await leave(api, group["id"], D)).status_code == 200
    completed = await patch(api, group["id"], status="completed", noShows=[B])
    assert completed.status_code == 200, completed.text
    answer = completed.json()
    assert (answer["status"], answer["placesTaken"]) == ("completed", 3)
    assert places(answer) == {A: "attended", B: "no_show", C: "attended", D: "left"}
    payload = (await announced(runtime))[-1]
    assert isinstance(payload, GroupSessionCompleted)
    assert (payload.trainer_id, payload.attended, payload.no_shows) == (TRAINER, [A, C], [B])
    assert answer["updatedAt"] == rfc3339(payload.at)
    # Completed again (whoever it names), nothing changes; nothing else moves it.
    count = len(await announced(runtime))
    again = await patch(api, group["id"], status="completed", noShows=[A])
    assert (again.status_code, again.json()) == (200, answer)
    cancelled = await patch(api, group["id"], status="cancelled")
    assert (cancelled.status_code, cancelled.json()["detail"]) == (
        409,
        f"group session {group['id']} is completed, which is final: it cannot become cancelled",
    )
    assert len(await announced(runtime)) == count


@pytest.mark.parametrize("stranger", [C, D], ids=["never joined", "left"])
async def test_a_no_show_who_holds_no_place_is_a_409_that_changes_nothing(
    api: AsyncClient, runtime: ServiceRuntime, stranger: int
) -> None:
    group = await with_places(api, A, B, D)
    await leave(api, group["id"], D)
    before = await read(api, group["id"])
    count = len(await announced(runtime))
    response = await patch(api, group["id"], status="completed", noShows=[A, stranger])
    assert (response.status_code, response.json()["detail"]) == (
        409,
        f"noShows names client {stranger}, who holds no place in group session {group['id']}:"
        " only its participants can be marked as not showing",
    )
    assert await read(api, group["id"]) == before
    assert len(await announced(runtime)) == count


async def test_a_cancellation_keeps_its_reason_and_the_places_as_they_were(
    api: AsyncClient, runtime: ServiceRuntime
) -> None:
    group = await with_places(api, A, B)
    response = await patch(api, group["id"], status="cancelled", reason="trainer is ill")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["status"], answer["statusReason"]) == ("cancelled", "trainer is ill")
    assert places(answer) == {A: "joined", B: "joined"}
    payload = (await announced(runtime))[-1]
    assert isinstance(payload, GroupSessionCancelled)
    assert (payload.session_id, payload.trainer_id, payload.reason) == (
        group["id"],
        TRAINER,
        "trainer is ill",
    )
    assert answer["updatedAt"] == rfc3339(payload.at)
    count = len(await announced(runtime))
    assert (await patch(api, group["id"], status="cancelled")).json() == answer
    completed = await patch(api, group["id"], status="completed")
    assert completed.status_code == 409
    assert len(await announced(runtime)) == count


async def test_a_scheduled_group_session_is_moved_and_one_that_is_over_is_not(
    api: AsyncClient, runtime: ServiceRuntime
) -> None:
    group = await with_places(api, A)
    moved = await patch(api, group["id"], sessionDate="2026-01-16T09:30:00+01:00")
    assert moved.status_code == 200, moved.text
    assert (moved.json()["sessionDate"], places(moved.json())) == (
        "2026-01-16T08:30:00Z",
        {A: "joined"},
    )
    assert (await announced(runtime))[-1] == SessionRescheduled(
        session_id=group["id"], session_date=datetime(2026, 1, 16, 8, 30, tzinfo=UTC)
    )
    count = len(await announced(runtime))
    same = await patch(api, group["id"], sessionDate="2026-01-16T08:30:00Z")
    assert same.json() == moved.json()
    await patch(api, group["id"], status="cancelled")
    refused = await patch(api, group["id"], sessionDate="2026-02-01T10:00:00Z")
    assert (refused.status_code, refused.json()["detail"]) == (
        409,
        f"group session {group['id']} is cancelled: only a scheduled group session can be"
        " rescheduled",
    )
    assert len(await announced(runtime)) == count + 1


async def test_its_own_events_come_back_as_duplicates_that_change_nothing(
    api: AsyncClient, runtime: ServiceRuntime
) -> None:
    group = await with_places(api, A, B, C)
    await leave(api, group["id"], C)
    await patch(api, group["id"], sessionDate="2026-01-20T10:00:00Z")
    final = (await patch(api, group["id"], status="completed", noShows=[B])).json()
    records = await outbox_records(runtime.database)
    assert len(records) == 7
    for record in records:
        assert await runtime.consumer.process(record) is Outcome.DUPLICATE
    assert await read(api, group["id"]) == final


# --- who may do what, and see whom ------------------------------------------------------------


async def test_a_client_takes_and_gives_up_only_their_own_place(
    api: AsyncClient, runtime: ServiceRuntime, headers_of: HeadersOf
) -> None:
    group = await with_places(api, B)
    client = headers_of(Role.CLIENT, A)
    for response in (
        await join(api, group["id"], C, client, body=None),
        await leave(api, group["id"], B, client),
    ):
        assert (response.status_code, response.json()["detail"]) == (
            403,
            "a client takes and gives up only their own place; the session's trainer and"
            " staff anyone's",
        )
    assert places(await read(api, group["id"])) == {B: "joined"}


async def test_the_sessions_trainer_takes_and_gives_up_anyones_place_and_no_other_trainer(
    api: AsyncClient, deliver: Deliver, headers_of: HeadersOf
) -> None:
    credit = Balance(total=1, used=0, remaining=1)
    assert await deliver(CreditsGranted(user_id=A, amount=1, balance=credit)) is Outcome.APPLIED
    group = await schedule(api)
    trainer = headers_of(Role.TRAINER, TRAINER)
    assert (await join(api, group["id"], A, trainer, body=None)).status_code == 201
    other = headers_of(Role.TRAINER, OTHER_TRAINER)
    for response in (
        await join(api, group["id"], A, other, body=None),
        await leave(api, group["id"], A, other),
        await patch(api, group["id"], other, status="cancelled"),
        await api.get(f"/api/group-sessions/{group['id']}", headers=other),
    ):
        assert (response.status_code, response.json()) == (
            404,
            {"detail": f"group session {group['id']} was never scheduled"},
        )
    assert (await leave(api, group["id"], A, trainer)).status_code == 200


async def test_only_its_trainer_staff_and_services_complete_cancel_or_move_it(
    api: AsyncClient, headers_of: HeadersOf
) -> None:
    group = await with_places(api, A)
    client = headers_of(Role.CLIENT, A)
    for change in ({"status": "completed"}, {"status": "cancelled"}, {"sessionDate": DATE}):
        refused = await patch(api, group["id"], client, **change)
        assert (refused.status_code, refused.json()["detail"]) == (
            403,
            "only its trainer or staff complete, cancel or reschedule a group session",
        )
    trainer = headers_of(Role.TRAINER, TRAINER)
    moved = await patch(api, group["id"], trainer, sessionDate="2026-01-16T10:00:00Z")
    assert moved.status_code == 200
    service = headers_of(Role.SERVICE, "kiosk")
    assert (await patch(api, group["id"], service, status="completed")).status_code == 200


async def test_a_client_sees_the_timetable_and_their_own_places_but_not_who_else_takes_part(
    api: AsyncClient, headers_of: HeadersOf
) -> None:
    open_to_all = await with_places(api, B, C)
    mine = await with_places(api, A, B)
    await patch(api, mine["id"], status="completed")
    not_mine = await with_places(api, B)
    await patch(api, not_mine["id"], status="cancelled")
    client = headers_of(Role.CLIENT, A)

    seen = (await api.get(f"/api/group-sessions/{open_to_all['id']}", headers=client)).json()
    assert (seen["placesTaken"], seen["participants"]) == (2, [])
    own = (await api.get(f"/api/group-sessions/{mine['id']}", headers=client)).json()
    assert (own["status"], places(own), own["placesTaken"]) == ("completed", {A: "attended"}, 2)
    hidden = await api.get(f"/api/group-sessions/{not_mine['id']}", headers=client)
    assert (hidden.status_code, hidden.json()) == (
        404,
        {"detail": f"group session {not_mine['id']} was never scheduled"},
    )
    listed = (await api.get("/api/group-sessions", headers=client)).json()
    assert [(g["id"], places(g)) for g in listed] == [
        (open_to_all["id"], {}),
        (mine["id"], {A: "attended"}),
    ]
    # Whose places a client may not see is no filter for them either.
    assert (await api.get(f"/api/group-sessions?userId={B}", headers=client)).json() == []
    mine_only = (await api.get(f"/api/group-sessions?userId={A}", headers=client)).json()
    assert [g["id"] for g in mine_only] == [mine["id"]]
    # Staff see every place.
    assert places(await read(api, open_to_all["id"])) == {B: "joined", C: "joined"}


async def test_a_trainer_lists_the_sessions_they_train_with_every_place(
    api: AsyncClient, headers_of: HeadersOf
) -> None:
    trains = await with_places(api, A, B)
    await schedule(api, trainerId=OTHER_TRAINER)
    trainer = headers_of(Role.TRAINER, TRAINER)
    listed = (await api.get("/api/group-sessions", headers=trainer)).json()
    assert [(g["id"], places(g)) for g in listed] == [(trains["id"], {A: "joined", B: "joined"})]
    assert (await api.get(f"/api/group-sessions?userId={A}", headers=trainer)).json() == listed


async def test_without_a_token_every_route_is_a_401(api: AsyncClient) -> None:
    group = await with_places(api, A)
    path = f"/api/group-sessions/{group['id']}"
    anonymous = {"authorization": ""}
    for response in (
        await api.post("/api/group-sessions", json={}, headers=anonymous),
        await api.get(path, headers=anonymous),
        await api.get("/api/group-sessions", headers=anonymous),
        await api.put(f"{path}/participants/{B}", headers=anonymous),
        await api.delete(f"{path}/participants/{A}", headers=anonymous),
        await api.patch(path, json={"status": "cancelled"}, headers=anonymous),
    ):
        assert response.status_code == 401, response.text


# --- listings ---------------------------------------------------------------------------------


async def test_listings_filter_by_trainer_client_and_status_earliest_first(
    api: AsyncClient,
) -> None:
    late = await schedule(api, sessionDate="2026-03-01T10:00:00Z")
    early = await schedule(api, sessionDate="2026-01-01T10:00:00Z")
    other = await schedule(api, trainerId=OTHER_TRAINER, sessionDate="2026-02-01T10:00:00Z")
    await join(api, late["id"], A)
    await join(api, other["id"], A)
    await leave(api, other["id"], A)
    await patch(api, early["id"], status="cancelled")

    async def ids(query: str) -> list[int]:
        response = await api.get(f"/api/group-sessions?{query}")
        assert response.status_code == 200, response.text
        return [group["id"] for group in response.json()]

    assert await ids("") == [early["id"], other["id"], late["id"]]
    assert await ids(f"trainerId={TRAINER}") == [early["id"], late["id"]]
    assert await ids(f"userId={A}") == [other["id"], late["id"]]
    assert await ids(f"userId={A}&trainerId={TRAINER}&status=scheduled") == [late["id"]]
    assert await ids("status=cancelled") == [early["id"]]
    assert await ids("status=completed") == []
    assert await ids("limit=2") == [early["id"], other["id"]]
    assert await ids(f"limit=2&after={other['id']}") == [late["id"]]
    assert await ids("limit=2&offset=2") == [late["id"]]


@pytest.mark.parametrize(
    "query",
    ["status=in_progress", "userId=0", "trainerId=abc", "limit=0", "limit=501", "after=999"],
)
async def test_a_bad_listing_query_is_a_422(api: AsyncClient, query: str) -> None:
    response = await api.get(f"/api/group-sessions?{query}")
    assert response.status_code == 422
    assert response.json()["detail"]


# --- bad requests -----------------------------------------------------------------------------

GOOD = {"trainerId": TRAINER, "sessionDate": DATE, "capacity": 3}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({k: v for k, v in GOOD.items() if k != "trainerId"}, id="no trainerId"),
        pytest.param({k: v for k, v in GOOD.items() if k != "capacity"}, id="no capacity"),
        pytest.param({k: v for k, v in GOOD.items() if k != "sessionDate"}, id="no date"),
        pytest.param({**GOOD, "capacity": 0}, id="capacity 0"),
        pytest.param({**GOOD, "capacity": 101}, id="capacity 101"),
        pytest.param({**GOOD, "capacity": "3"}, id="text capacity"),
        pytest.param({**GOOD, "capacity": 2.5}, id="float capacity"),
        pytest.param({**GOOD, "trainerId": 0}, id="zero trainer"),
        pytest.param({**GOOD, "trainerId": 2**63}, id="huge trainer"),
        pytest.param({**GOOD, "sessionDate": "2026-01-15T10:00:00"}, id="naive date"),
        pytest.param({**GOOD, "sessionDate": 1768471200}, id="number date"),
        pytest.param({**GOOD, "sessionDate": "9999-01-01T00:00:00Z"}, id="date out of range"),
        pytest.param({**GOOD, "duration": 0}, id="zero duration"),
        pytest.param({**GOOD, "duration": 601}, id="duration over ten hours"),
        pytest.param({**GOOD, "location": "x" * 201}, id="location too long"),
        pytest.param({**GOOD, "notes": "a\x00b"}, id="NUL in notes"),
        pytest.param([], id="not an object"),
    ],
)
async def test_a_bad_schedule_is_a_422_saying_what_is_wrong(
    api: AsyncClient, runtime: ServiceRuntime, body: Any
) -> None:
    response = await api.post("/api/group-sessions", json=body)
    assert response.status_code == 422
    assert response.json()["detail"]
    assert await announced(runtime) == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="nothing to change"),
        pytest.param({"status": "scheduled"}, id="back to scheduled"),
        pytest.param({"status": "in_progress"}, id="a one-to-one status"),
        pytest.param({"status": "cancelled", "sessionDate": DATE}, id="two changes at once"),
        pytest.param({"status": "cancelled", "noShows": [A]}, id="noShows with a cancellation"),
        pytest.param({"status": "completed", "reason": "why"}, id="reason with a completion"),
        pytest.param({"sessionDate": DATE, "reason": "why"}, id="reason with a date"),
        pytest.param({"status": "completed", "noShows": [A, A]}, id="a no-show twice"),
        pytest.param({"status": "completed", "noShows": [0]}, id="impossible no-show"),
        pytest.param({"status": "completed", "noShows": A}, id="noShows not a list"),
        pytest.param({"status": "cancelled", "reason": ""}, id="empty reason"),
        pytest.param({"sessionDate": "2026-01-16T10:00:00"}, id="naive date"),
    ],
)
async def test_a_bad_change_is_a_422_saying_what_is_wrong(
    api: AsyncClient, runtime: ServiceRuntime, body: dict[str, Any]
) -> None:
    group = await with_places(api, A)
    before = await announced(runtime)
    response = await patch(api, group["id"], **body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]
    assert await announced(runtime) == before
    assert await read(api, group["id"]) == group


@pytest.mark.parametrize(
    "body", [[], {"allowWithoutCredit": "perhaps"}, {"allowWithoutCredit": None}], ids=repr
)
async def test_a_bad_place_request_is_a_422(api: AsyncClient, body: Any) -> None:
    group = await schedule(api)
    response = await join(api, group["id"], A, body=body)
    assert response.status_code == 422, response.text


async def test_a_reason_for_leaving_is_bounded(api: AsyncClient) -> None:
    group = await with_places(api, A)
    for reason in ("", "x" * 501, "a\x00b"):
        response = await leave(api, group["id"], A, reason=reason)
        assert response.status_code == 422, (reason, response.text)


@pytest.mark.parametrize("bad_id", ["0", "-1", "abc", "1.5", str(2**63)])
async def test_an_impossible_id_is_a_422(api: AsyncClient, bad_id: str) -> None:
    group = await schedule(api)
    for response in (
        await api.get(f"/api/group-sessions/{bad_id}"),
        await api.patch(f"/api/group-sessions/{bad_id}", json={"status": "cancelled"}),
        await api.put(f"/api/group-sessions/{bad_id}/participants/{A}"),
        await api.put(f"/api/group-sessions/{group['id']}/participants/{bad_id}"),
        await api.delete(f"/api/group-sessions/{group['id']}/participants/{bad_id}"),
    ):
        assert response.status_code == 422, response.text


async def test_an_unknown_group_session_is_a_404_everywhere(api: AsyncClient) -> None:
    for response in (
        await api.get("/api/group-sessions/42"),
        await api.put(f"/api/group-sessions/42/participants/{A}", json=WITHOUT_CREDIT),
        await api.delete(f"/api/group-sessions/42/participants/{A}"),
        await patch(api, 42, status="completed"),
        await patch(api, 42, sessionDate=DATE),
    ):
        assert (response.status_code, response.json()) == (
            404,
            {"detail": "group session 42 was never scheduled"},
        )


async def test_a_session_in_the_past_is_scheduled_as_asked(api: AsyncClient) -> None:
    """A class already given, recorded afterwards."""
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    group = await schedule(api, sessionDate=rfc3339(when))
    assert group["sessionDate"] == rfc3339(when)
