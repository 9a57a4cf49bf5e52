from __future__ import annotations

from servicekit.dead_letters import ConsumedRecord, dead_letter_headers, dead_letter_topic


def record(headers: list[tuple[str, bytes]]) -> ConsumedRecord:
    return ConsumedRecord(
        topic="booking.sessions", partition=2, offset=41, key=b"7", value=b"{}", headers=headers
    )


def test_dead_letter_keeps_original_headers_and_says_why_where_and_who() -> None:
    headers = dead_letter_headers(
        record([("content-type", b"application/cloudevents+json")]),
        reason="not JSON",
        kind="not-json",
        consumer="credits",
    )
    assert headers == [
        ("content-type", b"application/cloudevents+json"),
        ("dlq-reason", b"not JSON"),
        ("dlq-reason-kind", b"not-json"),
        ("dlq-topic", b"booking.sessions"),
        ("dlq-partition", b"2"),
        ("dlq-offset", b"41"),
        ("dlq-consumer", b"credits"),
    ]


def test_a_dead_letter_failing_again_carries_only_its_newest_reason() -> None:
    headers = dead_letter_headers(
        record([("dlq-reason", b"old"), ("dlq-reason-kind", b"a"), ("dlq-consumer", b"b")]),
        reason="new",
        kind="rejected",
        consumer="credits",
    )
    assert [value for name, value in headers if name == "dlq-reason-kind"] == [b"rejected"]
    assert [value for name, value in headers if name == "dlq-reason"] == [b"new"]
    assert [value for name, value in headers if name == "dlq-consumer"] == [b"credits"]


def test_very_long_reasons_are_cut() -> None:
    headers = dict(dead_letter_headers(record([]), reason="x" * 10_000, kind="k", consumer="c"))
    assert len(headers["dlq-reason"]) == 2000


def test_dead_letters_go_to_the_dlq_twin() -> None:
    assert dead_letter_topic("credits.ledger") == "credits.ledger.dlq"
    assert dead_letter_topic("credits.ledger.dlq") == "credits.ledger.dlq"
