"""Session ids that never collide: every producer of bookings owns a block of ids.

A session id is `producer << SERIAL_BITS | serial`. The producer number (13 bits) is handed
out once per producer and recorded in `PRODUCERS`; the serial (40 bits) is the producer's
own counter, never reused. Two producers' blocks share no id, so no two producers that keep
to their block can ever book the same id, whatever they publish and in whatever order.
Booking's API is producer 0: its ids are 1 … 2**40 - 1, the ids it has always handed out.
Every id stays below 2**53, so JavaScript clients read it exactly, and within the 64 bits the
contract promises.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

SERIAL_BITS: Final = 40
PRODUCER_BITS: Final = 13
MAX_SERIAL: Final = 2**SERIAL_BITS - 1
MAX_PRODUCER: Final = 2**PRODUCER_BITS - 1
#: The largest id of any block (2**53 - 1).
MAX_BLOCK_ID: Final = (MAX_PRODUCER << SERIAL_BITS) | MAX_SERIAL

#: Booking's own API: the `session_ids` sequence allocates in this block and no other.
BOOKING_API: Final = 0

#: The producer numbers handed out so far, with the CloudEvents `source` each publishes as.
#: A new producer team takes the next free number in a change to this table (see
#: docs/publishing.md); a number is never reused, even after its producer retires.
PRODUCERS: Final = MappingProxyType(
    {
        BOOKING_API: "/swanstudios/booking",
        1: "/platform/example",  # examples/booking_publisher.py
        2: "/platform/chaos",  # ops chaos: the fault-injection run's bookings
    }
)

#: The dead-letter reason kind (`dlq-reason-kind`) of a booking whose id another booking
#: already holds: a producer outside its block. Booking counts them; `ops status` shows them.
SESSION_ID_TAKEN: Final = "session-id-taken"


def session_id(producer: int, serial: int) -> int:
    """The id of `producer`'s session number `serial` (from 1)."""
    if not 0 <= producer <= MAX_PRODUCER:
        raise ValueError(f"a producer number is 0 … {MAX_PRODUCER}, not {producer}")
    if not 1 <= serial <= MAX_SERIAL:
        raise ValueError(f"a serial is 1 … {MAX_SERIAL}, not {serial}")
    return producer << SERIAL_BITS | serial


def producer_of(session_id: int) -> int | None:
    """The producer whose block holds `session_id`; None for an id in no block (beyond
    them all, or with serial 0)."""
    if not 0 < session_id <= MAX_BLOCK_ID or session_id & MAX_SERIAL == 0:
        return None
    return session_id >> SERIAL_BITS


def block_of(producer: int) -> range:
    """Every id `producer` may book."""
    return range(session_id(producer, 1), session_id(producer, MAX_SERIAL) + 1)
