"""Database URLs as the tools show them (libpq's form is `servicekit.urls.libpq_url`)."""

from __future__ import annotations

import re


def redacted(url: str) -> str:
    """The URL with its password, if any, shown as `***`."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)
