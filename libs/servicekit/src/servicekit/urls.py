"""Database URLs in libpq's form, apart from `servicekit.db` so that a tool can turn one
without loading SQLAlchemy (`ops` starts a second sooner)."""

from __future__ import annotations

import re


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (`postgresql+<driver>://`) as libpq reads it (`postgresql://`), for
    psycopg connections outside SQLAlchemy."""
    return re.sub(r"^postgres(?:ql)?\+\w+://", "postgresql://", url)
