"""The Kafka principals of the contract ("Identity and access (Kafka)") and what each may do:
the one table the brokers' ACLs, the services' inputs and the docs follow."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.topics import (
    BOOKING_SESSIONS,
    COMMERCE_PACKAGES,
    CREDITS_LEDGER,
    SESSION_USAGE,
    WORKOUT_SESSIONS,
    Topic,
)

#: A SCRAM mechanism every client uses, as the contract says.
SASL_MECHANISM = "SCRAM-SHA-512"
#: Analytics consumers name their consumer groups with this prefix (`subscriber.dashboard`):
#: they may use those groups and no other (a group is joined by whoever may read it).
SUBSCRIBER_GROUP_PREFIX = "subscriber"


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    #: Topics it produces to.
    writes: tuple[Topic, ...] = ()
    #: Topics it consumes (a service: its inputs, and it dead-letters into their twins).
    reads: tuple[Topic, ...] = ()
    #: The consumer groups it may use: those named with this prefix (a service: its own,
    #: `<service>` behind the topic prefix).
    groups: str | None = None
    #: A service: it writes the `.dlq` twin of each topic it reads.
    dead_letters: bool = False
    #: May do everything, on every topic and group (the operators' tool).
    superuser: bool = False


BOOKING = Principal(
    "booking",
    writes=(BOOKING_SESSIONS,),
    reads=(BOOKING_SESSIONS, CREDITS_LEDGER),
    groups="booking",
    dead_letters=True,
)
WORKOUTS = Principal(
    "workouts",
    writes=(WORKOUT_SESSIONS,),
    reads=(BOOKING_SESSIONS, WORKOUT_SESSIONS),
    groups="workouts",
    dead_letters=True,
)
CREDITS = Principal(
    "credits",
    writes=(CREDITS_LEDGER,),
    reads=(BOOKING_SESSIONS, WORKOUT_SESSIONS, COMMERCE_PACKAGES, CREDITS_LEDGER),
    groups="credits",
    dead_letters=True,
)
ANALYTICS = Principal(
    "analytics",
    writes=(SESSION_USAGE,),
    reads=(WORKOUT_SESSIONS, CREDITS_LEDGER, BOOKING_SESSIONS),
    groups="analytics",
    dead_letters=True,
)
#: Other platform services (a kiosk, the front desk) that book and move sessions.
PLATFORM = Principal("platform", writes=(BOOKING_SESSIONS,))
#: The shop that sells packages.
STORE = Principal("store", writes=(COMMERCE_PACKAGES,))
#: Analytics consumers.
SUBSCRIBER = Principal("subscriber", reads=(SESSION_USAGE,), groups=SUBSCRIBER_GROUP_PREFIX)
#: The operators' tool: replays, rebuilds, redrives, topics, and the tests' setup.
OPS = Principal("ops", superuser=True)

PRINCIPALS: tuple[Principal, ...] = (
    BOOKING,
    WORKOUTS,
    CREDITS,
    ANALYTICS,
    PLATFORM,
    STORE,
    SUBSCRIBER,
    OPS,
)
