"""Credits' rate on top of a history: the cost curve of the credits consumer as the
database the service has written grows.

    uv run python bench/credits_history.py                         # 0, 1M and 10M events
    uv run python bench/credits_history.py --history 0 3000000 --runs 5
    uv run python bench/credits_history.py --statements --chart docs/cost-curve.png

For each history size (events the service has consumed and announced before), a scratch
database with the credits migrations on the platform's PostgreSQL is filled as the
service would have written it, set-wise on the server: per past session its row, its
deduction in the ledger, the ids of its `SessionBooked`, its `WorkoutLogged` and its own
`SessionCreditDeducted` in `processed_events` (three events a session, random UUIDs as
real ids are), and per past client (one per 20 sessions) a package, its grant and its
balance; then VACUUM ANALYZE. The credits consumer alone (`bench/credits_consumer.py`:
the service's handlers and store on an `IdempotentConsumer`, no Kafka) then applies
`--sessions` fresh sessions on top of it in batches of `--batch-size`, after a checkpoint
(the fill's write-ahead log flushed before the measurement, not during it). Reported: the rate
per history size, medians of the runs, and the largest history's rate over the empty
one's (the target: within 10%). The sizes are measured in turn, in reverse order every
other run, so that neither end always follows a fill of the other. `--statements` times
each statement and counts the write-ahead log of each measurement (`bench/statements.py`);
`--chart` draws the curve as a PNG (`bench/chart.py`).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import chart
import cli
import discovery
import output
import psycopg
import stats
from credits_consumer import apply
from statements import StatementProfile

from ops.databases import DatabaseAdmin
from servicekit.db import libpq_url

EVENTS_PER_SESSION = 3
SESSIONS_PER_CLIENT = 20
TARGET_OF_EMPTY = 0.9

#: Past sessions get ids 1..N and past clients 1..N/20: far below the fresh ids (≥ 10^12).
HISTORY = """
insert into packages (package_id, user_id, package_type, sessions, purchased_at,
                      purchase_id, used, closed)
select md5('package' || c)::uuid, c, 'sessions', %(per_client)s,
       timestamptz '2020-01-01' + c * interval '1 minute', 'history-' || c, %(per_client)s, true
from generate_series(1, %(clients)s) as c;

insert into balances (user_id, total, used)
select c, %(per_client)s, %(per_client)s from generate_series(1, %(clients)s) as c;

insert into ledger_entries (id, user_id, kind, amount, purchase_id, package_id, caused_by,
                            effective_at)
select md5('grant' || c)::uuid, c, 'grant', %(per_client)s, 'history-' || c,
       md5('package' || c)::uuid, md5('purchase' || c)::uuid::text,
       timestamptz '2020-01-01' + c * interval '1 minute'
from generate_series(1, %(clients)s) as c;

insert into sessions (session_id, user_id, trainer_id, status, session_date)
select s, (s - 1) %% %(clients)s + 1, 7, 'completed',
       timestamptz '2020-01-01' + s * interval '1 minute'
from generate_series(1, %(sessions)s) as s;

insert into ledger_entries (id, user_id, kind, amount, session_id, trainer_id, package_id,
                            caused_by, effective_at)
select md5('deduction' || s)::uuid, (s - 1) %% %(clients)s + 1, 'deduction', -1, s, 7,
       md5('package' || ((s - 1) %% %(clients)s + 1))::uuid, md5('workout' || s)::uuid::text,
       timestamptz '2020-01-01' + s * interval '1 minute'
from generate_series(1, %(sessions)s) as s;

insert into processed_events (consumer, event_id, event_type)
select 'credits', md5(kind || s)::uuid::text, kind
from generate_series(1, %(sessions)s) as s,
     unnest(array['SessionBooked', 'WorkoutLogged', 'SessionCreditDeducted']) as kind;
"""

SIZES = (
    "select pg_database_size(current_database()),"
    " pg_total_relation_size('processed_events'),"
    " pg_relation_size('processed_events_pkey'), pg_relation_size('ledger_entries_pkey')"
)


def filler(events: int, admin: DatabaseAdmin) -> Callable[[discovery.ScratchDatabase], None]:
    """Fills a scratch database with a history of `events` events (nothing for 0). Then a
    checkpoint, as `admin` (the local cluster's superuser): the fill's write-ahead log would
    otherwise be flushed during the measurement, which it does not belong to."""
    sessions = events // EVENTS_PER_SESSION
    clients = max(1, sessions // SESSIONS_PER_CLIENT)

    def fill(scratch: discovery.ScratchDatabase) -> None:
        if not sessions:
            return
        began = time.perf_counter()
        with psycopg.connect(libpq_url(scratch.owner_url), autocommit=True) as connection:
            for statement in HISTORY.split(";"):
                if statement.strip():
                    connection.execute(
                        statement,
                        {
                            "sessions": sessions,
                            "clients": clients,
                            "per_client": SESSIONS_PER_CLIENT,
                        },
                    )
            connection.execute("vacuum analyze")
            row = connection.execute(SIZES).fetchone()
        with admin.connect() as connection:
            connection.execute("checkpoint")
        output.clear_status()
        assert row is not None
        print(
            f"  history of {events:,} events written in {time.perf_counter() - began:.0f} s: "
            f"{row[0] / 2**30:.1f} GiB, of which processed_events {row[1] / 2**30:.1f} GiB; "
            f"primary keys of processed_events {row[2] / 2**20:,.0f} MiB, of the ledger "
            f"{row[3] / 2**20:,.0f} MiB"
        )

    return fill


async def bench(arguments: argparse.Namespace) -> list[dict[int, float]]:
    platform = discovery.find_platform()
    admin = platform.admin("credits")
    runs = []
    for run in range(1, arguments.runs + 1):
        rates = {}
        order = arguments.history if run % 2 else arguments.history[::-1]
        for events in order:
            profile = StatementProfile() if arguments.statements else None
            rates[events] = await apply(
                platform,
                arguments.sessions,
                arguments.clients,
                arguments.batch_size,
                history=filler(events, admin),
                profile=profile,
            )
            print(f"run {run}, history of {events:,} events: {rates[events]:,.0f} sessions/s")
            if profile is not None:
                print("\n".join(profile.report()))
        runs.append(rates)
    return runs


def main() -> None:
    parser = cli.arguments(__doc__.split("\n\n")[0] if __doc__ else "")
    cli.history_arguments(
        parser, default=[0, 1_000_000, 10_000_000], help="events of history, one measurement each"
    )
    # About 10 s a measurement: enough inserts for a big index's cache misses and full-page
    # writes (the first change of each page after the fill's checkpoint) to show.
    parser.add_argument("--sessions", type=cli.positive, default=20_000)
    parser.add_argument("--clients", type=cli.positive, default=100)
    parser.add_argument(
        "--statements",
        action="store_true",
        help="time each statement and count the write-ahead log of each measurement",
    )
    parser.add_argument(
        "--chart", type=Path, help="draw the curve as a PNG there (headless Chromium)"
    )
    parser.add_argument("--batch-size", type=cli.positive, default=500)
    arguments = parser.parse_args()
    runs = cli.run(bench(arguments))
    medians = {events: stats.median(run[events] for run in runs) for events in arguments.history}
    empty = medians[min(medians)]
    largest = medians[max(medians)]
    rows = [
        [f"{events:,}", f"{rate:,.0f}", f"{rate / empty:.2f}"] for events, rate in medians.items()
    ]
    lines = [
        f"credits consumer alone, {arguments.sessions:,} fresh sessions of "
        f"{arguments.clients:,} clients on top of each history, batches of "
        f"{arguments.batch_size}; {arguments.runs} runs, medians; "
        f"{output.machine_summary()}, {output.today()}",
        "",
        *output.table(["history, events", "sessions/s", "of the empty one's"], rows, align="rrr"),
        "",
        f"the largest history's rate ≥ {TARGET_OF_EMPTY} of the empty one's: "
        + output.verdict(largest / empty >= TARGET_OF_EMPTY),
    ]
    if arguments.chart is not None:
        title = f"Credits consumer alone: sessions/s on top of a history ({output.today()})"
        target = chart.rate_target(medians, TARGET_OF_EMPTY)
        chart.save_png(chart.cost_curve_svg(title, runs, medians, target), arguments.chart)
        print(f"chart drawn in {arguments.chart}")
    output.finish(
        arguments,
        "credits-history",
        lines,
        [{str(events): rate for events, rate in run.items()} for run in runs],
        {str(events): rate for events, rate in medians.items()},
        {"largest_of_empty": TARGET_OF_EMPTY},
    )


if __name__ == "__main__":
    main()
