"""Replay and rebuild of each service on a history of over a thousand events with every kind
of trouble (tests/system/history.py): its business state is exactly what it was (see
tests/system/state.py for what is compared), and nothing changes in the other services.

The operations are `ops.recovery.replay` and `ops.recovery.rebuild`, the code behind
`ops replay` and `ops rebuild`, driving the processes of an isolated copy of the platform.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from contracts.topics import BOOKING_SESSIONS, COMMERCE_PACKAGES, CREDITS_LEDGER, WORKOUT_SESSIONS
from ops import databases, recovery
from ops.identity import LocalIdentity
from ops.inputs import input_topic_names
from ops.progress import Progress
from testkit.helpers import end_offsets, read_topic
from testkit.servers import ScratchDatabases, Servers

from .history import History, play
from .platform import IsolatedPlatform, running_platform
from .state import Rows, business_state, differences

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("booking", "workouts", "credits", "analytics")
POLL_INTERVAL = 0.25


@dataclass
class Played:
    platform: IsolatedPlatform
    history: History


@pytest.fixture(scope="module")
async def played(
    servers: Servers, tmp_path_factory: pytest.TempPathFactory, identity: LocalIdentity
) -> AsyncIterator[Played]:
    """One copy of the platform with the history played on it, for every test here: each
    test leaves the state as it found it, which is what they check."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    scratch = ScratchDatabases(servers)
    try:
        async with running_platform(
            kafka_bootstrap=servers.kafka_bootstrap,
            topic_prefix=prefix,
            database_for=scratch.migrated,
            log_directory=tmp_path_factory.mktemp("recovery"),
            tokens=identity.token,
            owner_of=servers.owner_of,
            principal_environment=servers.principal_environment,
        ) as platform:
            yield Played(platform, await play(platform))
    finally:
        scratch.drop_all()


def everything(platform: IsolatedPlatform) -> dict[str, dict[str, Rows]]:
    return {name: business_state(name, platform.database_urls[name]) for name in SERVICES}


async def records_on(platform: IsolatedPlatform, topics: list[str]) -> int:
    total = 0
    for topic in topics:
        total += sum((await end_offsets(platform.kafka_bootstrap, topic)).values())
    return total


def assert_unchanged(
    before: dict[str, dict[str, Rows]], after: dict[str, dict[str, Rows]], what: str
) -> None:
    for name in SERVICES:
        assert after[name] == before[name], (
            f"{name} changed by the {what}:\n{differences(before[name], after[name])}"
        )


def assert_progress_reported(updates: list[Progress], outcome: recovery.Outcome) -> None:
    assert updates, "no progress was reported"
    done = [update.done for update in updates]
    assert done == sorted(done), "progress went backwards"
    assert (updates[-1].done, updates[-1].total) == (outcome.records, outcome.records)


async def test_the_history_has_over_a_thousand_events_with_duplicates_and_dead_letters(
    played: Played,
) -> None:
    platform, prefix = played.platform, played.platform.topic_prefix
    topics = [BOOKING_SESSIONS, WORKOUT_SESSIONS, COMMERCE_PACKAGES, CREDITS_LEDGER]
    assert await records_on(platform, [prefix + t.name for t in topics]) >= 1000
    for topic in (BOOKING_SESSIONS, WORKOUT_SESSIONS, COMMERCE_PACKAGES):
        assert await records_on(platform, [prefix + topic.name + ".dlq"]) > 0

    booking_topic = prefix + BOOKING_SESSIONS.name
    on_topic = await records_on(platform, [booking_topic])
    bookings = await read_topic(
        platform.kafka_bootstrap, booking_topic, until=lambda records: len(records) >= on_topic
    )
    events = [json.loads(r.value) for r in bookings if r.value.startswith(b'{"specversion')]
    copies = Counter(event["id"] for event in events)
    ids_of_fact: dict[tuple[str, int], set[str]] = {}
    for event in events:
        ids_of_fact.setdefault((event["type"], event["data"]["sessionId"]), set()).add(event["id"])
    assert max(copies.values()) == 2, "no record was sent twice"
    assert max(map(len, ids_of_fact.values())) >= 2, "no fact came again under a new event id"
    cancelled = [event for event in events if event["type"] == "SessionCancelled"]
    assert len(cancelled) >= len(played.history.clients)


@pytest.mark.parametrize("service", SERVICES)
async def test_a_replay_changes_nothing(played: Played, service: str) -> None:
    platform = played.platform
    inputs = await records_on(platform, input_topic_names(service, platform.topic_prefix))
    before = everything(platform)
    updates: list[Progress] = []

    outcome = await recovery.replay(
        platform.target(service),
        platform.control(service),
        updates.append,
        poll_interval=POLL_INTERVAL,
    )

    await platform.settled()
    assert_unchanged(before, everything(platform), f"replay of {service}")
    assert outcome.records >= inputs
    assert_progress_reported(updates, outcome)


@pytest.mark.parametrize("service", SERVICES)
async def test_a_rebuild_from_the_topics_gives_back_the_same_state(
    played: Played, service: str
) -> None:
    platform = played.platform
    url = platform.owner_urls[service]
    before = everything(platform)
    ledger_before = await records_on(platform, [platform.topic_prefix + CREDITS_LEDGER.name])
    updates: list[Progress] = []
    steps: list[str] = []

    outcome = await recovery.rebuild(
        platform.target(service),
        platform.control(service),
        databases.own_role(url),
        ROOT / "services" / service / "alembic.ini",
        updates.append,
        say=steps.append,
        poll_interval=POLL_INTERVAL,
    )

    await platform.settled()
    assert_unchanged(before, everything(platform), f"rebuild of {service}")
    database = databases.database_name(url)
    assert f"{service}: database {database} dropped and created empty (as role {service})" in steps
    assert_progress_reported(updates, outcome)
    ledger_after = await records_on(platform, [platform.topic_prefix + CREDITS_LEDGER.name])
    assert ledger_after == ledger_before, "the ledger announced again what it had announced"
