"""The migrations build exactly the tables the models describe."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from analytics.models import Base

pytestmark = pytest.mark.infra


def test_the_migrated_database_matches_the_models(
    service_database: Callable[[str], str],
) -> None:
    engine = create_engine(service_database("analytics"))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "include_name": _ours}
            )
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def _ours(name: str | None, kind: str, parent_names: object) -> bool:
    """The service's own tables; servicekit checks the plumbing tables it creates."""
    return kind != "table" or name in Base.metadata.tables
