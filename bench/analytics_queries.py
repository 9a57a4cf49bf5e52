"""Analytics on a large history: how fast a client's usage over a year and the studio-wide
figure for a year answer, with 1,000,000 workouts of 10,000 clients.

    uv run python bench/analytics_queries.py                 # 1,000,000 workouts, 3 runs
    uv run python bench/analytics_queries.py --workouts 200000 --clients 2000 --runs 1

Each run fills a scratch database with the analytics migrations on the platform's PostgreSQL
server (nothing else of the platform is used: no Kafka, no service process) as the service
would have written it: the workouts (one INSERT … SELECT of them all, set-wise on the
server), then what the service keeps beside them in the same transactions (each client's
usage row, the studio's completed workouts per day), then VACUUM ANALYZE (what autovacuum
does to a table that stops changing). Workouts fall on random moments of 2026; 85% are
completed, the rest planned or skipped; 55% solo, 25% trainer-led, 10% trainer-assisted, 10%
group. It then times, through the service's own query code (`analytics.queries`) on the
service's runtime role, `--client-queries` usages of random clients over 2026 and
`--studio-queries` studio-wide answers over 2026 (with the weeks), and the same through the
HTTP endpoints called in-process (the service's app without its consumer: FastAPI, the
token's check, the JSON), one request at a time; and, for comparison, `--scan-queries`
studio-wide years counted from the workouts themselves, as before `workout_days`. Reported:
p50 and p99 of each, the medians over the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import cli
import discovery
import output
import psycopg
import stats
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text

from analytics.main import create_app
from analytics.queries import studio_usage, usage_between
from analytics.rules import DateRange
from analytics.settings import Settings
from contracts.identity import Role
from servicekit.db import Database, libpq_url

YEAR = DateRange.between("2026-01-01", "2026-12-31")
TARGETS_MS = {"client": 20.0, "studio": 200.0}

FILL = [
    # The workouts, as the service writes them (the trainer only where the type names one).
    "insert into workouts"
    " (workout_id, user_id, session_type, status, changed_by, workout_date, trainer_id)"
    " select gen_random_uuid(), 1 + (hashint4(n) & 2147483647) %% %(clients)s, kind,"
    "   case when r < 0.85 then 'completed' when r < 0.95 then 'planned' else 'skipped' end,"
    "   'bench-' || n, timestamptz '2026-01-01' + random() * interval '365 days',"
    "   case when kind = 'solo' then null else 1 + n %% 50 end"
    " from (select n, random() as r, (array['solo', 'solo', 'solo', 'solo', 'solo', 'solo',"
    "   'trainer-led', 'trainer-led', 'trainer-assisted', 'group'])[1 + n %% 10] as kind"
    "   from generate_series(1, %(workouts)s) as n) as generated",
    # Each client's usage row: the counts the service recounts from its workouts.
    "insert into session_usage (user_id, solo_count, trainer_led_count,"
    " trainer_assisted_count, group_count, credits_total, credits_used, as_of)"
    " select user_id, count(*) filter (where session_type = 'solo'),"
    "   count(*) filter (where session_type = 'trainer-led'),"
    "   count(*) filter (where session_type = 'trainer-assisted'),"
    "   count(*) filter (where session_type = 'group'), 20, 5, now()"
    " from workouts where status = 'completed' group by user_id",
    # The studio's completed workouts per day and type, as the service keeps them.
    "insert into workout_days (day, session_type, completed)"
    " select (workout_date at time zone 'UTC')::date, session_type, count(*)"
    " from workouts where status = 'completed' group by 1, 2",
]


#: The studio-wide year as it was read before `workout_days`: every completed workout of the
#: year counted by week and type (for comparison only).
WEEKS_FROM_WORKOUTS = text(
    "select date(timezone('UTC', date_trunc('week', workout_date, 'UTC'))), session_type,"
    " count(*) from workouts where status = 'completed'"
    " and workout_date >= '2026-01-01T00:00:00Z' and workout_date < '2027-01-01T00:00:00Z'"
    " group by 1, 2 order by 1"
)


def fill(owner_url: str, workouts: int, clients: int) -> float:
    """Seconds to write the history and analyze it."""
    began = time.perf_counter()
    with psycopg.connect(libpq_url(owner_url), autocommit=True) as connection:
        for statement in FILL:
            connection.execute(statement, {"workouts": workouts, "clients": clients})
        for table in ("workouts", "session_usage", "workout_days"):
            connection.execute(f"vacuum analyze {table}")
    return time.perf_counter() - began


async def timed(samples: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    """Milliseconds of each of `samples` calls, one at a time, after a few to warm up."""
    for _ in range(min(10, samples)):
        await call()
    durations = []
    for _ in range(samples):
        began = time.perf_counter()
        await call()
        durations.append((time.perf_counter() - began) * 1000)
    return durations


def figures(durations: list[float]) -> dict[str, float]:
    return {"p50": stats.percentile(durations, 50), "p99": stats.percentile(durations, 99)}


async def measure(platform: discovery.Platform, arguments: argparse.Namespace) -> dict[str, Any]:
    scratch = discovery.ScratchDatabase.beside(
        platform.config, "analytics", f"bench_queries_{uuid.uuid4().hex[:8]}"
    )
    admin = platform.admin("analytics")
    await asyncio.to_thread(discovery.prepare_database, admin, scratch)
    database = Database(scratch.url, pool_size=2)
    # The identity provider the platform's services trust, as `ops up` gives it them.
    identity: dict[str, Any] = dict(platform.config.identity.exports())
    app = create_app(
        Settings(
            **identity,
            database_url=scratch.url,
            kafka_bootstrap_servers=platform.bootstrap,
            kafka_topic_prefix=f"bench{uuid.uuid4().hex[:8]}.",
        )
    )
    chance = random.Random(15)
    try:
        output.status("writing the history")
        seconds = await asyncio.to_thread(
            fill, scratch.owner_url, arguments.workouts, arguments.clients
        )
        output.clear_status()
        print(f"  {arguments.workouts:,} workouts written and analyzed in {seconds:.1f} s")

        async def client_usage() -> None:
            async with database.transaction() as db:
                await usage_between(db, chance.randint(1, arguments.clients), YEAR)

        async def studio() -> None:
            async with database.transaction() as db:
                await studio_usage(db, YEAR)

        async def studio_from_workouts() -> None:
            async with database.transaction() as db:
                await db.execute(WEEKS_FROM_WORKOUTS)

        result: dict[str, Any] = {
            "client": figures(await timed(arguments.client_queries, client_usage)),
            "studio": figures(await timed(arguments.studio_queries, studio)),
            "studio_scan": figures(await timed(arguments.scan_queries, studio_from_workouts)),
        }
        async with AsyncClient(
            transport=ASGITransport(app=app),
            base_url="http://analytics",
            headers=platform.bearer(Role.STAFF),
        ) as http:
            year = "from=2026-01-01&to=2026-12-31"

            async def client_http() -> None:
                user = chance.randint(1, arguments.clients)
                response = await http.get(f"/api/analytics/{user}/session-usage?{year}")
                response.raise_for_status()

            async def studio_http() -> None:
                response = await http.get(f"/api/analytics/session-usage?{year}")
                response.raise_for_status()

            result["client_http"] = figures(await timed(arguments.client_queries, client_http))
            result["studio_http"] = figures(await timed(arguments.studio_queries, studio_http))
        result["fill_seconds"] = seconds
        return result
    finally:
        await app.state.runtime.database.dispose()
        await database.dispose()
        await asyncio.to_thread(discovery.drop, admin, scratch.owner_url)


async def bench(arguments: argparse.Namespace) -> list[dict[str, Any]]:
    platform = discovery.find_platform()
    runs = []
    for run in range(1, arguments.runs + 1):
        result = await measure(platform, arguments)
        print(
            f"run {run}: client p50 {result['client']['p50']:.2f} ms, p99"
            f" {result['client']['p99']:.2f} ms; studio p50 {result['studio']['p50']:.2f} ms,"
            f" p99 {result['studio']['p99']:.2f} ms",
            flush=True,
        )
        runs.append(result)
    return runs


ROWS = (
    ("client", "a client's usage over 2026, query code", "client"),
    ("client_http", "a client's usage over 2026, HTTP in-process", "client"),
    ("studio", "studio-wide over 2026 with its weeks, query code", "studio"),
    ("studio_http", "studio-wide over 2026 with its weeks, HTTP in-process", "studio"),
    ("studio_scan", "the same counted from the workouts (before workout_days)", "studio"),
)


def main() -> None:
    parser = cli.arguments(__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--workouts", type=cli.positive, default=1_000_000)
    parser.add_argument("--clients", type=cli.positive, default=10_000)
    parser.add_argument(
        "--client-queries", type=cli.positive, default=2_000, help="client usages timed per run"
    )
    parser.add_argument(
        "--studio-queries", type=cli.positive, default=300, help="studio-wide answers per run"
    )
    parser.add_argument(
        "--scan-queries",
        type=cli.positive,
        default=20,
        help="studio-wide years counted from the workouts per run (for comparison)",
    )
    arguments = parser.parse_args()
    runs = cli.run(bench(arguments))
    medians = {
        key: {figure: stats.median(run[key][figure] for run in runs) for figure in ("p50", "p99")}
        for key, _, _ in ROWS
    }
    rows = [
        [
            label,
            f"{medians[key]['p50']:.2f}",
            f"{medians[key]['p99']:.2f}",
            f"< {TARGETS_MS[target]:.0f} ms: "
            + output.verdict(medians[key]["p99"] < TARGETS_MS[target]),
        ]
        for key, label, target in ROWS
    ]
    lines = [
        f"{arguments.workouts:,} workouts of {arguments.clients:,} clients; "
        f"{arguments.client_queries:,} client and {arguments.studio_queries:,} studio-wide "
        f"answers per run, one at a time; {arguments.runs} runs, medians; "
        f"{output.machine_summary()}, {output.today()}",
        "",
        *output.table(["answer", "p50 ms", "p99 ms", "p99 target"], rows, align="lrrl"),
    ]
    output.finish(
        arguments,
        "analytics-queries",
        lines,
        runs,
        medians,
        {key: f"p99 < {value} ms" for key, value in TARGETS_MS.items()},
    )


if __name__ == "__main__":
    main()
