"""The lookups credits runs for every batch read an index, on a ledger big enough that
PostgreSQL would rather scan it without one: the ledger only grows, and a lookup that scans
it makes every batch slower as the platform's history accumulates."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from sqlalchemy import union_all

from credits.models import SESSION_KINDS
from credits.store import entries_of_sessions, grants_of_purchases
from servicekit.db import libpq_url
from testkit.plans import PSYCOPG, fill, plan_of

pytestmark = pytest.mark.infra

ENTRIES = 100_000


@pytest.fixture
def long_ledger(service_database: Callable[[str], str]) -> str:
    """100,000 entries, half of them purchases' grants, half deductions (of sessions 1, 3,
    5, …); vacuumed."""
    url = service_database("credits")
    fill(
        url,
        "insert into ledger_entries"
        " (id, user_id, kind, amount, purchase_id, session_id, caused_by)"
        " select gen_random_uuid(), n %% 5000 + 1,"
        "   case when n %% 2 = 0 then 'grant' else 'deduction' end,"
        "   case when n %% 2 = 0 then 10 else -1 end,"
        "   case when n %% 2 = 0 then 'purchase-' || n end,"
        "   case when n %% 2 = 1 then n end, 'e'"
        " from generate_series(1, %(rows)s) as n",
        {"rows": ENTRIES},
        table="ledger_entries",
    )
    return url


def test_a_batchs_purchases_are_looked_up_by_the_index_of_purchases_grants(
    long_ledger: str,
) -> None:
    query = grants_of_purchases(["purchase-42", "purchase-4242", "not-bought"])
    nodes = plan_of(long_ledger, query)
    compiled = query.compile(dialect=PSYCOPG, compile_kwargs={"render_postcompile": True})
    with psycopg.connect(libpq_url(long_ledger)) as connection:
        found = connection.execute(str(compiled), compiled.params).fetchall()

    assert ("Seq Scan", None) not in nodes, nodes
    assert any(index == "one_grant_per_purchase" for _, index in nodes), nodes
    assert sorted(purchase for purchase, _ in found) == ["purchase-42", "purchase-4242"]


def test_a_batchs_sessions_entries_are_looked_up_by_each_kinds_index_of_places(
    long_ledger: str,
) -> None:
    query = union_all(*entries_of_sessions([1, 3, 99_999, 10**12]))
    nodes = plan_of(long_ledger, query)
    compiled = query.compile(dialect=PSYCOPG, compile_kwargs={"render_postcompile": True})
    with psycopg.connect(libpq_url(long_ledger)) as connection:
        ids = [row[0] for row in connection.execute(str(compiled), compiled.params)]
        found = connection.execute(
            "select session_id from ledger_entries where id = any(%s)", [ids]
        ).fetchall()

    assert ("Seq Scan", None) not in nodes, nodes
    indexes = {index for _, index in nodes if index is not None}
    assert {f"one_{kind}_per_place" for kind in SESSION_KINDS} <= indexes, nodes
    assert sorted(session for (session,) in found) == [1, 3, 99_999]
