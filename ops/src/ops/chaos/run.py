"""A chaos run: the platform on a stage of its own, the workload, faults at random moments,
then, once everything is consumed, every client's state read back and checked."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from contracts.identity import Role
from contracts.principals import OPS
from contracts.services import SERVICES, service_named
from contracts.topics import SESSION_USAGE
from ops import databases, inspection
from ops.chaos.faults import Fault, FaultKind, schedule
from ops.chaos.plan import PlannedClient, Shape, plan
from ops.chaos.stage import Replica, Stage
from ops.chaos.truth import ClientState, ClientTruth, Verdict, check
from ops.chaos.workload import Workload
from ops.local import operations
from ops.local.paths import Paths
from ops.local.report import Say

#: A paused consumer stays stopped this long: past the consumer's session timeout (10 s),
#: so its group moves its partitions to another member meanwhile.
PAUSE_SECONDS = 12.0
#: The broker and PostgreSQL stay down this long before they are started again.
OUTAGE_SECONDS = 2.0
#: Every service must be ready again this soon after a fault ends.
RECOVERY_LIMIT = 30.0
SETTLE_LIMIT = 300.0


@dataclass(frozen=True, slots=True)
class Settings:
    seed: int
    duration: float
    rate: float
    kinds: tuple[FaultKind, ...]
    faults_per_kind: int
    clients: int = 400
    credits_replicas: int = 2
    keep: bool = False

    @property
    def sessions(self) -> int:
        return round(self.duration * self.rate)


@dataclass
class FaultRecord:
    kind: str
    target: str
    planned_at: float
    started_at: float
    #: Seconds the fault itself lasted (the outage or the pause).
    lasted: float
    #: Seconds from its end until every service answered ready.
    recovered_in: float


@dataclass
class Report:
    settings: dict[str, Any]
    sessions: int
    delivered: int
    cancelled: int
    clients: int
    faults: list[FaultRecord] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    workload_seconds: float = 0.0
    settle_seconds: float = 0.0
    total_seconds: float = 0.0
    kafka_retries: int = 0
    http_retries: int = 0
    settled_by_asking: int = 0
    #: Processes that died by themselves during the run (a start while PostgreSQL was down,
    #: say) and were started again, as a supervisor would.
    restarts: int = 0
    failure: str | None = None

    @property
    def passed(self) -> bool:
        slow = [f for f in self.faults if f.recovered_in > RECOVERY_LIMIT]
        return not (self.lost or self.duplicated or self.wrong or slow or self.failure)


async def chaos_run(main: Paths, settings: Settings, say: Say) -> Report:
    started = time.monotonic()
    shape = Shape(sessions=settings.sessions, clients=settings.clients)
    clients = plan(settings.seed, shape)
    stage = Stage.create(
        main,
        f"chaos-{settings.seed}-{int(time.time())}",
        {"credits": settings.credits_replicas},
        say,
    )
    report = Report(
        settings={**asdict(settings), "kinds": [str(kind) for kind in settings.kinds]},
        sessions=settings.sessions,
        delivered=0,
        cancelled=0,
        clients=len(clients),
    )
    try:
        with stage.as_operator():
            say(f"chaos: starting the stage in {stage.paths.root}")
            await stage.start()
            await _play(stage, settings, clients, report, say)
    except Exception as error:  # reported with the figures so far; the stage is kept
        report.failure = f"{type(error).__name__}: {error}"
    finally:
        report.total_seconds = round(time.monotonic() - started, 1)
        # A failing run keeps its stage: the logs of every process say what happened.
        stage.close(keep=settings.keep or not report.passed)
    return report


async def _play(
    stage: Stage, settings: Settings, clients: list[PlannedClient], report: Report, say: Say
) -> None:
    workload = Workload(stage, settings.seed, clients, settings.rate)
    faults = schedule(
        settings.seed,
        settings.kinds,
        settings.faults_per_kind,
        settings.duration,
        [replica.label for replica in stage.replicas],
        [service.name for service in SERVICES],
    )
    say(
        f"chaos: {settings.sessions} sessions of {len(clients)} clients at {settings.rate}/s, "
        f"{len(faults)} faults, seed {settings.seed}"
    )
    began = time.monotonic()
    playing = asyncio.create_task(workload.run())
    reporter = asyncio.create_task(_report_progress(workload, settings.sessions, say))
    timeline = Timeline()

    async def lane(faults: list[Fault]) -> None:
        for fault in faults:
            await asyncio.sleep(max(0.0, began + fault.at - time.monotonic()))
            if playing.done() and playing.exception() is not None:
                return
            if not fault.hits_a_service:
                with contextlib.suppress(TimeoutError):  # the process's own record says so
                    await stage.wait_until_ready(RECOVERY_LIMIT * 4, ignoring=timeline.struck)
            record = await _inject(stage, fault, time.monotonic() - began, timeline)
            report.faults.append(record)
            say(
                f"chaos: {record.kind} {record.target or ''} at {record.started_at:.0f} s, "
                f"ready again {record.recovered_in:.1f} s after"
            )

    try:
        await asyncio.gather(
            lane([fault for fault in faults if fault.hits_a_service]),
            lane([fault for fault in faults if not fault.hits_a_service]),
        )
        await playing
    finally:
        reporter.cancel()
        if not playing.done():
            playing.cancel()
    report.workload_seconds = round(time.monotonic() - began, 1)
    report.kafka_retries = workload.progress.kafka_retries
    report.http_retries = workload.progress.http_retries
    report.settled_by_asking = workload.progress.settled_by_asking
    report.restarts = stage.restarts
    settling = time.monotonic()
    await settle(stage)
    report.settle_seconds = round(time.monotonic() - settling, 1)
    say("chaos: everything consumed; checking every client")
    verdict = await check_everyone(stage, workload.truth)
    report.lost, report.duplicated, report.wrong = verdict.lost, verdict.duplicated, verdict.wrong
    report.delivered = sum(len(truth.delivered) for truth in workload.truth.values())
    report.cancelled = sum(len(truth.cancelled) for truth in workload.truth.values())


async def _report_progress(workload: Workload, sessions: int, say: Say) -> None:
    while True:
        await asyncio.sleep(30)
        say(f"chaos: {workload.progress.sessions_done} of {sessions} sessions played")


# --- faults --------------------------------------------------------------------------------


@dataclass
class Timeline:
    """What the two lanes of faults know of each other."""

    #: The processes under a fault now, or coming back from one: the other lane's
    #: recovery is measured without them.
    excused: set[str] = field(default_factory=set)
    #: The processes under a fault now: the servers' lane strikes again only once every
    #: other process is ready (a broker killed every few seconds would keep a starting
    #: consumer out of its group for good).
    struck: set[str] = field(default_factory=set)
    #: When the last fault of the servers ended (monotonic seconds).
    server_fault_ended: float = 0.0


async def _inject(stage: Stage, fault: Fault, at: float, timeline: Timeline) -> FaultRecord:
    began = time.monotonic()
    own = {fault.target} if fault.hits_a_process else set()
    timeline.struck |= own
    timeline.excused |= own
    try:
        await _strike(stage, fault)
    finally:
        timeline.struck -= own
    ended = time.monotonic()
    if not fault.hits_a_service:
        timeline.server_fault_ended = ended
    try:
        # A fault of a service waits for its own process; one of the servers, for every
        # process not excused by a fault of its own.
        await stage.wait_until_ready(
            RECOVERY_LIMIT * 4, ignoring=set() if fault.hits_a_service else timeline.excused
        )
        # A service coming back while the broker or PostgreSQL is down waits for them: its
        # time counts from the later of the two faults' ends.
        since = max(ended, timeline.server_fault_ended) if fault.hits_a_service else ended
        recovered_in = time.monotonic() - since
    except TimeoutError:
        recovered_in = float("inf")
    finally:
        timeline.excused -= own
    return FaultRecord(
        kind=fault.kind.value,
        target=fault.target,
        planned_at=fault.at,
        started_at=round(at, 1),
        lasted=round(ended - began, 2),
        recovered_in=round(recovered_in, 2),
    )


async def _strike(stage: Stage, fault: Fault) -> None:
    if fault.kind is FaultKind.SERVICE_KILLED:
        replica = _replica(stage, fault.target)
        stage.kill(replica)
        stage.launch(replica)
    elif fault.kind is FaultKind.BROKER_KILLED:
        stage.kill_broker()
        await asyncio.sleep(OUTAGE_SECONDS)
        await stage.start_broker()
    elif fault.kind is FaultKind.POSTGRES_CRASHED:
        await asyncio.to_thread(stage.stop_postgres_immediately)
        await asyncio.sleep(OUTAGE_SECONDS)
        await asyncio.to_thread(stage.start_postgres)
    elif fault.kind is FaultKind.CONNECTIONS_KILLED:
        await asyncio.to_thread(stage.terminate_connections, fault.target)
    else:
        replica = _replica(stage, fault.target)
        stage.pause(replica)
        await asyncio.sleep(PAUSE_SECONDS)
        stage.resume(replica)


def _replica(stage: Stage, label: str) -> Replica:
    return next(replica for replica in stage.replicas if replica.label == label)


# --- settling and checking -----------------------------------------------------------------


async def settle(stage: Stage, within: float = SETTLE_LIMIT) -> None:
    """Until every service has consumed all of its input and published its whole outbox,
    twice in a row (consuming produces more)."""
    endpoints = operations.endpoints(stage.config, {})
    deadline = time.monotonic() + within
    calm = 0
    while calm < 2:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the platform did not settle within {within:.0f} s")
        lags = await inspection.lags(
            stage.config.kafka.bootstrap, {e.group: e.topics for e in endpoints}
        )
        backlog = await asyncio.gather(
            *(asyncio.to_thread(_outbox, stage, e.service) for e in endpoints)
        )
        quiet = lags is not None and not any(
            p.lag for partitions in lags.values() for p in partitions
        )
        calm = calm + 1 if quiet and not any(backlog) else 0
        await asyncio.sleep(1.0)


def _outbox(stage: Stage, service: str) -> int:
    url = stage.config.database_for(service_named(service)).url
    return databases.outbox_backlog(url)


async def check_everyone(stage: Stage, truths: dict[int, ClientTruth]) -> Verdict:
    published = await last_usage_updates(stage)
    verdict = Verdict()
    limit = asyncio.Semaphore(8)
    async with httpx.AsyncClient(timeout=30) as http:

        async def one(truth: ClientTruth) -> Verdict:
            async with limit:
                state = await read_state(stage, http, truth.user_id, published)
            return check(truth, state)

        for found in await asyncio.gather(*(one(truth) for truth in truths.values())):
            verdict.merge(found)
    return verdict


async def read_state(
    stage: Stage,
    http: httpx.AsyncClient,
    user_id: int,
    published: dict[int, dict[str, int]],
) -> ClientState:
    headers = {"authorization": f"Bearer {stage.token(Role.STAFF, 'chaos-checker')}"}

    async def get(service: str, path: str, **params: Any) -> Any:
        answer = await http.get(stage.url(service) + path, params=params, headers=headers)
        answer.raise_for_status()
        return answer.json()

    async def every(service: str, path: str, limit: int, **query: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        while True:
            after = {"after": rows[-1]["id"]} if rows else {}
            page = await get(service, path, limit=limit, **query, **after)
            rows += page
            if len(page) < limit:
                return rows

    balance = await get("credits", f"/api/credits/{user_id}")
    ledger = await every("credits", f"/api/credits/{user_id}/ledger", 1000)
    sessions = await every("booking", "/api/sessions", 500, userId=user_id)
    usage = await get("analytics", f"/api/analytics/{user_id}/session-usage")
    deductions: Counter[int] = Counter()
    forfeits: Counter[int] = Counter()
    for entry in ledger:
        if entry["kind"] == "deduction":
            deductions[int(entry["sessionId"])] += 1
        elif entry["kind"] == "forfeit":
            forfeits[int(entry["sessionId"])] += 1
    return ClientState(
        user_id=user_id,
        balance={name: int(balance[name]) for name in ("total", "used", "remaining", "held")},
        deductions=deductions,
        forfeits=forfeits,
        session_deducted={int(s["id"]): bool(s["sessionDeducted"]) for s in sessions},
        usage=usage_figures(usage),
        published_usage=published.get(user_id),
    )


def usage_figures(usage: dict[str, Any]) -> dict[str, int]:
    """The figures the checker compares, from the usage answer or a SessionUsageUpdated."""
    return {
        "solo": int(usage["solo"]["count"]),
        "trainerLed": int(usage["trainerLed"]["count"]),
        "creditsTotal": int(usage["credits"]["total"]),
        "creditsUsed": int(usage["credits"]["used"]),
        "creditsRemaining": int(usage["credits"]["remaining"]),
    }


async def last_usage_updates(stage: Stage) -> dict[int, dict[str, int]]:
    """The last SessionUsageUpdated of each client on the usage topic, in partition order
    (one client's updates share a partition)."""
    consumer = AIOKafkaConsumer(
        SESSION_USAGE.name,
        **stage.kafka_options(OPS.name),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    last: dict[int, dict[str, int]] = {}
    try:
        partitions = consumer.assignment()
        ends = await consumer.end_offsets(list(partitions))
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batches.values():
                for record in records:
                    if record.value is None:
                        continue
                    data = json.loads(record.value)["data"]
                    last[int(data["userId"])] = usage_figures(data)
    finally:
        await consumer.stop()
    return last


# --- the report ----------------------------------------------------------------------------


def summary(report: Report) -> list[str]:
    lines = [
        f"sessions: {report.sessions} ({report.delivered} delivered, {report.cancelled} "
        f"cancelled) of {report.clients} clients in {report.workload_seconds} s; settled in "
        f"{report.settle_seconds} s; {report.total_seconds} s in all",
        f"retries: {report.kafka_retries} Kafka sends, {report.http_retries} HTTP requests; "
        f"{report.settled_by_asking} lost answers settled by asking the owner; "
        f"{report.restarts} processes found dead and started again",
        "faults:",
    ]
    by_kind: dict[str, list[FaultRecord]] = {}
    for record in report.faults:
        by_kind.setdefault(record.kind, []).append(record)
    for kind, records in by_kind.items():
        times = [record.recovered_in for record in records]
        lines.append(
            f"  {kind}: {len(records)}, ready again p50 {_percentile(times, 50):.1f} s, "
            f"p99 {_percentile(times, 99):.1f} s, worst {max(times):.1f} s"
        )
    lines.append(
        f"lost: {len(report.lost)}, duplicated: {len(report.duplicated)}, "
        f"wrong: {len(report.wrong)}"
    )
    for name, found in (("lost", report.lost), ("duplicated", report.duplicated)):
        lines += [f"  {name}: {line}" for line in found[:20]]
    lines += [f"  wrong: {line}" for line in report.wrong[:20]]
    if report.failure:
        lines.append(f"failed: {report.failure}")
    lines.append("PASSED" if report.passed else "FAILED")
    return lines


def _percentile(values: Sequence[float], percent: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def write_report(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {**asdict(report), "passed": report.passed}
    path.write_text(json.dumps(document, indent=2) + "\n")
