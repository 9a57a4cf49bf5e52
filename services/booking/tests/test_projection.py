"""The store as a projection of `booking.sessions` and `credits.ledger`: sessions booked and
moved by other platform services land exactly like booking's own, the rules hold for them
too, and the ledger's verdict on each credit ends right in any order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from httpx import AsyncClient

from contracts.events import (
    Balance,
    CreditDeductionRejected,
    CreditsGranted,
    SessionBooked,
    SessionCancelled,
    SessionCompleted,
    SessionCreditDeducted,
    SessionCreditRestored,
    SessionNoShow,
    SessionRescheduled,
    SessionStarted,
    SessionStatusEvent,
)
from contracts.session_ids import SESSION_ID_TAKEN, block_of, session_id
from servicekit.consumer import REJECTED, Outcome
from servicekit.runtime import ServiceRuntime
from testkit.events import CLIENT, DATE, TRAINER, booked, moved
from testkit.helpers import Deliver, RecordingDeadLetters, outbox_events

pytestmark = pytest.mark.infra

OTHER = 789
BALANCE = Balance(total=10, used=1, remaining=9)


def deducted(session_id: int) -> SessionCreditDeducted:
    return SessionCreditDeducted(
        user_id=CLIENT,
        session_id=session_id,
        trainer_id=TRAINER,
        cause="session-completed",
        balance=BALANCE,
    )


def restored(session_id: int) -> SessionCreditRestored:
    return SessionCreditRestored(
        user_id=CLIENT,
        session_id=session_id,
        reason="session cancelled",
        balance=Balance(total=10, used=0, remaining=10),
    )


async def session(api: AsyncClient, session_id: int) -> dict[str, Any]:
    response = await api.get(f"/api/sessions/{session_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def test_a_session_booked_by_another_service_lands_like_an_own_booking(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    event = booked(50, duration=45, location="Kiosk 3", notes="walk-in")
    assert await deliver(event, event_id="kiosk-50") is Outcome.APPLIED
    found = await session(api, 50)
    assert {k: found[k] for k in ("id", "userId", "trainerId", "sessionDate", "status")} == {
        "id": 50,
        "userId": CLIENT,
        "trainerId": TRAINER,
        "sessionDate": "2026-01-15T10:00:00Z",
        "status": "scheduled",
    }
    assert (found["duration"], found["location"], found["notes"]) == (45, "Kiosk 3", "walk-in")
    assert found["sessionDeducted"] is False
    # The projection announces nothing: the event is already on the topic.
    assert await outbox_events(runtime.database) == []
    assert await deliver(event, event_id="kiosk-50") is Outcome.DUPLICATE


async def test_an_outside_booking_in_the_api_block_moves_the_api_ids_past_its_own(
    deliver: Deliver, api: AsyncClient
) -> None:
    await deliver(booked(1))
    first = await api.post(
        "/api/sessions",
        json={
            "userId": CLIENT,
            "trainerId": TRAINER,
            "sessionDate": "2026-02-01T10:00:00Z",
            "allowWithoutCredit": True,
        },
    )
    assert first.json()["id"] == 2
    await deliver(booked(40))
    await deliver(booked(7))  # lower than the sequence: it must not move it back
    ids = []
    for _ in range(2):
        response = await api.post(
            "/api/sessions",
            json={
                "userId": CLIENT,
                "trainerId": TRAINER,
                "sessionDate": "2026-02-01T10:00:00Z",
                "allowWithoutCredit": True,
            },
        )
        ids.append(response.json()["id"])
    assert ids == [41, 42]


async def book_through_the_api(api: AsyncClient) -> int:
    response = await api.post(
        "/api/sessions",
        json={
            "userId": CLIENT,
            "trainerId": TRAINER,
            "sessionDate": "2026-02-01T10:00:00Z",
            "allowWithoutCredit": True,
        },
    )
    assert response.status_code == 201, response.text
    allocated: int = response.json()["id"]
    return allocated


@pytest.mark.parametrize(
    "outside_id",
    [session_id(1, 1), session_id(7, 12_345), block_of(8191)[-1], 2**62],
    ids=["first of block 1", "inside block 7", "last of the last block", "beyond every block"],
)
async def test_an_id_outside_the_api_block_never_moves_the_api_ids(
    deliver: Deliver, api: AsyncClient, outside_id: int
) -> None:
    assert await book_through_the_api(api) == 1
    assert await deliver(booked(outside_id)) is Outcome.APPLIED
    assert await deliver(moved(SessionCompleted, outside_id + 1)) is Outcome.APPLIED
    assert [await book_through_the_api(api) for _ in range(2)] == [2, 3]
    assert (await session(api, outside_id))["id"] == outside_id


async def test_the_api_allocates_only_in_its_own_block(deliver: Deliver, api: AsyncClient) -> None:
    last = block_of(0)[-1]
    assert await deliver(booked(last - 1)) is Outcome.APPLIED
    assert await book_through_the_api(api) == last
    # Past its block the sequence refuses rather than handing out another producer's id.
    response = await api.post(
        "/api/sessions",
        json={
            "userId": CLIENT,
            "trainerId": TRAINER,
            "sessionDate": "2026-02-01T10:00:00Z",
            "allowWithoutCredit": True,
        },
    )
    assert response.status_code == 503, response.text
    assert "no session id left" in response.json()["detail"]


async def test_a_status_change_for_a_session_never_booked_creates_it_and_moves_the_ids(
    deliver: Deliver, api: AsyncClient
) -> None:
    assert await deliver(moved(SessionCompleted, 30, reason="delivered at the kiosk")) is (
        Outcome.APPLIED
    )
    found = await session(api, 30)
    assert (found["status"], found["userId"], found["trainerId"]) == ("completed", CLIENT, TRAINER)
    assert found["statusReason"] == "delivered at the kiosk"
    # Its date stands in until the booking comes; the booking then fills it in.
    assert found["sessionDate"] == "2026-01-15T10:05:00Z"
    new = await api.post(
        "/api/sessions",
        json={
            "userId": CLIENT,
            "trainerId": TRAINER,
            "sessionDate": "2026-02-01T10:00:00Z",
            "allowWithoutCredit": True,
        },
    )
    assert new.json()["id"] == 31
    assert await deliver(booked(30, duration=30, location="Gym")) is Outcome.APPLIED
    found = await session(api, 30)
    assert (found["status"], found["sessionDate"]) == ("completed", "2026-01-15T10:00:00Z")
    assert (found["duration"], found["location"]) == (30, "Gym")


@pytest.mark.parametrize(
    ("path", "final"),
    [
        ([SessionStarted, SessionCompleted], "completed"),
        ([SessionCancelled], "cancelled"),
        ([SessionStarted, SessionCancelled], "cancelled"),
        ([SessionNoShow], "no_show"),
    ],
)
async def test_outside_status_changes_follow_the_lifecycle(
    deliver: Deliver, api: AsyncClient, path: list[type[SessionStatusEvent]], final: str
) -> None:
    await deliver(booked(5))
    for step in path:
        assert await deliver(moved(step, 5)) is Outcome.APPLIED
    found = await session(api, 5)
    assert found["status"] == final
    assert found["updatedAt"] == "2026-01-15T10:05:00Z"


@pytest.mark.parametrize(
    ("path", "refused", "current", "target"),
    [
        ([SessionStarted], SessionNoShow, "in_progress", "no_show"),
        ([SessionCancelled], SessionStarted, "cancelled", "in_progress"),
        ([SessionNoShow], SessionCompleted, "no_show", "completed"),
        ([SessionStarted, SessionCompleted], SessionCancelled, "completed", "cancelled"),
    ],
)
async def test_an_impossible_outside_status_change_is_dead_lettered_with_the_reason(
    deliver: Deliver,
    api: AsyncClient,
    dead_letters: RecordingDeadLetters,
    path: list[type[SessionStatusEvent]],
    refused: type[SessionStatusEvent],
    current: str,
    target: str,
) -> None:
    await deliver(booked(5))
    for step in path:
        await deliver(moved(step, 5))
    assert await deliver(moved(refused, 5)) is Outcome.DEAD_LETTERED
    [reason] = dead_letters.reasons
    assert reason.startswith("session 5 ")
    assert current in reason
    assert target in reason
    assert dead_letters.kinds == [REJECTED]
    assert (await session(api, 5))["status"] == current


async def test_a_session_completed_elsewhere_without_a_recorded_start_is_completed(
    deliver: Deliver, api: AsyncClient, dead_letters: RecordingDeadLetters
) -> None:
    await deliver(booked(5))
    assert await deliver(moved(SessionCompleted, 5)) is Outcome.APPLIED
    assert (await session(api, 5))["status"] == "completed"
    assert dead_letters.reasons == []


async def test_an_outside_status_already_reached_is_a_harmless_repeat(
    deliver: Deliver, api: AsyncClient, dead_letters: RecordingDeadLetters
) -> None:
    await deliver(booked(5))
    await deliver(moved(SessionCancelled, 5, reason="ill"), event_id="cancel")
    before = await session(api, 5)
    assert await deliver(moved(SessionCancelled, 5, reason="again"), event_id="resent") is (
        Outcome.APPLIED
    )
    assert await session(api, 5) == before
    assert dead_letters.reasons == []


@pytest.mark.parametrize(
    ("reuse", "named"),
    [
        (booked(5, user_id=OTHER), f"not client {OTHER} with trainer {TRAINER}"),
        (booked(5, trainer_id=OTHER), f"not client {CLIENT} with trainer {OTHER}"),
        (moved(SessionStarted, 5, user_id=OTHER), f"not client {OTHER} with trainer {TRAINER}"),
        (moved(SessionCancelled, 5, trainer_id=OTHER), f"not client {CLIENT} with trainer {OTHER}"),
    ],
    ids=["booking for another client", "booking with another trainer", "start", "cancel"],
)
async def test_an_id_reused_for_another_client_or_trainer_is_dead_lettered_with_the_reason(
    deliver: Deliver,
    api: AsyncClient,
    dead_letters: RecordingDeadLetters,
    reuse: Any,
    named: str,
) -> None:
    await deliver(booked(5))
    before = await session(api, 5)
    assert await deliver(reuse) is Outcome.DEAD_LETTERED
    assert dead_letters.reasons == [
        f"session 5 is booked for client {CLIENT} with trainer {TRAINER}, {named}"
    ]
    assert dead_letters.kinds == [SESSION_ID_TAKEN]
    assert await session(api, 5) == before


async def test_an_id_reused_against_a_session_the_api_booked_is_dead_lettered(
    deliver: Deliver, api: AsyncClient, dead_letters: RecordingDeadLetters
) -> None:
    response = await api.post(
        "/api/sessions",
        json={
            "userId": CLIENT,
            "trainerId": TRAINER,
            "sessionDate": "2026-02-01T10:00:00Z",
            "allowWithoutCredit": True,
        },
    )
    session_id = response.json()["id"]
    assert await deliver(booked(session_id, user_id=OTHER)) is Outcome.DEAD_LETTERED
    assert dead_letters.reasons[0].startswith(f"session {session_id} is booked for client {CLIENT}")
    assert dead_letters.kinds == [SESSION_ID_TAKEN]


async def test_the_same_booking_announced_again_changes_nothing(
    deliver: Deliver, api: AsyncClient, dead_letters: RecordingDeadLetters
) -> None:
    await deliver(booked(5, location="Gym"), event_id="first")
    await deliver(moved(SessionStarted, 5))
    before = await session(api, 5)
    assert await deliver(booked(5, location="Gym"), event_id="second") is Outcome.APPLIED
    assert await session(api, 5) == before
    assert dead_letters.reasons == []


async def test_a_second_booking_with_other_details_under_a_used_id_is_dead_lettered(
    deliver: Deliver, api: AsyncClient, dead_letters: RecordingDeadLetters
) -> None:
    await deliver(booked(5))
    before = await session(api, 5)
    later = datetime(2026, 2, 1, 9, tzinfo=UTC)
    assert await deliver(booked(5, session_date=later)) is Outcome.DEAD_LETTERED
    assert dead_letters.reasons == [
        "session 5 is already booked for 2026-01-15T10:00:00+00:00 (60 min); a booking for "
        "2026-02-01T09:00:00+00:00 (60 min) cannot reuse its id"
    ]
    assert await session(api, 5) == before


async def test_an_outside_reschedule_moves_a_scheduled_session(
    deliver: Deliver, api: AsyncClient
) -> None:
    await deliver(booked(5))
    later = datetime(2026, 2, 1, 9, tzinfo=UTC)
    assert await deliver(SessionRescheduled(session_id=5, session_date=later)) is Outcome.APPLIED
    assert (await session(api, 5))["sessionDate"] == "2026-02-01T09:00:00Z"


async def test_a_reschedule_of_a_session_never_booked_or_already_started_is_dead_lettered(
    deliver: Deliver, api: AsyncClient, dead_letters: RecordingDeadLetters
) -> None:
    later = datetime(2026, 2, 1, 9, tzinfo=UTC)
    assert await deliver(SessionRescheduled(session_id=9, session_date=later)) is (
        Outcome.DEAD_LETTERED
    )
    await deliver(booked(5))
    await deliver(moved(SessionStarted, 5))
    assert await deliver(SessionRescheduled(session_id=5, session_date=later)) is (
        Outcome.DEAD_LETTERED
    )
    assert dead_letters.reasons == [
        "session 9 was never booked",
        "session 5 is in_progress: only a scheduled session can be rescheduled",
    ]
    assert (await api.get("/api/sessions/9")).status_code == 404


def unchecked_booking(**details: Any) -> SessionBooked:
    """A booking as a careless producer could send it: past the contract's limits."""
    fields = {"duration": 60, "location": None, "notes": None, "session_date": DATE, **details}
    return SessionBooked.model_construct(session_id=5, user_id=CLIENT, trainer_id=TRAINER, **fields)


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (unchecked_booking(duration=2**31), "invalid SessionBooked payload: duration"),
        (unchecked_booking(notes="a\x00b"), "invalid SessionBooked payload: notes"),
        (
            unchecked_booking(session_date=datetime(1, 1, 1, tzinfo=UTC)),
            "invalid SessionBooked payload: sessionDate",
        ),
    ],
    ids=["duration", "NUL", "date"],
)
async def test_an_event_no_session_can_hold_is_dead_lettered_with_the_reason(
    deliver: Deliver, dead_letters: RecordingDeadLetters, event: Any, reason: str
) -> None:
    assert await deliver(event) is Outcome.DEAD_LETTERED
    [said] = dead_letters.reasons
    assert said.startswith(reason)


async def test_an_api_change_to_an_outside_booking_names_its_client_and_trainer(
    deliver: Deliver, api: AsyncClient, runtime: ServiceRuntime
) -> None:
    await deliver(booked(77, user_id=OTHER, trainer_id=TRAINER))
    response = await api.patch("/api/sessions/77", json={"status": "in_progress"})
    assert response.status_code == 200
    [event] = await outbox_events(runtime.database)
    assert isinstance(event.payload, SessionStarted)
    assert (event.payload.session_id, event.payload.user_id) == (77, OTHER)


# --- credits.ledger ---------------------------------------------------------------------


async def test_a_deducted_credit_marks_the_session(deliver: Deliver, api: AsyncClient) -> None:
    await deliver(booked(5))
    assert await deliver(deducted(5)) is Outcome.APPLIED
    assert (await session(api, 5))["sessionDeducted"] is True


async def test_a_deduction_before_the_session_reaches_booking_still_marks_it(
    deliver: Deliver, api: AsyncClient
) -> None:
    assert await deliver(deducted(5)) is Outcome.APPLIED
    assert (await api.get("/api/sessions/5")).status_code == 404
    await deliver(booked(5))
    assert (await session(api, 5))["sessionDeducted"] is True


async def test_a_deduction_marks_a_session_the_api_booked(
    deliver: Deliver, api: AsyncClient
) -> None:
    response = await api.post(
        "/api/sessions",
        json={
            "userId": CLIENT,
            "trainerId": TRAINER,
            "sessionDate": "2026-02-01T10:00:00Z",
            "allowWithoutCredit": True,
        },
    )
    await deliver(deducted(response.json()["id"]))
    found = await session(api, response.json()["id"])
    assert found["sessionDeducted"] is True
    listed = (await api.get("/api/sessions")).json()
    assert [each["sessionDeducted"] for each in listed] == [True]


@pytest.mark.parametrize(
    "order",
    [
        ["book", "deduct", "restore"],
        ["deduct", "book", "restore"],
        ["deduct", "restore", "book"],
        ["restore", "deduct", "book"],
        ["book", "restore", "deduct"],
        ["restore", "book", "deduct"],
    ],
)
async def test_a_restored_credit_unmarks_the_session_in_any_order(
    deliver: Deliver, api: AsyncClient, order: list[str]
) -> None:
    events = {"book": booked(5), "deduct": deducted(5), "restore": restored(5)}
    for name in order:
        assert await deliver(events[name]) is Outcome.APPLIED
    assert (await session(api, 5))["sessionDeducted"] is False


async def test_ledger_events_change_no_session_but_its_own_marks(
    deliver: Deliver, api: AsyncClient
) -> None:
    await deliver(booked(5))
    granted = CreditsGranted(
        user_id=CLIENT, amount=10, balance=Balance(total=10, used=0, remaining=10)
    )
    refused = CreditDeductionRejected(user_id=CLIENT, session_id=5, reason="session 5 is cancelled")
    assert await deliver(granted) is Outcome.APPLIED  # the client's balance: see test_credit_check
    assert await deliver(refused) is Outcome.IGNORED
    assert (await session(api, 5))["sessionDeducted"] is False
