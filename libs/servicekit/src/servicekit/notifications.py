"""PostgreSQL notifications (LISTEN/NOTIFY): how a transaction that commits wakes whoever
waits for it, in this process or in any replica on the same database.

A notification is sent at commit, and only if the transaction commits, so what it announces
is there to be read when it arrives. It is not stored: one sent while nobody listens is
lost. Whoever listens therefore reads everything again each time its listening starts
(`on_listening`), and keeps a slow poll besides.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg

from servicekit.db import libpq_url

log = logging.getLogger(__name__)


async def listen(
    database_url: str,
    channel: str,
    *,
    on_notify: Callable[[str], None],
    on_listening: Callable[[], None],
    retry_interval: float,
) -> None:
    """Call `on_notify(payload)` for each notification on `channel` until cancelled, and
    `on_listening()` each time listening (re)starts. On a connection of its own: one waiting
    in notifies() can run no queries. A lost connection is reconnected after
    `retry_interval` seconds."""
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                libpq_url(database_url), autocommit=True
            ) as connection:
                await connection.execute(f"LISTEN {channel}")
                on_listening()
                async for notification in connection.notifies():
                    on_notify(notification.payload)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("listener on %s lost its connection (%s); reconnecting", channel, error)
            await asyncio.sleep(retry_interval)
