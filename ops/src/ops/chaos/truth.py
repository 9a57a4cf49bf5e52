"""What the platform was told and accepted during a chaos run, and what it holds at the end;
`check` compares the two. Pure: the run fills both, the tests build them by hand."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ClientTruth:
    """One client as the workload knows them: every record of theirs acknowledged by the
    broker, every request of theirs a service accepted (ambiguous answers settled by asking
    the service that owns the record)."""

    user_id: int
    purchased: int = 0
    #: Sessions whose credit must be used: completed, or their workout logged.
    delivered: set[int] = field(default_factory=set)
    cancelled: set[int] = field(default_factory=set)
    solo_workouts: int = 0
    trainer_led_workouts: int = 0


@dataclass
class ClientState:
    """One client as the services answer at the end, through their APIs, and as the last
    usage update on the usage topic says."""

    user_id: int
    #: credits' balance: total, used, remaining, held.
    balance: dict[str, int]
    #: The ledger's deductions (and forfeits) per session.
    deductions: Counter[int]
    forfeits: Counter[int]
    #: booking's sessionDeducted of each of the client's sessions.
    session_deducted: dict[int, bool]
    #: analytics' usage: solo and trainerLed counts, its credits.
    usage: dict[str, int]
    #: The last SessionUsageUpdated of the client on the usage topic (None: none there).
    published_usage: dict[str, int] | None


@dataclass
class Verdict:
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.wrong)

    def merge(self, other: Verdict) -> None:
        self.lost += other.lost
        self.duplicated += other.duplicated
        self.wrong += other.wrong


def check(truth: ClientTruth, state: ClientState) -> Verdict:
    """Every way the client's state can differ from the truth, each named once."""
    verdict = Verdict()
    who = f"client {truth.user_id}"
    for session in sorted(truth.delivered):
        charged = state.deductions[session]
        if charged == 0:
            verdict.lost.append(f"{who}: session {session} delivered, no credit deducted")
        elif charged > 1:
            verdict.duplicated.append(f"{who}: session {session} deducted {charged} times")
    for session in sorted(truth.cancelled):
        if state.deductions[session] or state.forfeits[session]:
            verdict.wrong.append(f"{who}: session {session} cancelled, yet charged")
    for session in sorted(set(state.deductions) - truth.delivered - truth.cancelled):
        verdict.wrong.append(f"{who}: session {session} never booked for them, yet charged")
    used = len(truth.delivered)
    _compare(verdict, f"{who}: credits total", truth.purchased, state.balance.get("total"))
    _compare(verdict, f"{who}: credits used", used, state.balance.get("used"))
    remaining = state.balance.get("remaining")
    _compare(verdict, f"{who}: credits remaining", truth.purchased - used, remaining, derived=True)
    _compare(verdict, f"{who}: credits held", 0, state.balance.get("held"), derived=True)
    for session in sorted(truth.delivered | truth.cancelled):
        deducted = state.session_deducted.get(session)
        if deducted is None:
            verdict.lost.append(f"{who}: session {session} unknown to booking")
        elif deducted != (session in truth.delivered):
            verdict.wrong.append(f"{who}: session {session} sessionDeducted is {deducted}")
    counted = {
        "solo": truth.solo_workouts,
        "trainerLed": truth.trainer_led_workouts,
        "creditsTotal": truth.purchased,
        "creditsUsed": used,
    }
    for name, value in counted.items():
        _compare(verdict, f"{who}: analytics {name}", value, state.usage.get(name))
    _compare(
        verdict,
        f"{who}: analytics creditsRemaining",
        truth.purchased - used,
        state.usage.get("creditsRemaining"),
        derived=True,
    )
    if state.published_usage is None:
        verdict.lost.append(f"{who}: no usage update on the usage topic")
    elif state.published_usage != state.usage:
        verdict.wrong.append(
            f"{who}: the last usage update {state.published_usage} is not analytics' answer "
            f"{state.usage}"
        )
    return verdict


def _compare(
    verdict: Verdict, what: str, expected: int, actual: int | None, *, derived: bool = False
) -> None:
    """A count off is lost (lower) or duplicated (higher); a figure `derived` from others
    (remaining, held) off is wrong."""
    if actual == expected:
        return
    line = f"{what} is {actual}, expected {expected}"
    if derived:
        verdict.wrong.append(line)
    elif actual is None or actual < expected:
        verdict.lost.append(line)
    else:
        verdict.duplicated.append(line)
