"""Requests per second and p99 latency of the workouts service's `POST
/api/workout/sessions` under load, beside a bare FastAPI + psycopg insert endpoint.

    uv run python bench/http_load.py                       # wrk -t2 -c32 -d15s, 3 runs
    uv run python bench/http_load.py --duration 5 --runs 1 --json http.json

`wrk --latency` POSTs the same solo workout (free: no booking, no credit) again and again:
first to the running workouts service, then to `bench/bare_api.py` (`make bench-wrk`
installs wrk). The bare endpoint runs as a process of the benchmark's own (uvicorn with
uvloop and httptools, one worker, on a free port) against a scratch database it creates
and drops. Each run measures the service, then the bare endpoint, each after a short
warm-up and on a settled platform; the medians of the runs are reported with the median
of the per-run ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import common
import httpx

from ops.local.errors import PlatformError
from servicekit.db import libpq_url

TARGET_RPS = 1_000.0
TARGET_P99_MS = 50.0
TARGET_OF_BARE = 0.7
PATH = "/api/workout/sessions"
BARE_API = Path(__file__).with_name("bare_api.py")
BARE_READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Run:
    service: common.WrkResult
    bare: common.WrkResult

    @property
    def of_bare(self) -> float:
        return self.service.requests_per_second / self.bare.requests_per_second

    def as_json(self) -> dict[str, Any]:
        return {"service": asdict(self.service), "bare": asdict(self.bare), "of_bare": self.of_bare}


@asynccontextmanager
async def bare_endpoint(platform: common.Platform) -> AsyncIterator[str]:
    """Serve bench/bare_api.py on a free port against a scratch database (beside the
    workouts database, owned by its role); yields the endpoint's URL. Both go at the end."""
    url = common.scratch_url(platform.config, "workouts", f"bench_bare_{uuid.uuid4().hex[:8]}")
    admin = platform.admin("workouts")
    port = common.free_port()
    log = platform.paths.log("bench-bare")
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "BENCH_BARE_DATABASE_URL": libpq_url(url)}
    try:
        await asyncio.to_thread(common.prepare_database, admin, "workouts", url, migrate=False)
        with log.open("ab") as output:
            process = await asyncio.create_subprocess_exec(
                sys.executable, str(BARE_API), "--port", str(port),
                env=env, stdout=output, stderr=output, start_new_session=True,
            )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_until_serving(base, process, log)
            yield base + PATH
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 30)
                except TimeoutError:
                    process.kill()
                    await process.wait()
    finally:
        await asyncio.to_thread(common.drop, admin, url)


async def wait_until_serving(base: str, process: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + BARE_READY_TIMEOUT
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if process.returncode is not None:
                raise PlatformError(f"the bare endpoint exited: read {log}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(base + "/health")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise PlatformError(f"the bare endpoint did not answer within 60 s: read {log}")
            await asyncio.sleep(0.2)


async def load(url: str, body: dict[str, Any], arguments: argparse.Namespace) -> common.WrkResult:
    if arguments.warmup > 0:
        await common.run_wrk(
            url, body, duration=arguments.warmup,
            connections=arguments.connections, threads=arguments.threads,
        )  # fmt: skip
    return await common.run_wrk(
        url, body, duration=arguments.duration,
        connections=arguments.connections, threads=arguments.threads,
    )  # fmt: skip


def describe(result: common.WrkResult) -> str:
    errors = f", {result.errors:,} errors" if result.errors else ""
    return (
        f"{result.requests_per_second:,.0f} requests/s, p50 {result.p50_ms:.1f} ms, "
        f"p99 {result.p99_ms:.1f} ms ({result.requests:,} requests{errors})"
    )


async def bench(arguments: argparse.Namespace) -> list[Run]:
    platform = common.find_platform()
    await common.require_ready(platform, ["workouts"])
    common.require_wrk()
    body = common.solo_workout(random.randrange(common.FIRST_BENCH_ID, common.ID_SPAN))
    service_url = platform.base_url("workouts") + PATH
    runs = []
    async with bare_endpoint(platform) as bare_url:
        for number in range(1, arguments.runs + 1):
            await common.settle(platform, within=arguments.settle_timeout)
            service = await load(service_url, body, arguments)
            print(f"run {number}, workouts service: {describe(service)}")
            await common.settle(platform, within=arguments.settle_timeout)
            bare = await load(bare_url, body, arguments)
            print(f"run {number}, bare endpoint: {describe(bare)}")
            runs.append(Run(service, bare))
    return runs


def medians(runs: list[Run]) -> dict[str, float]:
    return {
        "service_rps": common.median(r.service.requests_per_second for r in runs),
        "service_p50_ms": common.median(r.service.p50_ms for r in runs),
        "service_p99_ms": common.median(r.service.p99_ms for r in runs),
        "bare_rps": common.median(r.bare.requests_per_second for r in runs),
        "bare_p50_ms": common.median(r.bare.p50_ms for r in runs),
        "bare_p99_ms": common.median(r.bare.p99_ms for r in runs),
        "service_of_bare": common.median(r.of_bare for r in runs),
    }


def report(runs: list[Run], arguments: argparse.Namespace) -> list[str]:
    summary = medians(runs)
    service_met = (
        summary["service_rps"] >= TARGET_RPS and summary["service_p99_ms"] <= TARGET_P99_MS
    )
    errors = sum(r.service.errors + r.bare.errors for r in runs)
    lines = [
        f"POST {PATH}, wrk -t{arguments.threads} -c{arguments.connections} "
        f"-d{arguments.duration:g}s (after {arguments.warmup:g} s of warm-up), {len(runs)} runs, "
        f"medians; {common.machine_summary()}, {common.today()}",
        "",
        *common.table(
            ["endpoint", "requests/s", "p50", "p99", "target", "met"],
            [
                [
                    "workouts service",
                    f"{summary['service_rps']:,.0f}",
                    f"{summary['service_p50_ms']:.1f} ms",
                    f"{summary['service_p99_ms']:.1f} ms",
                    f"≥ {TARGET_RPS:,.0f} rps, p99 ≤ {TARGET_P99_MS:g} ms",
                    common.verdict(service_met),
                ],
                [
                    "bare FastAPI + psycopg insert",
                    f"{summary['bare_rps']:,.0f}",
                    f"{summary['bare_p50_ms']:.1f} ms",
                    f"{summary['bare_p99_ms']:.1f} ms",
                    "",
                    "",
                ],
                [
                    "service / bare",
                    f"{summary['service_of_bare']:.2f}",
                    "",
                    "",
                    f"≥ {TARGET_OF_BARE:g}",
                    common.verdict(summary["service_of_bare"] >= TARGET_OF_BARE),
                ],
            ],
            align="lrrrll",
        ),
        "",
        *common.table(
            ["run", "service rps", "service p99", "bare rps", "bare p99", "service / bare"],
            [
                [
                    str(n),
                    f"{r.service.requests_per_second:,.0f}",
                    f"{r.service.p99_ms:.1f} ms",
                    f"{r.bare.requests_per_second:,.0f}",
                    f"{r.bare.p99_ms:.1f} ms",
                    f"{r.of_bare:.2f}",
                ]
                for n, r in enumerate(runs, 1)
            ],
        ),
    ]
    if errors:
        lines += [
            "",
            f"{errors:,} responses were errors (non-2xx or socket errors): read "
            ".local/log/workouts.log and .local/log/bench-bare.log.",
        ]
    return lines


def main() -> None:
    parser = common.arguments(__doc__.split("\n\n")[0])
    common.wrk_arguments(parser, duration=15.0)
    parser.add_argument(
        "--warmup", type=float, default=2.0, metavar="SECONDS",
        help="wrk before each measurement, not counted (0: none)",
    )  # fmt: skip
    arguments = parser.parse_args()
    runs = common.run(bench(arguments))
    common.finish(
        arguments,
        "http",
        report(runs, arguments),
        [r.as_json() for r in runs],
        medians(runs),
        {
            "service_rps": TARGET_RPS,
            "service_p99_ms": TARGET_P99_MS,
            "service_of_bare": TARGET_OF_BARE,
        },
    )


if __name__ == "__main__":
    main()
