"""The blocks of session ids: no id belongs to two producers, and every id fits everywhere."""

from __future__ import annotations

import pytest

from contracts.events import MAX_ID
from contracts.session_ids import (
    BOOKING_API,
    MAX_BLOCK_ID,
    MAX_PRODUCER,
    MAX_SERIAL,
    PRODUCERS,
    block_of,
    producer_of,
    session_id,
)


def test_the_api_block_holds_the_ids_it_has_always_handed_out() -> None:
    assert producer_of(1) == BOOKING_API
    assert producer_of(MAX_SERIAL) == BOOKING_API
    assert block_of(BOOKING_API) == range(1, MAX_SERIAL + 1)


@pytest.mark.parametrize("producer", [0, 1, 2, 1000, MAX_PRODUCER])
def test_blocks_follow_each_other_without_overlapping(producer: int) -> None:
    block = block_of(producer)
    assert producer_of(block[0]) == producer
    assert producer_of(block[-1]) == producer
    # Serial 0 belongs to nobody: between two blocks lies one id of no block.
    assert producer_of(block[0] - 1) is None
    if producer < MAX_PRODUCER:
        assert producer_of(block[-1] + 1) is None
        assert block_of(producer + 1)[0] == block[-1] + 2


def test_every_id_of_every_block_is_exact_in_javascript_and_fits_a_bigint() -> None:
    assert session_id(MAX_PRODUCER, MAX_SERIAL) == MAX_BLOCK_ID == 2**53 - 1
    assert MAX_BLOCK_ID < MAX_ID
    assert producer_of(MAX_BLOCK_ID + 1) is None
    assert producer_of(0) is None


@pytest.mark.parametrize(
    ("producer", "serial"), [(-1, 1), (MAX_PRODUCER + 1, 1), (1, 0), (1, MAX_SERIAL + 1)]
)
def test_ids_outside_the_scheme_are_refused(producer: int, serial: int) -> None:
    with pytest.raises(ValueError, match=r"producer number|serial"):
        session_id(producer, serial)


def test_each_registered_producer_has_its_own_number_and_source() -> None:
    assert PRODUCERS[BOOKING_API] == "/swanstudios/booking"
    assert len(set(PRODUCERS.values())) == len(PRODUCERS)
    assert all(0 <= number <= MAX_PRODUCER for number in PRODUCERS)
