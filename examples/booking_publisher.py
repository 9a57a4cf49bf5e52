"""Another platform service publishing trainer-led sessions to `booking.sessions`.

It books sessions with ids of its own block (docs/publishing.md), then starts and completes
most of them, cancels some and marks a few as no-shows, exactly as a kiosk or a partner app
would. It needs only aiokafka and jsonschema, and the contract's JSON Schemas.

    eval "$(uv run ops env --as platform)"
    uv run python examples/booking_publisher.py --sessions 20

Settings come from the environment, as for every client of the platform:
KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME,
KAFKA_SASL_PASSWORD, KAFKA_SSL_CAFILE, and KAFKA_TOPIC_PREFIX (empty unless the platform
runs behind a prefix).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.helpers import create_ssl_context
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "contracts" / "schemas"
TOPIC = "booking.sessions"

# The id scheme (contracts/src/contracts/session_ids.py): producer number in the high bits,
# this producer's own serial below.
SERIAL_BITS = 40
MAX_SERIAL = 2**SERIAL_BITS - 1
#: Serials reserved in the state file at a time: a crash loses at most this many, never
#: hands one out twice.
RESERVED_AT_ONCE = 1000

#: What becomes of each session: most are delivered, some cancelled, a few missed.
OUTCOMES = {"completed": 0.80, "cancelled": 0.15, "no_show": 0.05}
#: Any fixed UUID: event ids are derived from it, so a retry sends the same ids again.
EVENT_ID_NAMESPACE = uuid.UUID("6f1d2a8e-5b0c-4c41-9d7e-2f3a4b5c6d7e")


@dataclass(frozen=True, slots=True)
class SessionIds:
    """This producer's session ids: `producer << 40 | serial`, serials from a counter kept in
    `state` (a real service keeps it in its own database, as a sequence)."""

    producer: int
    state: Path

    def take(self, count: int) -> Iterator[int]:
        serial = self._next_serial()
        while count > 0:
            reserved = min(count, RESERVED_AT_ONCE)
            if serial + reserved - 1 > MAX_SERIAL:
                raise SystemExit(f"producer {self.producer} has used up its block of ids")
            # Written before the ids are used: after a crash they are skipped, not reused.
            self._save_next_serial(serial + reserved)
            for offset in range(reserved):
                yield self.producer << SERIAL_BITS | (serial + offset)
            serial += reserved
            count -= reserved

    def _next_serial(self) -> int:
        if not self.state.exists():
            return 1
        saved: dict[str, int] = json.loads(self.state.read_text())
        if saved["producer"] != self.producer:
            raise SystemExit(f"{self.state} belongs to producer {saved['producer']}")
        return saved["nextSerial"]

    def _save_next_serial(self, serial: int) -> None:
        self.state.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.state.with_suffix(".tmp")
        with temporary.open("w") as file:
            json.dump({"producer": self.producer, "nextSerial": serial}, file)
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(self.state)


class Validators:
    """Each event checked against the contract's JSON Schema of its type (the whole
    CloudEvent) before it is sent: an invalid event would only be dead-lettered."""

    def __init__(self) -> None:
        self._by_type: dict[str, Draft202012Validator] = {}

    def check(self, event: dict[str, Any]) -> None:
        event_type = event["type"]
        validator = self._by_type.get(event_type)
        if validator is None:
            schema = json.loads((SCHEMAS / f"{event_type}.v1.schema.json").read_text())
            validator = self._by_type[event_type] = Draft202012Validator(schema)
        validator.validate(event)


def cloud_event(source: str, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    session_id = data["sessionId"]
    return {
        "specversion": "1.0",
        # The same event always gets the same id: consumers skip it when it comes again.
        "id": str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{source} {session_id} {event_type}")),
        "source": source,
        "type": event_type,
        "time": _now(),
        "subject": str(session_id),
        "datacontenttype": "application/json",
        "dataversion": "1",
        "data": data,
    }


def session_story(session_id: int, client: int, trainer: int, outcome: str) -> list[Any]:
    """The events of one session, in order: booked, then where it ended."""
    date = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    parties = {"sessionId": session_id, "userId": client, "trainerId": trainer}
    booking = {**parties, "sessionDate": date.isoformat(), "duration": 60, "location": "Studio 2"}
    booked = ("SessionBooked", booking)
    if outcome == "completed":
        return [
            booked,
            ("SessionStarted", {**parties, "at": _now()}),
            ("SessionCompleted", {**parties, "at": _now()}),
        ]
    if outcome == "cancelled":
        return [booked, ("SessionCancelled", {**parties, "at": _now(), "reason": "client ill"})]
    return [booked, ("SessionNoShow", {**parties, "at": _now()})]


def producer_settings() -> dict[str, Any]:
    """The client settings of the contract, from the environment."""
    protocol = os.environ.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    settings: dict[str, Any] = {
        "bootstrap_servers": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        "security_protocol": protocol,
        # Idempotent: a retried send is written once, in order, per partition.
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": 5,
    }
    if protocol.startswith("SASL"):
        settings |= {
            "sasl_mechanism": os.environ.get("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
            "sasl_plain_username": os.environ["KAFKA_SASL_USERNAME"],
            "sasl_plain_password": os.environ["KAFKA_SASL_PASSWORD"],
        }
    if protocol.endswith("SSL"):
        settings["ssl_context"] = create_ssl_context(cafile=os.environ.get("KAFKA_SSL_CAFILE"))
    return settings


async def publish(arguments: argparse.Namespace) -> dict[str, list[int]]:
    """Book and play `arguments.sessions` sessions; what became of each, by outcome."""
    chance = random.Random(arguments.seed)
    ids = SessionIds(arguments.producer, arguments.state)
    validators = Validators()
    topic = os.environ.get("KAFKA_TOPIC_PREFIX", "") + TOPIC
    sent: dict[str, list[int]] = {outcome: [] for outcome in OUTCOMES}
    producer = AIOKafkaProducer(**producer_settings())
    await producer.start()
    try:
        deliveries = []
        for session_id in ids.take(arguments.sessions):
            client = chance.randint(1, arguments.clients)
            trainer = 1000 + chance.randint(1, arguments.trainers)
            outcome = chance.choices(list(OUTCOMES), weights=list(OUTCOMES.values()))[0]
            for event_type, data in session_story(session_id, client, trainer, outcome):
                event = cloud_event(arguments.source, event_type, data)
                validators.check(event)
                deliveries.append(
                    await producer.send(
                        topic,
                        # Keyed by session id: one session's events stay in order.
                        key=str(session_id).encode(),
                        value=json.dumps(event).encode(),
                        headers=[("content-type", b"application/cloudevents+json")],
                    )
                )
            sent[outcome].append(session_id)
        # Done only when the broker has every record (acks=all).
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()
    return sent


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=20, help="how many to book (20)")
    parser.add_argument("--clients", type=int, default=10, help="client ids 1..N (10)")
    parser.add_argument("--trainers", type=int, default=3, help="trainer ids 1001.. (3)")
    parser.add_argument(
        "--producer", type=int, default=1, help="this producer's number (1: the example's)"
    )
    parser.add_argument("--source", default="/platform/example", help="the CloudEvents source")
    parser.add_argument(
        "--state",
        type=Path,
        default=ROOT / ".local" / "examples" / "booking-publisher.json",
        help="where the next serial is kept",
    )
    parser.add_argument("--report", type=Path, help="write the session ids by outcome here")
    parser.add_argument("--seed", type=int, help="the same seed plays the same sessions")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    arguments = parse(argv)
    sent = asyncio.run(publish(arguments))
    if arguments.report:
        arguments.report.write_text(json.dumps(sent))
    counts = ", ".join(f"{len(ids)} {outcome}" for outcome, ids in sent.items())
    every = sorted(i for ids in sent.values() for i in ids)
    span = f"ids {every[0]}..{every[-1]}" if every else "no ids"
    print(f"published {len(every)} sessions ({counts}); {span}")


if __name__ == "__main__":
    main(sys.argv[1:])
