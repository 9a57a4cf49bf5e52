"""What a chaos run does, drawn from its seed alone: the clients, their packages, and each
session's way in (another platform service on Kafka, or the APIs) and its end (delivered or
cancelled). The same seed gives the same plan, so a failing run can be played again."""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from contracts.session_ids import session_id

#: The producer number of the run's bookings on Kafka (`contracts.session_ids.PRODUCERS`).
CHAOS_PRODUCER = 2
#: Credits a package holds.
PACKAGE_SIZE = 10
#: Trainers the sessions are shared among.
TRAINERS = 12


class Route(enum.StrEnum):
    """How a session reaches the platform."""

    #: Another platform service publishes SessionBooked, then SessionCompleted or
    #: SessionCancelled, on booking.sessions; a package comes from the shop on
    #: commerce.packages.
    KAFKA = "kafka"
    #: Staff book it through booking's API; the trainer logs its workout through workouts'
    #: API, or staff cancel it through booking's; staff grant credits through credits' API.
    API = "api"


class Ending(enum.StrEnum):
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class PlannedSession:
    serial: int
    user_id: int
    trainer_id: int
    route: Route
    ending: Ending
    #: Solo workouts the client logs (through workouts' API) before this session.
    solo_before: int

    @property
    def kafka_session_id(self) -> int:
        """Its id when booked on Kafka (booking's API chooses the id of the others)."""
        return session_id(CHAOS_PRODUCER, self.serial)


@dataclass(frozen=True, slots=True)
class PlannedClient:
    user_id: int
    trainer_id: int
    #: Packages bought on commerce.packages before the client's first session.
    packages: int
    #: Credits granted by staff through the API (0: none).
    granted: int
    sessions: tuple[PlannedSession, ...]


@dataclass(frozen=True, slots=True)
class Shape:
    """The run's proportions."""

    sessions: int
    clients: int
    api_share: float = 0.1
    cancel_share: float = 0.1
    solo_share: float = 0.1


def plan(seed: int, shape: Shape) -> list[PlannedClient]:
    """Each client's sessions in order; ids unique within the run and unlike any other run's
    (the seed picks where they start)."""
    draw = random.Random(seed)
    first_user = draw.randrange(10**9, 2 * 10**9)
    first_serial = draw.randrange(1, 2**39)
    trainers = [first_user + shape.clients + index for index in range(TRAINERS)]
    sessions: dict[int, list[PlannedSession]] = {n: [] for n in range(shape.clients)}
    for serial in range(first_serial, first_serial + shape.sessions):
        client = draw.randrange(shape.clients)
        sessions[client].append(
            PlannedSession(
                serial=serial,
                user_id=first_user + client,
                trainer_id=trainers[client % TRAINERS],
                route=Route.API if draw.random() < shape.api_share else Route.KAFKA,
                ending=Ending.CANCELLED if draw.random() < shape.cancel_share else Ending.DELIVERED,
                solo_before=1 if draw.random() < shape.solo_share else 0,
            )
        )
    clients = []
    for client, planned in sessions.items():
        granted = PACKAGE_SIZE if draw.random() < 0.2 else 0
        needed = max(0, len(planned) - granted)
        clients.append(
            PlannedClient(
                user_id=first_user + client,
                trainer_id=trainers[client % TRAINERS],
                packages=-(-needed // PACKAGE_SIZE) + 1,
                granted=granted,
                sessions=tuple(planned),
            )
        )
    return clients
