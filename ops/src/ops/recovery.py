"""Replay and rebuild: a service consumes its input topics again from the beginning.

- A replay keeps the database: the service's consumer group is rewound to the earliest
  offset of every input topic and the service reapplies its history, which its idempotent
  consumer turns into no-ops (each event id is remembered in `processed_events`). Use it to
  check that nothing was missed, or to re-run what was dead-lettered before a fix. It may
  be narrowed to the records since a time (`since`: the offsets Kafka finds for it) and to
  one input topic (`topic`: the group's other offsets stay where they are).
- A rebuild also drops the database and creates it empty, with its migrations: the topics
  are the system of record, so the service rebuilds the same state from them.

Both stop the service first (Kafka only accepts a rewind from outside an idle group), then
start it and follow its committed offsets until it has caught up with every input topic and
published its whole outbox. Both check that Kafka and the database answer before stopping
anything, so a refusal leaves the service running.

Nothing here knows how the service runs: callers give a `ServiceControl` (the local
platform's pid files for the CLI, a test harness's processes for the tests).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from ops import databases, groups
from ops.inputs import input_topic_names
from ops.local.errors import PlatformError
from ops.local.report import Say, silent
from ops.progress import OnProgress, ProgressMeter, ignore, work_done

#: How often the committed offsets are read while following.
POLL_INTERVAL = 1.0
#: A broker or database that stops answering while we follow is retried this long.
LOST_CONTACT_LIMIT = 30.0


def _nothing_to_check() -> None:
    return None


@dataclass(frozen=True, slots=True)
class ServiceControl:
    """How to stop and start every process of one service.

    `stop` returns once no process of the service runs; `start` once it is ready (serving
    and connected). `check_running` raises a `PlatformError` when the service has died
    while catching up, so the operator is told instead of waiting forever."""

    stop: Callable[[], Awaitable[None]]
    start: Callable[[], Awaitable[None]]
    check_running: Callable[[], None] = _nothing_to_check


@dataclass(frozen=True, slots=True)
class Target:
    """One service as the broker and the database see it."""

    service: str
    bootstrap: str
    #: As the service connects: its runtime role.
    database_url: str
    topic_prefix: str = ""
    #: Its consumer group; the default is the one the service itself uses.
    group: str = ""
    #: As its owner role reaches it, to migrate it (the runtime URL when not given: a
    #: database with one role).
    owner_database_url: str = ""

    @property
    def owner_url(self) -> str:
        return self.owner_database_url or self.database_url

    @property
    def consumer_group(self) -> str:
        return self.group or self.topic_prefix + self.service

    @property
    def topics(self) -> list[str]:
        return input_topic_names(self.service, self.topic_prefix)

    def input_topic(self, name: str) -> str:
        """One of its input topics on the broker, named with or without the prefix."""
        topics = self.topics
        topic = name if name in topics else self.topic_prefix + name
        if topic not in topics:
            inputs = ", ".join(topic.removeprefix(self.topic_prefix) for topic in topics)
            raise PlatformError(f"{self.service} does not consume {name}: its inputs are {inputs}")
        return topic


@dataclass(frozen=True, slots=True)
class Outcome:
    service: str
    #: Records of the input topics the service consumed again.
    records: int
    #: From the service's start to caught up.
    catching_up: float
    #: The whole operation, stopping and starting included.
    elapsed: float

    @property
    def rate(self) -> float:
        return self.records / self.catching_up if self.catching_up > 0 else 0.0


def summary(outcome: Outcome, what: str) -> str:
    """'credits: rebuilt from 5,000 records in 8.1 s (617 records/s); 15.2 s in all'."""
    return (
        f"{outcome.service}: {what} {outcome.records:,} records in {outcome.catching_up:.1f} s "
        f"({outcome.rate:,.0f} records/s); {outcome.elapsed:.1f} s in all, stop and start "
        "included"
    )


#: A date alone: its midnight, UTC.
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def replay_start(text: str) -> datetime:
    """The TIME of `ops replay --from TIME`: an RFC 3339 time with its zone, or a date."""
    text = text.strip()
    try:
        if _DATE.fullmatch(text):
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise PlatformError(
            f"--from takes an RFC 3339 time with its zone (2026-01-15T10:00:00Z) or a date "
            f"(2026-01-15, from its midnight UTC), not {text!r}"
        )
    return moment


# --- checks before anything is stopped ----------------------------------------------------


async def check_kafka(target: Target) -> None:
    """Kafka answers and every input topic exists."""
    async with groups.kafka_admin(target.bootstrap) as admin:
        try:
            missing = await groups.missing_topics(admin, target.topics)
        except (KafkaError, OSError) as error:
            raise groups.kafka_unreachable(target.bootstrap, error) from None
    if missing:
        raise PlatformError(
            f"{target.service} consumes {', '.join(missing)}, which Kafka at {target.bootstrap} "
            "does not have: create the topics with `make up`"
        )


# --- the two operations -------------------------------------------------------------------


async def replay(
    target: Target,
    control: ServiceControl,
    on_progress: OnProgress = ignore,
    *,
    since: datetime | None = None,
    topic: str | None = None,
    say: Say = silent,
    poll_interval: float = POLL_INTERVAL,
    give_up_after: float | None = None,
) -> Outcome:
    """Stop the service, rewind its group to the earliest offsets (or to the first records
    `since` a time) of its input topics (or of one, `topic`), start it and follow it until it
    has caught up. Its state does not change: every event is already applied."""
    topics = target.topics if topic is None else [target.input_topic(topic)]
    began = time.monotonic()
    await check_kafka(target)
    await asyncio.to_thread(databases.check_login, target.service, target.database_url)
    await control.stop()
    try:
        start = await _rewind(target, say, topics, since)
    except BaseException:
        # Nothing changed yet: leave the service as it was found, running.
        await control.start()
        raise
    return await _start_and_follow(
        target,
        control,
        start,
        on_progress,
        say=say,
        began=began,
        poll_interval=poll_interval,
        give_up_after=give_up_after,
    )


async def rebuild(
    target: Target,
    control: ServiceControl,
    admin: databases.DatabaseAdmin,
    alembic_ini: Path,
    on_progress: OnProgress = ignore,
    *,
    say: Say = silent,
    poll_interval: float = POLL_INTERVAL,
    give_up_after: float | None = None,
) -> Outcome:
    """Stop the service, drop its database and create it again with its migrations, rewind
    its group to the earliest offsets, start it and follow it until it has caught up."""
    began = time.monotonic()
    await check_kafka(target)
    await asyncio.to_thread(databases.check_admin, admin, target.service, target.owner_url)
    await control.stop()
    try:
        await groups.wait_until_empty(target.bootstrap, target.consumer_group)
    except BaseException:
        await control.start()
        raise
    name = databases.database_name(target.owner_url)
    await asyncio.to_thread(databases.recreate, admin, target.owner_url)
    say(f"{target.service}: database {name} dropped and created empty (as {admin.description})")
    await asyncio.to_thread(
        databases.migrate,
        alembic_ini,
        target.owner_url,
        service=target.service,
        runtime_role=databases.role_name(target.database_url),
    )
    say(f"{target.service}: migrated")
    start = await _rewind(target, say, target.topics)
    return await _start_and_follow(
        target,
        control,
        start,
        on_progress,
        say=say,
        began=began,
        poll_interval=poll_interval,
        give_up_after=give_up_after,
    )


async def _rewind(
    target: Target, say: Say, topics: Sequence[str], since: datetime | None = None
) -> dict[TopicPartition, int]:
    group = target.consumer_group
    await groups.wait_until_empty(target.bootstrap, group)
    start = await groups.rewind(target.bootstrap, group, topics, since=since)
    where = "the earliest offsets" if since is None else f"the offsets of {since.isoformat()}"
    say(
        f"{target.service}: consumer group {group} rewound to {where} of {', '.join(topics)} "
        f"({len(start)} partitions)"
    )
    return start


async def _start_and_follow(
    target: Target,
    control: ServiceControl,
    start: Mapping[TopicPartition, int],
    on_progress: OnProgress,
    *,
    say: Say,
    began: float,
    poll_interval: float,
    give_up_after: float | None,
) -> Outcome:
    await control.start()
    say(f"{target.service}: started; catching up")
    started = time.monotonic()
    records, caught_up_at = await follow(
        target,
        start,
        control,
        on_progress,
        poll_interval=poll_interval,
        give_up_after=give_up_after,
    )
    return Outcome(target.service, records, caught_up_at - started, time.monotonic() - began)


async def follow(
    target: Target,
    start: Mapping[TopicPartition, int],
    control: ServiceControl,
    on_progress: OnProgress = ignore,
    *,
    poll_interval: float = POLL_INTERVAL,
    give_up_after: float | None = None,
) -> tuple[int, float]:
    """Report progress until the group has committed the end of every input partition and
    the outbox is empty, twice in a row (what the service publishes may be its own input:
    credits reads its ledger back). Returns how many records were consumed, and when
    (time.monotonic) it first got there: the rate is not diluted by the second look."""
    meter = ProgressMeter(target.service)
    partitions = list(start)
    began = time.monotonic()
    calm = 0
    caught_up_at = began
    lost_since: float | None = None
    async with (
        groups.kafka_admin(target.bootstrap) as admin,
        groups.kafka_consumer(target.bootstrap) as consumer,
    ):
        while True:
            control.check_running()
            elapsed = time.monotonic() - began
            try:
                committed = await groups.committed_offsets(admin, target.consumer_group)
                ends = await groups.end_offsets(consumer, partitions)
                backlog = await asyncio.to_thread(databases.outbox_backlog, target.database_url)
            except (KafkaError, OSError, psycopg.Error) as error:
                lost_since = lost_since if lost_since is not None else time.monotonic()
                if time.monotonic() - lost_since > LOST_CONTACT_LIMIT:
                    raise PlatformError(
                        f"lost contact with Kafka or the {target.service} database while "
                        f"following it ({type(error).__name__}: {error}); it goes on "
                        "consuming: watch it with `ops lag`"
                    ) from None
                await asyncio.sleep(poll_interval)
                continue
            lost_since = None
            done, total = work_done(start, committed, ends)
            on_progress(meter.sample(elapsed, done, total))
            if done >= total and backlog == 0:
                calm += 1
                if calm == 1:
                    caught_up_at = time.monotonic()
            else:
                calm = 0
            if calm >= 2:
                return done, caught_up_at
            if give_up_after is not None and elapsed > give_up_after:
                raise PlatformError(
                    f"{target.service} did not catch up within {give_up_after:g} s ({done:,} of "
                    f"{total:,} records); it goes on consuming: watch it with `ops lag`"
                )
            await asyncio.sleep(poll_interval)
