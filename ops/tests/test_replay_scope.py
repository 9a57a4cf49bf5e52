"""What a targeted replay takes: the TIME of `--from` (RFC 3339 with its zone, or a date) and
the TOPIC of `--topic` (one of the service's inputs, with or without the topic prefix)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ops.inputs import input_topic_names
from ops.local.errors import PlatformError
from ops.recovery import Target, replay_start

MOMENT = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-01-15T10:00:00Z", MOMENT),
        ("2026-01-15T11:30:00+01:30", MOMENT),
        ("2026-01-15 10:00:00.250Z", MOMENT.replace(microsecond=250_000)),
        (" 2026-01-15T10:00Z ", MOMENT),
        ("2026-01-15", datetime(2026, 1, 15, tzinfo=UTC)),
    ],
)
def test_a_time_is_read_as_rfc_3339_or_as_a_date_from_its_midnight_utc(
    text: str, moment: datetime
) -> None:
    assert replay_start(text) == moment


@pytest.mark.parametrize(
    "text", ["yesterday", "2026-01-15T10:00:00", "15/01/2026", "2026-02-30", "", "1736935200"]
)
def test_a_time_without_its_zone_or_not_a_time_at_all_is_refused(text: str) -> None:
    with pytest.raises(PlatformError) as refused:
        replay_start(text)

    assert str(refused.value) == (
        "--from takes an RFC 3339 time with its zone (2026-01-15T10:00:00Z) or a date "
        f"(2026-01-15, from its midnight UTC), not {text.strip()!r}"
    )


@pytest.mark.parametrize("prefix", ["", "t1234."])
@pytest.mark.parametrize("given", ["booking.sessions", "{prefix}booking.sessions"])
def test_a_topic_is_named_with_or_without_the_topic_prefix(prefix: str, given: str) -> None:
    target = Target("credits", "127.0.0.1:9092", "postgresql://c@h/c", topic_prefix=prefix)

    assert target.input_topic(given.format(prefix=prefix)) == f"{prefix}booking.sessions"


@pytest.mark.parametrize("topic", ["analytics.session-usage", "booking.sessions.dlq", "ledger"])
def test_a_topic_the_service_does_not_consume_is_refused_naming_its_inputs(topic: str) -> None:
    target = Target("credits", "127.0.0.1:9092", "postgresql://c@h/c", topic_prefix="t1.")

    with pytest.raises(PlatformError) as refused:
        target.input_topic(topic)

    inputs = ", ".join(input_topic_names("credits"))
    assert str(refused.value) == f"credits does not consume {topic}: its inputs are {inputs}"
