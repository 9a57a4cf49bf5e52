"""Recognising our processes by pid file and command line, and finding who holds a port."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.local import processes
from ops.local.processes import ProcessSpec


def _sleeper_spec(tmp_path: Path, marker: str) -> ProcessSpec:
    return ProcessSpec(
        name="sleeper",
        pid_file=tmp_path / "run" / "sleeper.pid",
        signature=("-c", marker),
        cwd=tmp_path,
    )


def _sleeper_command(marker: str) -> list[str]:
    return [sys.executable, "-c", marker]


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[ProcessSpec]:
    marker = "import time; time.sleep(60)"
    spec = _sleeper_spec(tmp_path, marker)
    pid = processes.start_detached(
        _sleeper_command(marker), log=tmp_path / "sleeper.log", cwd=tmp_path
    )
    processes.write_pid(spec.pid_file, pid)
    yield spec
    processes.stop(spec, grace=5)


def test_a_started_process_is_recognised_as_ours(sleeper: ProcessSpec) -> None:
    pid = processes.read_pid(sleeper.pid_file)

    assert pid is not None
    assert processes.running_pid(sleeper) == pid


def test_a_pid_file_naming_another_program_is_not_ours(tmp_path: Path) -> None:
    # The pid was reused by an unrelated process: here, the test runner itself.
    spec = _sleeper_spec(tmp_path, "import time; time.sleep(60)")
    processes.write_pid(spec.pid_file, os.getpid())

    assert processes.running_pid(spec) is None


def test_the_same_program_in_another_directory_is_not_ours(
    sleeper: ProcessSpec, tmp_path: Path
) -> None:
    elsewhere = ProcessSpec(sleeper.name, sleeper.pid_file, sleeper.signature, tmp_path / "other")

    assert processes.running_pid(elsewhere) is None


def test_a_pid_file_naming_a_dead_process_is_stale(tmp_path: Path) -> None:
    spec = _sleeper_spec(tmp_path, "pass")
    pid = processes.start_detached(_sleeper_command("pass"), log=tmp_path / "x.log", cwd=tmp_path)
    processes.write_pid(spec.pid_file, pid)
    processes.wait_for_exit(pid, timeout=10)

    assert processes.running_pid(spec) is None


def test_an_exited_but_unreaped_child_counts_as_gone(tmp_path: Path) -> None:
    pid = processes.start_detached(_sleeper_command("pass"), log=tmp_path / "x.log", cwd=tmp_path)
    deadline = time.monotonic() + 10
    while processes.process_state(pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)

    assert processes.process_state(pid) == "Z"
    assert not processes.is_alive(pid)
    assert processes.process_cmdline(pid) is None
    os.waitpid(pid, 0)


def test_process_state_survives_parentheses_in_the_command_name(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "stat").write_text("42 (odd) name)) S 1 42 42 0 -1 4194560\n")

    assert processes.process_state(42, proc=tmp_path) == "S"
    assert processes.process_state(43, proc=tmp_path) is None


def test_missing_or_garbled_pid_files_name_nothing(tmp_path: Path) -> None:
    garbled = tmp_path / "garbled.pid"
    garbled.write_text("not a pid\n")

    assert processes.read_pid(tmp_path / "absent.pid") is None
    assert processes.read_pid(garbled) is None


def test_stop_ends_our_process_and_removes_its_pid_file(sleeper: ProcessSpec) -> None:
    pid = processes.running_pid(sleeper)

    stopped = processes.stop(sleeper, grace=5)

    assert stopped == pid
    assert pid is not None
    assert not processes.is_alive(pid)
    assert not sleeper.pid_file.exists()


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    marker = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    spec = _sleeper_spec(tmp_path, marker)
    pid = processes.start_detached(_sleeper_command(marker), log=tmp_path / "x.log", cwd=tmp_path)
    processes.write_pid(spec.pid_file, pid)

    assert processes.stop(spec, grace=1) == pid
    assert not processes.is_alive(pid)


def test_stop_leaves_a_stranger_named_by_a_stale_pid_file_alone(tmp_path: Path) -> None:
    spec = _sleeper_spec(tmp_path, "import time; time.sleep(60)")
    processes.write_pid(spec.pid_file, os.getpid())

    assert processes.stop(spec, grace=1) is None
    assert not spec.pid_file.exists()


PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2384 00000000:0000 0A 00000000:00000000 00:00000000 00000000   0        0 41001 1
   1: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000   0        0 41002 1
   2: 0100007F:2384 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000   0        0 41003 1
"""


def test_listening_inodes_reads_only_listeners_on_the_port() -> None:
    assert processes.listening_inodes(PROC_NET_TCP, 9092) == {41001}
    assert processes.listening_inodes(PROC_NET_TCP, 2024) == {41002}
    assert processes.listening_inodes(PROC_NET_TCP, 5432) == set()


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def test_a_listened_port_is_not_free_and_its_holder_is_named(listener: int) -> None:
    assert not processes.port_is_free(listener)
    assert processes.port_accepts(listener)
    assert os.getpid() in processes.listener_pids(listener)
    assert processes.describe_listener(listener).startswith(f"pid {os.getpid()} (")


def test_a_closed_port_is_free() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    assert processes.port_is_free(port)
    assert not processes.port_accepts(port)
