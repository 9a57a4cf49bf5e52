"""The private cluster's settings and helpers, without starting it."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from ops.local import postgres
from ops.local.errors import PlatformError
from ops.local.paths import Paths, repository_root
from ops.local.processes import process_cmdline
from ops.local.urls import redacted
from servicekit.urls import libpq_url


def test_settings_listen_on_loopback_with_a_private_socket_and_room_for_connections() -> None:
    text = postgres.render_settings(port=5433, socket_dir=Path("/repo/.local/postgres/socket"))

    assert "listen_addresses = '127.0.0.1'" in text
    assert "port = 5433" in text
    assert "unix_socket_directories = '/repo/.local/postgres/socket'" in text
    assert "password_encryption = 'scram-sha-256'" in text
    assert "max_connections = 200" in text
    assert "shared_buffers = '1GB'" in text
    assert "max_wal_size = '8GB'" in text


def test_settings_quote_a_path_with_a_quote_in_it() -> None:
    text = postgres.render_settings(port=1, socket_dir=Path("/o'brien/socket"))

    assert "unix_socket_directories = '/o''brien/socket'" in text


def test_the_newest_installed_server_is_chosen_unless_the_cluster_needs_its_own(
    tmp_path: Path,
) -> None:
    for version in ("13", "15", "9"):
        (tmp_path / version / "bin").mkdir(parents=True)
        (tmp_path / version / "bin" / "pg_ctl").touch()
    (tmp_path / "16").mkdir()  # a leftover without binaries

    assert postgres.find_bin_dir(tmp_path) == tmp_path / "15" / "bin"
    assert postgres.find_bin_dir(tmp_path, version="13") == tmp_path / "13" / "bin"
    assert postgres.find_bin_dir(tmp_path, version="16") is None
    assert postgres.find_bin_dir(tmp_path / "absent") is None


def test_postgresql_is_installed_from_debian_without_questions() -> None:
    assert postgres.install_commands()[-1][:3] == ["apt-get", "install", "-y"]
    assert "postgresql" in postgres.install_commands()[-1]


@pytest.mark.parametrize(
    ("url", "libpq"),
    [
        ("postgresql+psycopg://a:b@h:1/d", "postgresql://a:b@h:1/d"),
        ("postgresql://a:b@h:1/d", "postgresql://a:b@h:1/d"),
        ("postgres+asyncpg://a@h/d", "postgresql://a@h/d"),
    ],
)
def test_sqlalchemy_urls_become_libpq_urls(url: str, libpq: str) -> None:
    assert libpq_url(url) == libpq


def test_passwords_are_hidden_in_messages() -> None:
    assert redacted("postgresql+psycopg://booking:s3cret@h:1/booking") == (
        "postgresql+psycopg://booking:***@h:1/booking"
    )


def test_as_root_cluster_commands_run_as_the_postgres_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    as_postgres = ["runuser", "-u", "postgres", "--"]
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert postgres.as_cluster_owner(["pg_ctl", "status"]) == [*as_postgres, "pg_ctl", "status"]

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert postgres.as_cluster_owner(["pg_ctl", "status"]) == ["pg_ctl", "status"]


def test_private_directories_on_the_way_to_the_cluster_get_search_permission_only() -> None:
    scratch = Paths(repository_root()).local / "scratch" / f"traverse-{uuid.uuid4().hex[:8]}"
    private = scratch / "private"
    (private / "inner").mkdir(parents=True)
    private.chmod(0o700)
    lines: list[str] = []
    try:
        postgres.ensure_traversable(private / "inner" / "postgres", lines.append)

        assert stat.S_IMODE(private.stat().st_mode) == 0o701
        assert lines == [f"PostgreSQL: allowed other users to pass through {private} (o+x)"]
        postgres.ensure_traversable(private / "inner" / "postgres", lines.append)
        assert len(lines) == 1
    finally:
        shutil.rmtree(scratch)


def _write_postmaster_pid(paths: Paths, pid: int) -> Path:
    paths.postgres_data.mkdir(parents=True)
    pid_file = paths.postgres_data / "postmaster.pid"
    pid_file.write_text(f"{pid}\n{paths.postgres_data}\n")
    return pid_file


def test_a_postmaster_pid_naming_another_program_is_removed(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    pid_file = _write_postmaster_pid(paths, os.getpid())

    postgres.remove_stale_pid_file(paths)

    assert not pid_file.exists()


def test_a_postmaster_pid_of_a_live_server_we_did_not_start_is_kept(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    impostor = subprocess.Popen(["bash", "-c", "exec -a postgres sleep 30"])
    try:
        pid_file = _write_postmaster_pid(paths, impostor.pid)
        deadline = time.monotonic() + 5
        while (process_cmdline(impostor.pid) or [""])[0] != "postgres":
            assert time.monotonic() < deadline, "the impostor never exec'd"
            time.sleep(0.01)

        with pytest.raises(PlatformError, match=r"PostgreSQL server \(pid"):
            postgres.remove_stale_pid_file(paths)

        assert pid_file.exists()
    finally:
        impostor.kill()
        impostor.wait()
