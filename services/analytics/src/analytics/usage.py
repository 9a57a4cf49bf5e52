"""A client's session usage, in the spec's terms: how their completed workouts split between
solo and trainer-led, and where their session credits stand. Pure rules, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from contracts.events import Balance, SessionType, SessionUsageUpdated, TypeUsage

ONE_DECIMAL = Decimal("0.1")


def no_credits() -> Balance:
    return Balance(total=0, used=0, remaining=0)


def percentage(part: int, whole: int) -> Decimal:
    """`part` as a percentage of `whole`, rounded half up to one decimal (2 of 3 -> 66.7).
    Decimal, not float: 0.25 of a tenth must round up, and binary floats cannot hold it."""
    if whole == 0:
        # A client with no completed workouts has no split to show, not an error.
        return Decimal("0.0")
    return (Decimal(part) * 100 / Decimal(whole)).quantize(ONE_DECIMAL, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class CompletedWorkouts:
    """Completed workouts by session type: the only workouts usage counts."""

    solo: int = 0
    trainer_led: int = 0

    @classmethod
    def from_counts(cls, counts: dict[SessionType, int]) -> CompletedWorkouts:
        return cls(
            solo=counts.get(SessionType.SOLO, 0),
            trainer_led=counts.get(SessionType.TRAINER_LED, 0),
        )


@dataclass(frozen=True, slots=True)
class SessionUsage:
    workouts: CompletedWorkouts = field(default_factory=CompletedWorkouts)
    credits: Balance = field(default_factory=no_credits)

    @property
    def total(self) -> int:
        return self.workouts.solo + self.workouts.trainer_led

    @property
    def solo(self) -> TypeUsage:
        return self._share(self.workouts.solo)

    @property
    def trainer_led(self) -> TypeUsage:
        return self._share(self.workouts.trainer_led)

    def _share(self, count: int) -> TypeUsage:
        # The contract carries a JSON number; one decimal survives the trip through float.
        return TypeUsage(count=count, percentage=float(percentage(count, self.total)))

    def announcement(self, user_id: int, *, as_of: datetime) -> SessionUsageUpdated:
        return SessionUsageUpdated(
            user_id=user_id,
            total=self.total,
            solo=self.solo,
            trainer_led=self.trainer_led,
            credits=self.credits,
            as_of=as_of,
        )
