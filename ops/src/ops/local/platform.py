"""`ops up`, `ops down` and `ops status`: the steps in order, and what to tell the operator."""

from __future__ import annotations

import asyncio
import fcntl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from contracts.topics import ALL_TOPICS
from ops import kafka_access
from ops.local import kafka, postgres, services, topics
from ops.local.config import PlatformConfig
from ops.local.errors import PlatformError
from ops.local.operations import topic_prefix
from ops.local.paths import Paths
from ops.local.processes import running_pid
from ops.local.report import Say
from ops.local.urls import redacted


@contextmanager
def exclusive(paths: Paths, say: Say) -> Iterator[None]:
    """One `ops up`/`ops down` at a time per checkout: two at once would race on pid files."""
    paths.ensure_runtime_dirs()
    with paths.lock_file.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("waiting for another `ops up`/`ops down` in this checkout to finish")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


async def start_infrastructure(
    config: PlatformConfig, say: Say, env: Mapping[str, str] | None = None
) -> None:
    """Kafka and PostgreSQL (side by side: each spends seconds waiting), then the topics and,
    on our own broker, the contract's ACLs (behind the environment's topic prefix)."""
    outcomes = await asyncio.gather(
        kafka.ensure_kafka(config, say),
        asyncio.to_thread(postgres.ensure_postgres, config, say),
        return_exceptions=True,
    )
    failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    if len(failures) > 1 and all(isinstance(f, PlatformError) for f in failures):
        # Both broke (say, no Java and a stranger on 5432): tell both, still in one line.
        raise PlatformError("; ".join(str(failure) for failure in failures))
    if failures:
        raise failures[0]
    created = await topics.create_topics(config.kafka.bootstrap)
    say(topics.outcome(len(created), len(ALL_TOPICS)))
    if config.kafka.is_local_address:
        await kafka_access.grant(
            config.kafka.bootstrap, kafka_access.platform_acls(topic_prefix(env or {}))
        )


async def up(
    config: PlatformConfig, say: Say, env: Mapping[str, str], *, infra_only: bool = False
) -> None:
    with exclusive(config.paths, say):
        if config.identity.is_local and config.identity.local_provider(config.paths).ensure():
            say(f"Identity: made the local signing key (once), in {config.paths.identity_dir}")
        await start_infrastructure(config, say, env)
        if not infra_only:
            await services.ensure_services(config, say, env)


def down(config: PlatformConfig, say: Say) -> None:
    """Stop what `ops up` started, services first (they hold connections), data kept."""
    paths = config.paths
    with exclusive(paths, say):
        names = [s.service.name for s in config.services]
        stopped = [f"{name} (pid {pid})" for name, pid in services.stop_services(paths, names)]
        kafka_pid = kafka.stop_kafka(paths)
        if kafka_pid is not None:
            stopped.append(f"Kafka (pid {kafka_pid})")
        postgres_pid = postgres.stop_postgres(paths)
        if postgres_pid is not None:
            stopped.append(f"PostgreSQL (pid {postgres_pid})")
    say("stopped " + ", ".join(stopped) if stopped else "nothing of ours was running")


def summary(config: PlatformConfig, *, infra_only: bool) -> list[str]:
    """Where everything listens, for the operator to copy."""
    lines = [f"Kafka       {config.kafka.bootstrap}"]
    if config.local_databases:
        lines.append(f"PostgreSQL  127.0.0.1:{config.postgres_port}")
    lines += [f"  {db.service.name:<10}{redacted(db.url)}" for db in config.databases]
    if not infra_only:
        lines.append("Services")
        lines += [
            f"  {s.service.name:<10}{s.base_url}  (API docs {s.base_url}/docs)"
            for s in config.services
        ]
        identity = config.identity
        lines.append(
            "Tokens      TOKEN=$(uv run ops token --role staff)  (docs/security.md)"
            if identity.is_local
            else f"Identity    tokens of {identity.issuer}, keys at "
            f"{identity.jwks_url or identity.jwks_file}"
        )
    lines.append(f"Logs in {config.paths.log_dir}; stop everything with `make down`")
    return lines


def infrastructure_status(config: PlatformConfig) -> list[str]:
    """Whether our Kafka and PostgreSQL run (the services have `ops status` lines of their
    own, with their readiness, lag and outbox)."""
    paths = config.paths
    specs = [("Kafka", kafka.process_spec(paths)), ("PostgreSQL", postgres.process_spec(paths))]
    return [
        f"{label:<11} " + (f"running (pid {pid})" if (pid := running_pid(spec)) else "stopped")
        for label, spec in specs
    ]


def status(config: PlatformConfig) -> list[str]:
    """Which of our processes run; servers named in the environment are not ours to report."""
    paths = config.paths
    specs = [
        ("Kafka", kafka.process_spec(paths)),
        ("PostgreSQL", postgres.process_spec(paths)),
        *((s.service.name, services.process_spec(paths, s.service.name)) for s in config.services),
    ]
    lines = []
    for label, spec in specs:
        pid = running_pid(spec)
        lines.append(f"{label:<11} " + (f"running (pid {pid})" if pid else "stopped"))
    return lines
