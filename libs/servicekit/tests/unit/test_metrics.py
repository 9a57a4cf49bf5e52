"""Metrics of one process: a registry of its own, gauges computed when scraped."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from servicekit.consumer import IdempotentConsumer, Outcome
from servicekit.db import Database
from servicekit.dead_letters import ConsumedRecord
from servicekit.metrics import Metrics, OutboxBacklog, PartitionLag, ScrapeTimeState
from testkit.helpers import RecordingDeadLetters


def samples(text: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }


def value(text: bytes, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


async def test_two_runtimes_in_one_process_count_separately() -> None:
    first, second = Metrics(), Metrics()
    first.events_published.labels(topic="t", event_type="E").inc(3)
    assert value(await first.render(), "platform_events_published_total", topic="t", event_type="E")
    assert not [
        key for key in samples(await second.render()) if key[0].startswith("platform_events_")
    ]


async def test_scrape_time_gauges_come_from_the_refreshes_run_at_each_scrape() -> None:
    metrics = Metrics()
    scrapes = 0

    async def refresh(state: ScrapeTimeState) -> None:
        nonlocal scrapes
        scrapes += 1
        state.outbox = OutboxBacklog(rows=scrapes, oldest_age_seconds=1.5)
        state.lag.append(PartitionLag(group="g", topic="t", partition=2, records=7))

    metrics.on_scrape(refresh)
    await metrics.render()
    text = await metrics.render()
    assert value(text, "platform_outbox_backlog_rows") == 2
    assert value(text, "platform_outbox_oldest_age_seconds") == 1.5
    lag = value(text, "platform_consumer_lag_records", group="g", topic="t", partition="2")
    assert lag == 7


async def test_a_failing_refresh_leaves_its_gauges_out_rather_than_stale() -> None:
    metrics = Metrics()
    healthy = True

    async def refresh(state: ScrapeTimeState) -> None:
        if not healthy:
            raise ConnectionError("database away")
        state.outbox = OutboxBacklog(rows=4, oldest_age_seconds=2.0)

    metrics.on_scrape(refresh)
    assert value(await metrics.render(), "platform_outbox_backlog_rows") == 4
    healthy = False
    text = await metrics.render()
    assert value(text, "platform_outbox_backlog_rows") is None
    assert b"# TYPE platform_outbox_backlog_rows gauge" in text


async def test_records_refused_before_their_transaction_are_counted_by_outcome_and_reason() -> None:
    # Never connected to: these records are refused before any transaction.
    database = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    subject = IdempotentConsumer(name="t", database=database, dead_letters=RecordingDeadLetters())
    unknown_type = b'{"specversion":"1.0","id":"1","source":"/s","type":"SomethingElse","data":{}}'
    # Types no one knows share one label: a label each would grow without end.
    another_type = unknown_type.replace(b"SomethingElse", b"AnotherThing")
    records = [b"not json", b"[]", unknown_type, b"also not json", another_type]
    for offset, raw in enumerate(records):
        record = ConsumedRecord(
            topic="t", partition=0, offset=offset, key=b"1", value=raw, headers=[]
        )
        await subject.process(record)

    text = await subject.metrics.render()
    consumed = "platform_events_consumed_total"
    dead = "platform_events_dead_lettered_total"
    dead_lettered = Outcome.DEAD_LETTERED.value
    assert value(text, consumed, topic="t", event_type="unknown", outcome=dead_lettered) == 3
    assert value(text, consumed, topic="t", event_type="unknown", outcome="ignored") == 2
    assert b"SomethingElse" not in text
    assert value(text, dead, topic="t", reason="not-json") == 2
    assert value(text, dead, topic="t", reason="not-cloudevent") == 1


async def test_a_services_own_gauges_are_measured_at_each_scrape_and_left_out_on_failure() -> None:
    metrics = Metrics()
    figures = [{"parked": 2.0, "parked_oldest_age_seconds": 30.5}, {"parked": 0.0}]

    async def measure() -> dict[str, float]:
        if not figures:
            raise ConnectionError("database away")
        return figures.pop(0)

    metrics.gauges_at_scrape(
        {"parked": "Things parked.", "parked_oldest_age_seconds": "Age of the oldest."}, measure
    )
    first = await metrics.render()
    assert (value(first, "parked"), value(first, "parked_oldest_age_seconds")) == (2, 30.5)
    second = await metrics.render()
    assert (value(second, "parked"), value(second, "parked_oldest_age_seconds")) == (0, None)
    third = await metrics.render()
    assert value(third, "parked") is None
    assert b"# TYPE parked gauge" in third
