"""How fast `rebuild` rebuilds analytics and credits from their topics (records per second).

Runs against the Kafka and PostgreSQL of the local platform (`make up`, or `ops up
--infra-only`) without touching its data: the history goes to topics behind a prefix of its
own, each service gets a scratch database and runs as a process of the benchmark's own (on a
free port), and everything is deleted at the end (the consumer groups excepted: Kafka's
client library here cannot delete groups; the broker expires them after a week).

    uv run python bench/rebuild.py                 # 10,000 events, 3 rebuilds of each
    uv run python bench/rebuild.py --events 5000 --runs 5 --services credits

It publishes a history of trainer-led sessions (each booked, started and completed, its
workout logged; some cancelled), solo workouts and purchases to the topics credits reads,
lets credits consume it live (which writes its ledger, which analytics reads), lets analytics
catch up, then rebuilds each service several times with `ops.recovery.rebuild` (the code
behind `ops rebuild`) and reports the medians: the rate while catching up (records of the
input topics consumed per second), the time to catch up, and the time in all.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cli
import discovery
import httpx
import output
import stats
import workload
from aiokafka.admin import AIOKafkaAdminClient

from contracts.events import (
    EventPayload,
    PackagePurchased,
    SessionBooked,
    SessionCancelled,
    SessionCompleted,
    SessionStarted,
    WorkoutLogged,
)
from contracts.services import KAFKA_BOOTSTRAP_ENV, service_named
from contracts.topics import ALL_TOPICS
from ops import kafka_access, recovery
from ops.groups import topic_partitions
from ops.local import operations
from ops.local.errors import PlatformError
from ops.local.paths import Paths
from ops.local.secrets import ensure_kafka_credentials
from ops.local.topics import create_topics
from ops.progress import Progress, describe
from servicekit.kafka import client_options

ROOT = discovery.ROOT
BASE = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
#: Records of its input topics a rebuilt service consumes per second while catching up.
TARGET_RECORDS_PER_S = 20_000
SESSIONS_PER_CLIENT = 4
SOLO_PER_CLIENT = 4
#: Events per client: a purchase; per session booked, started, workout, completed; one
#: more session booked and cancelled; solo workouts.
EVENTS_PER_CLIENT = 1 + 4 * SESSIONS_PER_CLIENT + 2 + SOLO_PER_CLIENT


def history(events: int) -> Iterator[EventPayload]:
    clients = max(1, round(events / EVENTS_PER_CLIENT))
    for client in range(clients):
        user_id = 100_000 + client
        trainer_id = 900 + client % 25
        yield PackagePurchased(
            purchase_id=f"bench-{user_id}", user_id=user_id, sessions=20, purchased_at=BASE
        )
        for number in range(SESSIONS_PER_CLIENT + 1):
            session_id = 10_000_000 + client * 10 + number
            when = BASE + timedelta(days=number * 2, hours=client % 10)
            moved = {
                "session_id": session_id,
                "user_id": user_id,
                "trainer_id": trainer_id,
                "at": when,
            }
            yield SessionBooked(
                session_id=session_id, user_id=user_id, trainer_id=trainer_id, session_date=when
            )
            if number == SESSIONS_PER_CLIENT:
                yield SessionCancelled(reason="client ill", **moved)
                continue
            yield SessionStarted(**moved)
            yield WorkoutLogged(
                workout_id=uuid.uuid5(uuid.NAMESPACE_URL, f"bench-{session_id}"),
                user_id=user_id,
                session_type="trainer-led",
                session_id=session_id,
                trainer_id=trainer_id,
                title="Personal Training Session",
                date=when,
                status="completed",
            )
            yield SessionCompleted(**moved)
        for number in range(SOLO_PER_CLIENT):
            yield WorkoutLogged(
                workout_id=uuid.uuid5(uuid.NAMESPACE_URL, f"bench-solo-{user_id}-{number}"),
                user_id=user_id,
                title="Solo",
                date=BASE + timedelta(days=number),
                status="completed",
            )


async def publish(bootstrap: str, prefix: str, payloads: Iterator[EventPayload]) -> int:
    produced = await workload.produce(bootstrap, (workload.record_of(p, prefix) for p in payloads))
    return len(produced)


@dataclass
class BenchService:
    """One service as a process of the benchmark's own, on its own prefix and database."""

    name: str
    bootstrap: str
    prefix: str
    database: discovery.ScratchDatabase
    log: Path
    #: The settings naming the identity provider the service trusts.
    identity: list[tuple[str, str]]
    #: How it connects to Kafka: as its own principal.
    principal: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    port: int = 0

    async def start(self) -> None:
        service = service_named(self.name)
        self.port = discovery.free_port()
        env = {
            k: v for k, v in os.environ.items() if not k.endswith(("_DATABASE_URL", "_HTTP_PORT"))
        }
        env.update(
            {
                **dict(self.identity),
                **self.principal,
                KAFKA_BOOTSTRAP_ENV: self.bootstrap,
                "KAFKA_TOPIC_PREFIX": self.prefix,
                service.database_url_env: self.database.url,
                service.owner_database_url_env: self.database.owner_url,
                service.http_port_env: str(self.port),
                service.env_prefix + "LOG_LEVEL": "WARNING",
            }
        )
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(  # noqa: ASYNC220 - forks and returns at once
                [sys.executable, "-m", self.name],
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        async with httpx.AsyncClient() as client:
            deadline = time.monotonic() + 90
            while True:
                self.check_running()
                try:
                    url = f"http://127.0.0.1:{self.port}/health/ready"
                    if (await client.get(url)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise PlatformError(f"{self.name} not ready after 90 s: read {self.log}")
                await asyncio.sleep(0.2)

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)

    def check_running(self) -> None:
        if self.process is None or self.process.poll() is not None:
            raise PlatformError(f"{self.name} exited: read {self.log}")

    def control(self) -> recovery.ServiceControl:
        return recovery.ServiceControl(self.stop, self.start, self.check_running)

    def target(self) -> recovery.Target:
        return recovery.Target(
            self.name,
            self.bootstrap,
            self.database.url,
            self.prefix,
            owner_database_url=self.database.owner_url,
        )


def show(progress: Progress) -> None:
    output.status(describe(progress), every=0)


@dataclass(frozen=True)
class Run:
    service: str
    outcome: recovery.Outcome


async def bench(events: int, runs: int, names: list[str]) -> list[Run]:
    config = discovery.local_config()
    bootstrap = config.kafka.bootstrap
    suffix = uuid.uuid4().hex[:8]
    prefix = f"bench{suffix}."
    logs = ROOT / ".local" / "log"
    logs.mkdir(parents=True, exist_ok=True)
    # credits writes the ledger analytics reads: it runs whichever service is measured.
    services = {
        name: BenchService(
            name,
            bootstrap,
            prefix,
            discovery.ScratchDatabase.beside(config, name, f"bench_{name}_{suffix}"),
            logs / f"bench-{name}.log",
            config.identity.exports(),
            ensure_kafka_credentials(config.paths).environment(name)
            if config.kafka.is_local_address
            else {},
        )
        for name in ("credits", "analytics")
    }
    admins = {name: operations.database_admin(config, name) for name in services}
    results: list[Run] = []
    await create_topics(bootstrap, [t.with_prefix(prefix) for t in ALL_TOPICS])
    await kafka_access.grant(bootstrap, kafka_access.platform_acls(prefix))
    try:
        for name, service in services.items():
            await asyncio.to_thread(discovery.prepare_database, admins[name], service.database)
        published = await publish(bootstrap, prefix, history(events))
        print(f"published {published:,} events behind the prefix {prefix}")
        for name, service in services.items():
            await service.start()
            start = {tp: 0 for tp in await topic_partitions(bootstrap, service.target().topics)}
            began = time.monotonic()
            consumed, caught_up_at = await recovery.follow(
                service.target(), start, service.control(), show
            )
            took = caught_up_at - began
            print(
                f"\n{name}: consumed {consumed:,} records live in {took:.1f} s "
                f"({consumed / took:,.0f} records/s)"
            )
        for name in names:
            service = services[name]
            for run in range(1, runs + 1):
                outcome = await recovery.rebuild(
                    service.target(),
                    service.control(),
                    admins[name],
                    Paths(ROOT).alembic_ini(name),
                    show,
                )
                print("\n" + f"run {run}: " + recovery.summary(outcome, "rebuilt from"))
                results.append(Run(name, outcome))
    finally:
        for service in services.values():
            await service.stop()
        for name, service in services.items():
            await asyncio.to_thread(discovery.drop, admins[name], service.database.owner_url)
        admin = AIOKafkaAdminClient(**client_options(), bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([prefix + t.name for t in ALL_TOPICS])
        finally:
            await admin.close()
        await kafka_access.revoke(bootstrap, kafka_access.platform_acls(prefix))
    return results


def outcome_json(outcome: recovery.Outcome) -> dict[str, float]:
    return {
        "records": outcome.records,
        "catching_up_s": outcome.catching_up,
        "records_per_s": outcome.rate,
        "elapsed_s": outcome.elapsed,
    }


def medians(results: list[Run]) -> dict[str, dict[str, float]]:
    """Per service, the median of each figure over its rebuilds."""
    by_service: dict[str, list[dict[str, float]]] = {}
    for result in results:
        by_service.setdefault(result.service, []).append(outcome_json(result.outcome))
    return {
        name: {figure: stats.median(o[figure] for o in outcomes) for figure in outcomes[0]}
        for name, outcomes in by_service.items()
    }


def report(results: list[Run], events: int, runs: int) -> list[str]:
    rows = [
        [
            name,
            f"{figures['records']:,.0f}",
            f"{figures['catching_up_s']:.1f} s",
            f"{figures['records_per_s']:,.0f}",
            f"{figures['elapsed_s']:.1f} s",
            output.verdict(figures["records_per_s"] >= TARGET_RECORDS_PER_S),
        ]
        for name, figures in medians(results).items()
    ]
    return [
        f"{events:,} events published, {runs} rebuilds per service, medians; "
        f"{output.machine_summary()}, {output.today()}",
        "",
        *output.table(
            [
                "service",
                "records consumed",
                "catching up",
                "records/s",
                "rebuild in all",
                f"≥ {TARGET_RECORDS_PER_S:,} records/s",
            ],
            rows,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000, help="events in the history")
    parser.add_argument("--runs", type=cli.positive, default=3, help="rebuilds of each service")
    parser.add_argument(
        "--services", nargs="+", default=["analytics", "credits"], choices=["analytics", "credits"]
    )
    cli.json_argument(parser)
    arguments = parser.parse_args()
    results = cli.run(bench(arguments.events, arguments.runs, arguments.services))
    output.finish(
        arguments,
        "rebuild",
        report(results, arguments.events, arguments.runs),
        [{"service": r.service, **outcome_json(r.outcome)} for r in results],
        medians(results),
        {"records_per_s": TARGET_RECORDS_PER_S},
    )


if __name__ == "__main__":
    main()
