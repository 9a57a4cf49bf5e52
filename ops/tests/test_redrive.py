"""Redriving a `.dlq` topic on a real broker: each selected letter goes back to its origin
topic and partition with its own key, value and headers, once; a second run sends nothing;
what a filter left out waits for a later run."""

from __future__ import annotations

import json

import pytest
from aiokafka import AIOKafkaProducer

from ops.dead_letters import Selection, list_dead_letters, redrive
from servicekit.kafka import client_options
from testkit.helpers import Record, end_offsets, read_topic, topic_with_dead_letters

pytestmark = pytest.mark.infra

TRACE = ("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")


async def dead_letter(
    bootstrap: str,
    topic: str,
    *,
    partition: int,
    origin: tuple[int, int] | None,
    consumer: str,
    value: bytes,
    key: bytes,
) -> None:
    """A letter as servicekit's dead-letter path writes it."""
    headers = [("content-type", b"application/cloudevents+json"), TRACE]
    headers.append(("dlq-reason", b"it went wrong"))
    if origin is not None:
        headers += [
            ("dlq-topic", topic.encode()),
            ("dlq-partition", str(origin[0]).encode()),
            ("dlq-offset", str(origin[1]).encode()),
        ]
    headers.append(("dlq-consumer", consumer.encode()))
    producer = AIOKafkaProducer(**client_options(), bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            topic + ".dlq", value=value, key=key, partition=partition, headers=headers
        )
    finally:
        await producer.stop()


def event(event_id: str) -> bytes:
    envelope = {"specversion": "1.0", "id": event_id, "source": "/t", "type": "SessionBooked"}
    return json.dumps({**envelope, "data": {}}).encode()


async def resent(bootstrap: str, topic: str, count: int) -> list[Record]:
    return await read_topic(bootstrap, topic, until=lambda records: len(records) >= count)


async def test_letters_go_back_once_to_their_partition_with_their_key_and_headers(
    kafka_bootstrap: str, scratch_topic: str
) -> None:
    topic = scratch_topic
    letters = [  # (dlq partition, origin (partition, offset), consumer, event id)
        (0, (0, 5), "booking", "e-1"),
        (0, (0, 5), "credits", "e-1"),  # the same record, dead-lettered by two consumers
        (1, (1, 3), "booking", "e-2"),
        (1, (1, 4), "credits", "e-3"),
        (2, None, "credits", "e-4"),  # names no origin: cannot be sent anywhere
    ]
    for partition, origin, consumer, event_id in letters:
        await dead_letter(
            kafka_bootstrap,
            topic,
            partition=partition,
            origin=origin,
            consumer=consumer,
            value=event(event_id),
            key=event_id.encode(),
        )

    rehearsal = await redrive(kafka_bootstrap, topic, dry_run=True)
    assert [letter.event_id for letter in rehearsal.redriven] == ["e-1", "e-2", "e-3"]

    first = await redrive(kafka_bootstrap, topic, selection=Selection(consumer="credits"))
    assert [letter.event_id for letter in first.redriven] == ["e-1", "e-3"]
    assert (first.not_selected, len(first.unroutable)) == (2, 1)
    records = await resent(kafka_bootstrap, topic, 2)
    assert sorted((r.partition, r.key, r.value) for r in records) == [
        (0, b"e-1", event("e-1")),
        (1, b"e-3", event("e-3")),
    ]
    for record in records:
        assert list(record.headers) == [("content-type", b"application/cloudevents+json"), TRACE]

    second = await redrive(kafka_bootstrap, topic)
    # booking's letters: e-1 again (its own letter was waiting), and e-2.
    assert [letter.event_id for letter in second.redriven] == ["e-1", "e-2"]
    assert second.earlier == 2
    await resent(kafka_bootstrap, topic, 4)

    third = await redrive(kafka_bootstrap, topic)
    assert (third.redriven, third.earlier, len(third.unroutable)) == ([], 4, 1)
    records = await resent(kafka_bootstrap, topic, 4)
    assert len(records) == 4

    listed = await list_dead_letters(kafka_bootstrap, topic)
    assert [(item.letter.event_id, item.redriven) for item in listed] == [
        ("e-1", True),
        ("e-1", True),
        ("e-2", True),
        ("e-3", True),
        ("e-4", False),
    ]


async def test_two_letters_of_one_record_are_sent_once_per_run(
    kafka_bootstrap: str, scratch_topic: str
) -> None:
    topic = scratch_topic
    for consumer in ("booking", "workouts", "credits"):
        await dead_letter(
            kafka_bootstrap,
            topic,
            partition=1,
            origin=(1, 0),
            consumer=consumer,
            value=b"{not json",
            key=b"1",
        )

    report = await redrive(kafka_bootstrap, topic)

    assert len(report.redriven) == 1
    assert [letter.consumer for letter in report.same_record] == ["workouts", "credits"]
    records = await resent(kafka_bootstrap, topic, 1)
    assert [(r.partition, r.value) for r in records] == [(1, b"{not json")]


async def test_event_ids_select_letters_and_the_others_wait(
    kafka_bootstrap: str, scratch_topic: str
) -> None:
    topic = scratch_topic
    for offset, event_id in enumerate(("e-1", "e-2", "e-3")):
        await dead_letter(
            kafka_bootstrap,
            topic,
            partition=0,
            origin=(0, offset),
            consumer="credits",
            value=event(event_id),
            key=b"k",
        )

    only_e2 = Selection(event_ids=frozenset({"e-2"}))
    middle = await redrive(kafka_bootstrap, topic, selection=only_e2)
    assert [letter.event_id for letter in middle.redriven] == ["e-2"]

    rest = await redrive(kafka_bootstrap, topic)
    assert [letter.event_id for letter in rest.redriven] == ["e-1", "e-3"]
    assert rest.earlier == 1  # e-2, remembered beyond the first letter still waiting
    records = await resent(kafka_bootstrap, topic, 3)
    assert [r.value for r in records] == [event("e-2"), event("e-1"), event("e-3")]


async def test_a_letter_naming_another_topic_than_its_twin_is_refused_and_sent_nowhere(
    kafka_bootstrap: str, scratch_topic: str
) -> None:
    """A letter planted in one topic's `.dlq` cannot be redriven into another (the ledger's,
    say): a dead-letter topic's letters only ever go back to the topic it is the twin of."""
    async with topic_with_dead_letters(kafka_bootstrap, partitions=1) as target:
        producer = AIOKafkaProducer(**client_options(), bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(
                scratch_topic + ".dlq",
                value=event("planted"),
                key=b"1",
                headers=[
                    ("dlq-reason", b"planted"),
                    ("dlq-topic", target.encode()),
                    ("dlq-partition", b"0"),
                    ("dlq-offset", b"0"),
                    ("dlq-consumer", b"credits"),
                ],
            )
        finally:
            await producer.stop()

        report = await redrive(kafka_bootstrap, scratch_topic)

        assert [letter.event_id for letter in report.misrouted] == ["planted"]
        assert report.redriven == []
        assert sum((await end_offsets(kafka_bootstrap, target)).values()) == 0
        assert sum((await end_offsets(kafka_bootstrap, scratch_topic)).values()) == 0
