"""The platform on a scratch stack of its own (`ops.local.scratch`): Kafka, PostgreSQL and
the four services as processes this run may kill, pause and restart, with replicas of any
service. Nothing of the stack `make up` runs or the test suite uses is touched."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Set
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from contracts.identity import Role
from contracts.principals import OPS
from contracts.services import SERVICES, service_named
from ops.identity import LocalIdentity
from ops.local import kafka, platform, postgres, services
from ops.local.config import PlatformConfig, ServiceSettings
from ops.local.paths import Paths
from ops.local.processes import running_pid, wait_for_exit
from ops.local.report import Say
from ops.local.scratch import free_ports, remove, scratch_config, scratch_paths
from ops.local.secrets import PGPASSFILE_ENV, KafkaCredentials, ensure_kafka_credentials
from servicekit.kafka import KafkaSecurity

#: Settings of the environment that name a platform: a scratch stack's services must not
#: inherit those of the stack whose shell started the run.
_PLATFORM_SETTINGS = ("KAFKA_", "AUTH_", "PGPASSFILE")
_PLATFORM_SUFFIXES = ("_DATABASE_URL", "_HTTP_PORT", "_CONSUMER_GROUP")
READY_PATH = "/health/ready"


@dataclass
class Replica:
    """One process of a service."""

    name: str
    index: int
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None
    paused: bool = False

    @property
    def label(self) -> str:
        return f"{self.name}-{self.index}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class ServiceExited(RuntimeError):
    def __init__(self, replica: Replica) -> None:
        lines = replica.log.read_text(errors="replace").splitlines()[-15:]
        super().__init__(f"{replica.label} exited:\n" + "\n".join(lines))


@dataclass
class Stage:
    paths: Paths
    config: PlatformConfig
    say: Say
    replicas: list[Replica] = field(default_factory=list)
    #: Replicas found dead (not killed by a fault) and started again.
    restarts: int = 0
    _tokens: dict[tuple[Role, str], str] = field(default_factory=dict)
    _identity: LocalIdentity | None = None

    @classmethod
    def create(cls, main: Paths, name: str, replicas: Mapping[str, int], say: Say) -> Stage:
        """A stage whose services run `replicas[name]` processes each (1 when not named)."""
        counts = {service.name: replicas.get(service.name, 1) for service in SERVICES}
        ports = free_ports(sum(counts.values()))
        paths = scratch_paths(main, name, say)
        # The first replica of each service takes the service's own setting.
        first: dict[str, int] = {}
        planned: list[Replica] = []
        for service_name, count in counts.items():
            for index in range(count):
                port = ports.pop()
                first.setdefault(service_name, port)
                log = paths.log(f"{service_name}-{index}")
                planned.append(Replica(service_name, index, port, log))
        return cls(paths, scratch_config(paths, first), say, planned)

    # --- the whole stage -----------------------------------------------------------------

    async def start(self) -> None:
        """Kafka and PostgreSQL, the topics and ACLs, the migrations, then every replica."""
        await platform.up(self.config, self.say, {}, infra_only=True)
        runs = [
            (settings.service.name, self._environment(settings.service.name, settings.http_port))
            for settings in self.config.services
        ]
        await asyncio.to_thread(services.run_migrations, self.paths, runs)
        for replica in self.replicas:
            self.launch(replica)
        await self.wait_until_ready(within=120, supervise=False)

    def close(self, *, keep: bool = False) -> None:
        """Stop everything; the stack's directory goes too unless `keep` (its logs)."""
        for replica in self.replicas:
            if replica.paused and replica.process is not None:
                replica.process.send_signal(signal.SIGCONT)
            self._stop(replica)
        platform.down(self.config, lambda _: None)
        if not keep:
            remove(self.paths)

    @contextmanager
    def as_operator(self) -> Iterator[None]:
        """This process connects to the stage's broker as its `ops` principal while in the
        block (the settings of any other stack are put back afterwards)."""
        settings = {
            **self.credentials.environment(OPS.name),
            PGPASSFILE_ENV: str(self.paths.pgpass),
        }
        saved = {name: os.environ.get(name) for name in settings}
        os.environ.update(settings)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    @property
    def credentials(self) -> KafkaCredentials:
        return ensure_kafka_credentials(self.paths)

    def kafka_options(self, principal: str) -> dict[str, Any]:
        """aiokafka's keyword arguments for a client connecting as `principal`."""
        security = KafkaSecurity.model_validate(self.credentials.environment(principal))
        return {"bootstrap_servers": self.config.kafka.bootstrap, **security.aiokafka_options()}

    def token(self, role: Role, subject: str) -> str:
        """A day-long token, signed once per caller: signing costs more than a request."""
        key = (role, subject)
        if key not in self._tokens:
            if self._identity is None:
                self._identity = self.config.identity.local_provider(self.paths)
            self._tokens[key] = self._identity.token(role, subject, ttl=24 * 3600)
        return self._tokens[key]

    def url(self, name: str) -> str:
        """A running replica of the service (the first one that runs)."""
        running = [r for r in self.replicas if r.name == name and r.running and not r.paused]
        return (running or [r for r in self.replicas if r.name == name])[0].url

    async def wait_until_ready(
        self, within: float, ignoring: Set[str] = frozenset(), *, supervise: bool = True
    ) -> float:
        """Seconds until every replica answers ready (but those `ignoring` names: under a
        fault of their own, a set the caller may change meanwhile); TimeoutError past
        `within`. A replica found dead is started again when `supervise`, else
        ServiceExited."""
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=5.0) as client:
            while True:
                watched = [r for r in self.replicas if r.label not in ignoring]
                answers = await asyncio.gather(*(_is_ready(client, r) for r in watched))
                waiting = [r for r, ready in zip(watched, answers, strict=True) if not ready]
                if not waiting:
                    return time.monotonic() - started
                exited = [r for r in waiting if r.process is not None and not r.running]
                if exited and not supervise:
                    raise ServiceExited(exited[0])
                for replica in exited:
                    # As a process supervisor (or `make up`) starts a process found dead.
                    self.say(f"chaos: {replica.label} exited by itself; started again")
                    self.restarts += 1
                    self.launch(replica)
                if time.monotonic() - started > within:
                    labels = ", ".join(r.label for r in waiting)
                    raise TimeoutError(f"not ready within {within:.0f} s: {labels}")
                await asyncio.sleep(0.2)

    # --- services ------------------------------------------------------------------------

    def launch(self, replica: Replica) -> None:
        with replica.log.open("ab") as output:
            replica.process = subprocess.Popen(
                services.service_command(replica.name),
                cwd=self.paths.root,
                env=self._environment(replica.name, replica.port),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        replica.paused = False

    def kill(self, replica: Replica) -> None:
        """SIGKILL: no goodbye, no commit, no flush."""
        if replica.process is not None:
            replica.process.kill()
            replica.process.wait(timeout=30)
        replica.paused = False

    def pause(self, replica: Replica) -> None:
        assert replica.process is not None
        replica.process.send_signal(signal.SIGSTOP)
        replica.paused = True

    def resume(self, replica: Replica) -> None:
        assert replica.process is not None
        replica.process.send_signal(signal.SIGCONT)
        replica.paused = False

    def _stop(self, replica: Replica) -> None:
        if not replica.running or replica.process is None:
            return
        replica.process.terminate()
        try:
            replica.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            replica.process.kill()
            replica.process.wait(timeout=15)

    def _environment(self, name: str, port: int) -> dict[str, str]:
        base = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(_PLATFORM_SETTINGS) and not key.endswith(_PLATFORM_SUFFIXES)
        }
        service = service_named(name)
        base[service.env_prefix + "LOG_LEVEL"] = "WARNING"
        return services.service_environment(self.config, ServiceSettings(service, port), base)

    # --- Kafka and PostgreSQL ------------------------------------------------------------

    def kill_broker(self) -> None:
        pid = running_pid(kafka.process_spec(self.paths))
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            wait_for_exit(pid, 30)

    async def start_broker(self) -> None:
        await asyncio.to_thread(kafka.start_broker, self.paths, kafka.find_java())
        spec = kafka.process_spec(self.paths)
        log = self.paths.log("kafka")
        await kafka.wait_until_ready(self.config.kafka, log, spec, kafka.READY_TIMEOUT)

    def stop_postgres_immediately(self) -> None:
        postgres.stop_postgres(self.paths, immediate=True)

    def start_postgres(self) -> None:
        bin_dir = postgres.find_bin_dir(version=postgres.cluster_version(self.paths))
        assert bin_dir is not None, "PostgreSQL ran a moment ago"
        postgres.start(bin_dir, self.paths)
        postgres.wait_until_ready(self.paths, self.config.postgres_port)

    def terminate_connections(self, name: str) -> int:
        """Cut every connection of the service's database from the server's side; when
        PostgreSQL is down (the other lane crashed it), as soon as it is back."""
        database = service_named(name).database
        postgres.wait_until_ready(self.paths, self.config.postgres_port)
        try:
            port = self.config.postgres_port
            with postgres.superuser_connection(self.paths, port) as connection:
                rows = connection.execute(
                    "select pg_terminate_backend(pid) from pg_stat_activity "
                    "where datname = %s and pid <> pg_backend_pid()",
                    (database,),
                ).fetchall()
        except psycopg.OperationalError:
            # Crashed meanwhile: that cut every connection already.
            return 0
        return sum(1 for (terminated,) in rows if terminated)


async def _is_ready(client: httpx.AsyncClient, replica: Replica) -> bool:
    if not replica.running or replica.paused:
        return False
    try:
        return (await client.get(replica.url + READY_PATH)).status_code == 200
    except httpx.HTTPError:
        return False
