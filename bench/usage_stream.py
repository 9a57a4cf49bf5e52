"""How long a logged workout takes to reach a client following their usage's event stream.

    uv run python bench/usage_stream.py                    # 200 samples per run, 3 runs
    uv run python bench/usage_stream.py --samples 50 --runs 1

A fresh client follows `GET /api/analytics/{userId}/session-usage/events` on the analytics
service (one connection, read as it arrives, as a browser would). One sample: `POST
/api/workout/sessions` a completed solo workout for that client on the workouts service, and
wait for the usage event that counts it (`total` one higher). The delay is from the POST's
answer to that event's arrival: the workouts outbox relay, Kafka, the analytics consumer,
its notification at commit, the stream's read of the usage, and the event on the wire.
The time from sending the POST is reported beside it.

Samples are sequential, at low load: nothing else runs but the platform itself. The medians
of the runs' percentiles are reported (p99 is the nearest-rank percentile).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import cli
import discovery
import httpx
import output
import stats
import workload

from contracts.identity import Role
from ops.local.errors import PlatformError
from servicekit.event_stream import StreamMessage, stream_messages

#: "Every change within a second".
TARGET_P99_MS = 1000.0


@dataclass
class Run:
    """One run's samples, in ms: from the POST's answer, and from sending it."""

    after_answer_ms: list[float] = field(default_factory=list)
    after_sending_ms: list[float] = field(default_factory=list)
    timeouts: int = 0

    def figure(self, name: str, percent: float) -> float:
        values: list[float] = getattr(self, name)
        return stats.percentile(values, percent)

    def as_json(self) -> dict[str, Any]:
        return {
            "samples": len(self.after_answer_ms),
            "timeouts": self.timeouts,
            **{
                f"{name}_p{percent}": self.figure(name, percent)
                for name in ("after_answer_ms", "after_sending_ms")
                for percent in (50, 99)
            },
            "after_answer_ms": self.after_answer_ms,
            "after_sending_ms": self.after_sending_ms,
        }


@dataclass
class Follower:
    """The client's event stream, read by a task of its own: each usage event with the
    moment it arrived."""

    arrived: asyncio.Queue[tuple[float, StreamMessage]] = field(default_factory=asyncio.Queue)

    async def read(self, lines: AsyncIterator[str]) -> None:
        async for message in stream_messages(lines):
            if message.is_event:
                await self.arrived.put((time.perf_counter(), message))

    async def total_reaches(self, total: int, within: float) -> float | None:
        """When the usage event with `total` arrived; None if none did within `within` s."""
        try:
            async with asyncio.timeout(within):
                while True:
                    at, message = await self.arrived.get()
                    if message.data is not None and json.loads(message.data)["total"] >= total:
                        return at
        except TimeoutError:
            return None


async def one_run(platform: discovery.Platform, arguments: argparse.Namespace, number: int) -> Run:
    await discovery.settle(
        platform, within=arguments.settle_timeout, names=["workouts", "analytics"]
    )
    client = workload.SessionIds.fresh(1).first_client
    stream_url = f"{platform.base_url('analytics')}/api/analytics/{client}/session-usage/events"
    follower = Follower()
    run = Run()
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(30, read=None)) as stream_client,
        stream_client.stream(
            "GET", stream_url, headers=platform.bearer(Role.CLIENT, client)
        ) as stream,
        httpx.AsyncClient(
            base_url=platform.base_url("workouts"),
            timeout=30,
            headers=platform.bearer(Role.CLIENT, client),
        ) as workouts,
    ):
        if stream.status_code != 200:
            raise PlatformError(f"the usage stream answered {stream.status_code}")
        reader = asyncio.create_task(follower.read(stream.aiter_lines()))
        try:
            if await follower.total_reaches(0, arguments.sample_timeout) is None:
                raise PlatformError("the usage stream sent no usage at once")
            for sample in range(1, arguments.samples + 1):
                body = {**workload.solo_workout(client), "title": f"Sample {sample}"}
                sent = time.perf_counter()
                response = await workouts.post("/api/workout/sessions", json=body)
                answered = time.perf_counter()
                if response.status_code != 201:
                    raise PlatformError(
                        f"POST /api/workout/sessions answered {response.status_code}: "
                        f"{response.text}"
                    )
                arrived = await follower.total_reaches(sample, arguments.sample_timeout)
                if arrived is None:
                    run.timeouts += 1
                else:
                    run.after_answer_ms.append((arrived - answered) * 1000)
                    run.after_sending_ms.append((arrived - sent) * 1000)
                output.status(f"run {number}: {sample} of {arguments.samples} samples")
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    output.clear_status()
    print(
        f"run {number}: p50 {run.figure('after_answer_ms', 50):.1f} ms, "
        f"p99 {run.figure('after_answer_ms', 99):.1f} ms after the POST's answer"
    )
    return run


async def bench(arguments: argparse.Namespace) -> list[Run]:
    platform = discovery.find_platform()
    await discovery.require_ready(platform, ["workouts", "analytics"])
    return [await one_run(platform, arguments, n) for n in range(1, arguments.runs + 1)]


def medians(runs: list[Run]) -> dict[str, float]:
    return {
        f"{name}_p{percent}": stats.median(r.figure(name, percent) for r in runs)
        for name in ("after_answer_ms", "after_sending_ms")
        for percent in (50, 99)
    }


def report(runs: list[Run], arguments: argparse.Namespace) -> list[str]:
    summary = medians(runs)
    met = summary["after_answer_ms_p99"] <= TARGET_P99_MS
    lines = [
        f"{arguments.samples} sequential samples per run, {len(runs)} runs, medians; low load; "
        f"{output.machine_summary()}, {output.today()}",
        "",
        *output.table(
            ["from", "p50", "p99", "target", "met"],
            [
                [
                    "the POST's answer",
                    f"{summary['after_answer_ms_p50']:.1f} ms",
                    f"{summary['after_answer_ms_p99']:.1f} ms",
                    f"p99 ≤ {TARGET_P99_MS:g} ms",
                    output.verdict(met),
                ],
                [
                    "sending the POST",
                    f"{summary['after_sending_ms_p50']:.1f} ms",
                    f"{summary['after_sending_ms_p99']:.1f} ms",
                    "",
                    "",
                ],
            ],
            align="lrrll",
        ),
        "",
        *output.table(
            ["run", "p50", "p99", "max", "timeouts"],
            [
                [
                    str(n),
                    f"{r.figure('after_answer_ms', 50):.1f}",
                    f"{r.figure('after_answer_ms', 99):.1f}",
                    f"{max(r.after_answer_ms, default=float('nan')):.1f}",
                    str(r.timeouts),
                ]
                for n, r in enumerate(runs, 1)
            ],
        ),
    ]
    timeouts = sum(r.timeouts for r in runs)
    if timeouts:
        lines += [
            "",
            f"{timeouts} sample(s) saw no event within {arguments.sample_timeout:g} s and "
            "are left out.",
        ]
    return lines


def main() -> None:
    parser = cli.arguments(__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=cli.positive, default=200, help="samples per run")
    parser.add_argument(
        "--sample-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="longest wait for one sample's event",
    )
    arguments = parser.parse_args()
    runs = cli.run(bench(arguments))
    output.finish(
        arguments,
        "usage-stream",
        report(runs, arguments),
        [r.as_json() for r in runs],
        medians(runs),
        {"after_answer_p99_ms": TARGET_P99_MS},
    )


if __name__ == "__main__":
    main()
