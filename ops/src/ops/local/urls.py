"""Database URLs as the tools pass them around: SQLAlchemy's form, libpq's form, shown."""

from __future__ import annotations

import re


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (`postgresql+psycopg://`) as libpq reads it (`postgresql://`)."""
    return re.sub(r"^postgres(?:ql)?\+\w+://", "postgresql://", url)


def redacted(url: str) -> str:
    """The URL with its password, if any, shown as `***`."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)
