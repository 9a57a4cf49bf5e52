"""The faults a chaos run injects, when, and into what: drawn from the seed, so the same
seed puts the same faults at the same moments into the same processes."""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from dataclasses import dataclass


class FaultKind(enum.StrEnum):
    #: SIGKILL of one process of a service, started again at once (as `make up` would).
    SERVICE_KILLED = "service-killed"
    #: SIGKILL of the Kafka broker, started again after a pause.
    BROKER_KILLED = "broker-killed"
    #: PostgreSQL stopped in immediate mode (no checkpoint: it recovers from its log) and
    #: started again after a pause.
    POSTGRES_CRASHED = "postgres-crashed"
    #: Every connection to a service's database terminated from the server's side.
    CONNECTIONS_KILLED = "connections-killed"
    #: A service's process stopped (SIGSTOP) past its consumer's session timeout, then
    #: continued (SIGCONT): its group moved on without it meanwhile.
    CONSUMER_PAUSED = "consumer-paused"


ALL_KINDS: tuple[FaultKind, ...] = tuple(FaultKind)
#: Faults of the two servers, and faults of one service: each lane strikes one at a time,
#: the two lanes side by side (a process may die while the broker is down). The two lanes
#: carry about equal time at the defaults: a broker restart takes the longest.
SERVER_FAULTS = frozenset({FaultKind.BROKER_KILLED, FaultKind.POSTGRES_CRASHED})


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    #: Seconds after the workload's start.
    at: float
    #: The process or database it hits: `credits-1`, `analytics`; empty for the broker and
    #: PostgreSQL, which are one each.
    target: str

    @property
    def hits_a_service(self) -> bool:
        return self.kind not in SERVER_FAULTS

    @property
    def hits_a_process(self) -> bool:
        return self.kind in (FaultKind.SERVICE_KILLED, FaultKind.CONSUMER_PAUSED)


def parse_kinds(text: str) -> tuple[FaultKind, ...]:
    """`all`, or names separated by commas (`broker-killed,postgres-crashed`)."""
    if text.strip() == "all":
        return ALL_KINDS
    names = [name.strip() for name in text.split(",") if name.strip()]
    known = {kind.value: kind for kind in FaultKind}
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        choices = ", ".join(known)
        raise ValueError(f"unknown fault kind {', '.join(unknown) or '(none)'}; use {choices}")
    return tuple(dict.fromkeys(known[name] for name in names))


def schedule(
    seed: int,
    kinds: Sequence[FaultKind],
    per_kind: int,
    within: float,
    replicas: Sequence[str],
    databases: Sequence[str],
) -> list[Fault]:
    """`per_kind` faults of each kind, in random order, one per slot of `within` seconds
    (each a little late at random, so no two runs of different seeds beat alike);
    `replicas` are the processes a service fault may hit, `databases` the services whose
    connections may be killed."""
    draw = random.Random(f"faults-{seed}")
    order = [kind for kind in kinds for _ in range(per_kind)]
    draw.shuffle(order)
    if not order:
        return []
    slot = within / len(order)
    faults = []
    for index, kind in enumerate(order):
        if kind in (FaultKind.SERVICE_KILLED, FaultKind.CONSUMER_PAUSED):
            target = draw.choice(list(replicas))
        elif kind is FaultKind.CONNECTIONS_KILLED:
            target = draw.choice(list(databases))
        else:
            target = ""
        faults.append(Fault(kind, round(index * slot + draw.uniform(0, slot / 3), 2), target))
    return faults
