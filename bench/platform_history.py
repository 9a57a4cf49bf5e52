"""The platform on a history: credits' rate end to end and the latency of a deduction, all
four services running, with credits' database holding a history.

    uv run python bench/platform_history.py                        # 0 and 10M events, 3 runs
    uv run python bench/platform_history.py --history 0 1000000 --runs 1 --sessions 5000
    uv run python bench/platform_history.py --chart docs/platform-curve   # two PNGs

Each history size gets a scratch database beside credits' own, filled once as the service
would have written it (`credits_history.filler`). In each run, for each size in turn (in
reverse order every other run), the platform's credits is stopped and started again on that
database, with its own topics, consumer group and principal, the other services as they are.
Then it is measured: `--sessions` trainer-led sessions end to end (as
`credits_throughput.py` measures them), then latency samples at low load and with a
background load (as `latency.py` takes them).

At the end credits goes back to its own database with its consumer group's offsets where
they were before the first switch, so that its own database catches up on what was sent
meanwhile. It reads its ledger topic first, so the deductions announced from the scratch
databases are recorded as they were announced, under the same ids. The scratch databases are
then dropped.

What grows with history on this path is the database: a topic's older records are read only
by a replay or a rebuild (`bench/rebuild.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import chart
import cli
import discovery
import latency
import output
import stats
import workload
from aiokafka.structs import TopicPartition
from credits_history import TARGET_OF_EMPTY, filler

from contracts.services import service_named
from ops.groups import kafka_consumer
from ops.local import operations
from ops.local.config import config_from_env
from testkit.helpers import committed_offsets

CREDITS = "credits"


@dataclass(frozen=True)
class Measurement:
    rate: float
    low: latency.Phase
    loaded: latency.Phase


async def commit(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Put `group` back at `offsets`; its service must be stopped (Kafka refuses a commit
    from outside a group that has members)."""
    async with kafka_consumer(bootstrap, group) as consumer:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)


def on_database(
    platform: discovery.Platform, scratch: discovery.ScratchDatabase
) -> tuple[discovery.Platform, dict[str, str]]:
    """The platform as it is but for credits' database, and the environment that says so."""
    service = service_named(CREDITS)
    env = {
        **os.environ,
        service.database_url_env: scratch.url,
        service.owner_database_url_env: scratch.owner_url,
    }
    return discovery.Platform(config_from_env(env, platform.paths), platform.prefix), env


@asynccontextmanager
async def credits_kept_in_place(platform: discovery.Platform) -> AsyncIterator[None]:
    """Whatever credits runs on inside the block, it runs on its own database after it, from
    its group's offsets of before the block."""
    group = platform.group(CREDITS)
    before = await committed_offsets(platform.bootstrap, group)
    try:
        yield
    finally:
        await operations.control(platform.config, CREDITS, os.environ, output.status).stop()
        await commit(platform.bootstrap, group, before)
        await operations.control(platform.config, CREDITS, os.environ, output.status).start()
        output.clear_status()
        left = await discovery.settle(platform, within=600)
        print(f"credits is back on its own database; {left:,} records or outbox rows left")


async def measure(
    platform: discovery.Platform,
    env: dict[str, str],
    arguments: argparse.Namespace,
    samples: argparse.Namespace,
    run: int,
    events: int,
) -> Measurement:
    """Credits started afresh on `platform`'s database for it, then its rate end to end and
    the latency samples."""
    label = f"run {run}, history of {events:,} events"
    control = operations.control(platform.config, CREDITS, env, output.status)
    await control.stop()
    await control.start()
    output.clear_status()
    await discovery.settle(platform, within=arguments.settle_timeout)
    delivery = await workload.deliver_sessions(
        platform, arguments.sessions, arguments.clients, within=arguments.timeout
    )
    if not delivery.complete:
        print(f"  {label}: timed out with {delivery.deducted:,} of {arguments.sessions:,}")
    print(f"  {label}: {delivery.rate:,.0f} sessions/s end to end")
    sampled = await latency.one_run(platform, samples, arguments.background_rate, run)
    return Measurement(delivery.rate, sampled.low, sampled.loaded)


async def bench(arguments: argparse.Namespace) -> list[dict[int, Measurement]]:
    platform = discovery.find_platform()
    await discovery.require_ready(platform)
    admin = platform.admin(CREDITS)
    scratches = {
        events: discovery.ScratchDatabase.beside(
            platform.config, CREDITS, f"bench_platform_history_{events}"
        )
        for events in arguments.history
    }
    samples = latency.parser().parse_args(
        [
            "--samples",
            str(arguments.samples),
            "--settle-timeout",
            str(arguments.settle_timeout),
        ]
    )
    runs: list[dict[int, Measurement]] = []
    try:
        for events, scratch in scratches.items():
            print(f"history of {events:,} events: a scratch database for credits")
            await asyncio.to_thread(discovery.prepare_database, admin, scratch)
            await asyncio.to_thread(filler(events, admin), scratch)
        async with credits_kept_in_place(platform):
            for run in range(1, arguments.runs + 1):
                order = arguments.history if run % 2 else arguments.history[::-1]
                measured = {}
                for events in order:
                    on_history, env = on_database(platform, scratches[events])
                    measured[events] = await measure(
                        on_history, env, arguments, samples, run, events
                    )
                runs.append(measured)
    finally:
        for scratch in scratches.values():
            await asyncio.to_thread(discovery.drop, admin, scratch.owner_url)
    return runs


RATE, LOW_P50 = "sessions/s end to end", "latency at low load, p50 ms"
FIGURES: dict[str, Callable[[Measurement], float]] = {
    RATE: lambda m: m.rate,
    LOW_P50: lambda m: m.low.p50,
    "latency at low load, p99 ms": lambda m: m.low.p99,
    "latency with a background load, p50 ms": lambda m: m.loaded.p50,
    "latency with a background load, p99 ms": lambda m: m.loaded.p99,
}


def medians(runs: list[dict[int, Measurement]]) -> dict[str, dict[int, float]]:
    """Each figure's median per history size."""
    return {
        figure: {events: stats.median(of(run[events]) for run in runs) for events in runs[0]}
        for figure, of in FIGURES.items()
    }


def report(runs: list[dict[int, Measurement]], arguments: argparse.Namespace) -> list[str]:
    sizes = sorted(arguments.history)
    medians_of = medians(runs)
    rates = medians_of[RATE]
    empty, largest = rates[min(sizes)], rates[max(sizes)]
    rows = [
        [figure, *(f"{by_size[events]:,.1f}" for events in sizes)]
        for figure, by_size in medians_of.items()
    ]
    return [
        f"all four services, credits on a history; {arguments.sessions:,} sessions of "
        f"{arguments.clients:,} clients end to end, {arguments.samples} latency samples per "
        f"load ({arguments.background_rate:g} sessions/s in the background); "
        f"{len(runs)} runs, medians; {output.machine_summary()}, {output.today()}",
        "",
        *output.table(
            ["history, events", *(f"{events:,}" for events in sizes)],
            rows,
            align="l" + "r" * len(sizes),
        ),
        "",
        f"the largest history's rate ≥ {TARGET_OF_EMPTY} of the empty one's "
        f"({largest / empty:.3f}): " + output.verdict(largest / empty >= TARGET_OF_EMPTY),
    ]


def draw(runs: list[dict[int, Measurement]], stem: Path) -> list[Path]:
    """Two curves against history: the rate end to end, and latency at low load (p50)."""
    medians_of = medians(runs)
    p50 = latency.TARGET_P50_MS
    curves = {
        RATE: ("rate", chart.rate_target(medians_of[RATE], TARGET_OF_EMPTY)),
        LOW_P50: ("latency", (p50, f"target: p50 ≤ {p50:g} ms")),
    }
    drawn = []
    for figure, (name, target) in curves.items():
        of = FIGURES[figure]
        per_run = [{events: of(m) for events, m in run.items()} for run in runs]
        title = f"The platform, credits on a history: {figure} ({output.today()})"
        path = stem.with_name(f"{stem.name}-{name}.png")
        svg = chart.cost_curve_svg(title, per_run, medians_of[figure], target, figure)
        chart.save_png(svg, path)
        drawn.append(path)
    return drawn


def main() -> None:
    parser = cli.arguments(__doc__.split("\n\n")[0] if __doc__ else "")
    cli.history_arguments(
        parser,
        default=[0, 10_000_000],
        help="events of history in credits' database, one measurement each",
    )
    cli.session_arguments(parser, sessions=10_000)
    parser.add_argument("--samples", type=cli.positive, default=100, help="latency samples")
    parser.add_argument(
        "--background-rate",
        type=float,
        default=200.0,
        metavar="SESSIONS_PER_S",
        help="the latency's background load",
    )
    parser.add_argument(
        "--chart",
        type=Path,
        metavar="STEM",
        help="draw STEM-rate.png and STEM-latency.png (headless Chromium)",
    )
    arguments = parser.parse_args()
    runs = cli.run(bench(arguments))
    if arguments.chart is not None:
        for path in draw(runs, arguments.chart):
            print(f"chart drawn in {path}")
    output.finish(
        arguments,
        "platform-history",
        report(runs, arguments),
        [
            {str(events): {f: of(m) for f, of in FIGURES.items()} for events, m in run.items()}
            for run in runs
        ],
        {
            figure: {str(events): value for events, value in by_size.items()}
            for figure, by_size in medians(runs).items()
        },
        {"largest_of_empty": TARGET_OF_EMPTY},
    )


if __name__ == "__main__":
    main()
