"""The chaos run's pure parts: its plan and faults follow from the seed alone, and the checker
names every way a client's state can differ from the truth."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Set

import pytest

from contracts.session_ids import producer_of
from ops.chaos.faults import ALL_KINDS, Fault, FaultKind, parse_kinds, schedule
from ops.chaos.plan import CHAOS_PRODUCER, PACKAGE_SIZE, Ending, Route, Shape, plan
from ops.chaos.run import Timeline, _inject
from ops.chaos.truth import ClientState, ClientTruth, check

REPLICAS = ["booking-0", "workouts-0", "credits-0", "credits-1", "analytics-0"]
SERVICES = ["booking", "workouts", "credits", "analytics"]


def test_the_same_seed_gives_the_same_plan_and_another_seed_another() -> None:
    shape = Shape(sessions=500, clients=40)

    assert plan(1, shape) == plan(1, shape)
    assert plan(1, shape) != plan(2, shape)


def test_the_plan_has_every_session_once_with_both_routes_and_endings() -> None:
    clients = plan(3, Shape(sessions=2000, clients=50))
    sessions = [session for client in clients for session in client.sessions]

    assert len(sessions) == 2000
    assert len({session.serial for session in sessions}) == 2000
    assert {producer_of(session.kafka_session_id) for session in sessions} == {CHAOS_PRODUCER}
    routes, endings = Counter(s.route for s in sessions), Counter(s.ending for s in sessions)
    assert 100 < routes[Route.API] < 300
    assert 100 < endings[Ending.CANCELLED] < 300
    for client in clients:
        # Enough credits for every session, whatever the order of arrival.
        assert client.packages * PACKAGE_SIZE + client.granted >= len(client.sessions)
        assert all(session.user_id == client.user_id for session in client.sessions)


def test_faults_follow_the_seed_each_kind_as_often_as_asked_within_the_window() -> None:
    faults = schedule(5, ALL_KINDS, 20, 600.0, REPLICAS, SERVICES)

    assert faults == schedule(5, ALL_KINDS, 20, 600.0, REPLICAS, SERVICES)
    assert faults != schedule(6, ALL_KINDS, 20, 600.0, REPLICAS, SERVICES)
    assert Counter(fault.kind for fault in faults) == dict.fromkeys(ALL_KINDS, 20)
    assert all(0 <= fault.at < 600 for fault in faults)
    assert [fault.at for fault in faults] == sorted(fault.at for fault in faults)
    for fault in faults:
        if fault.kind in (FaultKind.SERVICE_KILLED, FaultKind.CONSUMER_PAUSED):
            assert fault.target in REPLICAS
        elif fault.kind is FaultKind.CONNECTIONS_KILLED:
            assert fault.target in SERVICES
        else:
            assert fault.target == ""
    assert {f.target for f in faults if f.kind is FaultKind.SERVICE_KILLED} > {"credits-1"}


class RecordingStage:
    """Strikes nothing; remembers whom each wait for readiness left out, when it began. The
    first wait lasts until `comes_back` is set: a process slow to come back."""

    def __init__(self) -> None:
        self.waits: list[set[str]] = []
        self.comes_back = asyncio.Event()

    def kill(self, replica: object) -> None: ...
    def launch(self, replica: object) -> None: ...
    def kill_broker(self) -> None: ...

    async def start_broker(self) -> None: ...

    async def wait_until_ready(self, within: float, ignoring: Set[str] = frozenset()) -> float:
        self.waits.append(set(ignoring))
        if len(self.waits) == 1:
            await self.comes_back.wait()
        return 0.0


def test_a_process_coming_back_is_excused_from_the_servers_recovery_only_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("ops.chaos.run.OUTAGE_SECONDS", 0.0)
    monkeypatch.setattr("ops.chaos.run._replica", lambda stage, label: label)
    stage = RecordingStage()
    timeline = Timeline()

    async def both_lanes() -> None:
        killed = Fault(FaultKind.SERVICE_KILLED, 1.0, "credits-0")
        broker = Fault(FaultKind.BROKER_KILLED, 1.0, "")
        process = asyncio.create_task(_inject(stage, killed, 1.0, timeline))  # type: ignore[arg-type]
        await asyncio.sleep(0)  # the kill is done; credits-0 is coming back
        assert timeline.excused == {"credits-0"}
        assert not timeline.struck
        await _inject(stage, broker, 1.0, timeline)  # type: ignore[arg-type]
        stage.comes_back.set()
        record = await process
        # Counted from the broker's return, which came later than the kill.
        assert 0 <= record.recovered_in < 1.0

    asyncio.run(both_lanes())

    # The process's own wait leaves nobody out; the broker's leaves out the process still
    # coming back, and nothing is excused once both are done.
    assert stage.waits == [set(), {"credits-0"}]
    assert not timeline.excused
    assert not timeline.struck


def test_fault_kinds_are_named_or_all() -> None:
    assert parse_kinds("all") == ALL_KINDS
    assert parse_kinds("broker-killed, postgres-crashed") == (
        FaultKind.BROKER_KILLED,
        FaultKind.POSTGRES_CRASHED,
    )
    with pytest.raises(ValueError, match="unknown fault kind disk-full"):
        parse_kinds("broker-killed,disk-full")


# --- the checker ---------------------------------------------------------------------------

USAGE = {"solo": 2, "trainerLed": 1, "creditsTotal": 10, "creditsUsed": 2, "creditsRemaining": 8}


def truth() -> ClientTruth:
    return ClientTruth(
        user_id=7,
        purchased=10,
        delivered={101, 102},
        cancelled={103},
        solo_workouts=2,
        trainer_led_workouts=1,
    )


def state(**changes: object) -> ClientState:
    healthy = ClientState(
        user_id=7,
        balance={"total": 10, "used": 2, "remaining": 8, "held": 0},
        deductions=Counter({101: 1, 102: 1}),
        forfeits=Counter(),
        session_deducted={101: True, 102: True, 103: False},
        usage=dict(USAGE),
        published_usage=dict(USAGE),
    )
    for name, value in changes.items():
        setattr(healthy, name, value)
    return healthy


def test_a_state_equal_to_the_truth_is_clean() -> None:
    assert check(truth(), state()).clean


def test_a_delivered_session_not_deducted_is_lost() -> None:
    verdict = check(
        truth(),
        state(
            deductions=Counter({101: 1}),
            balance={"total": 10, "used": 1, "remaining": 9, "held": 0},
        ),
    )

    assert "client 7: session 102 delivered, no credit deducted" in verdict.lost
    assert "client 7: credits used is 1, expected 2" in verdict.lost
    assert verdict.wrong == ["client 7: credits remaining is 9, expected 8"]


def test_a_session_deducted_twice_is_duplicated() -> None:
    verdict = check(truth(), state(deductions=Counter({101: 2, 102: 1})))

    assert verdict.duplicated == ["client 7: session 101 deducted 2 times"]
    assert not verdict.lost
    assert not verdict.wrong


def test_a_cancelled_or_unknown_session_charged_is_wrong() -> None:
    verdict = check(
        truth(),
        state(deductions=Counter({101: 1, 102: 1, 999: 1}), forfeits=Counter({103: 1})),
    )

    assert verdict.wrong == [
        "client 7: session 103 cancelled, yet charged",
        "client 7: session 999 never booked for them, yet charged",
    ]


def test_booking_must_know_every_session_and_mark_exactly_the_deducted_ones() -> None:
    verdict = check(truth(), state(session_deducted={101: True, 102: False}))

    assert verdict.lost == ["client 7: session 103 unknown to booking"]
    assert verdict.wrong == ["client 7: session 102 sessionDeducted is False"]


def test_analytics_and_the_usage_topic_must_equal_the_truth() -> None:
    counted_twice = {**USAGE, "solo": 3}
    verdict = check(truth(), state(usage=counted_twice, published_usage=dict(USAGE)))

    assert verdict.duplicated == ["client 7: analytics solo is 3, expected 2"]
    assert len(verdict.wrong) == 1
    assert "last usage update" in verdict.wrong[0]
    assert check(truth(), state(published_usage=None)).lost == [
        "client 7: no usage update on the usage topic"
    ]


def test_held_credits_left_at_the_end_are_reported() -> None:
    verdict = check(truth(), state(balance={"total": 10, "used": 2, "remaining": 8, "held": 1}))

    assert verdict.wrong == ["client 7: credits held is 1, expected 0"]
