"""Driving `wrk`: a POST script, its run, and what it printed."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.local.errors import PlatformError


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    #: Responses other than 2xx or 3xx, and socket errors of any kind.
    errors: int


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def require_wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise PlatformError("wrk is not installed: `make bench-wrk` installs it (apt-get)")
    return found


def post_script(
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
    bearer_tokens: Sequence[str] = (),
) -> str:
    """A wrk Lua script that POSTs `body` as JSON, with `headers`, on every request; with
    `bearer_tokens`, each request carries the next of them, round and round."""
    header_lines = "".join(
        f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}\n"
        for name, value in (headers or {}).items()
    )
    rotation = ""
    if bearer_tokens:
        listed = ", ".join(json.dumps(token) for token in bearer_tokens)
        rotation = (
            f"local tokens = {{{listed}}}\n"
            "local next = 0\n"
            "request = function()\n"
            "  next = next % #tokens + 1\n"
            '  wrk.headers["Authorization"] = "Bearer " .. tokens[next]\n'
            "  return wrk.format()\n"
            "end\n"
        )
    return (
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"{header_lines}"
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
        f"{rotation}"
    )


def parse_wrk(output: str) -> WrkResult:
    def latency(percent: str) -> float:
        found = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
        if found is None:
            raise PlatformError(f"wrk printed no {percent}% latency:\n{output}")
        return float(found[1]) * _UNITS_MS[found[2]]

    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    total = re.search(r"^\s+(\d+) requests in", output, re.MULTILINE)
    if rate is None or total is None:
        raise PlatformError(f"cannot read wrk's output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = int(non_2xx[1]) if non_2xx else 0
    errors += sum(int(n) for n in sockets.groups()) if sockets else 0
    return WrkResult(float(rate[1]), latency("50"), latency("99"), int(total[1]), errors)


async def run_wrk(
    url: str,
    body: dict[str, Any],
    *,
    duration: float,
    connections: int,
    threads: int,
    headers: dict[str, str] | None = None,
    bearer_tokens: Sequence[str] = (),
) -> WrkResult:
    """`wrk --latency` POSTing `body` (with `headers`, or each of `bearer_tokens` in turn)
    to `url` for `duration` seconds."""
    wrk = require_wrk()
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as directory:
        script = Path(directory) / "post.lua"
        await asyncio.to_thread(script.write_text, post_script(body, headers, bearer_tokens))
        load = [f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency"]
        command = [wrk, *load, "-s", str(script), url]
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        output, _ = await process.communicate()
    text = output.decode(errors="replace")
    if process.returncode != 0:
        raise PlatformError(f"wrk failed (exit {process.returncode}):\n{text}")
    return parse_wrk(text)
