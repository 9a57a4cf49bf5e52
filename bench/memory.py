"""Each service's resident memory, idle and at its peak under load.

    uv run python bench/memory.py                      # 10,000 sessions and 30 s of wrk, 3 runs
    uv run python bench/memory.py --sessions 2000 --duration 5 --runs 1

Reads VmRSS from /proc/<pid>/status of each service process `make up` started (pids from
.local/run/<service>.pid). Idle: the median of 10 readings 100 ms apart on a settled
platform. Under load: the highest reading, sampled every 100 ms, while the credits
throughput load (`--sessions` trainer-led sessions, as bench/credits_throughput.py sends
them) and wrk POSTing solo workouts to the workouts API run together, and until the
platform has caught up with them (at most `--settle-timeout`). Medians of the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import random
from dataclasses import dataclass
from typing import Any

import cli
import discovery
import output
import stats
import workload
import wrk

from contracts.identity import Role
from ops.local.errors import PlatformError

TARGET_MIB = 150.0
SAMPLE_INTERVAL = 0.1
IDLE_READINGS = 10


def rss_kib(pid: int) -> int | None:
    """The process's resident set size in KiB (/proc reports it as kB), None when gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def service_pids(platform: discovery.Platform) -> dict[str, int]:
    pids = {}
    for name in discovery.SERVICE_NAMES:
        pid = platform.pid(name)
        if pid is None:
            raise PlatformError(
                f"{name} has no running process (pid file {platform.paths.pid_file(name)}): "
                "start the platform with `make up`"
            )
        pids[name] = pid
    return pids


def read_all(pids: dict[str, int]) -> dict[str, int]:
    readings = {name: rss_kib(pid) for name, pid in pids.items()}
    gone = [name for name, reading in readings.items() if reading is None]
    if gone:
        raise PlatformError(f"{', '.join(gone)} exited while being measured")
    return {name: reading for name, reading in readings.items() if reading is not None}


async def idle(pids: dict[str, int]) -> dict[str, float]:
    readings: list[dict[str, int]] = []
    for _ in range(IDLE_READINGS):
        readings.append(read_all(pids))
        await asyncio.sleep(SAMPLE_INTERVAL)
    return {name: stats.median(r[name] for r in readings) / 1024 for name in pids}


async def peaks(pids: dict[str, int], stop: asyncio.Event) -> dict[str, float]:
    """The highest reading of each process, every SAMPLE_INTERVAL until `stop`."""
    highest = dict.fromkeys(pids, 0)
    while True:
        for name, reading in read_all(pids).items():
            highest[name] = max(highest[name], reading)
        if stop.is_set():
            return {name: kib / 1024 for name, kib in highest.items()}
        await asyncio.sleep(SAMPLE_INTERVAL)


@dataclass(frozen=True)
class Run:
    idle: dict[str, float]
    peak: dict[str, float]
    delivery: workload.Delivery
    wrk: wrk.WrkResult

    def as_json(self) -> dict[str, Any]:
        return {
            "idle_mib": self.idle,
            "peak_mib": self.peak,
            "sessions_deducted": self.delivery.deducted,
            "sessions_per_s": self.delivery.rate,
            "wrk_requests_per_s": self.wrk.requests_per_second,
        }


async def one_run(platform: discovery.Platform, arguments: argparse.Namespace, number: int) -> Run:
    await discovery.settle(platform, within=arguments.settle_timeout)
    pids = service_pids(platform)
    resting = await idle(pids)
    stop = asyncio.Event()
    sampler = asyncio.create_task(peaks(pids, stop))
    client = random.randrange(workload.FIRST_BENCH_ID, workload.ID_SPAN)
    body = workload.solo_workout(client)
    try:
        delivery, posted = await asyncio.gather(
            workload.deliver_sessions(
                platform, arguments.sessions, arguments.clients, within=arguments.timeout
            ),
            wrk.run_wrk(
                platform.base_url("workouts") + "/api/workout/sessions",
                body,
                duration=arguments.duration,
                connections=arguments.connections,
                threads=arguments.threads,
                headers=platform.bearer(Role.CLIENT, client),
            ),
        )
        await discovery.settle(platform, within=arguments.settle_timeout)
    finally:
        stop.set()
        highest = await sampler
    figures = ", ".join(f"{name} {resting[name]:.0f} → {highest[name]:.0f} MiB" for name in pids)
    print(
        f"run {number}: {figures} ({delivery.deducted:,} sessions deducted, "
        f"{posted.requests:,} workouts posted)"
    )
    return Run(resting, highest, delivery, posted)


async def bench(arguments: argparse.Namespace) -> list[Run]:
    platform = discovery.find_platform()
    await discovery.require_ready(platform)
    wrk.require_wrk()
    return [await one_run(platform, arguments, n) for n in range(1, arguments.runs + 1)]


def medians(runs: list[Run]) -> dict[str, dict[str, float]]:
    return {
        name: {
            "idle_mib": stats.median(r.idle[name] for r in runs),
            "peak_mib": stats.median(r.peak[name] for r in runs),
        }
        for name in discovery.SERVICE_NAMES
    }


def report(runs: list[Run], arguments: argparse.Namespace) -> list[str]:
    summary = medians(runs)
    return [
        f"VmRSS idle, and at its peak under {arguments.sessions:,} trainer-led sessions plus "
        f"wrk -t{arguments.threads} -c{arguments.connections} -d{arguments.duration:g}s on "
        f"POST /api/workout/sessions; {len(runs)} runs, medians; {output.machine_summary()}, "
        f"{output.today()}",
        "",
        *output.table(
            ["service", "idle", "peak under load", "target", "met"],
            [
                [
                    name,
                    f"{figures['idle_mib']:.1f} MiB",
                    f"{figures['peak_mib']:.1f} MiB",
                    f"≤ {TARGET_MIB:g} MiB",
                    output.verdict(figures["peak_mib"] <= TARGET_MIB),
                ]
                for name, figures in summary.items()
            ],
            align="lrrrl",
        ),
        "",
        *output.table(
            ["run", *(f"{name} idle → peak" for name in discovery.SERVICE_NAMES)],
            [
                [
                    str(n),
                    *(
                        f"{r.idle[name]:.0f} → {r.peak[name]:.0f} MiB"
                        for name in discovery.SERVICE_NAMES
                    ),
                ]
                for n, r in enumerate(runs, 1)
            ],
        ),
    ]


def main() -> None:
    parser = cli.arguments(__doc__.split("\n\n")[0])
    cli.session_arguments(parser, sessions=10_000)
    cli.wrk_arguments(parser, duration=30.0)
    arguments = parser.parse_args()
    runs = cli.run(bench(arguments))
    output.finish(
        arguments,
        "memory",
        report(runs, arguments),
        [r.as_json() for r in runs],
        medians(runs),
        {name: {"peak_mib": TARGET_MIB} for name in discovery.SERVICE_NAMES},
    )


if __name__ == "__main__":
    main()
