"""The operator's commands on a copy of the platform (booking and credits): dead letters sent
back to their topic once their cause is fixed are applied once, and never sent again by a
second redrive; lag and status show a stopped service falling behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import psycopg
import pytest
from typer.testing import CliRunner, Result

from contracts.events import PackagePurchased, SessionBooked, SessionRescheduled
from contracts.session_ids import SESSION_ID_TAKEN
from contracts.topics import BOOKING_SESSIONS, COMMERCE_PACKAGES
from ops import inspection
from ops.cli import app
from ops.dead_letters import ListedLetter, Selection, list_dead_letters, redrive
from ops.inputs import input_topic_names
from servicekit.db import libpq_url
from testkit.helpers import end_offsets, eventually

from .conftest import Launch
from .platform import IsolatedPlatform, free_port

pytestmark = pytest.mark.infra

BOOKED_FOR = datetime(2026, 4, 6, 10, 0, tzinfo=UTC)
MOVED_TO = datetime(2026, 4, 8, 17, 30, tzinfo=UTC)


@pytest.fixture
async def platform(launch: Launch) -> AsyncIterator[IsolatedPlatform]:
    async with launch(services=("booking", "credits")) as started:
        yield started


def ops(platform: IsolatedPlatform, *arguments: str) -> Result:
    """The operator's command line, pointed at this copy of the platform."""
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": platform.kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": platform.topic_prefix,
    }
    for name, url in platform.database_urls.items():
        env[f"{name.upper()}_DATABASE_URL"] = url
        env[f"{name.upper()}_OWNER_DATABASE_URL"] = platform.owner_urls[name]
    for name in platform.database_urls:
        replicas = platform.processes.get(name)
        # A stopped service of this copy: a port where nothing listens, never the real one.
        env[f"{name.upper()}_HTTP_PORT"] = str(replicas[0].port if replicas else free_port())
    return CliRunner().invoke(app, list(arguments), env=env)


async def run_ops(platform: IsolatedPlatform, *arguments: str) -> Result:
    # The command runs its own event loop: in a thread, away from the test's.
    return await asyncio.to_thread(ops, platform, *arguments)


def query(
    platform: IsolatedPlatform,
    service: str,
    sql: str,
    *parameters: object,
    as_owner: bool = False,
) -> list[tuple[object, ...]]:
    """`sql` on the service's database, as the service runs (or as its owner)."""
    urls = platform.owner_urls if as_owner else platform.database_urls
    url = libpq_url(urls[service])
    with psycopg.connect(url, autocommit=True) as connection:
        cursor = connection.execute(sql, parameters)
        return cursor.fetchall() if cursor.description else []


async def letters(
    platform: IsolatedPlatform, topic: str, consumer: str | None = None, count: int = 1
) -> list[ListedLetter]:
    """The dead letters of `topic`, once `count` of them have arrived."""
    found: list[ListedLetter] = []

    async def arrived() -> bool:
        nonlocal found
        found = await list_dead_letters(
            platform.kafka_bootstrap,
            topic,
            platform.topic_prefix,
            Selection(consumer=consumer, prefix=platform.topic_prefix),
        )
        return len(found) >= count

    await eventually(arrived, within=60)
    return found


async def topic_end(platform: IsolatedPlatform, topic: str) -> int:
    ends = await end_offsets(platform.kafka_bootstrap, platform.topic_prefix + topic)
    return sum(ends.values())


async def test_a_reschedule_dead_lettered_before_its_booking_arrived_is_applied_once_redriven(
    platform: IsolatedPlatform,
) -> None:
    # Another service announced the reschedule of session 4242 before its booking: booking
    # cannot move a session it never heard of, and dead-letters it.
    moved = SessionRescheduled(session_id=4242, session_date=MOVED_TO)
    await platform.publish([moved], source="/platform/front-desk")
    (listed,) = await letters(platform, BOOKING_SESSIONS.name, consumer="booking")
    letter = listed.letter
    assert letter.reason == "session 4242 was never booked"
    assert letter.origin_topic == platform.topic_prefix + BOOKING_SESSIONS.name
    assert letter.consumer == platform.topic_prefix + "booking"
    assert letter.event_type == "SessionRescheduled"
    assert not listed.redriven

    shown = await run_ops(platform, "dlq", "list", "booking.sessions")
    assert shown.exit_code == 0, shown.output
    assert f"{letter.partition}@{letter.offset}" in shown.output
    assert f"SessionRescheduled {letter.event_id}" in shown.output
    assert "waiting  session 4242 was never booked" in shown.output
    assert f"{platform.topic_prefix}booking.sessions {letter.origin_partition}@" in shown.output

    # The cause goes away: the booking arrives.
    await platform.publish(
        [SessionBooked(session_id=4242, user_id=31, trainer_id=32, session_date=BOOKED_FOR)]
    )
    await platform.settled()
    session_date = "select session_date from sessions where id = 4242"
    assert query(platform, "booking", session_date) == [(BOOKED_FOR,)]

    # Given as the .dlq topic this time; either name works.
    sent = await run_ops(platform, "dlq", "redrive", "booking.sessions.dlq", "-c", "booking")
    assert sent.exit_code == 0, sent.output
    assert sent.output.splitlines()[-1] == "1 redriven"

    await eventually(lambda: query(platform, "booking", session_date) == [(MOVED_TO,)], within=30)
    applied = "select count(*) from processed_events where event_id = %s"
    assert query(platform, "booking", applied, letter.event_id) == [(1,)]

    end = await topic_end(platform, BOOKING_SESSIONS.name)
    again = await run_ops(platform, "dlq", "redrive", "booking.sessions", "--consumer", "booking")
    assert again.exit_code == 0, again.output
    assert again.output.splitlines()[-1] == "0 redriven, 1 redriven before"
    assert await topic_end(platform, BOOKING_SESSIONS.name) == end
    (listed,) = await letters(platform, BOOKING_SESSIONS.name, consumer="booking")
    assert listed.redriven


async def test_a_purchase_dead_lettered_while_the_ledger_refused_writes_is_granted_once(
    platform: IsolatedPlatform,
) -> None:
    # An operator's mistake: the credits role lost the right to write its ledger. Every
    # attempt fails (not a transient failure), and after five the purchase is dead-lettered.
    revoked = "revoke insert on ledger_entries from credits_runtime"
    query(platform, "credits", revoked, as_owner=True)
    purchase = PackagePurchased(
        purchase_id="order-77", user_id=77, sessions=10, purchased_at=BOOKED_FOR
    )
    await platform.publish([purchase], source="/platform/store")
    (listed,) = await letters(platform, COMMERCE_PACKAGES.name)
    assert listed.letter.reason.startswith("failed 5 times: ProgrammingError")
    assert "permission denied for table ledger_entries" in listed.letter.reason
    assert query(platform, "credits", "select total from balances where user_id = 77") == []

    query(platform, "credits", "grant insert on ledger_entries to credits_runtime", as_owner=True)
    end = await topic_end(platform, COMMERCE_PACKAGES.name)
    rehearsal = await redrive(
        platform.kafka_bootstrap, COMMERCE_PACKAGES.name, platform.topic_prefix, dry_run=True
    )
    assert [letter.offset for letter in rehearsal.redriven] == [listed.letter.offset]
    assert await topic_end(platform, COMMERCE_PACKAGES.name) == end

    report = await redrive(platform.kafka_bootstrap, COMMERCE_PACKAGES.name, platform.topic_prefix)
    assert len(report.redriven) == 1
    balance = "select total, used from balances where user_id = 77"
    await eventually(lambda: query(platform, "credits", balance) == [(10, 0)], within=30)

    second = await redrive(platform.kafka_bootstrap, COMMERCE_PACKAGES.name, platform.topic_prefix)
    assert (len(second.redriven), second.earlier) == (0, 1)
    assert await topic_end(platform, COMMERCE_PACKAGES.name) == end + 1
    await platform.settled()
    assert query(platform, "credits", balance) == [(10, 0)]
    grants = "select count(*) from ledger_entries where purchase_id = 'order-77'"
    assert query(platform, "credits", grants) == [(1,)]


def endpoints(platform: IsolatedPlatform, name: str) -> inspection.ServiceEndpoints:
    return inspection.ServiceEndpoints(
        service=name,
        base_url=platform.url(name),
        database_url=platform.database_urls[name],
        group=platform.topic_prefix + name,
        topics=input_topic_names(name, platform.topic_prefix),
    )


def row_of(output: str, first_cell: str) -> list[str]:
    """The cells of the table row starting with `first_cell` (cells are 2+ spaces apart)."""
    import re

    for line in output.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in:\n{output}")


async def test_lag_and_status_show_a_stopped_service_falling_behind(
    platform: IsolatedPlatform,
) -> None:
    await platform.settled()
    views = [endpoints(platform, "booking"), endpoints(platform, "credits")]
    healthy = await inspection.health(platform.kafka_bootstrap, views)
    assert [(h.service, h.readiness, h.lag, h.outbox) for h in healthy] == [
        ("booking", "ready", 0, 0),
        ("credits", "ready", 0, 0),
    ]

    platform.kill("credits")
    purchases = [
        PackagePurchased(purchase_id=f"order-{n}", user_id=n, sessions=5, purchased_at=BOOKED_FOR)
        for n in (1, 2, 3)
    ]
    await platform.publish(purchases, source="/platform/store")
    # An event credits recorded and never got to publish before it stopped.
    query(
        platform,
        "credits",
        "insert into outbox (event_id, event_type, topic, key, value)"
        " values ('stranded', 'CreditsGranted', 'credits.ledger', 'k', 'v')",
    )

    fallen = await inspection.health(platform.kafka_bootstrap, views)
    assert [(h.readiness, h.lag, h.outbox) for h in fallen] == [
        ("ready", 0, 0),
        ("no answer", 3, 1),
    ]

    group = platform.topic_prefix + "credits"
    lag = await run_ops(platform, "lag", "--group", group)
    assert lag.exit_code == 0, lag.output
    assert f"{group}: lag 3 over 24 partitions" in lag.output
    topic = platform.topic_prefix + COMMERCE_PACKAGES.name
    packages = [row for row in lag.output.splitlines() if topic in row]
    assert len(packages) == 6
    assert sum(int(row.split()[-1]) for row in packages) == 3

    status = await run_ops(platform, "status")
    assert status.exit_code == 0, status.output
    assert row_of(status.output, "booking")[-4:] == ["ready", "0", "0", "-"]
    assert row_of(status.output, "credits")[-4:] == ["no answer", "3", "1", "0"]
    assert "Session id collisions: none" in status.output


async def test_a_collision_from_a_producer_outside_its_block_is_dead_lettered_counted_and_shown(
    platform: IsolatedPlatform,
) -> None:
    async with platform.http() as http:
        booked = await http.post(
            f"{platform.url('booking')}/api/sessions",
            json={
                "userId": 5,
                "trainerId": 6,
                "sessionDate": "2026-04-06T10:00:00Z",
                "allowWithoutCredit": True,
            },
        )
    taken = booked.json()["id"]
    # A producer ignoring its block books the API's id for another client.
    stray = SessionBooked(session_id=taken, user_id=7, trainer_id=6, session_date=BOOKED_FOR)
    await platform.publish([stray], source="/platform/stray")
    (listed,) = await letters(platform, BOOKING_SESSIONS.name, consumer="booking")
    assert listed.letter.reason_kind == SESSION_ID_TAKEN
    assert listed.letter.reason.startswith(f"session {taken} is booked for client 5")

    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"{platform.url('booking')}/metrics")).text
    series = (
        f'platform_events_dead_lettered_total{{reason="{SESSION_ID_TAKEN}",'
        f'topic="{platform.topic_prefix}{BOOKING_SESSIONS.name}"}} 1.0'
    )
    assert series in metrics.splitlines()

    status = await run_ops(platform, "status")
    assert status.exit_code == 0, status.output
    assert "Session id collisions: 1 (booking dead-lettered" in status.output
