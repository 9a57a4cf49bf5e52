"""The credits consumer alone: how many trainer-led sessions per second its code applies
when nothing else competes, one record per transaction beside batches.

    uv run python bench/credits_consumer.py                  # 4,000 sessions, 3 runs
    uv run python bench/credits_consumer.py --sessions 10000 --batch-sizes 1 100 500 2000

The records are the ones the credits throughput benchmark sends (a package per client, a
booking and a completed trainer-led workout per session), built in memory and handed to
the service's own handlers and store (`credits.handlers.HANDLERS`, `credits.store.LedgerStore`)
on an `IdempotentConsumer`, `--batch-sizes` at a time, on a scratch database with the
credits migrations on the platform's PostgreSQL server: no Kafka, no FastStream, no other
service. It isolates what the credits code itself costs from what the platform around it
costs (see docs/benchmarks.md); one record per batch is the naive floor's transaction pattern
without its offset commits.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Callable

import cli
import discovery
import output
import stats
import workload
from credits_throughput import DiscardedDeadLetters
from statements import StatementProfile

from credits.handlers import HANDLERS as CREDITS_HANDLERS
from credits.store import LedgerStore
from servicekit.consumer import IdempotentConsumer
from servicekit.db import Database
from servicekit.dead_letters import ConsumedRecord
from servicekit.outbox import Outbox


def consumed(records: list[workload.Record]) -> list[ConsumedRecord]:
    return [
        ConsumedRecord(
            topic=record.topic,
            partition=0,
            offset=offset,
            key=record.key,
            value=record.value,
            headers=[],
        )
        for offset, record in enumerate(records)
    ]


async def apply(
    platform: discovery.Platform,
    sessions: int,
    clients: int,
    batch_size: int,
    history: Callable[[discovery.ScratchDatabase], None] | None = None,
    profile: StatementProfile | None = None,
) -> float:
    """Sessions per second for one batch size, on a scratch database of its own (which
    `history` fills first, when given); with `profile`, its statements are timed too."""
    scratch = discovery.ScratchDatabase.beside(
        platform.config, "credits", f"bench_alone_{uuid.uuid4().hex[:8]}"
    )
    admin = platform.admin("credits")
    await asyncio.to_thread(discovery.prepare_database, admin, scratch)
    database = Database(scratch.url, pool_size=2)
    try:
        if history is not None:
            await asyncio.to_thread(history, scratch)
        consumer = IdempotentConsumer(
            name="credits", database=database, dead_letters=DiscardedDeadLetters()
        )
        consumer.handle(LedgerStore(Outbox(source="/bench/alone"), consumer), CREDITS_HANDLERS)
        records = consumed(
            workload.session_records(workload.SessionIds.fresh(clients), sessions, "")
        )
        if profile is not None:
            profile.watch(database.engine)
            await asyncio.to_thread(profile.wal_before, admin)
        began = time.perf_counter()
        for start in range(0, len(records), batch_size):
            outcome = await consumer.process_batch(records[start : start + batch_size])
            if outcome.retry_after is not None:
                raise RuntimeError(f"a batch failed: {outcome.outcomes}")
        rate = sessions / (time.perf_counter() - began)
        if profile is not None:
            await asyncio.to_thread(profile.wal_after, admin)
        return rate
    finally:
        await database.dispose()
        await asyncio.to_thread(discovery.drop, admin, scratch.owner_url)


async def bench(arguments: argparse.Namespace) -> list[dict[int, float]]:
    platform = discovery.find_platform()
    runs = []
    for run in range(1, arguments.runs + 1):
        rates = {}
        for size in arguments.batch_sizes:
            sessions = arguments.sessions if size > 1 else arguments.single_sessions
            rates[size] = await apply(platform, sessions, arguments.clients, size)
            print(f"run {run}, batches of {size}: {rates[size]:,.0f} sessions/s", flush=True)
        runs.append(rates)
    return runs


def main() -> None:
    parser = cli.arguments(__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--sessions", type=int, default=4000, help="sessions per batched run")
    parser.add_argument(
        "--single-sessions", type=int, default=500, help="sessions with one record per batch"
    )
    parser.add_argument("--clients", type=int, default=100, help="clients sharing them")
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", default=[1, 100, 500], help="records per batch"
    )
    arguments = parser.parse_args()
    runs = cli.run(bench(arguments))
    medians = {size: stats.median(run[size] for run in runs) for size in arguments.batch_sizes}
    floor = medians.get(1)
    rows = [
        [f"{size:,}", f"{rate:,.0f}", f"{rate / floor:.1f}x" if floor else ""]
        for size, rate in medians.items()
    ]
    lines = [
        f"{arguments.sessions:,} sessions per batched run ({arguments.single_sessions:,} one "
        f"record per batch), {arguments.clients:,} clients; {arguments.runs} runs, medians; "
        f"{output.machine_summary()}, {output.today()}",
        "",
        *output.table(["records per batch", "sessions/s", "over one per batch"], rows),
    ]
    per_run = [{str(size): rate for size, rate in run.items()} for run in runs]
    median_rates = {str(size): rate for size, rate in medians.items()}
    output.finish(arguments, "credits-consumer", lines, per_run, median_rates, {})


if __name__ == "__main__":
    main()
