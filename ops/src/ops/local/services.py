"""The platform's services as local processes: migrate, start detached, wait for readiness.

The interface relied on, per service `<name>` of contracts.services.SERVICES:
- `services/<name>/alembic.ini`, run as `alembic -c services/<name>/alembic.ini upgrade head`
  from the repository root, reading its database URL from `<NAME>_DATABASE_URL`;
- the package runs with `python -m <name>` and reads `KAFKA_BOOTSTRAP_SERVERS`,
  `<NAME>_DATABASE_URL` and `<NAME>_HTTP_PORT`, serving HTTP on 127.0.0.1 at that port;
- `GET /health/ready` answers 200 once its database and Kafka are reachable.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from contracts.services import KAFKA_BOOTSTRAP_ENV
from ops.local import errors
from ops.local.config import PlatformConfig, ServiceSettings
from ops.local.paths import Paths
from ops.local.processes import (
    ProcessSpec,
    describe_listener,
    port_is_free,
    running_pid,
    start_detached,
    stop,
    write_pid,
)
from ops.local.report import Say
from ops.local.secrets import PGPASSFILE_ENV, ensure_kafka_credentials

MIGRATION_TIMEOUT = 180.0
READY_TIMEOUT = 90.0
STOP_GRACE = 15.0
READY_PATH = "/health/ready"


def require_present(paths: Paths, name: str) -> None:
    missing = [
        str(path.relative_to(paths.root))
        for path in (paths.alembic_ini(name), paths.service_main(name))
        if not path.is_file()
    ]
    if missing:
        raise errors.PlatformError(
            f"service {name!r} cannot start: missing {', '.join(missing)} "
            "(use `ops up --infra-only` to start only Kafka and PostgreSQL)"
        )


def service_environment(
    config: PlatformConfig, settings: ServiceSettings, base: Mapping[str, str]
) -> dict[str, str]:
    service = settings.service
    database = config.database_for(service)
    passwords = {PGPASSFILE_ENV: str(config.paths.pgpass)} if database.is_local_address else {}
    # On our own broker, as its own principal; elsewhere as the environment says.
    principal = (
        ensure_kafka_credentials(config.paths).environment(service.name)
        if config.kafka.is_local_address
        else {}
    )
    return {
        **base,
        **dict(config.identity.exports()),
        **passwords,
        **principal,
        KAFKA_BOOTSTRAP_ENV: config.kafka.bootstrap,
        service.database_url_env: database.url,
        # For the migrations `ops up` runs before starting it: they run as the owner.
        service.owner_database_url_env: database.owner_url,
        service.http_port_env: str(settings.http_port),
        # Log lines reach .local/log/<name>.log as they happen, not when a buffer fills.
        "PYTHONUNBUFFERED": "1",
    }


def process_spec(paths: Paths, name: str) -> ProcessSpec:
    return ProcessSpec(
        name=name, pid_file=paths.pid_file(name), signature=("-m", name), cwd=paths.root
    )


def service_command(name: str) -> list[str]:
    # The interpreter running `ops` is the workspace's, where every service is installed.
    return [sys.executable, "-m", name]


def migration_command(paths: Paths, name: str) -> list[str]:
    return [sys.executable, "-m", "alembic", "-c", str(paths.alembic_ini(name)), "upgrade", "head"]


def run_migrations(paths: Paths, runs: Sequence[tuple[str, Mapping[str, str]]]) -> None:
    """`alembic upgrade head` for each service, side by side: the databases are separate."""
    started: list[tuple[str, subprocess.Popen[bytes]]] = []
    for name, env in runs:
        with paths.log(name).open("ab") as log:
            process = subprocess.Popen(
                migration_command(paths, name),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=paths.root,
                env=dict(env),
            )
        started.append((name, process))
    deadline = time.monotonic() + MIGRATION_TIMEOUT
    failed: list[str] = []
    for name, process in started:
        step = f"{name} migrations (alembic upgrade head)"
        try:
            returncode = process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for _, other in started:
                other.kill()
            raise errors.step_timed_out(step, MIGRATION_TIMEOUT, paths.log(name)) from None
        if returncode != 0:
            failed.append(name)
    if failed:
        raise errors.step_failed(
            f"{failed[0]} migrations (alembic upgrade head)", paths.log(failed[0])
        )


def start_service(paths: Paths, name: str, env: Mapping[str, str]) -> int:
    pid = start_detached(service_command(name), log=paths.log(name), cwd=paths.root, env=env)
    write_pid(paths.pid_file(name), pid)
    return pid


async def wait_until_ready(
    settings: ServiceSettings, spec: ProcessSpec, log: Path, within: float = READY_TIMEOUT
) -> None:
    """Ready means GET /health/ready answers 200."""
    url = settings.base_url + READY_PATH
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            if running_pid(spec) is None:
                raise errors.process_exited(f"service {settings.service.name}", log)
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise errors.step_timed_out(
                    f"{settings.service.name} readiness ({url})", within, log
                )
            await asyncio.sleep(0.3)


def _check_port(settings: ServiceSettings) -> None:
    port = settings.http_port
    if not port_is_free(port):
        raise errors.port_taken(
            port,
            f"service {settings.service.name}",
            describe_listener(port),
            f"stop that process, or set {settings.service.http_port_env} to a free port",
        )


async def ensure_services(config: PlatformConfig, say: Say, base_env: Mapping[str, str]) -> None:
    paths = config.paths
    for settings in config.services:
        require_present(paths, settings.service.name)
    paths.ensure_runtime_dirs()
    to_start: list[tuple[ServiceSettings, dict[str, str]]] = []
    for settings in config.services:
        name = settings.service.name
        pid = running_pid(process_spec(paths, name))
        if pid is not None:
            say(f"{name}: already running (pid {pid})")
            continue
        _check_port(settings)
        to_start.append((settings, service_environment(config, settings, base_env)))
    if to_start:
        say("Services: migrating " + ", ".join(s.service.name for s, _ in to_start))
        runs = [(s.service.name, env) for s, env in to_start]
        await asyncio.to_thread(run_migrations, paths, runs)
        for settings, env in to_start:
            pid = start_service(paths, settings.service.name, env)
            say(f"{settings.service.name}: started (pid {pid})")
    await asyncio.gather(
        *(
            wait_until_ready(s, process_spec(paths, s.service.name), paths.log(s.service.name))
            for s in config.services
        )
    )


def stop_services(paths: Paths, names: Sequence[str]) -> list[tuple[str, int]]:
    """Stop our service processes, each SIGTERM then SIGKILL; returns (name, pid) stopped.

    Side by side, so four services that each take their grace period cost one, not four.
    """
    if not names:
        return []
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        pids = list(pool.map(lambda name: stop(process_spec(paths, name), STOP_GRACE), names))
    return [(name, pid) for name, pid in zip(names, pids, strict=True) if pid is not None]
