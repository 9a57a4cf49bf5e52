"""The spec's worked examples, end to end through the public interfaces of real processes."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts.events import SessionBooked
from contracts.topics import BOOKING_SESSIONS
from ops.demo import Endpoints, buy_package, fetch_charts, play_example_one
from ops.demo_assisted import play_trainer_assisted_week
from ops.demo_group import play_group_session
from ops.demo_month import month_report, play_hybrid_month
from testkit.helpers import eventually, read_topic

from .platform import IsolatedPlatform
from .stories import play_example_two

pytestmark = pytest.mark.infra


def endpoints(platform: IsolatedPlatform) -> Endpoints:
    return Endpoints(
        tokens=platform.tokens,
        booking=platform.url("booking"),
        workouts=platform.url("workouts"),
        credits=platform.url("credits"),
        analytics=platform.url("analytics"),
        kafka_bootstrap=platform.kafka_bootstrap,
        topic_prefix=platform.topic_prefix,
    )


async def get(platform: IsolatedPlatform, url: str) -> Any:
    """GET as staff."""
    async with platform.http() as http:
        response = await http.get(url)
        response.raise_for_status()
        return response.json()


async def test_example_1_a_client_with_a_10_session_package(platform: IsolatedPlatform) -> None:
    urls = endpoints(platform)
    client = await play_example_one(urls, lambda line: None)

    usage = await get(platform, f"{urls.analytics}/api/analytics/{client}/session-usage")
    assert usage == {
        "total": 6,
        "solo": {"count": 4, "percentage": 66.7},
        "trainerLed": {"count": 2, "percentage": 33.3},
        "trainerAssisted": {"count": 0, "percentage": 0.0},
        "group": {"count": 0, "percentage": 0.0},
        "credits": {
            "total": 10,
            "used": 2,
            "remaining": 8,
            "held": 0,
            "expired": 0,
            "available": 8,
        },
    }
    balance = await get(platform, f"{urls.credits}/api/credits/{client}")
    assert (balance["total"], balance["used"], balance["remaining"]) == (10, 2, 8)
    ledger = await get(platform, f"{urls.credits}/api/credits/{client}/ledger")
    assert [line["kind"] for line in ledger] == ["grant", "deduction", "deduction"]

    async def both_sessions_marked_deducted() -> bool:
        sessions = await get(platform, f"{urls.booking}/api/sessions?userId={client}")
        return len(sessions) == 2 and all(s["sessionDeducted"] for s in sessions)

    await eventually(both_sessions_marked_deducted)

    charts = await fetch_charts(urls, client)
    for expected in (
        "Workout Type Distribution",
        "Solo Workouts",
        "4 (66.7%)",
        "Trainer Sessions",
        "2 (33.3%)",
        "Session Credits",
    ):
        assert expected in charts
    # Nothing held (both sessions delivered), nothing expired: the spec's credit chart.
    assert charts.splitlines()[7:] == [
        "Used:      ███               2",
        "Remaining: █████████████     8",
        "Total:     ████████████████ 10",
    ]


async def test_example_2_the_analytics_dashboard(platform: IsolatedPlatform) -> None:
    urls = endpoints(platform)
    client = random.randint(10_000, 99_999)
    await play_example_two(platform, urls, client)

    expected = {
        "total": 45,
        "solo": {"count": 30, "percentage": 66.7},
        "trainerLed": {"count": 15, "percentage": 33.3},
        "trainerAssisted": {"count": 0, "percentage": 0.0},
        "group": {"count": 0, "percentage": 0.0},
        "credits": {
            "total": 20,
            "used": 15,
            "remaining": 5,
            "held": 0,
            "expired": 0,
            "available": 5,
        },
    }

    async def dashboard_shows_it() -> bool:
        usage = await get(platform, f"{urls.analytics}/api/analytics/{client}/session-usage")
        return bool(usage == expected)

    await eventually(dashboard_shows_it, within=60)


async def test_poison_records_are_dead_lettered_by_every_consumer_and_valid_ones_still_land(
    platform: IsolatedPlatform,
) -> None:
    urls = endpoints(platform)
    topic = BOOKING_SESSIONS.name
    await platform.publish_raw(topic, b"{not json", key=b"1")
    await platform.publish_raw(topic, json.dumps({"hello": "world"}).encode(), key=b"1")
    await platform.publish_raw(
        topic,
        json.dumps(
            {
                "specversion": "1.0",
                "id": "bad-booking",
                "source": "/platform/kiosk",
                "type": "SessionBooked",
                "data": {"sessionId": 1, "userId": "someone"},
            }
        ).encode(),
        key=b"1",
    )
    # A valid booking from another platform service, keyed like the poison: same partition.
    await platform.publish(
        [
            SessionBooked(
                session_id=1,
                user_id=5,
                trainer_id=6,
                session_date=datetime(2026, 3, 1, 10, tzinfo=UTC),
            )
        ],
        source="/platform/kiosk",
    )

    dlq = platform.topic_prefix + topic + ".dlq"

    def by_consumer(records: list[Any]) -> dict[str, list[str]]:
        reasons: dict[str, list[str]] = {}
        for record in records:
            headers = dict(record.headers)
            reasons.setdefault(headers["dlq-consumer"].decode(), []).append(
                headers["dlq-reason"].decode()
            )
        return reasons

    consumers = platform.readers_of(BOOKING_SESSIONS)
    assert len(consumers) == 4  # every service reads booking.sessions
    records = await read_topic(
        platform.kafka_bootstrap,
        dlq,
        until=lambda records: (
            {k for k, v in by_consumer(records).items() if len(v) >= 3} >= consumers
        ),
        within=60,
    )
    assert set(by_consumer(records)) == consumers
    for reasons in by_consumer(records).values():
        assert reasons[0].startswith("not JSON")
        assert reasons[1].startswith("not a CloudEvent")
        assert reasons[2].startswith("invalid SessionBooked payload")

    # The partition kept flowing: the booking after the poison reached every service.
    async def booking_has_it() -> bool:
        async with platform.http() as http:
            return (await http.get(f"{urls.booking}/api/sessions/1")).status_code == 200

    await eventually(booking_has_it, within=30)

    async def workouts_know_the_session() -> bool:
        async with platform.http() as http:
            refused = await http.post(
                f"{urls.workouts}/api/workout/sessions",
                json={
                    "userId": 99,
                    "sessionType": "trainer-led",
                    "sessionId": 1,
                    "trainerId": 6,
                    "title": "Not my session",
                },
            )
        return refused.status_code == 422

    await eventually(workouts_know_the_session, within=30)


async def test_trainer_and_client_both_logging_a_completed_session_use_one_credit(
    platform: IsolatedPlatform,
) -> None:
    urls = endpoints(platform)
    client, trainer = random.randint(10_000, 99_999), 456
    await buy_package(urls, client, sessions=5)
    await platform.settled()  # booking has heard of the grant
    async with platform.http() as http:
        booked = await http.post(
            f"{urls.booking}/api/sessions",
            json={"userId": client, "trainerId": trainer, "sessionDate": "2026-03-02T10:00:00Z"},
        )
        session_id = booked.json()["id"]
        link = {"sessionType": "trainer-led", "sessionId": session_id, "trainerId": trainer}
        steps = [
            http.patch(f"{urls.booking}/api/sessions/{session_id}", json={"status": "in_progress"}),
            http.post(  # the trainer, during the session
                f"{urls.workouts}/api/workout/sessions",
                json={"userId": client, "title": "PT", "status": "in_progress", **link},
            ),
            http.post(  # the client, afterwards
                f"{urls.workouts}/api/workout/sessions",
                json={"userId": client, "title": "My PT session", **link},
            ),
            http.patch(f"{urls.booking}/api/sessions/{session_id}", json={"status": "completed"}),
        ]
        for step in steps:
            response = await step
            assert response.is_success, response.text

    async def deducted_and_settled() -> bool:
        sessions = await get(platform, f"{urls.booking}/api/sessions?userId={client}")
        return bool(sessions and sessions[0]["sessionDeducted"])

    await eventually(deducted_and_settled, within=30)
    await platform.settled()
    ledger = await get(platform, f"{urls.credits}/api/credits/{client}/ledger")
    assert [line["kind"] for line in ledger] == ["grant", "deduction"]
    assert (await get(platform, f"{urls.credits}/api/credits/{client}"))["remaining"] == 4


async def test_the_demos_hybrid_month_ends_with_its_ledger(platform: IsolatedPlatform) -> None:
    """`make demo`'s second scenario: three sessions delivered, a late cancel and a no-show
    forfeited, one cancelled ahead released, and the last credit expired after the grace."""
    urls = endpoints(platform)
    client = await play_hybrid_month(urls, lambda line: None)
    report = await month_report(urls, client)
    assert "Balance: total 6, used 5, expired 1, remaining 0, held 0, available 0" in report
    assert "solo 5 of 4 (1 over)" in report
    ledger = await get(platform, f"{urls.credits}/api/credits/{client}/ledger")
    kinds = [line["kind"] for line in ledger if line["kind"] != "solo"]
    assert sorted(kinds) == sorted(["grant", *["deduction"] * 3, "forfeit", "forfeit", "expiry"])
    causes = sorted(line["cause"] for line in ledger if line["kind"] == "forfeit")
    assert causes == ["late-cancel", "no-show"]


async def test_the_demos_trainer_assisted_week_charges_nothing(
    platform: IsolatedPlatform,
) -> None:
    """`make demo`'s third scenario: three workouts of a trainer's plan and a solo run."""
    report = await play_trainer_assisted_week(endpoints(platform), lambda line: None)
    assert report.startswith("Trainer-assisted workouts: 3, solo: 1; credits used 0, remaining 10")
    chart = report.split("\n\n", 1)[1]
    # Each kind with data in its colour, labelled: solo green, trainer-assisted blue.
    assert "Solo Workouts:    \x1b[32m" in chart
    assert "Trainer-Assisted: \x1b[34m" in chart
    assert "3 (75.0%)" in chart


async def test_the_demos_group_session_charges_the_four_who_attended_once_each(
    platform: IsolatedPlatform,
) -> None:
    """`make demo`'s group session, through every service's API: five join a class of five,
    a sixth is refused, one leaves and the sixth takes the place, one does not show; every
    attendee's workout is logged by the trainer, and one of them logs theirs again."""
    report = await play_group_session(endpoints(platform), lambda line: None)
    places = [line.split() for line in report.splitlines() if line.strip()[:1].isdigit()]
    assert len(places) == 6
    used = sorted((" ".join(words[1:-2]), int(words[-2])) for words in places)
    assert used == [
        ("attended", 1),
        ("attended", 1),
        ("attended", 1),
        ("did not show", 0),
        ("joined late, attended", 1),
        ("left", 0),
    ]
    assert "Credits charged: 4" in report
    assert "1 session delivered (1 group, 0 one-to-one), 4 clients trained, 1 no-show" in report
    await platform.settled()  # nothing in flight charges anyone afterwards
    balances = [
        await get(platform, f"{platform.url('credits')}/api/credits/{words[0]}") for words in places
    ]
    assert sum(balance["used"] for balance in balances) == 4
