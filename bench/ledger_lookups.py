"""What credits' per-batch ledger lookups cost as the ledger grows: a first point of the
cost curve, the database alone.

    uv run python bench/ledger_lookups.py                        # 100k, 1M and 3M entries
    uv run python bench/ledger_lookups.py --entries 100000,1000000 --runs 1

Each run fills a scratch database with the credits migrations on the platform's PostgreSQL
(no Kafka, no service process) with a ledger of N entries, one in ten a purchase's grant
and the rest deductions of 5,000 clients (one INSERT … SELECT, then VACUUM ANALYZE), and
times, through the service's own statements on its runtime role, the two lookups every
batch runs against the whole ledger: the grants of a batch's purchases
(`credits.store.grants_of_purchases`, 50 purchases) and the entries of a batch's sessions
(`credits.store.entries_of_sessions`, the 250 newest sessions: a batch completes sessions
booked lately, and session ids grow); beside the latter, the lookup it replaced, 500
entries by their ids (random UUIDs, all over the primary key). Reported: the median of
`--lookups` of each per size, and the ratio of the largest ledger's median to the
smallest's (a flat curve is 1).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

import cli
import discovery
import output
import psycopg
import stats
from sqlalchemy import select, union_all
from sqlalchemy.dialects.postgresql import UUID

from credits.models import LedgerEntry
from credits.store import entries_of_sessions, grants_of_purchases
from servicekit.db import any_of, libpq_url
from testkit.plans import as_sent

GRANT_EVERY = 10
CLIENTS = 5_000
PURCHASES_PER_BATCH = 50
ENTRIES_PER_BATCH = 500
SESSIONS_PER_BATCH = 250
TARGET_GROWTH = 1.1
#: What each size reports; the lookup by ids is the one the sessions' replaced, for contrast.
MEASURES = ("purchases_ms", "sessions_ms", "entries_by_id_ms")


def fill(owner_url: str, entries: int) -> None:
    with psycopg.connect(libpq_url(owner_url), autocommit=True) as connection:
        connection.execute("truncate ledger_entries")
        connection.execute(
            "insert into ledger_entries"
            " (id, user_id, kind, amount, purchase_id, session_id, caused_by)"
            " select md5('entry' || n)::uuid, n %% %(clients)s + 1,"
            "   case when n %% %(every)s = 0 then 'grant' else 'deduction' end,"
            "   case when n %% %(every)s = 0 then 10 else -1 end,"
            "   case when n %% %(every)s = 0 then 'purchase-' || n end,"
            "   case when n %% %(every)s <> 0 then n end, 'bench'"
            " from generate_series(1, %(entries)s) as n",
            {"clients": CLIENTS, "every": GRANT_EVERY, "entries": entries},
        )
        connection.execute("vacuum analyze ledger_entries")


def timed(url: str, statement: Any, lookups: int) -> float:
    """Median milliseconds of `lookups` runs of `statement` on one connection."""
    query, params = as_sent(statement)
    times = []
    with psycopg.connect(libpq_url(url)) as connection:
        for _ in range(lookups):
            began = time.perf_counter()
            connection.execute(query, params).fetchall()
            times.append((time.perf_counter() - began) * 1000)
            connection.rollback()
    return stats.median(times)


def measure_size(scratch: discovery.ScratchDatabase, entries: int, lookups: int) -> dict[str, Any]:
    fill(scratch.owner_url, entries)
    # Every GRANT_EVERY-th entry is a grant: purchases spread over the whole ledger.
    step = max(1, entries // PURCHASES_PER_BATCH // GRANT_EVERY) * GRANT_EVERY
    grants = [f"purchase-{n}" for n in range(GRANT_EVERY, entries + 1, step)]
    grants = grants[:PURCHASES_PER_BATCH]
    with psycopg.connect(libpq_url(scratch.url)) as connection:
        sample = connection.execute(
            "select id from ledger_entries tablesample system (1) limit %s",
            (ENTRIES_PER_BATCH,),
        ).fetchall()
        newest = connection.execute(
            "select session_id from ledger_entries where kind = 'deduction'"
            " order by session_id desc limit %s",
            (SESSIONS_PER_BATCH,),
        ).fetchall()
    ids = [row[0] for row in sample]
    sessions = union_all(*entries_of_sessions([row[0] for row in newest]))
    table = LedgerEntry.__table__.c
    by_id = select(table.id, table.user_id, table.amount).where(
        table.id == any_of(ids, UUID(as_uuid=True))
    )
    return {
        "entries": entries,
        "purchases_ms": timed(scratch.url, grants_of_purchases(grants), lookups),
        "sessions_ms": timed(scratch.url, sessions, lookups),
        "entries_by_id_ms": timed(scratch.url, by_id, lookups),
        "ids_looked_up": len(ids),
    }


async def bench(arguments: argparse.Namespace) -> list[dict[str, Any]]:
    platform = discovery.find_platform()
    admin = platform.admin("credits")
    runs = []
    for run in range(1, arguments.runs + 1):
        scratch = discovery.ScratchDatabase.beside(
            platform.config, "credits", f"bench_ledger_{uuid.uuid4().hex[:8]}"
        )
        await asyncio.to_thread(discovery.prepare_database, admin, scratch)
        try:
            sizes = []
            for entries in arguments.entries:
                output.status(f"run {run}: a ledger of {entries:,} entries")
                sizes.append(
                    await asyncio.to_thread(measure_size, scratch, entries, arguments.lookups)
                )
            output.clear_status()
            runs.append({"sizes": sizes})
        finally:
            await asyncio.to_thread(discovery.drop, admin, scratch.owner_url)
    return runs


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    sizes = [size["entries"] for size in runs[0]["sizes"]]
    table: dict[str, Any] = {}
    for index, entries in enumerate(sizes):
        table[str(entries)] = {
            key: stats.median(run["sizes"][index][key] for run in runs) for key in MEASURES
        }
    first, last = table[str(sizes[0])], table[str(sizes[-1])]
    table["growth"] = {key: last[key] / first[key] for key in first}
    return table


def report(found: dict[str, Any], arguments: argparse.Namespace) -> list[str]:
    rows = [
        [f"{int(size):,}", *(f"{figures[key]:.2f}" for key in MEASURES)]
        for size, figures in found.items()
        if size != "growth"
    ]
    growth = found["growth"]
    rows.append(["largest / smallest", *(f"{growth[key]:.2f}" for key in MEASURES)])
    return [
        f"credits' per-batch ledger lookups; {arguments.lookups} lookups per size, "
        f"medians of {arguments.runs} runs; {output.machine_summary()}",
        "",
        *output.table(
            [
                "ledger entries",
                f"{PURCHASES_PER_BATCH} purchases' grants, ms",
                f"{SESSIONS_PER_BATCH} sessions' entries, ms",
                f"(before: {ENTRIES_PER_BATCH} entries by id, ms)",
            ],
            rows,
            align="rrrr",
        ),
        "",
        f"the service's lookups flat (largest / smallest ≤ {TARGET_GROWTH}): "
        + output.verdict(max(growth[key] for key in MEASURES[:2]) <= TARGET_GROWTH),
    ]


def sizes(text: str) -> list[int]:
    return sorted(cli.positive(part) for part in text.split(","))


def main() -> None:
    parser = cli.arguments(__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--entries", type=sizes, default=[100_000, 1_000_000, 3_000_000])
    parser.add_argument("--lookups", type=cli.positive, default=50)
    arguments = parser.parse_args()
    runs = cli.run(bench(arguments))
    found = medians(runs)
    output.finish(
        arguments,
        "ledger_lookups",
        report(found, arguments),
        runs,
        found,
        {"largest_over_smallest": TARGET_GROWTH},
    )


if __name__ == "__main__":
    main()
