"""Background processes that outlive `ops up`: start, recognise, find by port, stop.

A pid file alone is not proof that a process is ours: after a reboot or a crash the pid may
belong to an unrelated program. A process counts as ours only when its pid file names it, it
is alive (not a zombie), its command line carries our signature and it runs in our directory.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_TCP_LISTEN = "0A"
_EMPTY_CMDLINE_RETRIES = 50


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """How to recognise one managed process.

    `signature`: arguments that must all appear, each as a whole argument, in its command
    line. `cwd`: the directory it runs in (None: not checked).
    """

    name: str
    pid_file: Path
    signature: tuple[str, ...]
    cwd: Path | None = None


# --- reading /proc -----------------------------------------------------------------------


def read_pid(pid_file: Path) -> int | None:
    try:
        text = pid_file.read_text().split()
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None
    if not text or not text[0].isdigit():
        return None
    return int(text[0])


def write_pid(pid_file: Path, pid: int) -> None:
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{pid}\n")


def remove_pid_file(pid_file: Path) -> None:
    pid_file.unlink(missing_ok=True)


def process_state(pid: int, proc: Path = _PROC) -> str | None:
    """The one-letter state from /proc/<pid>/stat ('S', 'R', 'Z', ...), None when gone."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name in parentheses may itself contain spaces and parentheses.
    fields = stat[stat.rfind(")") + 1 :].split()
    return fields[0] if fields else None


def is_alive(pid: int, proc: Path = _PROC) -> bool:
    """Running or sleeping; a zombie (exited, not yet reaped by its parent) counts as gone."""
    return process_state(pid, proc) not in (None, "Z", "X")


def process_cmdline(pid: int, proc: Path = _PROC) -> list[str] | None:
    """The argument vector of a live process, or None when it is gone or a zombie.

    For a moment during exec the kernel shows an empty vector (the new program's is not set
    up yet), which happens right after we start a process: wait that moment out.
    """
    for _ in range(_EMPTY_CMDLINE_RETRIES):
        if not is_alive(pid, proc):
            return None
        try:
            raw = (proc / str(pid) / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None
        if raw:
            return [part.decode(errors="replace") for part in raw.rstrip(b"\0").split(b"\0")]
        time.sleep(0.01)
    return None  # a kernel thread: never one of ours


def process_cwd(pid: int, proc: Path = _PROC) -> Path | None:
    try:
        return Path(os.readlink(proc / str(pid) / "cwd"))
    except OSError:
        return None


def matches(spec: ProcessSpec, cmdline: Sequence[str], cwd: Path | None) -> bool:
    """Whether a process with this command line and directory is the one `spec` describes."""
    if not all(part in cmdline for part in spec.signature):
        return False
    return spec.cwd is None or (cwd is not None and cwd.resolve() == spec.cwd.resolve())


def is_ours(spec: ProcessSpec, pid: int) -> bool:
    cmdline = process_cmdline(pid)
    return cmdline is not None and matches(spec, cmdline, process_cwd(pid))


def running_pid(spec: ProcessSpec) -> int | None:
    """The pid of our live process per its pid file, or None (stale pid files included)."""
    pid = read_pid(spec.pid_file)
    if pid is None or not is_ours(spec, pid):
        return None
    return pid


# --- ports ------------------------------------------------------------------------------


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether we could listen on host:port ourselves (a listener on 0.0.0.0 also blocks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Same option the servers use, so a port with only TIME_WAIT leftovers counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def port_accepts(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def listening_inodes(proc_net_tcp: str, port: int) -> set[int]:
    """Socket inodes listening on `port`, from the text of /proc/net/tcp or /proc/net/tcp6."""
    inodes: set[int] = set()
    for line in proc_net_tcp.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        local_address, state, inode = fields[1], fields[3], fields[9]
        local_port = int(local_address.rsplit(":", 1)[1], 16)
        if state == _TCP_LISTEN and local_port == port:
            inodes.add(int(inode))
    return inodes


def _pids_holding(inodes: set[int], proc: Path) -> Iterator[int]:
    targets = {f"socket:[{inode}]" for inode in inodes}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in targets:
                        yield int(entry.name)
                        break


def listener_pids(port: int, proc: Path = _PROC) -> list[int]:
    """Pids of the processes listening on `port` (those this user may inspect)."""
    inodes: set[int] = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            inodes |= listening_inodes((proc / "net" / table).read_text(), port)
    inodes.discard(0)
    return sorted(set(_pids_holding(inodes, proc))) if inodes else []


def describe_listener(port: int, proc: Path = _PROC) -> str:
    """'pid 123 (java -cp ...)' for whatever listens on `port`, as far as we can tell."""
    for pid in listener_pids(port, proc):
        cmdline = process_cmdline(pid, proc)
        if cmdline:
            command = " ".join(cmdline)
            if len(command) > 160:
                command = command[:157] + "..."
            return f"pid {pid} ({command})"
    return f"a process this user cannot see (see: ss -ltnp 'sport = :{port}')"


# --- starting and stopping ----------------------------------------------------------------


def start_detached(
    argv: Sequence[str], *, log: Path, cwd: Path, env: Mapping[str, str] | None = None
) -> int:
    """Start a process that outlives us: own session (no signals from our terminal),
    stdin closed, stdout and stderr appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    return child.pid


def wait_for_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap_if_child(pid)
        if not is_alive(pid):
            return True
        time.sleep(0.1)
    return not is_alive(pid)


def _reap_if_child(pid: int) -> None:
    # A process we started ourselves (tests call `up` and `down` in one interpreter) stays a
    # zombie until reaped; reaping it here keeps the pid from lingering.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # Managed processes lead their own session, so their group id is their pid: signalling
    # the group also reaches any workers they forked.
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        return


def stop(spec: ProcessSpec, grace: float) -> int | None:
    """Stop our process (SIGTERM, then SIGKILL after `grace` seconds) and drop its pid file.

    Returns the pid that was stopped, or None when nothing of ours was running.
    """
    pid = running_pid(spec)
    if pid is not None:
        _signal_group(pid, signal.SIGTERM)
        if not wait_for_exit(pid, grace):
            _signal_group(pid, signal.SIGKILL)
            wait_for_exit(pid, 5)
    remove_pid_file(spec.pid_file)
    return pid
