"""How the dead-letter tooling names topics and groups, reads a letter's headers, selects
letters, and remembers which were redriven."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from ops import dead_letters
from ops.dead_letters import DeadLetter, RedriveState, Selection, decode_offsets, encode_offsets


def letter(**headers: str) -> DeadLetter:
    value = json.dumps({"specversion": "1.0", "id": "e-1", "type": "SessionBooked"}).encode()
    return DeadLetter(
        topic="booking.sessions.dlq",
        partition=2,
        offset=7,
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        key=b"42",
        value=value,
        headers=(
            ("content-type", b"application/cloudevents+json"),
            *((name, text.encode()) for name, text in headers.items()),
        ),
    )


def test_a_topic_is_named_with_or_without_dlq_and_behind_the_prefix_once() -> None:
    assert dead_letters.dead_letter_topic("booking.sessions") == "booking.sessions.dlq"
    assert dead_letters.dead_letter_topic("booking.sessions.dlq") == "booking.sessions.dlq"
    assert dead_letters.dead_letter_topic("booking.sessions", "t1.") == "t1.booking.sessions.dlq"
    assert dead_letters.dead_letter_topic("t1.booking.sessions", "t1.") == (
        "t1.booking.sessions.dlq"
    )


def test_the_redrive_group_is_named_after_the_dlq_topic_behind_the_prefix() -> None:
    assert dead_letters.redrive_group("booking.sessions.dlq") == "ops-redrive.booking.sessions.dlq"
    assert dead_letters.redrive_group("t1.booking.sessions.dlq", "t1.") == (
        "t1.ops-redrive.booking.sessions.dlq"
    )


def test_a_letter_says_why_where_from_and_which_consumer_and_keeps_its_own_headers() -> None:
    read = letter(
        **{
            "dlq-reason": "session 42 was never booked",
            "dlq-topic": "booking.sessions",
            "dlq-partition": "2",
            "dlq-offset": "17",
            "dlq-consumer": "booking",
        }
    )

    assert read.reason == "session 42 was never booked"
    assert read.origin == ("booking.sessions", 2, 17)
    assert read.consumer == "booking"
    assert (read.event_type, read.event_id) == ("SessionBooked", "e-1")
    assert read.original_headers == [("content-type", b"application/cloudevents+json")]


def test_a_letter_that_is_not_a_cloud_event_has_no_event_id() -> None:
    poison = DeadLetter("t.dlq", 0, 0, None, None, b"{not json", ())

    assert (poison.event_id, poison.event_type, poison.origin) == (None, None, None)
    assert poison.reason == "(no reason given)"


def test_letters_are_selected_by_consumer_with_or_without_the_prefix_and_by_event_id() -> None:
    by_booking = letter(**{"dlq-consumer": "t1.booking"})

    assert Selection(prefix="t1.").matches(by_booking)
    assert Selection(consumer="booking", prefix="t1.").matches(by_booking)
    assert Selection(consumer="t1.booking", prefix="t1.").matches(by_booking)
    assert not Selection(consumer="credits", prefix="t1.").matches(by_booking)
    assert Selection(event_ids=frozenset({"e-1"})).matches(by_booking)
    assert not Selection(event_ids=frozenset({"e-2"})).matches(by_booking)


def test_redriven_offsets_are_written_as_ranges() -> None:
    assert encode_offsets([9, 3, 4, 5, 12, 11]) == "3-5,9,11-12"
    assert decode_offsets("3-5,9,11-12") == {3, 4, 5, 9, 11, 12}
    assert decode_offsets("") == frozenset()


def test_the_watermark_moves_past_every_letter_dealt_with_and_remembers_those_beyond() -> None:
    state = RedriveState(watermark=10)

    skipped_one = state.with_done({10, 11, 13, 14})
    assert skipped_one == RedriveState(12, frozenset({13, 14}))
    assert skipped_one.includes(11)
    assert skipped_one.includes(13)
    assert not skipped_one.includes(12)
    assert skipped_one.metadata == "redriven:13-14"

    assert skipped_one.with_done({12}) == RedriveState(15, frozenset())


def test_a_committed_state_is_read_back_from_its_offset_and_metadata() -> None:
    assert RedriveState.committed(12, "redriven:13-14", earliest=0) == RedriveState(
        12, frozenset({13, 14})
    )
    # Metadata some other tool wrote: the offset alone still counts.
    assert RedriveState.committed(12, "hello", earliest=0) == RedriveState(12)
    # Letters removed by retention are behind the earliest offset.
    assert RedriveState.committed(3, "", earliest=8) == RedriveState(8)
