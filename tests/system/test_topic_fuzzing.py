"""Every input topic fuzzed at once, through the four services as processes: a fixed batch
of hostile records drawn with Hypothesis (`testkit.fuzzing`), interleaved with valid
traffic whose effect the APIs show. Each record must be applied, passed over (a valid
event of a type the reader has no use for) or dead-lettered with its reason and its very
bytes, by every consumer group that reads its topic; no partition may stall, every valid
event must count, and nothing may answer 5xx afterwards. Below it, one test per defect the
fuzzing found, each with the records that showed it."""

from __future__ import annotations

import asyncio
import importlib
import json
import random
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition

from contracts import dead_letters
from contracts.envelope import build_event, encode, parse_envelope, partition_key, topic_of
from contracts.events import (
    MAX_ID,
    Balance,
    CreditsGranted,
    EventPayload,
    PackagePurchased,
    SessionBooked,
    SessionCompleted,
    SessionType,
    WorkoutLogged,
    WorkoutStatus,
)
from contracts.session_ids import PRODUCERS, session_id
from contracts.topics import BOOKING_SESSIONS, COMMERCE_PACKAGES, CREDITS_LEDGER, TOPICS, Topic
from servicekit.db import libpq_url
from servicekit.kafka import client_options
from testkit.fuzzing import (
    BROKER_MAX_RECORD_BYTES,
    Expected,
    FuzzRecord,
    draw,
    expected_outcome,
    hostile_corpus,
    huge_text,
    record_size,
)
from testkit.helpers import Record, committed_offsets, end_offsets, read_topic

from .platform import SERVICE_NAMES, IsolatedPlatform, inputs_of

pytestmark = pytest.mark.infra

#: Every topic some service consumes, in the contract's order.
INPUT_TOPICS: tuple[Topic, ...] = tuple(
    topic for topic in TOPICS if any(topic in inputs_of(name) for name in SERVICE_NAMES)
)
#: The platform service that books sessions in producer 1's block of ids.
KIOSK = PRODUCERS[1]
STORE = "/platform/store"
TRAINER = 7_100_001
FIRST_CLIENT = 7_000_001
#: When the valid traffic happens: a fixed past day, so nothing expires during the run.
DAY = datetime(2026, 3, 2, 9, tzinfo=UTC)


def handled_types(service: str) -> frozenset[str]:
    """The event types a service's consumer applies, as its handlers declare them."""
    handlers = importlib.import_module(f"{service}.handlers").HANDLERS
    return frozenset(model.event_type for model in handlers)


@dataclass(frozen=True, slots=True)
class Truth:
    """What the valid traffic must leave for one client."""

    client: int
    purchased: int
    sessions: tuple[int, ...]
    solo: int


def valid_traffic(clients: int) -> tuple[list[FuzzRecord], list[Truth]]:
    """Purchases, sessions booked, completed and logged by their trainer, and solo workouts
    of `clients` clients; each client's story in its order."""
    records: list[FuzzRecord] = []
    truths = []
    serial = 1
    for n in range(clients):
        client = FIRST_CLIENT + n
        purchased, booked, solo = 3 + n % 5, 1 + n % 3, n % 4
        payloads: list[tuple[EventPayload, str]] = [
            (
                PackagePurchased(
                    purchase_id=f"fuzz-{client}",
                    user_id=client,
                    sessions=purchased,
                    purchased_at=DAY - timedelta(days=1),
                ),
                STORE,
            )
        ]
        sessions = []
        for _ in range(booked):
            session = session_id(1, serial)
            serial += 1
            sessions.append(session)
            date = DAY + timedelta(hours=len(sessions))
            payloads += [
                (
                    SessionBooked(
                        session_id=session, user_id=client, trainer_id=TRAINER, session_date=date
                    ),
                    KIOSK,
                ),
                (
                    SessionCompleted(
                        session_id=session, user_id=client, trainer_id=TRAINER, at=date
                    ),
                    KIOSK,
                ),
                (
                    WorkoutLogged(
                        workout_id=_uuid(client, session),
                        user_id=client,
                        session_type=SessionType.TRAINER_LED,
                        session_id=session,
                        trainer_id=TRAINER,
                        title="Session",
                        date=date,
                        status=WorkoutStatus.COMPLETED,
                    ),
                    "/swanstudios/workouts",
                ),
            ]
        for workout in range(solo):
            payloads.append(
                (
                    WorkoutLogged(
                        workout_id=_uuid(client, workout),
                        user_id=client,
                        title="Run",
                        date=DAY + timedelta(days=1, hours=workout),
                        status=WorkoutStatus.COMPLETED,
                    ),
                    "/swanstudios/workouts",
                )
            )
        for payload, source in payloads:
            event = build_event(payload, source=source, time=DAY)
            records.append(
                FuzzRecord(
                    topic_of(payload), "valid", encode(event), partition_key(payload), valid=True
                )
            )
        truths.append(Truth(client, purchased, tuple(sessions), solo))
    return records, truths


def _uuid(*parts: int) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_OID, "/".join(map(str, parts)))


def interleaved(valid: list[FuzzRecord], hostile: list[FuzzRecord], seed: int) -> list[FuzzRecord]:
    """Both lists merged at random places, each keeping its own order."""
    rng = random.Random(seed)
    slots = set(rng.sample(range(len(valid) + len(hostile)), len(hostile)))
    valid_left, hostile_left = iter(valid), iter(hostile)
    return [
        next(hostile_left) if n in slots else next(valid_left)
        for n in range(len(valid) + len(hostile))
    ]


@dataclass(frozen=True, slots=True)
class Sent:
    record: FuzzRecord
    topic: str
    partition: int
    offset: int


async def publish(platform: IsolatedPlatform, records: Sequence[FuzzRecord]) -> list[Sent]:
    """Every record in one go, as the tests' producer publishes (acks from all replicas);
    where each landed."""
    producer = AIOKafkaProducer(
        **client_options(),
        bootstrap_servers=platform.kafka_bootstrap,
        acks="all",
        linger_ms=5,
        max_request_size=2 * 1024 * 1024,
    )
    await producer.start()
    try:
        futures = [
            await producer.send(
                platform.topic_prefix + record.topic.name,
                value=record.value,
                key=record.key,
                headers=list(record.headers),
            )
            for record in records
        ]
        landed = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [
        Sent(record, meta.topic, meta.partition, meta.offset)
        for record, meta in zip(records, landed, strict=True)
    ]


async def lagging(platform: IsolatedPlatform) -> list[str]:
    """Each input partition some service's group has not committed to its end."""
    behind = []
    for name in platform.processes:
        group = platform.topic_prefix + name
        committed = await committed_offsets(platform.kafka_bootstrap, group)
        for topic in inputs_of(name):
            ends = await end_offsets(platform.kafka_bootstrap, platform.topic_prefix + topic.name)
            for partition, end in ends.items():
                if committed.get(partition, 0) < end:
                    behind.append(
                        f"{group} {partition.topic}[{partition.partition}] at "
                        f"{committed.get(partition, 0)} of {end}"
                    )
    return behind


async def caught_up(platform: IsolatedPlatform, within: float) -> None:
    """Every group at the end of every partition it reads; else fail naming the laggards."""
    try:
        async with asyncio.timeout(within):
            while await lagging(platform):
                await asyncio.sleep(0.3)
    except TimeoutError:
        tails = {name: platform.processes[name][0].log_tail(15) for name in platform.processes}
        pytest.fail(f"partitions stalled: {await lagging(platform)}\n{tails}")
    await platform.settled(within=within)


Offsets = dict[TopicPartition, int]


async def dead_letter_ends(platform: IsolatedPlatform) -> dict[str, Offsets]:
    """Where each `.dlq` twin of an input topic ends now."""
    return {
        name: await end_offsets(platform.kafka_bootstrap, name)
        for name in (platform.topic_prefix + t.dead_letter.name for t in INPUT_TOPICS)
    }


async def letters_since(platform: IsolatedPlatform, starts: dict[str, Offsets]) -> list[Record]:
    """Every record put on the `.dlq` twins since `starts` (`dead_letter_ends`)."""
    letters: list[Record] = []
    for name, start in starts.items():
        ends = await end_offsets(platform.kafka_bootstrap, name)
        total = sum(end - start.get(partition, 0) for partition, end in ends.items())

        def complete(found: list[Record], expected: int = total) -> bool:
            return len(found) >= expected

        letters += await read_topic(
            platform.kafka_bootstrap, name, start=start, until=complete, within=30
        )
    return letters


def applied_ids(platform: IsolatedPlatform, service: str, ids: Sequence[str]) -> set[str]:
    """Which of `ids` the service's consumer remembers applying."""
    with psycopg.connect(libpq_url(platform.database_urls[service])) as connection:
        rows = connection.execute(
            "select event_id from processed_events where consumer = %s and event_id = any(%s)",
            (platform.topic_prefix + service, list(ids)),
        ).fetchall()
    return {row[0] for row in rows}


def event_id_of(record: FuzzRecord) -> str | None:
    try:
        return parse_envelope(record.value or b"").id
    except Exception:
        return None


@dataclass
class Accounting:
    """What became of each record, per consumer group."""

    problems: list[str]
    outcomes: Counter[str]


def account(
    platform: IsolatedPlatform, sent: Sequence[Sent], letters: Sequence[Record]
) -> Accounting:
    """Match every record to its fate in every group reading its topic: a dead letter
    carrying its key, bytes and headers with the reason, an entry in the group's applied
    events, or nothing when the contract says it is passed over."""
    by_position: dict[tuple[str, str, int, int], list[Record]] = {}
    for letter in letters:
        headers = dict(letter.headers)
        position = (
            headers[dead_letters.CONSUMER].decode(),
            headers[dead_letters.TOPIC].decode(),
            int(headers[dead_letters.PARTITION]),
            int(headers[dead_letters.OFFSET]),
        )
        by_position.setdefault(position, []).append(letter)
    problems: list[str] = []
    outcomes: Counter[str] = Counter()
    ids = [i for i in (event_id_of(s.record) for s in sent) if i is not None]
    for service in platform.processes:
        group = platform.topic_prefix + service
        handled = handled_types(service)
        applied = applied_ids(platform, service, ids)
        for item in sent:
            record = item.record
            if record.topic not in inputs_of(service):
                continue
            where = f"{group}: {record.kind} at {item.topic}[{item.partition}]@{item.offset}"
            expected = expected_outcome(record, handled)
            found = by_position.pop((group, item.topic, item.partition, item.offset), [])
            event_id = event_id_of(record)
            was_applied = event_id in applied
            if len(found) > 1:
                problems.append(f"{where}: dead-lettered {len(found)} times")
            if found:
                [letter, *_] = found
                headers = dict(letter.headers)
                kind = headers[dead_letters.REASON_KIND].decode()
                outcomes[f"{record.kind} -> dead letter ({kind})"] += 1
                if letter.value != record.value or letter.key != record.key:
                    problems.append(f"{where}: the dead letter lost the original key or bytes")
                if not headers[dead_letters.REASON]:
                    problems.append(f"{where}: a dead letter without a reason")
                if [h for h in letter.headers if h[0] not in dead_letters.DLQ_HEADERS] != list(
                    record.headers
                ):
                    problems.append(f"{where}: the dead letter lost the record's headers")
                if kind == "failed" or kind == "unreadable":
                    reason = headers[dead_letters.REASON].decode(errors="replace")
                    problems.append(f"{where}: taken out by a failure, not a rule: {reason}")
                if expected is Expected.PASSED_OVER:
                    problems.append(f"{where}: dead-lettered, but it should be passed over")
                if was_applied:
                    problems.append(f"{where}: both applied and dead-lettered")
            elif was_applied:
                outcomes[f"{record.kind} -> applied"] += 1
                if expected is not Expected.APPLIED_OR_REFUSED:
                    problems.append(f"{where}: applied, but it should be {expected}")
            else:
                outcomes[f"{record.kind} -> passed over"] += 1
                if expected is not Expected.PASSED_OVER:
                    problems.append(f"{where}: neither applied nor dead-lettered ({expected})")
    for position in by_position:
        problems.append(f"a dead letter of no record sent: {position}")
    return Accounting(problems, outcomes)


async def check_truth(platform: IsolatedPlatform, truths: Sequence[Truth]) -> list[str]:
    """Each client's credits, usage and sessions as the valid traffic says."""
    wrong = []
    async with platform.http(timeout=30) as http:
        for truth in truths:
            used = len(truth.sessions)
            balance = (
                await http.get(f"{platform.url('credits')}/api/credits/{truth.client}")
            ).json()
            if (balance["total"], balance["used"], balance["remaining"]) != (
                truth.purchased,
                used,
                truth.purchased - used,
            ):
                wrong.append(f"credits of {truth.client}: {balance}")
            usage = (
                await http.get(
                    f"{platform.url('analytics')}/api/analytics/{truth.client}/session-usage"
                )
            ).json()
            if (usage["total"], usage["solo"]["count"], usage["trainerLed"]["count"]) != (
                used + truth.solo,
                truth.solo,
                used,
            ) or usage["credits"]["used"] != used:
                wrong.append(f"usage of {truth.client}: {usage}")
            sessions = (
                await http.get(f"{platform.url('booking')}/api/sessions?userId={truth.client}")
            ).json()
            if sorted(s["id"] for s in sessions) != sorted(truth.sessions) or not all(
                s["sessionDeducted"] for s in sessions
            ):
                wrong.append(f"sessions of {truth.client}: {sessions}")
            workouts = (
                await http.get(
                    f"{platform.url('workouts')}/api/workout/sessions?userId={truth.client}"
                )
            ).json()
            if len(workouts) != used + truth.solo:
                wrong.append(f"workouts of {truth.client}: {len(workouts)}")
    return wrong


def ids_named(records: Sequence[FuzzRecord]) -> dict[str, set[int]]:
    """The user, session and trainer ids valid hostile records name (within 64 bits)."""
    named: dict[str, set[int]] = {"userId": set(), "sessionId": set(), "trainerId": set()}
    for record in records:
        try:
            data = json.loads(record.value or b"")
        except (ValueError, RecursionError):
            data = None
        data = data.get("data") if isinstance(data, dict) else None
        if not isinstance(data, dict):
            continue
        for field, found in named.items():
            value = data.get(field)
            if isinstance(value, int) and 0 < value <= MAX_ID:
                found.add(value)
    return named


def urls_of(
    base: str, path: str, names: list[str], kinds: dict[str, str], ids: dict[str, list[int]]
) -> list[str]:
    """The route filled with each id of the kind its parameters name; a route without
    parameters asked for each user's."""
    if not names:
        return [f"{base}{path}?userId={user}" for user in ids["user"]]
    urls = []
    for kind in set(kinds.values()):
        for value in ids[kind]:
            filled = path
            for name in names:
                filled = filled.replace("{" + name + "}", str(value))
            urls.append(base + filled)
    return urls


async def server_errors_afterwards(
    platform: IsolatedPlatform, named: dict[str, set[int]]
) -> list[str]:
    """Every GET route of every service, for each id the hostile records named: none may
    answer 5xx, and neither may `/metrics` or readiness."""
    found = []
    parameter = re.compile(r"\{(\w+)\}")
    ids = {
        "user": sorted(named["userId"])[:12],
        "session": sorted(named["sessionId"])[:12],
        "trainer": sorted(named["trainerId"])[:12],
    }
    async with platform.http(timeout=30) as http:
        for name in platform.processes:
            base = platform.url(name)
            for path in ("/metrics", "/health/ready"):
                response = await http.get(base + path)
                if response.status_code >= 500:
                    found.append(f"{name} {path}: {response.status_code}")
            paths = (await http.get(base + "/openapi.json")).json()["paths"]
            for path, operations in paths.items():
                # Event streams never end, and the pages of documentation hold no data.
                if "get" not in operations or path.endswith(("/events", "/stream")):
                    continue
                if path.startswith(("/health", "/metrics", "/docs", "/asyncapi")):
                    continue
                names = parameter.findall(path)
                kinds = {p: next((k for k in ids if k in p.lower()), "user") for p in names}
                for url in urls_of(base, path, names, kinds, ids):
                    response = await http.get(url)
                    if response.status_code >= 500:
                        found.append(f"{name} GET {url}: {response.status_code}")
    return found


@pytest.fixture(scope="module")
async def staff(module_platform: IsolatedPlatform) -> AsyncIterator[httpx.AsyncClient]:
    async with module_platform.http(timeout=30) as client:
        yield client


async def test_every_input_topic_takes_hostile_records_amid_valid_traffic(
    module_platform: IsolatedPlatform,
) -> None:
    platform = module_platform
    valid, truths = valid_traffic(clients=12)
    hostile = [record for topic in INPUT_TOPICS for record in hostile_corpus(topic)]
    records = interleaved(valid, hostile, seed=20260302)

    starts = await dead_letter_ends(platform)
    sent = await publish(platform, records)
    await caught_up(platform, within=90)

    letters = await letters_since(platform, starts)
    accounting = account(platform, sent, letters)
    assert not accounting.problems, "\n".join(accounting.problems[:40])
    assert not await check_truth(platform, truths)
    named = ids_named([s.record for s in sent if not s.record.valid])
    assert not await server_errors_afterwards(platform, named)


# --- what the fuzzing found, each kept as a test of its own ----------------------------------


async def fates(platform: IsolatedPlatform, records: Sequence[FuzzRecord]) -> Accounting:
    """Publish `records`, wait until every group has read past them, and account for each."""
    starts = await dead_letter_ends(platform)
    sent = await publish(platform, records)
    await caught_up(platform, within=60)
    return account(platform, sent, await letters_since(platform, starts))


def raw(topic: Topic, kind: str, value: bytes | None, **options: Any) -> FuzzRecord:
    return FuzzRecord(topic, kind, value, options.pop("key", b"1"), **options)


def purchase(client: int, sessions: int = 2) -> FuzzRecord:
    payload = PackagePurchased(
        purchase_id=f"after-{client}", user_id=client, sessions=sessions, purchased_at=DAY
    )
    event = build_event(payload, source=STORE)
    return FuzzRecord(topic_of(payload), "valid", encode(event), partition_key(payload), valid=True)


async def granted(staff: httpx.AsyncClient, platform: IsolatedPlatform, client: int) -> int:
    balance = await staff.get(f"{platform.url('credits')}/api/credits/{client}")
    total: int = balance.json()["total"]
    return total


def envelope(event_type: str, data: Any, *, source: str = STORE, **attributes: Any) -> bytes:
    document = {
        "specversion": "1.0",
        "id": f"regression-{random.Random(repr(data)).getrandbits(64)}-{event_type}",
        "source": source,
        "type": event_type,
        "data": data,
        **attributes,
    }
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    "value",
    [
        b"[" * 100_000 + b"]" * 100_000,
        envelope("PackagePurchased", {"userId": 1}).replace(
            b'{"userId": 1}', b"[" * 5000 + b"]" * 5000
        ),
        envelope("PackagePurchased", {"userId": "__N__"}).replace(b'"__N__"', b"9" * 5000),
    ],
    ids=["nested 100,000 deep", "data nested 5,000 deep", "a number of 5,000 digits"],
)
async def test_json_too_deep_or_too_long_a_number_is_dead_lettered_and_the_partition_flows(
    module_platform: IsolatedPlatform, staff: httpx.AsyncClient, value: bytes
) -> None:
    """Python's parser raises RecursionError and a ValueError that is no JSONDecodeError
    on these: once a batch failure retried for ever, stalling the partition."""
    client = 7_200_001 + len(value) % 1000
    accounting = await fates(
        module_platform,
        [raw(COMMERCE_PACKAGES, "poison", value, key=str(client).encode()), purchase(client)],
    )

    assert not accounting.problems, accounting.problems
    assert accounting.outcomes["poison -> dead letter (not-json)"] == 1
    assert await granted(staff, module_platform, client) == 2


async def test_a_record_as_large_as_the_broker_takes_is_dead_lettered_whole(
    module_platform: IsolatedPlatform,
) -> None:
    """The dead letter is the record and the reason: once larger than the broker took, it
    was refused, and a refusal was taken for a passing failure and retried for ever."""
    [huge] = draw(huge_text(COMMERCE_PACKAGES), 1)
    assert record_size(huge.key, huge.value, huge.headers) == BROKER_MAX_RECORD_BYTES

    accounting = await fates(module_platform, [huge])

    assert not accounting.problems, accounting.problems
    assert sum(accounting.outcomes.values()) == 1
    [outcome] = accounting.outcomes
    assert outcome.startswith("huge-text -> dead letter")


@pytest.mark.parametrize(
    ("payload", "source"),
    [
        (PackagePurchased(purchase_id="p", user_id=7_300_001, sessions=9, purchased_at=DAY), STORE),
        (
            CreditsGranted(
                user_id=7_300_002,
                amount=9,
                balance=Balance(total=9, used=0, remaining=9),
            ),
            CREDITS_LEDGER.sole_source or "",
        ),
    ],
    ids=["a purchase", "a grant in credits' name"],
)
async def test_an_event_on_a_topic_that_does_not_carry_its_type_is_dead_lettered(
    module_platform: IsolatedPlatform,
    staff: httpx.AsyncClient,
    payload: EventPayload,
    source: str,
) -> None:
    """Whoever may write `booking.sessions` (other platform services) could otherwise sell
    packages or grant credits there: consumers applied any type on any topic they read."""
    value = encode(build_event(payload, source=source))
    accounting = await fates(module_platform, [raw(BOOKING_SESSIONS, "misplaced", value)])

    assert not accounting.problems, accounting.problems
    assert accounting.outcomes["misplaced -> dead letter (wrong-topic)"] == 4
    client = int(json.loads(value)["data"]["userId"])
    assert await granted(staff, module_platform, client) == 0
    booked = await staff.post(
        f"{module_platform.url('booking')}/api/sessions",
        json={"userId": client, "trainerId": TRAINER, "sessionDate": "2026-03-03T10:00:00Z"},
    )
    assert booked.status_code == 409, booked.text


async def test_a_header_without_a_value_is_read_as_absent(
    module_platform: IsolatedPlatform, staff: httpx.AsyncClient
) -> None:
    """A null header value broke reading the trace context, before any rule could take
    the record out: the batch failed and was retried for ever."""
    client = 7_300_003
    record = purchase(client, sessions=4)
    headers = (("traceparent", None), ("correlation-id", None), *record.headers)

    accounting = await fates(module_platform, [replace(record, headers=headers)])

    assert not accounting.problems, accounting.problems
    assert await granted(staff, module_platform, client) == 4


async def test_data_said_to_be_other_than_json_is_dead_lettered(
    module_platform: IsolatedPlatform, staff: httpx.AsyncClient
) -> None:
    """An event whose `datacontenttype` says its data is not JSON was applied as JSON."""
    client = 7_300_004
    record = purchase(client)
    document = json.loads(record.value or b"")
    document["datacontenttype"] = "text/plain"

    accounting = await fates(
        module_platform, [replace(record, kind="text", value=json.dumps(document).encode())]
    )

    assert not accounting.problems, accounting.problems
    assert accounting.outcomes["text -> dead letter (not-cloudevent)"] == 1
    assert await granted(staff, module_platform, client) == 0


async def test_types_no_one_knows_leave_the_metrics_readable_and_bounded(
    module_platform: IsolatedPlatform, staff: httpx.AsyncClient
) -> None:
    """Each unknown type became a label of its own: without end, and a lone surrogate in
    one made every later scrape of `/metrics` fail with 500."""
    names = ["Made\ud800Up", *(f"MadeUp{n}" for n in range(20))]
    records = [raw(BOOKING_SESSIONS, "unknown", envelope(name, {"n": 1})) for name in names]

    accounting = await fates(module_platform, records)

    assert not accounting.problems, accounting.problems
    for service in SERVICE_NAMES:
        scraped = await staff.get(f"{module_platform.url(service)}/metrics")
        assert scraped.status_code == 200
        assert "MadeUp" not in scraped.text


@pytest.mark.parametrize("number", [b"Infinity", b"1e400", b"NaN"])
async def test_a_workout_weighing_more_than_any_number_is_dead_lettered(
    module_platform: IsolatedPlatform, staff: httpx.AsyncClient, number: bytes
) -> None:
    """Python's JSON reads `Infinity` and `1e400` as an infinite float, which the contract's
    non-negative total weight let through: stored, then every read of the workout was a 500
    (JSON has no infinity)."""
    client = 7_300_010 + len(number)
    payload = WorkoutLogged(
        workout_id=_uuid(client),
        user_id=client,
        title="Heavy",
        date=DAY,
        status=WorkoutStatus.COMPLETED,
        total_weight=1.5,
    )
    value = encode(build_event(payload, source="/swanstudios/workouts"))
    weightless = value.replace(b'"totalWeight":1.5', b'"totalWeight":' + number)
    record = FuzzRecord(topic_of(payload), "infinite", weightless, partition_key(payload))
    assert record.value != value

    accounting = await fates(module_platform, [record])

    assert not accounting.problems, accounting.problems
    assert accounting.outcomes["infinite -> dead letter (invalid-payload)"] == 3
    workouts = await staff.get(
        f"{module_platform.url('workouts')}/api/workout/sessions?userId={client}"
    )
    assert workouts.status_code == 200
    assert workouts.json() == []


async def test_moments_no_consumer_can_hold_are_dead_lettered_and_nothing_stalls(
    module_platform: IsolatedPlatform, staff: httpx.AsyncClient
) -> None:
    """A date at the ends of time in an odd offset (year 1 at +01:00 is 1 BC in UTC) was
    stored by credits, whose every later batch of that client then failed to read it back,
    and its clock with them; a year-9999 purchase overflowed Python's dates on each try."""
    client = 7_300_020
    early = envelope(
        "SessionBooked",
        {
            "sessionId": session_id(1, 900_001),
            "userId": client,
            "trainerId": TRAINER,
            "sessionDate": "0001-01-01T00:30:00+01:00",
        },
        source=KIOSK,
    )
    late = envelope(
        "PackagePurchased",
        {
            "purchaseId": "late",
            "userId": client,
            "sessions": 1,
            "purchasedAt": "9999-12-31T12:00:00Z",
            "validForDays": 3660,
        },
    )
    timeless = envelope(
        "PackagePurchased",
        {"purchaseId": "t", "userId": client, "sessions": 1, "purchasedAt": "2026-01-01T00:00:00Z"},
        time="0001-01-01T00:00:00+14:00",
    )
    records = [
        raw(BOOKING_SESSIONS, "early", early, key=str(client).encode()),
        raw(COMMERCE_PACKAGES, "late", late, key=str(client).encode()),
        raw(COMMERCE_PACKAGES, "timeless", timeless, key=str(client).encode()),
        purchase(client, sessions=3),
    ]

    accounting = await fates(module_platform, records)

    assert not accounting.problems, accounting.problems
    assert accounting.outcomes["early -> dead letter (invalid-payload)"] == 4
    assert accounting.outcomes["late -> dead letter (invalid-payload)"] == 1
    assert accounting.outcomes["timeless -> dead letter (not-cloudevent)"] == 1
    assert await granted(staff, module_platform, client) == 3


async def test_a_second_grant_of_one_purchase_read_back_from_the_ledger_is_refused(
    module_platform: IsolatedPlatform, staff: httpx.AsyncClient
) -> None:
    """Two grants naming one purchase under different ids broke the ledger's one grant per
    purchase in the database: retried as a failure, and the whole batch with it."""
    clients = (7_300_031, 7_300_032)
    grants = [
        CreditsGranted(
            user_id=client,
            amount=2,
            purchase_id="shared-order",
            balance=Balance(total=2, used=0, remaining=2),
        )
        for client in clients
    ]
    records = [
        FuzzRecord(
            CREDITS_LEDGER,
            f"grant {n}",
            encode(build_event(grant, source=CREDITS_LEDGER.sole_source or "")),
            partition_key(grant),
        )
        for n, grant in enumerate(grants)
    ]

    accounting = await fates(module_platform, records)

    assert not accounting.problems, accounting.problems
    credits_totals = [await granted(staff, module_platform, client) for client in clients]
    assert sorted(credits_totals) == [0, 2]
    assert (
        accounting.outcomes["grant 0 -> dead letter (rejected)"]
        + accounting.outcomes["grant 1 -> dead letter (rejected)"]
        == 1
    )
