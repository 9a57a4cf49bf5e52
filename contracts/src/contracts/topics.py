"""Every Kafka topic of the contract, its partition key and its settings, in one place.

Operators' tooling creates topics from this list, services subscribe and publish by these
names, and the tests check `docker-compose.yml` against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from contracts.services import CREDITS

DEAD_LETTER_SUFFIX = ".dlq"

#: Partitions per topic. Enough for a few replicas of a service to share the load on one
#: broker; keys keep each session's and each client's events in order within a partition.
DEFAULT_PARTITIONS = 6

_FOREVER = {"retention.ms": "-1"}
_COMPACTED = {"cleanup.policy": "compact"}
#: The largest record a `.dlq` twin takes: twice the broker's default (1 MiB), so that the
#: largest record a topic takes still fits once its dead-letter headers are added to it.
DEAD_LETTER_MAX_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Topic:
    """A topic of the contract: its name, what its record key is, and its broker settings."""

    name: str
    key: str
    event_types: tuple[str, ...]
    config: dict[str, str] = field(default_factory=dict)
    partitions: int = DEFAULT_PARTITIONS
    #: The only `source` its events may have, where a forged event would be worst: credits
    #: records any entry that appears on its own ledger topic. Consumers refuse the others,
    #: whatever the broker let through (on every topic, its ACLs say who may write).
    sole_source: str | None = None

    def with_prefix(self, prefix: str) -> Topic:
        """The same topic in a namespace: isolated copies of the platform share a broker by
        giving each its own prefix (see the `KAFKA_TOPIC_PREFIX` setting)."""
        return replace(self, name=prefix + self.name)

    @property
    def dead_letter(self) -> Topic:
        """The `.dlq` twin: same partitions, kept forever so no dead letter is lost, and
        room for the largest record of its topic with the reason beside it."""
        return Topic(
            name=self.name + DEAD_LETTER_SUFFIX,
            key=self.key,
            event_types=self.event_types,
            config={**_FOREVER, "max.message.bytes": str(DEAD_LETTER_MAX_BYTES)},
            partitions=self.partitions,
            sole_source=self.sole_source,
        )


BOOKING_SESSIONS = Topic(
    name="booking.sessions",
    key="sessionId",
    event_types=(
        "SessionBooked",
        "SessionRescheduled",
        "SessionStarted",
        "SessionCompleted",
        "SessionCancelled",
        "SessionNoShow",
        "GroupSessionScheduled",
        "ParticipantJoined",
        "ParticipantLeft",
        "GroupSessionCompleted",
        "GroupSessionCancelled",
    ),
    config=_FOREVER,
)
WORKOUT_SESSIONS = Topic(
    name="workouts.workout-sessions",
    key="userId",
    event_types=("WorkoutLogged", "WorkoutStatusChanged"),
    config=_FOREVER,
)
COMMERCE_PACKAGES = Topic(
    name="commerce.packages",
    key="userId",
    event_types=("PackagePurchased",),
    config=_FOREVER,
)
CREDITS_LEDGER = Topic(
    name="credits.ledger",
    key="userId",
    event_types=(
        "CreditsGranted",
        "SessionCreditDeducted",
        "SessionCreditRestored",
        "CreditDeductionRejected",
        "SessionCreditForfeited",
        "CreditsExpired",
        "SoloWorkoutCounted",
        "CreditsRunningLow",
        "PackageExpiringSoon",
    ),
    config=_FOREVER,
    sole_source=CREDITS.event_source,
)
SESSION_USAGE = Topic(
    name="analytics.session-usage",
    key="userId",
    event_types=("SessionUsageUpdated",),
    config=_COMPACTED,
)

#: The contract's topics, in the order of contracts.md.
TOPICS: tuple[Topic, ...] = (
    BOOKING_SESSIONS,
    WORKOUT_SESSIONS,
    COMMERCE_PACKAGES,
    CREDITS_LEDGER,
    SESSION_USAGE,
)

#: Every topic the platform needs: each topic of the contract and its dead-letter twin.
ALL_TOPICS: tuple[Topic, ...] = tuple(t for topic in TOPICS for t in (topic, topic.dead_letter))


def topic_for_event(event_type: str) -> Topic:
    """The topic an event type is published to."""
    for topic in TOPICS:
        if event_type in topic.event_types:
            return topic
    raise KeyError(f"no topic carries event type {event_type!r}")
