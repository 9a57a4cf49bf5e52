"""Replay, rebuild, lag and status wired to the local platform: its services are the
processes `ops up` started (pid files in .local/run), its settings come from the environment
(ops.local.config), and its PostgreSQL cluster's superuser drops and creates databases."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping

from contracts.services import service_named
from ops import databases
from ops.inputs import SERVICE_NAMES, input_topic_names
from ops.inspection import ServiceEndpoints
from ops.local import errors, postgres, services
from ops.local.config import PlatformConfig
from ops.local.processes import running_pid
from ops.local.report import Say
from ops.recovery import ServiceControl, Target

TOPIC_PREFIX_ENV = "KAFKA_TOPIC_PREFIX"


def topic_prefix(env: Mapping[str, str]) -> str:
    return env.get(TOPIC_PREFIX_ENV, "")


def consumer_group(name: str, env: Mapping[str, str]) -> str:
    """The group the service consumes in: `<NAME>_CONSUMER_GROUP` when set, else the
    services' own rule (`Service.consumer_group`, as servicekit.settings applies it)."""
    service = service_named(name)
    configured = env.get(service.env_prefix + "CONSUMER_GROUP", "").strip()
    return configured or service.consumer_group(topic_prefix(env))


def target(config: PlatformConfig, name: str, env: Mapping[str, str]) -> Target:
    service = service_named(name)
    database = config.database_for(service)
    return Target(
        service=name,
        bootstrap=config.kafka.bootstrap,
        database_url=database.url,
        topic_prefix=topic_prefix(env),
        group=consumer_group(name, env),
        owner_database_url=database.owner_url,
    )


def control(config: PlatformConfig, name: str, env: Mapping[str, str], say: Say) -> ServiceControl:
    """Stop and start the service's process as `ops down` and `ops up` do, with its
    migrations run and readiness awaited on the way up."""
    paths = config.paths
    settings = next(s for s in config.services if s.service.name == name)
    only_this_one = dataclasses.replace(config, services=(settings,))

    async def stop() -> None:
        stopped = await asyncio.to_thread(services.stop_services, paths, [name])
        say(f"{name}: stopped (pid {stopped[0][1]})" if stopped else f"{name}: was not running")

    async def start() -> None:
        await services.ensure_services(only_this_one, say, env)

    def check_running() -> None:
        if running_pid(services.process_spec(paths, name)) is None:
            raise errors.PlatformError(
                f"service {name} exited while catching up: read {paths.log(name)}"
            )

    return ServiceControl(stop=stop, start=start, check_running=check_running)


def database_admin(config: PlatformConfig, name: str) -> databases.DatabaseAdmin:
    """The local cluster's superuser for a database on our own cluster; the service's owner
    role for any other server (it needs to own the database and have CREATEDB)."""
    database = config.database_for(service_named(name))
    ours = running_pid(postgres.process_spec(config.paths)) is not None
    if database.is_local_address and ours:
        return databases.DatabaseAdmin(
            lambda: postgres.superuser_connection(config.paths, config.postgres_port),
            "the local cluster's superuser",
        )
    return databases.own_role(database.owner_url)


def endpoints(config: PlatformConfig, env: Mapping[str, str]) -> list[ServiceEndpoints]:
    prefix = topic_prefix(env)
    return [
        ServiceEndpoints(
            service=settings.service.name,
            base_url=settings.base_url,
            database_url=config.database_for(settings.service).url,
            group=consumer_group(settings.service.name, env),
            topics=input_topic_names(settings.service.name, prefix),
        )
        for settings in config.services
        if settings.service.name in SERVICE_NAMES
    ]


def processes(config: PlatformConfig) -> dict[str, str]:
    """Each service's process as `ops up` manages it: 'running (pid 123)' or 'stopped'."""
    states = {}
    for settings in config.services:
        name = settings.service.name
        pid = running_pid(services.process_spec(config.paths, name))
        states[name] = f"running (pid {pid})" if pid else "stopped"
    return states
