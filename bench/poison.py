"""Credits at volume with poison among its records: the rate of a clean run beside the same
sessions with records no consumer can take mixed in, and whether each went where it must.

    uv run python bench/poison.py                       # 10,000 sessions, 1,000 poison, 3 runs
    uv run python bench/poison.py --sessions 2000 --poison 200 --runs 1 --json poison.json

Each run measures twice, on the credits throughput harness (`workload.deliver_sessions`):
clean, 10,000 trainer-led sessions as the other platform services send them; poisoned, the
same load with 1,000 poison records at random positions among its records, on credits'
input topics (non-JSON bytes, truncated JSON, JSON that is not a CloudEvent, a CloudEvent
of a type the contract does not know, a known type whose payload fails validation, values
past the contract's limits). The two alternate (clean first in odd runs, poisoned first in
even ones), the platform settled before each. The rate runs from the first record produced
to the last deduction, as in the throughput benchmark.

Then, once credits has committed past every record of the run, the checks: every session
deducted exactly once (the ledger's deductions and their distinct sessions both equal the
sessions), every poison record the contract cannot read in credits' letters on the `.dlq`
topics (matched by the letter's origin headers), each with a reason, no valid record among
them, and the poisoned rate at least 0.8 of the clean one (median of the runs' ratios). A
CloudEvent of an unknown type is not poison to the contract: a consumer skips the types it
does not handle (docs/versioning.md, rule 6), so it must be skipped, not dead-lettered.
A check that fails ends the benchmark with a non-zero status.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import cli
import discovery
import output
import psycopg
import stats
import workload
from aiokafka.structs import TopicPartition
from credits_throughput import records_in

from contracts.dead_letters import CONSUMER, OFFSET, PARTITION, REASON, REASON_KIND, TOPIC
from contracts.envelope import (
    CloudEvent,
    build_event,
    encode,
    partition_key,
    record_headers,
    topic_of,
)
from contracts.events import (
    MAX_CREDITS_PER_GRANT,
    MAX_ID,
    MAX_KEY_LENGTH,
    MAX_TITLE_LENGTH,
    MAX_WORKOUT_MINUTES,
    EventPayload,
    PackagePurchased,
    SessionBooked,
    WorkoutLogged,
)
from contracts.topics import (
    BOOKING_SESSIONS,
    COMMERCE_PACKAGES,
    DEAD_LETTER_SUFFIX,
    WORKOUT_SESSIONS,
    Topic,
)
from ops import groups

#: The poisoned rate must stay at least this share of the clean one.
TARGET_RATIO = 0.8
#: Longest wait, after the last deduction, for credits to commit past every record.
CATCH_UP_TIMEOUT = 600.0

NOT_JSON = "not-json"
TRUNCATED_JSON = "truncated-json"
NOT_CLOUDEVENT = "not-cloudevent"
UNKNOWN_TYPE = "unknown-type"
INVALID_PAYLOAD = "invalid-payload"
PAST_LIMITS = "past-limits"
#: The kinds of poison, in the order they are dealt out (an even mix).
POISON_KINDS = (
    NOT_JSON,
    TRUNCATED_JSON,
    NOT_CLOUDEVENT,
    UNKNOWN_TYPE,
    INVALID_PAYLOAD,
    PAST_LIMITS,
)
#: The topics the platform's other services write and credits reads: where poison goes.
POISONED_TOPICS: tuple[Topic, ...] = (BOOKING_SESSIONS, WORKOUT_SESSIONS, COMMERCE_PACKAGES)


@dataclass(frozen=True, slots=True)
class Poison:
    """A record credits cannot take, and what it was made to be."""

    kind: str
    record: workload.Record

    @property
    def must_be_dead_lettered(self) -> bool:
        return self.kind != UNKNOWN_TYPE


class PoisonMaker:
    """Builds poison records of each kind from events like the benchmark's own, with ids of
    their own (nothing they name is ever applied)."""

    def __init__(self, prefix: str, rng: random.Random) -> None:
        self.prefix = prefix
        self.rng = rng
        self.now = datetime.now(UTC).replace(microsecond=0)

    def make(self, kind: str) -> Poison:
        builders = {
            NOT_JSON: self.not_json,
            TRUNCATED_JSON: self.truncated_json,
            NOT_CLOUDEVENT: self.not_cloudevent,
            UNKNOWN_TYPE: self.unknown_type,
            INVALID_PAYLOAD: self.invalid_payload,
            PAST_LIMITS: self.past_limits,
        }
        return Poison(kind, builders[kind]())

    def fresh_id(self) -> int:
        return self.rng.randrange(workload.FIRST_BENCH_ID, workload.ID_SPAN)

    def any_topic(self) -> str:
        return self.prefix + self.rng.choice(POISONED_TOPICS).name

    def raw(self, value: bytes, topic: str | None = None) -> workload.Record:
        key = str(self.fresh_id()).encode()
        return workload.Record(topic or self.any_topic(), key, value, record_headers())

    def booking(self) -> SessionBooked:
        return SessionBooked(
            session_id=self.fresh_id(),
            user_id=self.fresh_id(),
            trainer_id=self.fresh_id(),
            session_date=self.now,
        )

    def workout(self) -> WorkoutLogged:
        return WorkoutLogged(
            workout_id=uuid.UUID(int=self.rng.getrandbits(128)),
            user_id=self.fresh_id(),
            session_type="trainer-led",
            session_id=self.fresh_id(),
            trainer_id=self.fresh_id(),
            title="Personal Training Session",
            date=self.now,
            duration=60,
            status="completed",
        )

    def purchase(self) -> PackagePurchased:
        return PackagePurchased(
            purchase_id=f"bench-{uuid.UUID(int=self.rng.getrandbits(128))}",
            user_id=self.fresh_id(),
            sessions=10,
            purchased_at=self.now,
        )

    def any_event(self) -> EventPayload:
        return self.rng.choice((self.booking, self.workout, self.purchase))()

    def altered(self, payload: EventPayload, changes: dict[str, Any]) -> workload.Record:
        """The event's record with its `data` changed: `None` removes a field."""
        event = build_event(payload, source=workload.SOURCE)
        data = {**event.data, **changes}
        data = {name: value for name, value in data.items() if value is not None}
        value = encode(event.model_copy(update={"data": data}))
        return workload.Record(
            self.prefix + topic_of(payload).name,
            partition_key(payload),
            value,
            record_headers(),
        )

    def not_json(self) -> workload.Record:
        variants = (
            b"\xff\xfe" + self.rng.randbytes(self.rng.randrange(8, 200)),
            b"<event>not JSON</event>",
            b"SessionBooked session=" + str(self.fresh_id()).encode(),
            b"",
        )
        return self.raw(self.rng.choice(variants))

    def truncated_json(self) -> workload.Record:
        whole = workload.record_of(self.any_event(), self.prefix)
        cut = self.rng.randrange(1, len(whole.value) - 1)
        return workload.Record(whole.topic, whole.key, whole.value[:cut], whole.headers)

    def not_cloudevent(self) -> workload.Record:
        payload = self.any_event()
        variants: tuple[object, ...] = (
            payload.to_json_dict(),  # the payload without its envelope
            [payload.to_json_dict()],
            "SessionBooked",
            self.fresh_id(),
            None,
            {"specversion": "0.3", "id": str(self.fresh_id()), "type": payload.event_type},
        )
        value = json.dumps(self.rng.choice(variants)).encode()
        return self.raw(value, self.prefix + topic_of(payload).name)

    def unknown_type(self) -> workload.Record:
        event = CloudEvent(
            specversion="1.0",
            id=str(uuid.UUID(int=self.rng.getrandbits(128))),
            source=workload.SOURCE,
            type=self.rng.choice(("SessionTeleported", "bench.Unknown", "WorkoutLoggedV9")),
            time=self.now,
            data={"userId": self.fresh_id(), "note": "a type no contract names"},
        )
        return self.raw(encode(event))

    def invalid_payload(self) -> workload.Record:
        variants = (
            (self.booking, {"sessionId": "soon"}),
            (self.booking, {"sessionDate": "tomorrow morning"}),
            (self.workout, {"userId": None}),
            (self.workout, {"status": "half-done"}),
            (self.workout, {"sessionType": "yoga"}),
            (self.purchase, {"purchasedAt": None}),
        )
        build, changes = self.rng.choice(variants)
        return self.altered(build(), changes)

    def past_limits(self) -> workload.Record:
        variants = (
            (self.booking, {"sessionId": MAX_ID + 1}),
            (self.booking, {"userId": 10**40}),
            (self.workout, {"duration": MAX_WORKOUT_MINUTES + 1}),
            (self.workout, {"title": "x" * (MAX_TITLE_LENGTH + 1)}),
            (self.purchase, {"sessions": MAX_CREDITS_PER_GRANT + 1}),
            (self.purchase, {"purchaseId": "p" * (MAX_KEY_LENGTH + 1)}),
        )
        if self.rng.random() < 1 / (len(variants) + 1):
            # The envelope's own limit: an id longer than a consumer remembers.
            record = workload.record_of(self.any_event(), self.prefix)
            envelope = json.loads(record.value)
            envelope["id"] = "i" * (MAX_KEY_LENGTH + 1)
            return workload.Record(
                record.topic, record.key, json.dumps(envelope).encode(), record.headers
            )
        build, changes = self.rng.choice(variants)
        return self.altered(build(), changes)


def poison_records(count: int, prefix: str, rng: random.Random) -> list[Poison]:
    maker = PoisonMaker(prefix, rng)
    return [maker.make(POISON_KINDS[number % len(POISON_KINDS)]) for number in range(count)]


@dataclass
class PoisonMix:
    """Mixes poison in at random positions of the records sent, the valid records' order
    kept; remembers where each poison record went."""

    poison: list[Poison]
    rng: random.Random
    slots: dict[int, Poison] = field(default_factory=dict)

    def __call__(self, valid: list[workload.Record]) -> list[workload.Record]:
        total = len(valid) + len(self.poison)
        positions = sorted(self.rng.sample(range(total), len(self.poison)))
        shuffled = self.rng.sample(self.poison, len(self.poison))
        self.slots = dict(zip(positions, shuffled, strict=True))
        records = iter(valid)
        return [
            self.slots[index].record if index in self.slots else next(records)
            for index in range(total)
        ]


@dataclass(frozen=True)
class Ledger:
    """The run's deductions as the credits database holds them."""

    deductions: int
    sessions_deducted: int


async def ledger_of(platform: discovery.Platform, delivery: workload.Delivery) -> Ledger:
    first = delivery.ids.first_session
    async with await psycopg.AsyncConnection.connect(
        platform.libpq_url("credits"), autocommit=True
    ) as db:
        cursor = await db.execute(
            "select count(*), count(distinct session_id) from ledger_entries"
            " where kind = 'deduction' and session_id between %s and %s",
            (first, first + delivery.sessions - 1),
        )
        row = await cursor.fetchone()
    return Ledger(int(row[0]), int(row[1])) if row else Ledger(0, 0)


@dataclass(frozen=True)
class Letters:
    """Credits' dead letters of a run's records, as the `.dlq` topics hold them."""

    #: Poison records the contract cannot read, and how many of them credits dead-lettered.
    must: int
    dead_lettered: int
    #: Of those dead-lettered, how many letters carry a reason (and a kind of reason).
    with_reason: int
    #: CloudEvents of unknown types: how many, and how many were dead-lettered all the same.
    unknown: int
    unknown_dead_lettered: int
    #: Valid records of the run among the letters (none may be).
    valid_dead_lettered: int
    #: Letters in all (a record is lettered again if credits stops between the letter and
    #: its commit: at least once), and per reason kind.
    letters: int
    kinds: dict[str, int]
    #: Seconds from the last deduction until credits had committed past every record.
    caught_up_after: float

    @property
    def complete(self) -> bool:
        return (
            self.dead_lettered == self.must
            and self.with_reason == self.dead_lettered
            and self.unknown_dead_lettered == 0
            and self.valid_dead_lettered == 0
        )


def dead_letter_topics(platform: discovery.Platform) -> list[str]:
    return [platform.prefix + topic.name + DEAD_LETTER_SUFFIX for topic in POISONED_TOPICS]


async def dead_letter_ends(platform: discovery.Platform) -> dict[TopicPartition, int]:
    """Where credits' letters of the next run will start: the `.dlq` topics' ends now."""
    partitions = await groups.topic_partitions(platform.bootstrap, dead_letter_topics(platform))
    async with groups.kafka_consumer(platform.bootstrap) as consumer:
        return await groups.end_offsets(consumer, partitions)


async def wait_for_commits(
    platform: discovery.Platform, delivery: workload.Delivery, *, within: float
) -> bool:
    """Wait until credits' group has committed past every record of the run: by then each
    letter of the run is on the broker (it is written before the commit past it)."""
    ends = {tp: end for tp, (_, end) in delivery.produced.ranges().items()}
    group = platform.group("credits")
    deadline = time.monotonic() + within
    async with groups.kafka_admin(platform.bootstrap) as admin:
        while True:
            committed = await groups.committed_offsets(admin, group)
            left = sum(max(0, end - committed.get(tp, 0)) for tp, end in ends.items())
            if left == 0:
                output.clear_status()
                return True
            if time.monotonic() > deadline:
                output.clear_status()
                return False
            output.status(f"credits: {left:,} records of the run not yet committed")
            await asyncio.sleep(0.1)


async def letters_of(
    platform: discovery.Platform,
    delivery: workload.Delivery,
    slots: dict[int, Poison],
    start: dict[TopicPartition, int],
    caught_up_after: float,
) -> Letters:
    """Read credits' letters written since `start` and match them to the run's records."""
    async with groups.kafka_consumer(platform.bootstrap) as consumer:
        ends = await groups.end_offsets(consumer, list(start))
        ranges = {tp: (start[tp], ends[tp]) for tp in start if ends[tp] > start[tp]}
        headers_of_letters = [
            dict(record.headers or ()) async for record in records_in(consumer, ranges)
        ]
    where = {position: index for index, position in enumerate(delivery.produced.positions)}
    group = platform.group("credits").encode()
    lettered: dict[int, bool] = {}
    kinds: Counter[str] = Counter()
    letters = 0
    for headers in headers_of_letters:
        if headers.get(CONSUMER) != group:
            continue
        try:
            origin = (
                TopicPartition(headers[TOPIC].decode(), int(headers[PARTITION])),
                int(headers[OFFSET]),
            )
        except (KeyError, ValueError):
            continue
        index = where.get(origin)
        if index is None:
            continue  # another run's or another producer's record
        letters += 1
        kinds[headers.get(REASON_KIND, b"(none)").decode(errors="replace")] += 1
        has_reason = bool(headers.get(REASON)) and bool(headers.get(REASON_KIND))
        lettered[index] = lettered.get(index, True) and has_reason
    must = [index for index, poison in slots.items() if poison.must_be_dead_lettered]
    unknown = [index for index, poison in slots.items() if not poison.must_be_dead_lettered]
    return Letters(
        must=len(must),
        dead_lettered=sum(index in lettered for index in must),
        with_reason=sum(lettered.get(index, False) for index in must),
        unknown=len(unknown),
        unknown_dead_lettered=sum(index in lettered for index in unknown),
        valid_dead_lettered=sum(index not in slots for index in lettered),
        letters=letters,
        kinds=dict(sorted(kinds.items())),
        caught_up_after=caught_up_after,
    )


@dataclass(frozen=True)
class Measurement:
    poisoned: bool
    delivery: workload.Delivery
    ledger: Ledger
    letters: Letters

    @property
    def rate(self) -> float:
        return self.delivery.rate

    @property
    def valid_lost(self) -> int:
        """Sessions not deducted exactly once: missing, or deducted twice."""
        sessions = self.delivery.sessions
        doubled = self.ledger.deductions - self.ledger.sessions_deducted
        return sessions - self.ledger.sessions_deducted + doubled

    def as_json(self) -> dict[str, Any]:
        delivery = self.delivery
        return {
            "poisoned": self.poisoned,
            "sessions": delivery.sessions,
            "records": delivery.records,
            "produced_in_s": delivery.produced_in,
            "elapsed_s": delivery.elapsed,
            "sessions_per_s": self.rate,
            "deductions": self.ledger.deductions,
            "sessions_deducted": self.ledger.sessions_deducted,
            "valid_lost": self.valid_lost,
            "letters": vars(self.letters) | {"complete": self.letters.complete},
        }


async def measure(
    platform: discovery.Platform,
    arguments: argparse.Namespace,
    *,
    poisoned: bool,
    rng: random.Random,
) -> Measurement:
    sessions = arguments.sessions
    poison = poison_records(arguments.poison, platform.prefix, rng) if poisoned else []
    mix = PoisonMix(poison, rng)
    await discovery.settle(platform, within=arguments.settle_timeout)
    start = await dead_letter_ends(platform)
    delivery = await workload.deliver_sessions(
        platform, sessions, arguments.clients, within=arguments.timeout, mix=mix
    )
    began = time.perf_counter()
    await wait_for_commits(platform, delivery, within=CATCH_UP_TIMEOUT)
    caught_up_after = time.perf_counter() - began
    ledger = await ledger_of(platform, delivery)
    letters = await letters_of(platform, delivery, mix.slots, start, caught_up_after)
    result = Measurement(poisoned, delivery, ledger, letters)
    done = "" if delivery.complete else f" (timed out: {delivery.deducted:,} deducted)"
    print(
        f"  {result.rate:,.0f} sessions/s: {sessions:,} sessions ({delivery.records:,} records, "
        f"produced in {delivery.produced_in:.1f} s) deducted in {delivery.elapsed:.1f} s{done}; "
        f"{letters.letters:,} letters, {result.valid_lost:,} sessions lost"
    )
    return result


@dataclass(frozen=True)
class Run:
    clean: Measurement
    poisoned: Measurement

    @property
    def ratio(self) -> float:
        return self.poisoned.rate / self.clean.rate if self.clean.rate else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "clean": self.clean.as_json(),
            "poisoned": self.poisoned.as_json(),
            "ratio": self.ratio,
        }


async def one_run(
    platform: discovery.Platform, arguments: argparse.Namespace, number: int, rng: random.Random
) -> Run:
    order = (False, True) if number % 2 else (True, False)
    measured: dict[bool, Measurement] = {}
    for poisoned in order:
        what = f"{arguments.poison:,} poison mixed in" if poisoned else "clean"
        print(f"run {number}: {arguments.sessions:,} sessions, {what}")
        measured[poisoned] = await measure(platform, arguments, poisoned=poisoned, rng=rng)
    run = Run(measured[False], measured[True])
    print(f"  poisoned / clean: {run.ratio:.2f}")
    return run


def medians(results: Sequence[Run]) -> dict[str, float]:
    return {
        "clean_sessions_per_s": stats.median(r.clean.rate for r in results),
        "poisoned_sessions_per_s": stats.median(r.poisoned.rate for r in results),
        "ratio": stats.median(r.ratio for r in results),
    }


def failures(results: Sequence[Run]) -> list[str]:
    """Every check the runs failed, in words."""
    failed = []
    lost = sum(m.valid_lost for r in results for m in (r.clean, r.poisoned))
    if lost:
        failed.append(f"{lost:,} valid sessions not deducted exactly once")
    for number, run in enumerate(results, 1):
        letters = run.poisoned.letters
        if not letters.complete:
            failed.append(
                f"run {number}: {letters.dead_lettered:,} of {letters.must:,} poison records "
                f"dead-lettered ({letters.with_reason:,} with a reason), "
                f"{letters.unknown_dead_lettered:,} unknown types and "
                f"{letters.valid_dead_lettered:,} valid records dead-lettered"
            )
        if run.clean.letters.letters:
            failed.append(f"run {number}: {run.clean.letters.letters:,} letters of a clean run")
    ratio = medians(results)["ratio"]
    if ratio < TARGET_RATIO:
        failed.append(f"poisoned / clean {ratio:.2f} < {TARGET_RATIO}")
    return failed


def report(results: Sequence[Run], arguments: argparse.Namespace) -> list[str]:
    summary = medians(results)
    poisoned = [r.poisoned for r in results]
    letters = [m.letters for m in poisoned]
    kinds: Counter[str] = Counter()
    for run_letters in letters:
        kinds.update(run_letters.kinds)
    lost = sum(m.valid_lost for r in results for m in (r.clean, r.poisoned))
    lines = [
        f"{arguments.sessions:,} trainer-led sessions per run "
        f"({results[0].clean.delivery.records:,} records), "
        f"{min(arguments.clients, arguments.sessions):,} clients; "
        f"{arguments.poison:,} poison records mixed into the poisoned runs; "
        f"{len(results)} runs of each, alternated, medians; "
        f"{output.machine_summary()}, {output.today()}",
        "",
        *output.table(
            ["measure", "value", "target", "met"],
            [
                ["clean, sessions/s", f"{summary['clean_sessions_per_s']:,.0f}", "", ""],
                ["poisoned, sessions/s", f"{summary['poisoned_sessions_per_s']:,.0f}", "", ""],
                [
                    "poisoned / clean (median of the runs' ratios)",
                    f"{summary['ratio']:.2f}",
                    f"≥ {TARGET_RATIO}",
                    output.verdict(summary["ratio"] >= TARGET_RATIO),
                ],
                [
                    "valid sessions not deducted exactly once (all runs)",
                    f"{lost:,}",
                    "0",
                    output.verdict(lost == 0),
                ],
                [
                    "poison dead-lettered by credits, with a reason (per run)",
                    ", ".join(f"{x.with_reason:,} of {x.must:,}" for x in letters),
                    "all",
                    output.verdict(all(x.with_reason == x.must for x in letters)),
                ],
                [
                    "unknown types skipped, not dead-lettered (per run)",
                    ", ".join(
                        f"{x.unknown - x.unknown_dead_lettered:,} of {x.unknown:,}" for x in letters
                    ),
                    "all",
                    output.verdict(all(x.unknown_dead_lettered == 0 for x in letters)),
                ],
                [
                    "valid records dead-lettered (all runs)",
                    f"{sum(x.valid_dead_lettered for x in letters):,}",
                    "0",
                    output.verdict(not any(x.valid_dead_lettered for x in letters)),
                ],
            ],
            align="lrrl",
        ),
        "",
        *output.table(
            [
                "run",
                "clean sessions/s",
                "poisoned sessions/s",
                "poisoned / clean",
                "letters",
                "caught up after the last deduction",
            ],
            [
                [
                    str(number),
                    f"{run.clean.rate:,.0f}",
                    f"{run.poisoned.rate:,.0f}",
                    f"{run.ratio:.2f}",
                    f"{run.poisoned.letters.letters:,}",
                    f"{run.poisoned.letters.caught_up_after:.1f} s",
                ]
                for number, run in enumerate(results, 1)
            ],
        ),
        "",
        "letters by reason kind (all runs): "
        + ", ".join(f"{kind} {count:,}" for kind, count in sorted(kinds.items())),
    ]
    return lines


async def bench(arguments: argparse.Namespace) -> list[Run]:
    platform = discovery.find_platform()
    await discovery.require_ready(platform)
    rng = random.Random(arguments.seed)
    return [await one_run(platform, arguments, n, rng) for n in range(1, arguments.runs + 1)]


def main() -> None:
    parser = cli.arguments(__doc__.split("\n\n")[0])
    cli.session_arguments(parser, sessions=10_000)
    parser.add_argument(
        "--poison", type=cli.positive, default=1_000, help="poison records per poisoned run"
    )
    parser.add_argument("--seed", type=int, help="seed of the poison and where it goes")
    arguments = parser.parse_args()
    results = cli.run(bench(arguments))
    output.finish(
        arguments,
        "poison",
        report(results, arguments),
        [r.as_json() for r in results],
        medians(results),
        {"ratio": TARGET_RATIO, "valid_lost": 0},
    )
    failed = failures(results)
    if failed:
        sys.exit("checks failed: " + "; ".join(failed))


if __name__ == "__main__":
    main()
