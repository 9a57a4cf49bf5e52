"""The platform a benchmark measures, as `ops` finds it: its URLs, databases, topics, consumer
groups and processes, whether it is settled, and scratch databases beside its own."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import output
from psycopg import sql

from contracts.identity import Role
from contracts.services import SERVICES, service_named
from ops import databases
from ops.groups import group_lag
from ops.inputs import input_topic_names
from ops.local import operations
from ops.local import services as local_services
from ops.local.config import PlatformConfig, config_from_env
from ops.local.errors import PlatformError
from ops.local.paths import Paths, repository_root
from ops.local.processes import running_pid
from ops.local.secrets import use_local_kafka_principal, use_local_passwords
from servicekit.db import libpq_url

ROOT = repository_root()
SERVICE_NAMES: tuple[str, ...] = tuple(service.name for service in SERVICES)


@dataclass(frozen=True)
class Platform:
    """The platform the environment names (`ops env`): the local one of `make up` unless
    KAFKA_BOOTSTRAP_SERVERS, <SERVICE>_DATABASE_URL or KAFKA_TOPIC_PREFIX say otherwise."""

    config: PlatformConfig
    prefix: str

    @property
    def bootstrap(self) -> str:
        return self.config.kafka.bootstrap

    @property
    def paths(self) -> Paths:
        return self.config.paths

    def base_url(self, name: str) -> str:
        return next(s.base_url for s in self.config.services if s.service.name == name)

    def database_url(self, name: str) -> str:
        """The service's database as its settings name it (a SQLAlchemy URL)."""
        return self.config.database_for(service_named(name)).url

    def libpq_url(self, name: str) -> str:
        return libpq_url(self.database_url(name))

    def group(self, name: str) -> str:
        return operations.consumer_group(name, os.environ)

    def pid(self, name: str) -> int | None:
        """The service's process as `ops up` started it (its pid file in .local/run)."""
        return running_pid(local_services.process_spec(self.paths, name))

    def admin(self, name: str) -> databases.DatabaseAdmin:
        """Who may create and drop scratch databases beside the service's own."""
        return operations.database_admin(self.config, name)

    def bearer(self, role: Role = Role.STAFF, subject: int | str = "bench") -> dict[str, str]:
        """Headers of a call as `subject` in `role`, signed by the local identity provider."""
        token = self.config.identity.local_provider(self.paths).token(role, str(subject))
        return {"Authorization": f"Bearer {token}"}


def find_platform() -> Platform:
    return Platform(local_config(), operations.topic_prefix(os.environ))


def local_config() -> PlatformConfig:
    """The platform as the environment names it; for the local one, this process connects
    with the database roles' passwords and as the broker's `ops` principal."""
    paths = Paths(ROOT)
    use_local_passwords(paths)
    config = config_from_env(os.environ, paths)
    if config.kafka.is_local_address:
        use_local_kafka_principal(paths)
    return config


async def require_ready(platform: Platform, names: Sequence[str] = SERVICE_NAMES) -> None:
    """Refuse in one line unless every service named answers its readiness check."""
    async with httpx.AsyncClient(timeout=5) as client:
        for name in names:
            url = platform.base_url(name) + "/health/ready"
            try:
                ready = (await client.get(url)).status_code == 200
            except httpx.TransportError:
                ready = False
            if not ready:
                raise PlatformError(f"{name} is not ready at {url}: start the platform (make up)")


@asynccontextmanager
async def only(platform: Platform, kept: Sequence[str]) -> AsyncIterator[None]:
    """Stop every service but `kept` (as `ops down` stops a process) for the block, so that
    what is measured has the cores to itself; start them again after it, as `ops up` does
    (they then catch up on what they missed)."""
    controls = [
        operations.control(platform.config, name, os.environ, output.status)
        for name in SERVICE_NAMES
        if name not in kept
    ]
    for control in controls:
        await control.stop()
    output.clear_status()
    try:
        yield
    finally:
        for control in controls:
            await control.start()
        output.clear_status()


async def settle(platform: Platform, *, within: float, names: Sequence[str] = SERVICE_NAMES) -> int:
    """Wait until every service has consumed its input topics and published its outbox, so
    that a measurement starts on a quiet platform. Returns what is still left after `within`
    seconds (0 once settled)."""
    groups = {platform.group(name): input_topic_names(name, platform.prefix) for name in names}
    deadline = time.monotonic() + within
    while True:
        lags = await group_lag(platform.bootstrap, groups)
        outboxes = await asyncio.to_thread(
            lambda: {name: databases.outbox_backlog(platform.database_url(name)) for name in names}
        )
        left = {
            name: sum(p.lag for p in lags[platform.group(name)]) + outboxes[name] for name in names
        }
        total = sum(left.values())
        if total == 0:
            output.clear_status()
            return 0
        if time.monotonic() > deadline:
            output.clear_status()
            print(f"  not settled after {within:g} s ({describe_backlog(left)}); going on")
            return total
        output.status(f"waiting for the platform to settle: {describe_backlog(left)}")
        await asyncio.sleep(1.0)


def describe_backlog(left: dict[str, int]) -> str:
    busy = [f"{name} {count:,}" for name, count in left.items() if count]
    return "records or outbox rows left: " + (", ".join(busy) or "none")


@dataclass(frozen=True)
class ScratchDatabase:
    """A database beside a service's own on the same server, as each of its roles reaches
    it: the owner (who creates and migrates it) and the runtime role (what runs on it)."""

    service: str
    url: str
    owner_url: str

    @classmethod
    def beside(cls, config: PlatformConfig, service: str, database: str) -> ScratchDatabase:
        own = config.database_for(service_named(service))

        def on(url: str) -> str:
            return url.rsplit("/", 1)[0] + f"/{database}"

        return cls(service, on(own.url), on(own.owner_url))


def prepare_database(
    admin: databases.DatabaseAdmin, scratch: ScratchDatabase, *, migrate: bool = True
) -> None:
    """Create the scratch database empty (dropping any old one), owned by the service's
    owner, with the service's migrations (its runtime role granted what it needs) unless
    `migrate` is false."""
    databases.check_admin(admin, scratch.service, scratch.owner_url)
    databases.recreate(admin, scratch.owner_url)
    if migrate:
        databases.migrate(
            Paths(ROOT).alembic_ini(scratch.service),
            scratch.owner_url,
            service=scratch.service,
            runtime_role=databases.role_name(scratch.url),
        )


def drop(admin: databases.DatabaseAdmin, url: str) -> None:
    with admin.connect() as connection:
        connection.execute(
            sql.SQL("drop database if exists {} with (force)").format(
                sql.Identifier(databases.database_name(url))
            )
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
