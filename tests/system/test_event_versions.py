"""Events of every version of `WorkoutLogged` on the topics of running services: the old
ones read exactly as before, the new ones read where they can be, and what cannot be read
dead-lettered with its reason and its bytes intact (docs/versioning.md)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts.events import (
    GroupSessionScheduled,
    PackagePurchased,
    ParticipantJoined,
    SessionBooked,
)
from contracts.topics import WORKOUT_SESSIONS
from testkit.helpers import eventually, read_topic

from .conftest import Launch
from .platform import IsolatedPlatform

pytestmark = pytest.mark.infra

DAY = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)
TRAINER = 8
CAPACITY = 5


def legacy_workout(user_id: int, **data: Any) -> dict[str, Any]:
    """A WorkoutLogged as a producer from before session types wrote it: version 1, and no
    `sessionType` at all."""
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/legacy/app",
        "type": "WorkoutLogged",
        "time": DAY.isoformat(),
        "dataversion": "1",
        "data": {
            "workoutId": str(uuid.uuid4()),
            "userId": user_id,
            "title": "Legacy workout",
            "date": DAY.isoformat(),
            "status": "completed",
            **data,
        },
    }


async def usage_of(platform: IsolatedPlatform, user_id: int) -> dict[str, Any]:
    async with platform.http() as http:
        response = await http.get(
            platform.url("analytics") + f"/api/analytics/{user_id}/session-usage"
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer


async def test_events_of_every_version_are_read_as_ever_or_dead_lettered_with_their_reason(
    launch: Launch,
) -> None:
    client = 2001
    async with launch(services=("credits", "analytics")) as platform:
        await platform.publish(
            [
                PackagePurchased(purchase_id="v", user_id=client, sessions=5, purchased_at=DAY),
                SessionBooked(session_id=77, user_id=client, trainer_id=TRAINER, session_date=DAY),
                GroupSessionScheduled(
                    session_id=78, trainer_id=TRAINER, session_date=DAY, capacity=CAPACITY
                ),
                ParticipantJoined(
                    session_id=78, user_id=client, trainer_id=TRAINER, session_date=DAY, at=DAY
                ),
            ]
        )
        topic = WORKOUT_SESSIONS.name
        key = str(client).encode()
        readable = [
            legacy_workout(client),  # version 1 without a type: solo, as ever
            legacy_workout(client, sessionType="trainer-led", sessionId=77, trainerId=TRAINER),
            {
                **legacy_workout(client),
                "dataversion": "2",
                "data": {
                    **legacy_workout(client)["data"],
                    "sessionType": "trainer-assisted",
                    "trainerId": TRAINER,
                    "planId": "plan-1",
                },
            },
            {
                **legacy_workout(client),
                "dataversion": "2",
                "data": {
                    **legacy_workout(client)["data"],
                    "sessionType": "group",
                    "sessionId": 78,
                    "trainerId": TRAINER,
                    "groupSize": CAPACITY,
                },
            },
        ]
        unreadable = {
            "sessionType 'group' needs dataversion 2": legacy_workout(
                client, sessionType="group", sessionId=78, trainerId=TRAINER
            ),
            "unknown session type 'yoga'": {
                **legacy_workout(client, sessionType="yoga"),
                "dataversion": "2",
            },
            "dataversion '3' is not supported": {**legacy_workout(client), "dataversion": "3"},
        }
        for document in [*readable, *unreadable.values()]:
            await platform.publish_raw(topic, json.dumps(document).encode(), key=key)

        async def counted() -> bool:
            usage = await usage_of(platform, client)
            return bool(usage["total"] == 4 and usage["credits"]["used"] == 2)

        await eventually(counted, within=60)
        await platform.settled()
        usage = await usage_of(platform, client)
        kinds = ("solo", "trainerLed", "trainerAssisted", "group")
        assert {kind: usage[kind]["count"] for kind in kinds} == dict.fromkeys(kinds, 1)
        assert usage["solo"]["percentage"] == usage["trainerLed"]["percentage"] == 25.0
        # Credits charged the trainer-led session and the client's group place, not the plan.
        assert sorted(platform.deductions()) == [(77, client), (78, client)]

        letters = await read_topic(
            platform.kafka_bootstrap,
            platform.topic_prefix + topic + ".dlq",
            until=lambda got: len(got) >= 2 * len(unreadable),
            within=60,
        )
        reasons = Counter(
            next(expected for expected in unreadable if expected in reason)
            for reason in (dict(letter.headers)["dlq-reason"].decode() for letter in letters)
        )
        # Each of the two consumers sets each unreadable record aside once, its bytes intact.
        assert reasons == dict.fromkeys(unreadable, 2)
        originals = {json.dumps(document).encode() for document in unreadable.values()}
        assert {letter.value for letter in letters} == originals
