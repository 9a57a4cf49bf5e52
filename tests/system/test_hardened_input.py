"""Input no service can take is refused at the door, through the four services as processes:
bodies too large (413), text PostgreSQL cannot store and ids past 64 bits (422), events past
the contract's limits (dead letters); and long lists come back in pages."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any

import httpx
import psycopg
import pytest

from contracts.envelope import build_event, encode
from contracts.events import MAX_ID, PackagePurchased
from contracts.topics import COMMERCE_PACKAGES
from servicekit.db import libpq_url
from testkit.helpers import eventually, read_topic

from .platform import IsolatedPlatform

pytestmark = pytest.mark.infra

CLIENT, TRAINER = 3101, 3201
TWO_MIB = 2 * 1024 * 1024
WHEN = "2026-04-01T10:00:00Z"
#: Staff book clients who bought nothing: credits are not the point here.
WITHOUT_CREDIT = {"allowWithoutCredit": True}


@pytest.fixture(scope="module")
async def staff(module_platform: IsolatedPlatform) -> AsyncIterator[httpx.AsyncClient]:
    async with module_platform.http(timeout=30) as client:
        yield client


async def book(platform: IsolatedPlatform, staff: httpx.AsyncClient) -> int:
    booked = await staff.post(
        platform.url("booking") + "/api/sessions",
        json={"userId": CLIENT, "trainerId": TRAINER, "sessionDate": WHEN, **WITHOUT_CREDIT},
    )
    assert booked.status_code == 201, booked.text
    return int(booked.json()["id"])


def with_text(body: dict[str, Any], path: tuple[Any, ...], text: str) -> dict[str, Any]:
    """`body` with the text at `path` (keys and list indexes) replaced."""
    changed: dict[str, Any] = json.loads(json.dumps(body))
    target: Any = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = text
    return changed


WORKOUT = {"userId": CLIENT, "title": "Run", "exercises": [{"name": "Squat", "sets": []}]}
BOOKING = {"userId": CLIENT, "trainerId": TRAINER, "sessionDate": WHEN}
#: Every text field of every API body: (service, method, path with {session}, body, field).
TEXT_FIELDS = [
    ("booking", "POST", "/api/sessions", BOOKING, ("location",)),
    ("booking", "POST", "/api/sessions", BOOKING, ("notes",)),
    ("booking", "PATCH", "/api/sessions/{session}", {"status": "cancelled"}, ("reason",)),
    ("workouts", "POST", "/api/workout/sessions", WORKOUT, ("title",)),
    ("workouts", "POST", "/api/workout/sessions", WORKOUT, ("exercises", 0, "name")),
    ("credits", "POST", f"/api/credits/{CLIENT}/grants", {"sessions": 1}, ("reason",)),
]


@pytest.mark.parametrize("text", ["a\x00b", "a\ud800b"], ids=["NUL", "lone surrogate"])
@pytest.mark.parametrize(
    ("service", "method", "path", "body", "field"),
    TEXT_FIELDS,
    ids=[f"{s} {m} {'.'.join(map(str, f))}" for s, m, _, _, f in TEXT_FIELDS],
)
async def test_text_no_database_can_store_is_a_422_naming_the_field(
    module_platform: IsolatedPlatform,
    staff: httpx.AsyncClient,
    service: str,
    method: str,
    path: str,
    body: dict[str, Any],
    field: tuple[Any, ...],
    text: str,
) -> None:
    path = path.format(session=await book(module_platform, staff))
    # Python's JSON writes the lone surrogate as the escape a careless client would send.
    content = json.dumps(with_text(body, field, text))

    response = await staff.request(
        method,
        module_platform.url(service) + path,
        content=content,
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert tuple(problem["loc"][1:]) == field
    assert "NUL" in problem["msg"] or "unicode" in problem["msg"]


BODY_ROUTES = [
    ("booking", "POST", "/api/sessions"),
    ("booking", "PATCH", "/api/sessions/1"),
    ("workouts", "POST", "/api/workout/sessions"),
    ("workouts", "PATCH", f"/api/workout/sessions/{uuid.uuid4()}"),
    ("credits", "POST", f"/api/credits/{CLIENT}/grants"),
]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize(
    ("service", "method", "path"), BODY_ROUTES, ids=[f"{s} {m}" for s, m, _ in BODY_ROUTES]
)
async def test_a_body_past_the_limit_is_a_413_before_it_is_read(
    module_platform: IsolatedPlatform,
    staff: httpx.AsyncClient,
    service: str,
    method: str,
    path: str,
    chunked: bool,
) -> None:
    body = b'{"title": "' + b"x" * TWO_MIB + b'"}'

    async def in_pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    response = await staff.request(
        method,
        module_platform.url(service) + path,
        content=in_pieces() if chunked else body,
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 413
    assert response.json() == {"detail": "the request body is larger than 1048576 bytes"}


PAST_64_BITS = MAX_ID + 1
ID_ROUTES = [
    ("booking", "GET", f"/api/sessions/{PAST_64_BITS}"),
    ("booking", "PATCH", f"/api/sessions/{PAST_64_BITS}"),
    ("booking", "GET", f"/api/sessions?userId={PAST_64_BITS}"),
    ("workouts", "GET", f"/api/workout/sessions?userId={PAST_64_BITS}"),
    ("credits", "GET", f"/api/credits/{PAST_64_BITS}"),
    ("credits", "GET", f"/api/credits/{PAST_64_BITS}/ledger"),
    ("credits", "POST", f"/api/credits/{PAST_64_BITS}/grants"),
    ("analytics", "GET", f"/api/analytics/{PAST_64_BITS}/session-usage"),
    ("analytics", "GET", f"/api/analytics/{PAST_64_BITS}/session-usage/chart"),
]


@pytest.mark.parametrize(
    ("service", "method", "path"), ID_ROUTES, ids=[f"{s} {m} {p}" for s, m, p in ID_ROUTES]
)
async def test_an_id_past_64_bits_is_a_422(
    module_platform: IsolatedPlatform,
    staff: httpx.AsyncClient,
    service: str,
    method: str,
    path: str,
) -> None:
    body = {"status": "cancelled"} if method == "PATCH" else {"sessions": 1, "reason": "x"}
    response = await staff.request(
        method, module_platform.url(service) + path, json=None if method == "GET" else body
    )

    assert response.status_code == 422, response.text


# --- events past the contract's limits ------------------------------------------------------


async def test_a_purchase_of_two_to_the_forty_sessions_is_dead_lettered_and_grants_nothing(
    module_platform: IsolatedPlatform, staff: httpx.AsyncClient
) -> None:
    client = 3102
    huge = PackagePurchased.model_construct(
        purchase_id="p-huge",
        user_id=client,
        sessions=2**40,
        package_name=None,
        purchased_at=datetime.now(UTC),
    )
    await module_platform.publish_raw(
        COMMERCE_PACKAGES.name, encode(build_event(huge, source="/tests")), key=str(client).encode()
    )
    dlq = module_platform.topic_prefix + COMMERCE_PACKAGES.name + ".dlq"

    [letter] = await read_topic(module_platform.kafka_bootstrap, dlq, until=bool, within=60)

    reason = dict(letter.headers)["dlq-reason"].decode()
    assert reason.startswith("invalid PackagePurchased payload: sessions")
    await module_platform.settled()
    balance = await staff.get(module_platform.url("credits") + f"/api/credits/{client}")
    assert balance.json()["total"] == 0


# --- pages ---------------------------------------------------------------------------------


async def pages(staff: httpx.AsyncClient, url: str) -> list[list[dict[str, Any]]]:
    """Every page of a list, following `Link: <…>; rel="next"`."""
    found = []
    while True:
        response = await staff.get(url)
        assert response.status_code == 200, response.text
        found.append(response.json())
        link = response.headers.get("link")
        if link is None:
            return found
        assert link.endswith('>; rel="next"')
        url = str(httpx.URL(url).join(link[1 : link.index(">")]))


async def test_a_ledger_of_5000_entries_comes_back_in_pages_that_make_the_whole_history(
    module_platform: IsolatedPlatform, staff: httpx.AsyncClient
) -> None:
    client, entries = 3103, 5000
    await module_platform.publish(
        [
            PackagePurchased(
                purchase_id=f"page-{n}",
                user_id=client,
                sessions=1 + n % 3,
                purchased_at=datetime.now(UTC),
            )
            for n in range(entries)
        ],
        source="/platform/store",
    )
    credits = module_platform.url("credits")

    async def all_granted() -> bool:
        balance = await staff.get(f"{credits}/api/credits/{client}")
        return bool(balance.json()["total"] == sum(1 + n % 3 for n in range(entries)))

    await eventually(all_granted, within=120)
    with psycopg.connect(libpq_url(module_platform.database_urls["credits"])) as connection:
        history = connection.execute(
            "select id, amount from ledger_entries where user_id = %s order by seq", (client,)
        ).fetchall()
    assert len(history) == entries

    for limit, expected_pages in ((None, 50), (1000, 5), (999, 6)):
        query = "" if limit is None else f"?limit={limit}"
        paged = await pages(staff, f"{credits}/api/credits/{client}/ledger{query}")

        assert len(paged) == expected_pages
        lines = [line for page in paged for line in page]
        assert [uuid.UUID(line["id"]) for line in lines] == [row[0] for row in history]
        assert [line["remainingAfter"] for line in lines] == list(
            accumulate(row[1] for row in history)
        )


async def test_a_page_after_an_entry_of_another_ledger_is_a_422(
    module_platform: IsolatedPlatform, staff: httpx.AsyncClient
) -> None:
    credits = module_platform.url("credits")
    response = await staff.get(f"{credits}/api/credits/{CLIENT}/ledger?after={uuid.uuid4()}")

    assert response.status_code == 422
    assert "no entry" in response.json()["detail"]


async def test_sessions_and_workouts_page_after_the_last_one_seen(
    module_platform: IsolatedPlatform, staff: httpx.AsyncClient
) -> None:
    client = 3104
    booking, workouts = module_platform.url("booking"), module_platform.url("workouts")
    for day in range(1, 6):
        date = f"2026-05-0{day}T10:00:00Z"
        booked = await staff.post(
            f"{booking}/api/sessions",
            json={
                "userId": client,
                "trainerId": TRAINER,
                "sessionDate": date,
                **WITHOUT_CREDIT,
            },
        )
        assert booked.status_code == 201
        logged = await staff.post(
            f"{workouts}/api/workout/sessions",
            json={"userId": client, "title": f"Day {day}", "date": date},
        )
        assert logged.status_code == 201
    all_sessions = (await staff.get(f"{booking}/api/sessions?userId={client}")).json()
    all_workouts = (await staff.get(f"{workouts}/api/workout/sessions?userId={client}")).json()

    for url, everything in (
        (f"{booking}/api/sessions?userId={client}&limit=2", all_sessions),
        (f"{workouts}/api/workout/sessions?userId={client}&limit=2", all_workouts),
    ):
        seen: list[dict[str, Any]] = []
        page = (await staff.get(url)).json()
        while page:
            seen += page
            page = (await staff.get(f"{url}&after={page[-1]['id']}")).json()
        assert seen == everything
        assert len(seen) == 5

    unknown = await staff.get(f"{booking}/api/sessions?userId={client}&after=999999")
    assert unknown.status_code == 422
