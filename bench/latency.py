"""How long a trainer-led workout logged over HTTP takes to show as a used credit.

    uv run python bench/latency.py                     # 200 samples per load, 3 runs
    uv run python bench/latency.py --samples 50 --runs 1 --background-rate 20

One sample: book a fresh session with a `SessionBooked` on booking.sessions and wait until
the credits service knows it (its `sessions` table has it); then `POST
/api/workout/sessions` the completed trainer-led workout for it on the workouts service and
poll every 2 ms until `GET /api/credits/{userId}` on the credits service shows `used` gone
up by one. The latency is from sending the POST to that answer: the workouts API, its
outbox relay, Kafka, the credits consumer and the credits API. By default (`--watch
ledger`) the poll asks the credits database whether the deduction is in the ledger, which
costs the credits process nothing, and only then the API, once; `--watch api` polls the
API itself on one keep-alive connection, which keeps the process busy enough to slow the
deduction it waits for.

Samples are sequential: first at low load, then while a background producer sends
trainer-led sessions (a booking and a workout each, as the credits throughput benchmark
does) at `--background-rate` sessions per second; by default half of the rate a quick
credits throughput measure gives at the start. Each run does both; the medians of the
runs' percentiles are reported (p99 is the nearest-rank percentile).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import cli
import discovery
import httpx
import output
import psycopg
import stats
import workload
from aiokafka import AIOKafkaProducer

from contracts.events import SessionBooked
from ops.local.errors import PlatformError

TARGET_P50_MS = 20.0
TARGET_P99_MS = 50.0
#: Under load: p99 at this many sessions per second in the background (or more).
TARGET_LOADED_P99_MS, TARGET_BACKGROUND_RATE = 250.0, 200.0
KNOWN_SESSION = "select 1 from sessions where session_id = %s"
#: What a sample polls until the deduction shows, as the report names it.
WATCHED = {"ledger": "the credits ledger (then the API)", "api": "the credits API"}
#: When the credits transaction that made the deduction began (`recorded_at` is its now()).
DEDUCTION_BEGAN = (
    "select extract(epoch from recorded_at) from ledger_entries"
    " where session_id = %s and kind = 'deduction'"
)


@dataclass
class Phase:
    """The samples of one load level in one run."""

    latencies_ms: list[float] = field(default_factory=list)
    #: Per sample, from sending the POST: its answer, and the start of the credits
    #: transaction that applied the workout (relay, Kafka and the consumer's fetch before it).
    answered_ms: list[float] = field(default_factory=list)
    credits_began_ms: list[float] = field(default_factory=list)
    timeouts: int = 0
    background_rate: float = 0.0
    background_sent: int = 0
    background_deducted: int = 0

    @property
    def p50(self) -> float:
        return stats.percentile(self.latencies_ms, 50)

    @property
    def p99(self) -> float:
        return stats.percentile(self.latencies_ms, 99)

    @property
    def max(self) -> float:
        return max(self.latencies_ms, default=float("nan"))

    def as_json(self) -> dict[str, Any]:
        return {
            "samples": len(self.latencies_ms),
            "timeouts": self.timeouts,
            "p50_ms": self.p50,
            "p99_ms": self.p99,
            "max_ms": self.max,
            "background_sessions_per_s": self.background_rate,
            "background_sessions_sent": self.background_sent,
            "background_sessions_deducted": self.background_deducted,
            "latencies_ms": self.latencies_ms,
            "answered_ms": self.answered_ms,
            "credits_began_ms": self.credits_began_ms,
        }


@dataclass(frozen=True)
class Sample:
    latency_ms: float
    answered_ms: float
    credits_began_ms: float


@dataclass
class Sampler:
    """Books sessions for one fresh client and times each trainer-led workout's deduction."""

    platform: discovery.Platform
    producer: AIOKafkaProducer
    database: psycopg.AsyncConnection[Any]
    workouts: httpx.AsyncClient
    credits: httpx.AsyncClient
    poll: float
    within: float
    #: "ledger": ask the API only once the credits database holds the deduction.
    watch: str
    ids: workload.SessionIds = field(default_factory=lambda: workload.SessionIds.fresh(1))
    taken: int = 0
    used: int = 0

    async def start(self) -> None:
        self.used = await self.balance_used()

    async def balance_used(self) -> int:
        response = await self.credits.get(f"/api/credits/{self.ids.first_client}")
        response.raise_for_status()
        return int(response.json()["used"])

    async def sample(self) -> Sample | None:
        """One sample; None when the deduction did not show in time."""
        session_id = self.ids.first_session + self.taken
        self.taken += 1
        user_id, trainer_id = self.ids.first_client, self.ids.first_trainer
        when = datetime.now(UTC)
        booked = SessionBooked(
            session_id=session_id, user_id=user_id, trainer_id=trainer_id, session_date=when
        )
        record = workload.record_of(booked, self.platform.prefix)
        await asyncio.gather(*await workload.send(self.producer, [record]))
        await self.wait_until_known(session_id)
        workout = {
            "userId": user_id,
            "sessionType": "trainer-led",
            "sessionId": session_id,
            "trainerId": trainer_id,
            "title": "Personal Training Session",
            "date": when.isoformat(),
            "duration": 60,
            "status": "completed",
            "exercises": [{"name": "Squat", "sets": [{"reps": 8, "weight": 60}]}],
        }
        began, began_wall = time.perf_counter(), time.time()
        response = await self.workouts.post("/api/workout/sessions", json=workout)
        answered = time.perf_counter()
        if response.status_code != 201:
            raise PlatformError(
                f"POST /api/workout/sessions answered {response.status_code}: {response.text}"
            )
        while True:
            if self.watch != "ledger" or await self.deduction_began(session_id) is not None:
                used = await self.balance_used()
                now = time.perf_counter()
                if used > self.used:
                    self.used = used
                    deduction_began = await self.deduction_began(session_id)
                    assert deduction_began is not None, f"{session_id}: no deduction in the ledger"
                    return Sample(
                        latency_ms=(now - began) * 1000,
                        answered_ms=(answered - began) * 1000,
                        credits_began_ms=(deduction_began - began_wall) * 1000,
                    )
            if time.perf_counter() - began > self.within:
                return None
            await asyncio.sleep(self.poll)

    async def deduction_began(self, session_id: int) -> float | None:
        cursor = await self.database.execute(DEDUCTION_BEGAN, (session_id,))
        row = await cursor.fetchone()
        return None if row is None else float(row[0])

    async def wait_until_known(self, session_id: int) -> None:
        deadline = time.perf_counter() + self.within
        while True:
            cursor = await self.database.execute(KNOWN_SESSION, (session_id,))
            if await cursor.fetchone() is not None:
                return
            if time.perf_counter() > deadline:
                raise PlatformError(
                    f"the credits service did not learn of session {session_id} within "
                    f"{self.within:g} s"
                )
            await asyncio.sleep(0.005)


async def background(platform: discovery.Platform, rate: float, stop: asyncio.Event) -> Phase:
    """Send trainer-led sessions at `rate` per second until `stop`; a phase with only its
    background figures filled in (how many were sent, and deducted once it stops)."""
    ids = workload.SessionIds.fresh(1_000)
    sessions = workload.trainer_led_sessions(ids, None, platform.prefix)
    sent = 0
    async with workload.kafka_producer(platform.bootstrap, linger_ms=5) as producer:
        began = time.perf_counter()
        while not stop.is_set():
            due = int(rate * (time.perf_counter() - began))
            futures = []
            while sent < due:
                futures += await workload.send(producer, next(sessions))
                sent += 1
            await asyncio.gather(*futures)
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - began
    async with await psycopg.AsyncConnection.connect(
        platform.libpq_url("credits"), autocommit=True
    ) as database:
        deducted = await workload.count_deductions(database, ids, sent) if sent else 0
    return Phase(background_rate=sent / elapsed, background_sent=sent, background_deducted=deducted)


async def take_samples(sampler: Sampler, samples: int, label: str) -> Phase:
    phase = Phase()
    for number in range(1, samples + 1):
        sample = await sampler.sample()
        if sample is None:
            phase.timeouts += 1
        else:
            phase.latencies_ms.append(sample.latency_ms)
            phase.answered_ms.append(sample.answered_ms)
            phase.credits_began_ms.append(sample.credits_began_ms)
        output.status(f"{label}: {number} of {samples} samples")
    output.clear_status()
    return phase


@dataclass(frozen=True)
class Run:
    low: Phase
    loaded: Phase


async def one_run(
    platform: discovery.Platform, arguments: argparse.Namespace, rate: float, number: int
) -> Run:
    await discovery.settle(platform, within=arguments.settle_timeout)
    async with (
        workload.kafka_producer(platform.bootstrap, linger_ms=0) as producer,
        await psycopg.AsyncConnection.connect(
            platform.libpq_url("credits"), autocommit=True
        ) as database,
        httpx.AsyncClient(
            base_url=platform.base_url("workouts"), timeout=30, headers=platform.bearer()
        ) as workouts,
        httpx.AsyncClient(
            base_url=platform.base_url("credits"), timeout=30, headers=platform.bearer()
        ) as credits,
    ):
        sampler = Sampler(
            platform,
            producer,
            database,
            workouts,
            credits,
            poll=arguments.poll_ms / 1000,
            within=arguments.sample_timeout,
            watch=arguments.watch,
        )
        await sampler.start()
        low = await take_samples(sampler, arguments.samples, f"run {number}, low load")
        print(
            f"run {number}, low load: p50 {low.p50:.1f} ms, p99 {low.p99:.1f} ms, "
            f"max {low.max:.1f} ms"
        )
        stop = asyncio.Event()
        load = asyncio.create_task(background(platform, rate, stop))
        await asyncio.sleep(arguments.warmup)
        label = f"run {number}, {rate:,.0f} sessions/s in the background"
        try:
            loaded = await take_samples(sampler, arguments.samples, label)
        finally:
            stop.set()
            figures = await load
    loaded.background_rate = figures.background_rate
    loaded.background_sent = figures.background_sent
    loaded.background_deducted = figures.background_deducted
    print(
        f"{label}: p50 {loaded.p50:.1f} ms, p99 {loaded.p99:.1f} ms, max {loaded.max:.1f} ms; "
        f"{loaded.background_sent:,} background sessions sent "
        f"({loaded.background_rate:,.1f}/s), {loaded.background_deducted:,} deducted "
        "when sampling ended"
    )
    return Run(low, loaded)


async def background_rate(platform: discovery.Platform, arguments: argparse.Namespace) -> float:
    if arguments.background_rate is not None:
        print(f"background load: {arguments.background_rate:,.1f} sessions/s (given)")
        return float(arguments.background_rate)
    await discovery.settle(platform, within=arguments.settle_timeout)
    delivery = await workload.deliver_sessions(
        platform, arguments.calibrate_sessions, 1_000, within=arguments.sample_timeout * 10
    )
    rate = delivery.rate / 2
    measured = f"{delivery.rate:,.1f} sessions/s over {arguments.calibrate_sessions:,} sessions"
    print(f"background load: {rate:,.1f} sessions/s, half of a quick measure ({measured})")
    return rate


async def bench(arguments: argparse.Namespace) -> tuple[float, list[Run]]:
    platform = discovery.find_platform()
    await discovery.require_ready(platform, ["workouts", "credits"])
    rate = await background_rate(platform, arguments)
    runs = [await one_run(platform, arguments, rate, n) for n in range(1, arguments.runs + 1)]
    return rate, runs


def medians(runs: list[Run]) -> dict[str, float]:
    return {
        f"{load}_{figure}": stats.median(getattr(getattr(r, load), figure) for r in runs)
        for load in ("low", "loaded")
        for figure in ("p50", "p99", "max")
    }


def report(rate: float, runs: list[Run], arguments: argparse.Namespace) -> list[str]:
    summary = medians(runs)
    low_met = summary["low_p50"] <= TARGET_P50_MS and summary["low_p99"] <= TARGET_P99_MS
    timeouts = sum(r.low.timeouts + r.loaded.timeouts for r in runs)
    lines = [
        f"{arguments.samples} sequential samples per load and run, {len(runs)} runs, medians; "
        f"{WATCHED[arguments.watch]} polled every {arguments.poll_ms:g} ms; "
        f"{output.machine_summary()}, "
        f"{output.today()}",
        "",
        *output.table(
            ["load", "p50", "p99", "max", "target", "met"],
            [
                [
                    "low",
                    f"{summary['low_p50']:.1f} ms",
                    f"{summary['low_p99']:.1f} ms",
                    f"{summary['low_max']:.1f} ms",
                    f"p50 ≤ {TARGET_P50_MS:g} ms, p99 ≤ {TARGET_P99_MS:g} ms",
                    output.verdict(low_met),
                ],
                [
                    f"{rate:,.1f} sessions/s in the background",
                    f"{summary['loaded_p50']:.1f} ms",
                    f"{summary['loaded_p99']:.1f} ms",
                    f"{summary['loaded_max']:.1f} ms",
                    f"p99 ≤ {TARGET_LOADED_P99_MS:g} ms at {TARGET_BACKGROUND_RATE:g}/s",
                    output.verdict(summary["loaded_p99"] <= TARGET_LOADED_P99_MS)
                    if rate >= TARGET_BACKGROUND_RATE
                    else "not at that rate",
                ],
            ],
            align="lrrrll",
        ),
        "",
        *output.table(
            [
                "run",
                "low p50",
                "low p99",
                "low max",
                "loaded p50",
                "loaded p99",
                "loaded max",
                "background sent/s",
                "background deducted",
            ],
            [
                [
                    str(n),
                    f"{r.low.p50:.1f}",
                    f"{r.low.p99:.1f}",
                    f"{r.low.max:.1f}",
                    f"{r.loaded.p50:.1f}",
                    f"{r.loaded.p99:.1f}",
                    f"{r.loaded.max:.1f}",
                    f"{r.loaded.background_rate:,.1f}",
                    f"{r.loaded.background_deducted:,} of {r.loaded.background_sent:,}",
                ]
                for n, r in enumerate(runs, 1)
            ],
        ),
    ]
    lines += [
        "",
        "Where the time goes (medians of every run's samples, ms after sending the POST):",
        "",
    ]
    lines += output.table(
        ["load", "POST answered", "credits transaction began", "deduction visible"],
        [
            [
                label,
                *(
                    f"{stats.median(v for r in runs for v in getattr(getattr(r, load), name)):.1f}"
                    for name in ("answered_ms", "credits_began_ms", "latencies_ms")
                ),
            ]
            for load, label in (("low", "low"), ("loaded", "background"))
        ],
        align="lrrr",
    )
    if timeouts:
        lines += [
            "",
            f"{timeouts} sample(s) did not see their deduction within "
            f"{arguments.sample_timeout:g} s and are left out.",
        ]
    return lines


def parser() -> argparse.ArgumentParser:
    """This benchmark's options, for `main` and for a benchmark that takes its samples."""
    parser = cli.arguments(__doc__.split("\n\n")[0])
    parser.add_argument(
        "--samples", type=cli.positive, default=200, help="samples per load and run"
    )
    parser.add_argument(
        "--background-rate",
        type=float,
        metavar="SESSIONS_PER_S",
        help="background load; default: half of a quick throughput measure",
    )
    parser.add_argument(
        "--calibrate-sessions",
        type=cli.positive,
        default=1_000,
        help="sessions of the quick throughput measure behind the default background rate",
    )
    parser.add_argument("--poll-ms", type=float, default=2.0, help="poll interval")
    parser.add_argument(
        "--watch",
        choices=sorted(WATCHED),
        default="ledger",
        help="poll the credits database, then ask the API once (ledger), or poll the API",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="background load before its samples start",
    )
    parser.add_argument(
        "--sample-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="longest wait for one booking to be known or one deduction to show",
    )
    return parser


def main() -> None:
    arguments = parser().parse_args()
    rate, runs = cli.run(bench(arguments))
    output.finish(
        arguments,
        "latency",
        report(rate, runs, arguments),
        [{"low": r.low.as_json(), "loaded": r.loaded.as_json()} for r in runs],
        {**medians(runs), "background_sessions_per_s": rate},
        {
            "low_p50_ms": TARGET_P50_MS,
            "low_p99_ms": TARGET_P99_MS,
            "loaded_p99_ms": TARGET_LOADED_P99_MS,
            "background_sessions_per_s": TARGET_BACKGROUND_RATE,
        },
    )


if __name__ == "__main__":
    main()
