"""Helpers for services' Alembic migrations."""

from __future__ import annotations

from alembic import op

from servicekit.tables import plumbing_metadata


def create_plumbing_tables() -> None:
    """Create the outbox and processed-events tables (a service's baseline revision)."""
    plumbing_metadata.create_all(bind=op.get_bind())


def drop_plumbing_tables() -> None:
    plumbing_metadata.drop_all(bind=op.get_bind())
