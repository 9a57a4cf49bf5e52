"""A second local stack in a directory of its own, on ports of its own: for runs that stop,
kill and restart Kafka and PostgreSQL (the lifecycle tests, `ops chaos`) without touching
the stack `make up` runs and the rest of the test suite uses."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Mapping
from contextlib import ExitStack, suppress

from contracts.services import service_named
from ops.local import kafka
from ops.local.config import LOCAL_POSTGRES_PORT_ENV, PlatformConfig, config_from_env
from ops.local.paths import Paths
from ops.local.report import Say


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free at this moment (all held at once while choosing)."""
    with ExitStack() as held:
        probes = [held.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


def scratch_paths(main: Paths, name: str, say: Say) -> Paths:
    """A stack root inside the repository's `.local/scratch/` (git-ignored, and reachable by
    the `postgres` user), with the committed inputs the stack reads and the main stack's jar
    cache: downloading is the only slow part of starting a broker."""
    paths = Paths(main.local / "scratch" / name)
    paths.kafka_pom.parent.mkdir(parents=True)
    shutil.copy(main.kafka_pom, paths.kafka_pom)
    shutil.copy(main.log4j_config, paths.log4j_config)
    (paths.root / "services").symlink_to(main.root / "services")
    kafka.ensure_jars(main, say)
    paths.kafka_dir.mkdir(parents=True)
    paths.kafka_libs.symlink_to(main.kafka_libs)
    return paths


def scratch_config(paths: Paths, service_ports: Mapping[str, int] | None = None) -> PlatformConfig:
    """The stack on free ports: Kafka, its controller and PostgreSQL; each service named in
    `service_ports` on its port there."""
    kafka_port, controller_port, postgres_port = free_ports(3)
    env = {LOCAL_POSTGRES_PORT_ENV: str(postgres_port)}
    for name, port in (service_ports or {}).items():
        env[service_named(name).http_port_env] = str(port)
    return config_from_env(env, paths, kafka_port=kafka_port, kafka_controller_port=controller_port)


def remove(paths: Paths) -> None:
    """Delete a scratch stack's directory (its servers stopped first)."""
    shutil.rmtree(paths.root, ignore_errors=True)
    with suppress(OSError):  # others' stacks may still be there
        paths.root.parent.rmdir()
