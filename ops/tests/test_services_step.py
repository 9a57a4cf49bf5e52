"""The services step against a stand-in service that honours the same interface:
migrations through alembic, `python -m <name>`, settings from the environment, readiness."""

from __future__ import annotations

import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.services import Service
from ops.local import errors, services
from ops.local.config import PlatformConfig, config_from_env
from ops.local.paths import Paths
from ops.local.processes import running_pid

NAME = "standin"

SERVE = """\
import http.server, os

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health/ready" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass

print("serving with", os.environ["KAFKA_BOOTSTRAP_SERVERS"], flush=True)
port = int(os.environ["STANDIN_HTTP_PORT"])
http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""

CRASH = 'raise SystemExit("cannot start: no settings")\n'

# An alembic environment that only records which database it was asked to migrate.
MIGRATIONS_ENV = """\
import os, pathlib
pathlib.Path(os.environ["STANDIN_MIGRATED"]).write_text(os.environ["STANDIN_DATABASE_URL"])
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _write_service(root: Path, main: str) -> None:
    service_dir = root / "services" / NAME
    (service_dir / "migrations" / "versions").mkdir(parents=True)
    (service_dir / "migrations" / "env.py").write_text(MIGRATIONS_ENV)
    (service_dir / "alembic.ini").write_text(
        textwrap.dedent("""\
            [alembic]
            script_location = %(here)s/migrations
            """)
    )
    (service_dir / "src" / NAME).mkdir(parents=True)
    (service_dir / "src" / NAME / "__main__.py").write_text(main)


def _config(root: Path) -> PlatformConfig:
    return config_from_env(
        {"KAFKA_BOOTSTRAP_SERVERS": "broker.test:9092"},
        Paths(root),
        services=(Service(NAME, _free_port()),),
    )


def _base_env(root: Path) -> dict[str, str]:
    import os

    return {
        **os.environ,
        "PYTHONPATH": str(root / "services" / NAME / "src"),
        "STANDIN_MIGRATED": str(root / "migrated"),
    }


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    services.stop_services(Paths(tmp_path), [NAME])


async def test_a_service_is_migrated_started_with_its_settings_and_waited_for(root: Path) -> None:
    _write_service(root, SERVE)
    config = _config(root)
    lines: list[str] = []

    await services.ensure_services(config, lines.append, _base_env(root))

    paths = config.paths
    pid = running_pid(services.process_spec(paths, NAME))
    assert pid is not None
    assert paths.pid_file(NAME).read_text().strip() == str(pid)
    assert (root / "migrated").read_text() == config.databases[0].url
    assert "serving with broker.test:9092" in paths.log(NAME).read_text()
    assert lines[-1] == f"{NAME}: started (pid {pid})"


async def test_a_running_service_is_left_alone(root: Path) -> None:
    _write_service(root, SERVE)
    config = _config(root)
    await services.ensure_services(config, lambda _: None, _base_env(root))
    pid = running_pid(services.process_spec(config.paths, NAME))
    lines: list[str] = []

    await services.ensure_services(config, lines.append, _base_env(root))

    assert lines == [f"{NAME}: already running (pid {pid})"]
    assert running_pid(services.process_spec(config.paths, NAME)) == pid


async def test_stopping_a_service_ends_it_and_removes_its_pid_file(root: Path) -> None:
    _write_service(root, SERVE)
    config = _config(root)
    await services.ensure_services(config, lambda _: None, _base_env(root))
    pid = running_pid(services.process_spec(config.paths, NAME))

    assert services.stop_services(config.paths, [NAME]) == [(NAME, pid)]
    assert not config.paths.pid_file(NAME).exists()
    assert services.stop_services(config.paths, [NAME]) == []


async def test_a_service_that_exits_at_start_names_its_log(root: Path) -> None:
    _write_service(root, CRASH)
    config = _config(root)

    with pytest.raises(errors.PlatformError) as raised:
        await services.ensure_services(config, lambda _: None, _base_env(root))

    assert str(raised.value) == (
        f"service {NAME} exited while starting: read {config.paths.log(NAME)}"
    )


async def test_a_missing_service_is_an_error_that_names_what_is_missing(root: Path) -> None:
    with pytest.raises(errors.PlatformError) as raised:
        await services.ensure_services(_config(root), lambda _: None, _base_env(root))

    assert str(raised.value).startswith(
        f"service {NAME!r} cannot start: missing services/{NAME}/alembic.ini, "
        f"services/{NAME}/src/{NAME}/__main__.py"
    )


async def test_a_stranger_on_the_service_port_is_named(root: Path) -> None:
    _write_service(root, SERVE)
    config = _config(root)
    port = config.services[0].http_port
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", port))
        stranger.listen()

        with pytest.raises(errors.PlatformError) as raised:
            await services.ensure_services(config, lambda _: None, _base_env(root))

    assert str(raised.value).startswith(f"port {port} (needed by service {NAME}) is already taken")
    assert str(raised.value).endswith("set STANDIN_HTTP_PORT to a free port")
