"""Stories several system tests play on a running platform, through its public APIs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ops.demo import Endpoints, buy_package

from .platform import IsolatedPlatform

#: The spec's Example 2: 30 solo workouts, 15 trainer-led sessions of a 20-session package.
EXAMPLE_2_START = datetime(2026, 2, 2, 7, tzinfo=UTC)


async def play_example_two(
    platform: IsolatedPlatform, urls: Endpoints, client: int, trainer: int = 456
) -> None:
    """Example 2's client: buys 20 sessions, logs 30 solo workouts and 15 trainer-led ones,
    each of a session booked for it."""
    await buy_package(urls, client, sessions=20)
    # Booking books against the credits it has heard of: wait until the grant reached it.
    await platform.settled()
    async with platform.http() as http:
        for day in range(30):
            response = await http.post(
                f"{urls.workouts}/api/workout/sessions",
                json={
                    "userId": client,
                    "title": f"Solo {day}",
                    "date": (EXAMPLE_2_START + timedelta(days=day)).isoformat(),
                },
            )
            assert response.status_code == 201, response.text
        for day in range(15):
            when = (EXAMPLE_2_START + timedelta(days=day, hours=10)).isoformat()
            booked = await http.post(
                f"{urls.booking}/api/sessions",
                json={"userId": client, "trainerId": trainer, "sessionDate": when},
            )
            assert booked.status_code == 201, booked.text
            logged = await http.post(
                f"{urls.workouts}/api/workout/sessions",
                json={
                    "userId": client,
                    "sessionType": "trainer-led",
                    "sessionId": booked.json()["id"],
                    "trainerId": trainer,
                    "title": "Personal Training Session",
                    "date": when,
                },
            )
            assert logged.status_code == 201, logged.text
