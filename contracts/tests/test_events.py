"""The payload rules of the contract, one test per rule."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.events import (
    EVENT_TYPES,
    Balance,
    GroupSessionCompleted,
    PackagePurchased,
    SessionBooked,
    SessionType,
    SessionUsageUpdated,
    WorkoutLogged,
    WorkoutStatus,
    WorkoutStatusChanged,
)


def workout(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "workoutId": str(uuid.uuid4()),
        "userId": 123,
        "title": "Morning Chest Day",
        "date": "2026-01-12T07:30:00Z",
        "status": "completed",
    }
    data.update(overrides)
    return data


def test_workout_without_session_type_is_solo() -> None:
    logged = WorkoutLogged.model_validate(workout())
    assert logged.session_type is SessionType.SOLO


def test_workout_with_null_session_type_is_solo() -> None:
    assert WorkoutLogged.model_validate(workout(sessionType=None)).session_type is SessionType.SOLO


def test_trainer_led_workout_names_its_session_and_trainer() -> None:
    logged = WorkoutLogged.model_validate(
        workout(sessionType="trainer-led", sessionId=789, trainerId=456)
    )
    assert (logged.session_type, logged.session_id, logged.trainer_id) == (
        SessionType.TRAINER_LED,
        789,
        456,
    )


@pytest.mark.parametrize(
    ("link", "missing"),
    [
        ({"trainerId": 456}, "sessionId"),
        ({"sessionId": 789}, "trainerId"),
        ({}, "sessionId and trainerId"),
    ],
)
def test_trainer_led_workout_without_session_or_trainer_is_rejected(
    link: dict[str, int], missing: str
) -> None:
    with pytest.raises(ValidationError, match=f"requires {missing}"):
        WorkoutLogged.model_validate(workout(sessionType="trainer-led", **link))


@pytest.mark.parametrize(
    ("link", "named"),
    [({"sessionId": 789}, "sessionId"), ({"trainerId": 456}, "trainerId")],
)
def test_solo_workout_with_a_session_or_trainer_is_rejected(
    link: dict[str, int], named: str
) -> None:
    with pytest.raises(ValidationError, match=f"solo workout has no {named}"):
        WorkoutLogged.model_validate(workout(sessionType="solo", **link))


def test_trainer_assisted_workout_names_its_trainer_and_plan_and_no_session() -> None:
    logged = WorkoutLogged.model_validate(
        workout(sessionType="trainer-assisted", trainerId=456, planId="plan-7")
    )
    assert (logged.trainer_id, logged.plan_id, logged.session_id) == (456, "plan-7", None)
    assert not logged.charged
    with pytest.raises(ValidationError, match="trainer-assisted workout requires planId"):
        WorkoutLogged.model_validate(workout(sessionType="trainer-assisted", trainerId=456))
    with pytest.raises(ValidationError, match="trainer-assisted workout has no sessionId"):
        WorkoutLogged.model_validate(
            workout(sessionType="trainer-assisted", trainerId=456, planId="p", sessionId=789)
        )


def test_group_workout_names_its_session_and_trainer_and_is_charged() -> None:
    logged = WorkoutLogged.model_validate(
        workout(sessionType="group", sessionId=789, trainerId=456, groupSize=5)
    )
    assert (logged.session_id, logged.trainer_id, logged.group_size) == (789, 456, 5)
    assert logged.charged
    with pytest.raises(ValidationError, match="group workout requires sessionId"):
        WorkoutLogged.model_validate(workout(sessionType="group", trainerId=456))
    with pytest.raises(ValidationError, match="group workout has no planId"):
        WorkoutLogged.model_validate(
            workout(sessionType="group", sessionId=789, trainerId=456, planId="p")
        )
    with pytest.raises(ValidationError, match="groupSize"):
        WorkoutLogged.model_validate(
            workout(sessionType="group", sessionId=789, trainerId=456, groupSize=0)
        )


def test_an_unknown_session_type_is_named_in_the_error() -> None:
    with pytest.raises(ValidationError, match="unknown session type 'yoga'"):
        WorkoutLogged.model_validate(workout(sessionType="yoga"))


def test_a_group_completion_names_each_participant_once() -> None:
    base = {"sessionId": 789, "trainerId": 456, "at": "2026-01-15T11:00:00Z"}
    done = GroupSessionCompleted.model_validate({**base, "attended": [1, 2], "noShows": [3]})
    assert (done.attended, done.no_shows) == ([1, 2], [3])
    with pytest.raises(ValidationError, match="both attended and did not show"):
        GroupSessionCompleted.model_validate({**base, "attended": [1], "noShows": [1]})
    with pytest.raises(ValidationError, match="named twice"):
        GroupSessionCompleted.model_validate({**base, "attended": [1, 1]})


def test_usage_from_before_the_new_kinds_reads_them_as_none() -> None:
    usage = {"count": 1, "percentage": 100.0}
    updated = SessionUsageUpdated.model_validate(
        {
            "userId": 1,
            "total": 1,
            "solo": usage,
            "trainerLed": {"count": 0, "percentage": 0},
            "credits": {"total": 0, "used": 0, "remaining": 0},
            "asOf": "2026-01-15T12:00:00Z",
        }
    )
    assert (updated.trainer_assisted.count, updated.group.count) == (0, 0)


def test_status_change_follows_the_same_session_type_rule() -> None:
    with pytest.raises(ValidationError, match="requires sessionId"):
        WorkoutStatusChanged.model_validate(
            {
                "workoutId": str(uuid.uuid4()),
                "userId": 1,
                "sessionType": "trainer-led",
                "trainerId": 2,
                "status": "completed",
                "previousStatus": "in_progress",
            }
        )


def test_unknown_session_type_is_rejected() -> None:
    with pytest.raises(ValidationError, match="sessionType"):
        WorkoutLogged.model_validate(workout(sessionType="group"))


@pytest.mark.parametrize("status", ["done", "COMPLETED", "", None])
def test_bad_workout_status_is_rejected(status: object) -> None:
    with pytest.raises(ValidationError, match="status"):
        WorkoutLogged.model_validate(workout(status=status))


def test_every_workout_status_of_the_contract_is_accepted() -> None:
    for status in ("planned", "in_progress", "completed", "skipped", "cancelled"):
        assert WorkoutLogged.model_validate(workout(status=status)).status is WorkoutStatus(status)


def test_times_without_a_zone_are_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        WorkoutLogged.model_validate(workout(date="2026-01-12T07:30:00"))


def test_title_longer_than_200_characters_is_rejected() -> None:
    with pytest.raises(ValidationError, match="200"):
        WorkoutLogged.model_validate(workout(title="x" * 201))


def test_unknown_payload_fields_are_ignored() -> None:
    logged = WorkoutLogged.model_validate(workout(mood="great", heartRate={"avg": 120}))
    assert "mood" not in logged.to_json_dict()


@pytest.mark.parametrize("bad_id", [0, -1, "abc"])
def test_ids_are_positive_integers(bad_id: object) -> None:
    with pytest.raises(ValidationError, match="userId"):
        WorkoutLogged.model_validate(workout(userId=bad_id))


def test_session_booked_lasts_an_hour_unless_told() -> None:
    booked = SessionBooked.model_validate(
        {"sessionId": 1, "userId": 2, "trainerId": 3, "sessionDate": "2026-01-15T10:00:00Z"}
    )
    assert booked.duration == 60
    assert booked.location is None


def test_package_must_buy_at_least_one_session() -> None:
    with pytest.raises(ValidationError, match="sessions"):
        PackagePurchased.model_validate(
            {
                "purchaseId": "p-1",
                "userId": 1,
                "sessions": 0,
                "purchasedAt": "2026-01-01T00:00:00Z",
            }
        )


def test_balance_must_add_up() -> None:
    assert Balance(total=10, used=11, remaining=-1).remaining == -1
    with pytest.raises(ValidationError, match="remaining must equal"):
        Balance(total=10, used=2, remaining=7)


def test_json_is_camel_case() -> None:
    data = WorkoutLogged.model_validate(workout()).to_json_dict()
    assert {"workoutId", "userId", "sessionType", "totalWeight", "experiencePoints"} <= set(data)
    assert "user_id" not in data


def test_every_event_type_names_itself_and_is_registered_once() -> None:
    assert len(EVENT_TYPES) == 24
    for name, model in EVENT_TYPES.items():
        assert model.event_type == name


def test_ids_beyond_64_bits_are_rejected() -> None:
    assert WorkoutLogged.model_validate(workout(userId=2**63 - 1)).user_id == 2**63 - 1
    with pytest.raises(ValidationError, match="userId"):
        WorkoutLogged.model_validate(workout(userId=2**63))
