"""Who may do what, through the four services as real processes, with real tokens.

`ROUTES` is the contract's "Identity and access (HTTP)" table as tests: every route of every
service, for every role, on the caller's own resource, someone else's and one that does not
exist, with the answer the contract gives. A route a service serves without a row here
fails `test_every_route_of_every_service_has_a_row`. Every kind of bad token is refused on
every route, and a few stories check what the answers mean beyond their status.

The world: client A trains with trainer T (session S_A), client B with trainer U (S_B);
NOBODY is a user no event ever names (NEWCOMER the one the cases that create something for
an unknown user create it for). A has credits (booking books a client or trainer only
against credits it has heard of); staff and services book anyone without credit, saying so.
A has a place in T's group session G_A, still scheduled; B attended U's G_B, completed (so
that A may not see it: a client sees the timetable and the classes they had a place in).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from contracts.identity import AUTH_JWKS_FILE_ENV, AUTH_JWKS_URL_ENV, Role
from ops.identity import LocalIdentity

from .conftest import Launch
from .platform import IsolatedPlatform

pytestmark = pytest.mark.infra

A, B = 1001, 1002
T, U = 2001, 2002
NOBODY = 9999
#: Another user nobody knows, for the cases that create something: NOBODY stays unknown.
NEWCOMER = 9998
MISSING_SESSION = 999_999
WHEN = "2026-03-02T10:00:00Z"
STAFF_NAME, SERVICE_NAME = "matrix-staff", "kiosk"
#: What staff and services add to a booking for a client who may have bought nothing.
WITHOUT_CREDIT = {"allowWithoutCredit": True}
#: A's credits: enough for every session the cases book for A, each holding one.
A_CREDITS = 100

#: The token each role calls with: the client is A, the trainer T.
SUBJECT: dict[Role, int | str] = {
    Role.CLIENT: A,
    Role.TRAINER: T,
    Role.STAFF: STAFF_NAME,
    Role.SERVICE: SERVICE_NAME,
}


class Target(StrEnum):
    OWN = "own"
    OTHERS = "others"
    NONE = "none"


#: A list answer: 200 with something in it, or 200 and empty.
LISTED, NOTHING = "listed", "nothing"
Expected = int | str


@dataclass(frozen=True)
class Call:
    service: str
    method: str
    path: str
    body: Any = None


@dataclass
class World:
    """The resources the cases act on, made by staff before any case runs."""

    platform: IsolatedPlatform
    staff: httpx.AsyncClient
    own_session: int = 0
    others_session: int = 0
    own_workout: str = ""
    others_workout: str = ""
    own_group: int = 0
    others_group: int = 0
    calls: dict[str, Call] = field(default_factory=dict)

    async def send(self, service: str, method: str, path: str, body: Any = None) -> Any:
        response = await self.staff.request(method, self.platform.url(service) + path, json=body)
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    async def book(self, client: int, trainer: int) -> int:
        body = {"userId": client, "trainerId": trainer, "sessionDate": WHEN, **WITHOUT_CREDIT}
        return int((await self.send("booking", "POST", "/api/sessions", body))["id"])

    async def schedule_group(self, trainer: int, *clients: int) -> int:
        """A group session of `trainer`, each of `clients` given a place."""
        body = {"trainerId": trainer, "sessionDate": WHEN, "capacity": 5}
        group = int((await self.send("booking", "POST", "/api/group-sessions", body))["id"])
        for client in clients:
            place = f"/api/group-sessions/{group}/participants/{client}"
            await self.send("booking", "PUT", place, WITHOUT_CREDIT)
        return group

    async def give_credits(self, client: int, sessions: int) -> None:
        """A staff grant; booking hears of it once credits announces it (see `settled`)."""
        body = {"sessions": sessions, "reason": "matrix"}
        await self.send("credits", "POST", f"/api/credits/{client}/grants", body)

    async def log(self, client: int, session: int, trainer: int, status: str) -> str:
        body = {
            "userId": client,
            "sessionType": "trainer-led",
            "sessionId": session,
            "trainerId": trainer,
            "title": "PT",
            "status": status,
        }
        return str((await self.send("workouts", "POST", "/api/workout/sessions", body))["id"])

    async def fresh_session(self, target: Target) -> int:
        """A session of its own for a case that changes it."""
        if target is Target.NONE:
            return MISSING_SESSION
        return await self.book(*((A, T) if target is Target.OWN else (B, U)))

    async def fresh_group(self, target: Target, *, joined: bool = False) -> tuple[int, int]:
        """A group session of its own for a case that changes it (T's, or U's), and the
        client it is about (A, or B), `joined` or not yet."""
        if target is Target.NONE:
            return MISSING_SESSION, A
        trainer, client = (T, A) if target is Target.OWN else (U, B)
        return await self.schedule_group(trainer, *([client] if joined else [])), client

    async def fresh_workout(self, target: Target) -> str:
        if target is Target.NONE:
            return str(uuid.uuid4())
        session, client, trainer = (
            (self.own_session, A, T) if target is Target.OWN else (self.others_session, B, U)
        )
        return await self.log(client, session, trainer, "planned")


def user_of(target: Target, own: int = A, none: int = NOBODY) -> int:
    return {Target.OWN: own, Target.OTHERS: B, Target.NONE: none}[target]


Prepare = Callable[[World, Role, Target], Awaitable[Call]]


@dataclass(frozen=True)
class Route:
    """One action on one route, and what each role gets for (own, others', none)."""

    action: str
    service: str
    method: str
    template: str
    prepare: Prepare
    expected: dict[Role, tuple[Expected, Expected, Expected]]


def by_role(
    client: tuple[Expected, Expected, Expected],
    trainer: tuple[Expected, Expected, Expected],
    staff: tuple[Expected, Expected, Expected],
    service: tuple[Expected, Expected, Expected] | None = None,
) -> dict[Role, tuple[Expected, Expected, Expected]]:
    return {
        Role.CLIENT: client,
        Role.TRAINER: trainer,
        Role.STAFF: staff,
        Role.SERVICE: staff if service is None else service,
    }


# --- what each route does for each role -----------------------------------------------------


async def book(world: World, role: Role, target: Target) -> Call:
    client, trainer = {
        Target.OWN: (A, T),
        Target.OTHERS: (B, U),
        Target.NONE: (NEWCOMER, NEWCOMER),
    }[target]
    body = {"userId": client, "trainerId": trainer, "sessionDate": WHEN}
    if role in (Role.STAFF, Role.SERVICE):
        body |= WITHOUT_CREDIT  # NEWCOMER bought nothing; A's credits are the others' cases
    return Call("booking", "POST", "/api/sessions", body)


async def read_session(world: World, role: Role, target: Target) -> Call:
    session = {
        Target.OWN: world.own_session,
        Target.OTHERS: world.others_session,
        Target.NONE: MISSING_SESSION,
    }[target]
    return Call("booking", "GET", f"/api/sessions/{session}")


async def list_sessions(world: World, role: Role, target: Target) -> Call:
    return Call("booking", "GET", f"/api/sessions?userId={user_of(target)}")


def change_session(body: dict[str, Any]) -> Prepare:
    async def prepare(world: World, role: Role, target: Target) -> Call:
        session = await world.fresh_session(target)
        return Call("booking", "PATCH", f"/api/sessions/{session}", body)

    return prepare


async def schedule_group(world: World, role: Role, target: Target) -> Call:
    trainer = {Target.OWN: T, Target.OTHERS: U, Target.NONE: NEWCOMER}[target]
    body = {"trainerId": trainer, "sessionDate": WHEN, "capacity": 5}
    return Call("booking", "POST", "/api/group-sessions", body)


async def read_group(world: World, role: Role, target: Target) -> Call:
    group = {Target.OWN: world.own_group, Target.OTHERS: world.others_group}
    return Call("booking", "GET", f"/api/group-sessions/{group.get(target, MISSING_SESSION)}")


async def take_place(world: World, role: Role, target: Target) -> Call:
    group, client = await world.fresh_group(target)
    # B bought nothing; A's credits are the client's and trainer's cases.
    body = WITHOUT_CREDIT if role in (Role.STAFF, Role.SERVICE) else None
    return Call("booking", "PUT", f"/api/group-sessions/{group}/participants/{client}", body)


async def give_up_place(world: World, role: Role, target: Target) -> Call:
    group, client = await world.fresh_group(target, joined=True)
    return Call("booking", "DELETE", f"/api/group-sessions/{group}/participants/{client}")


def change_group(body: dict[str, Any]) -> Prepare:
    async def prepare(world: World, role: Role, target: Target) -> Call:
        group, _ = await world.fresh_group(target)
        return Call("booking", "PATCH", f"/api/group-sessions/{group}", body)

    return prepare


async def log_solo(world: World, role: Role, target: Target) -> Call:
    # A trainer's own solo workout is their own; everyone else's "own" is A's.
    user = user_of(target, own=T if role is Role.TRAINER else A, none=NEWCOMER)
    return Call("workouts", "POST", "/api/workout/sessions", {"userId": user, "title": "Run"})


async def log_trainer_led(world: World, role: Role, target: Target) -> Call:
    client, session, trainer = {
        Target.OWN: (A, world.own_session, T),
        Target.OTHERS: (B, world.others_session, U),
        Target.NONE: (A, MISSING_SESSION, T),
    }[target]
    body = {
        "userId": client,
        "sessionType": "trainer-led",
        "sessionId": session,
        "trainerId": trainer,
        "title": "PT",
    }
    return Call("workouts", "POST", "/api/workout/sessions", body)


async def read_workout(world: World, role: Role, target: Target) -> Call:
    workout = {
        Target.OWN: world.own_workout,
        Target.OTHERS: world.others_workout,
        Target.NONE: str(uuid.uuid4()),
    }[target]
    return Call("workouts", "GET", f"/api/workout/sessions/{workout}")


async def list_workouts(world: World, role: Role, target: Target) -> Call:
    return Call("workouts", "GET", f"/api/workout/sessions?userId={user_of(target)}")


async def change_workout(world: World, role: Role, target: Target) -> Call:
    workout = await world.fresh_workout(target)
    return Call("workouts", "PATCH", f"/api/workout/sessions/{workout}", {"status": "in_progress"})


def read_client(service: str, template: str) -> Prepare:
    async def prepare(world: World, role: Role, target: Target) -> Call:
        return Call(service, "GET", template.format(user=user_of(target)))

    return prepare


async def grant(world: World, role: Role, target: Target) -> Call:
    body = {"sessions": 1, "reason": "matrix"}
    return Call("credits", "POST", f"/api/credits/{user_of(target, none=NEWCOMER)}/grants", body)


async def waive(world: World, role: Role, target: Target) -> Call:
    """No target forfeited anything: staff get 404, everyone else 403 before looking."""
    body = {"sessionId": 1, "reason": "matrix"}
    return Call("credits", "POST", f"/api/credits/{user_of(target, none=NEWCOMER)}/waivers", body)


async def read_parked(world: World, role: Role, target: Target) -> Call:
    """Not a client's resource: every target is the same list."""
    return Call("credits", "GET", "/api/credits/pending")


async def read_studio_usage(world: World, role: Role, target: Target) -> Call:
    """Not a client's resource: every target is the same studio-wide answer."""
    return Call("analytics", "GET", "/api/analytics/session-usage")


async def read_trainer_sessions(world: World, role: Role, target: Target) -> Call:
    """A trainer's own figures are T's; everyone else's target is U's, or nobody's."""
    trainer = {Target.OWN: T, Target.OTHERS: U, Target.NONE: NOBODY}[target]
    return Call("analytics", "GET", f"/api/analytics/trainers/{trainer}/sessions")


ALL_OK = (200, 200, 200)
OWN_ONLY_OR_403 = (200, 403, 403)
OWN_ONLY_OR_404 = (200, 404, 404)
EXISTING = (200, 200, 404)

ROUTES = (
    Route(
        "book a session",
        "booking",
        "POST",
        "/api/sessions",
        book,
        by_role((201, 403, 403), (201, 403, 403), (201, 201, 201)),
    ),
    Route(
        "read a session",
        "booking",
        "GET",
        "/api/sessions/{session_id}",
        read_session,
        by_role(OWN_ONLY_OR_404, OWN_ONLY_OR_404, EXISTING),
    ),
    Route(
        "list sessions",
        "booking",
        "GET",
        "/api/sessions",
        list_sessions,
        by_role((LISTED, NOTHING, NOTHING), (LISTED, NOTHING, NOTHING), (LISTED, LISTED, NOTHING)),
    ),
    Route(
        "start a session",
        "booking",
        "PATCH",
        "/api/sessions/{session_id}",
        change_session({"status": "in_progress"}),
        by_role((403, 404, 404), OWN_ONLY_OR_404, EXISTING),
    ),
    Route(
        "mark a no-show",
        "booking",
        "PATCH",
        "/api/sessions/{session_id}",
        change_session({"status": "no_show"}),
        by_role((403, 404, 404), OWN_ONLY_OR_404, EXISTING),
    ),
    Route(
        "cancel a session",
        "booking",
        "PATCH",
        "/api/sessions/{session_id}",
        change_session({"status": "cancelled", "reason": "ill"}),
        by_role(OWN_ONLY_OR_404, OWN_ONLY_OR_404, EXISTING),
    ),
    Route(
        "reschedule a session",
        "booking",
        "PATCH",
        "/api/sessions/{session_id}",
        change_session({"sessionDate": "2026-03-09T10:00:00Z"}),
        by_role(OWN_ONLY_OR_404, OWN_ONLY_OR_404, EXISTING),
    ),
    Route(
        "schedule a group session",
        "booking",
        "POST",
        "/api/group-sessions",
        schedule_group,
        by_role((403, 403, 403), (201, 403, 403), (201, 201, 201)),
    ),
    Route(
        "read a group session",
        "booking",
        "GET",
        "/api/group-sessions/{session_id}",
        read_group,
        by_role(OWN_ONLY_OR_404, OWN_ONLY_OR_404, EXISTING),
    ),
    Route(
        "list group sessions",
        "booking",
        "GET",
        "/api/group-sessions",
        read_client("booking", "/api/group-sessions?userId={user}"),
        by_role((LISTED, NOTHING, NOTHING), (LISTED, NOTHING, NOTHING), (LISTED, LISTED, NOTHING)),
    ),
    Route(
        "take a place",
        "booking",
        "PUT",
        "/api/group-sessions/{session_id}/participants/{user_id}",
        take_place,
        # A client sees U's class on the timetable, but may not put B in it.
        by_role((201, 403, 404), (201, 404, 404), (201, 201, 404)),
    ),
    Route(
        "give up a place",
        "booking",
        "DELETE",
        "/api/group-sessions/{session_id}/participants/{user_id}",
        give_up_place,
        by_role((200, 403, 404), OWN_ONLY_OR_404, EXISTING),
    ),
    Route(
        "complete a group session",
        "booking",
        "PATCH",
        "/api/group-sessions/{session_id}",
        change_group({"status": "completed"}),
        by_role((403, 403, 404), OWN_ONLY_OR_404, EXISTING),
    ),
    Route(
        "cancel a group session",
        "booking",
        "PATCH",
        "/api/group-sessions/{session_id}",
        change_group({"status": "cancelled", "reason": "ill"}),
        by_role((403, 403, 404), OWN_ONLY_OR_404, EXISTING),
    ),
    Route(
        "reschedule a group session",
        "booking",
        "PATCH",
        "/api/group-sessions/{session_id}",
        change_group({"sessionDate": "2026-03-09T10:00:00Z"}),
        by_role((403, 403, 404), OWN_ONLY_OR_404, EXISTING),
    ),
    Route(
        "log a solo workout",
        "workouts",
        "POST",
        "/api/workout/sessions",
        log_solo,
        by_role((201, 403, 403), (201, 403, 403), (201, 201, 201)),
    ),
    Route(
        "log a trainer-led workout",
        "workouts",
        "POST",
        "/api/workout/sessions",
        log_trainer_led,
        by_role((201, 403, 404), (201, 403, 404), (201, 201, 201)),
    ),
    Route(
        "read a workout",
        "workouts",
        "GET",
        "/api/workout/sessions/{workout_id}",
        read_workout,
        by_role(OWN_ONLY_OR_404, OWN_ONLY_OR_404, EXISTING),
    ),
    Route(
        "list workouts",
        "workouts",
        "GET",
        "/api/workout/sessions",
        list_workouts,
        by_role((LISTED, NOTHING, NOTHING), (LISTED, NOTHING, NOTHING), (LISTED, LISTED, NOTHING)),
    ),
    Route(
        "change a workout",
        "workouts",
        "PATCH",
        "/api/workout/sessions/{workout_id}",
        change_workout,
        by_role(OWN_ONLY_OR_404, OWN_ONLY_OR_404, EXISTING),
    ),
    Route(
        "read a balance",
        "credits",
        "GET",
        "/api/credits/{user_id}",
        read_client("credits", "/api/credits/{user}"),
        by_role(OWN_ONLY_OR_403, OWN_ONLY_OR_403, ALL_OK),
    ),
    Route(
        "read a ledger",
        "credits",
        "GET",
        "/api/credits/{user_id}/ledger",
        read_client("credits", "/api/credits/{user}/ledger"),
        by_role(OWN_ONLY_OR_403, OWN_ONLY_OR_403, ALL_OK),
    ),
    Route(
        "read packages",
        "credits",
        "GET",
        "/api/credits/{user_id}/packages",
        read_client("credits", "/api/credits/{user}/packages"),
        by_role(OWN_ONLY_OR_403, OWN_ONLY_OR_403, ALL_OK),
    ),
    Route(
        "waive a forfeit",
        "credits",
        "POST",
        "/api/credits/{user_id}/waivers",
        waive,
        by_role((403, 403, 403), (403, 403, 403), (404, 404, 404), (403, 403, 403)),
    ),
    Route(
        "grant credits",
        "credits",
        "POST",
        "/api/credits/{user_id}/grants",
        grant,
        by_role((403, 403, 403), (403, 403, 403), (201, 201, 201), (403, 403, 403)),
    ),
    Route(
        "read the parked deductions",
        "credits",
        "GET",
        "/api/credits/pending",
        read_parked,
        by_role((403, 403, 403), (403, 403, 403), ALL_OK, (403, 403, 403)),
    ),
    Route(
        "read usage",
        "analytics",
        "GET",
        "/api/analytics/{user_id}/session-usage",
        read_client("analytics", "/api/analytics/{user}/session-usage"),
        by_role(OWN_ONLY_OR_403, OWN_ONLY_OR_403, ALL_OK),
    ),
    Route(
        "read the charts",
        "analytics",
        "GET",
        "/api/analytics/{user_id}/session-usage/chart",
        read_client("analytics", "/api/analytics/{user}/session-usage/chart"),
        by_role(OWN_ONLY_OR_403, OWN_ONLY_OR_403, ALL_OK),
    ),
    Route(
        "follow usage",
        "analytics",
        "GET",
        "/api/analytics/{user_id}/session-usage/events",
        read_client("analytics", "/api/analytics/{user}/session-usage/events"),
        by_role(OWN_ONLY_OR_403, OWN_ONLY_OR_403, ALL_OK),
    ),
    Route(
        "read recent workouts and ledger entries",
        "analytics",
        "GET",
        "/api/analytics/{user_id}/recent",
        read_client("analytics", "/api/analytics/{user}/recent"),
        by_role(OWN_ONLY_OR_403, OWN_ONLY_OR_403, ALL_OK),
    ),
    Route(
        "read the studio-wide usage",
        "analytics",
        "GET",
        "/api/analytics/session-usage",
        read_studio_usage,
        by_role((403, 403, 403), (403, 403, 403), ALL_OK),
    ),
    Route(
        "read a trainer's sessions",
        "analytics",
        "GET",
        "/api/analytics/trainers/{trainer_id}/sessions",
        read_trainer_sessions,
        # A trainer nobody booked is an answer of zeros for those who may ask.
        by_role((403, 403, 403), OWN_ONLY_OR_403, ALL_OK),
    ),
)

CASES = [(route, role, target) for route in ROUTES for role in Role for target in Target]


def case_id(route: Route, role: Role, target: Target) -> str:
    return f"{route.action}-{role}-{target}"


#: Open to anyone (they reveal nothing personal): not part of the matrix.
OPEN_PATHS = ("/health/", "/metrics", "/asyncapi", "/docs", "/redoc", "/openapi.json")


# --- the platform and its world ------------------------------------------------------------


@dataclass
class Matrix:
    world: World
    platform: IsolatedPlatform
    identity: LocalIdentity

    def client(self, role: Role) -> httpx.AsyncClient:
        return self.platform.http(role, SUBJECT[role])

    async def send(self, call: Call, headers: dict[str, str] | None = None) -> httpx.Response:
        """The answer; of an event stream (which never ends), only its status and headers."""
        async with httpx.AsyncClient(timeout=10, headers=headers) as http:
            url = self.platform.url(call.service) + call.path
            async with http.stream(call.method, url, json=call.body) as response:
                if not response.headers.get("content-type", "").startswith("text/event-stream"):
                    await response.aread()
                return response


@pytest.fixture(scope="module")
async def matrix(
    module_platform: IsolatedPlatform, identity: LocalIdentity
) -> AsyncIterator[Matrix]:
    """The resources every case needs, made before the first runs; then the platform
    settles (workouts, credits and analytics have learnt every session and who trains
    whom)."""
    platform = module_platform
    async with platform.http() as staff:
        world = World(platform, staff)
        await world.give_credits(A, A_CREDITS)
        world.own_session = await world.book(A, T)
        world.others_session = await world.book(B, U)
        world.own_workout = await world.log(A, world.own_session, T, "completed")
        world.others_workout = await world.log(B, world.others_session, U, "completed")
        world.own_group = await world.schedule_group(T, A)
        world.others_group = await world.schedule_group(U, B)
        done = {"status": "completed"}
        await world.send("booking", "PATCH", f"/api/group-sessions/{world.others_group}", done)
        for route, role, target in CASES:
            world.calls[case_id(route, role, target)] = await route.prepare(world, role, target)
        # Settled: booking has heard of A's credits too.
        await platform.settled(within=120)
        yield Matrix(world, platform, identity)


# --- the matrix ------------------------------------------------------------------------------


def visible_to(role: Role, item: dict[str, Any]) -> bool:
    """What a listed item may be for the role's caller (see `SUBJECT`)."""
    if "participants" in item:  # a group session: whose places show matters too
        shown = {place["userId"] for place in item["participants"]}
        if role is Role.CLIENT:
            return shown <= {A} and (item["status"] == "scheduled" or A in shown)
        return role is not Role.TRAINER or item["trainerId"] == T
    if role is Role.CLIENT:
        return bool(item["userId"] == A)
    if role is Role.TRAINER:
        return bool(item["userId"] == T or item["trainerId"] == T)
    return True


@pytest.mark.parametrize(("route", "role", "target"), CASES, ids=[case_id(*case) for case in CASES])
async def test_each_role_gets_what_the_contract_gives(
    matrix: Matrix, route: Route, role: Role, target: Target
) -> None:
    call = matrix.world.calls[case_id(route, role, target)]
    expected = route.expected[role][list(Target).index(target)]
    token = matrix.identity.token(role, str(SUBJECT[role]))
    response = await matrix.send(call, {"authorization": f"Bearer {token}"})

    if isinstance(expected, int):
        assert response.status_code == expected, response.text
        return
    assert response.status_code == 200, response.text
    listed = response.json()
    assert bool(listed) is (expected == LISTED), listed
    assert all(visible_to(role, item) for item in listed), listed


def test_every_route_of_every_service_has_a_row(matrix: Matrix) -> None:
    """Each service's own OpenAPI document lists what it serves: every operation but the
    open ones has a row in `ROUTES`, declares the bearer scheme and documents 401 and 403."""
    served: set[tuple[str, str, str]] = set()
    for service in ("booking", "workouts", "credits", "analytics"):
        document = httpx.get(matrix.platform.url(service) + "/openapi.json", timeout=10).json()
        assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
        for path, operations in document["paths"].items():
            if path.startswith(OPEN_PATHS):
                continue
            for method, operation in operations.items():
                served.add((service, method.upper(), path))
                assert operation.get("security") == [{"HTTPBearer": []}], (path, method)
                assert {"401", "403"} <= operation["responses"].keys(), (path, method)
    assert served == {(r.service, r.method, r.template) for r in ROUTES}


# --- tokens that prove nothing -----------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(identity: LocalIdentity, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": identity.issuer,
        "aud": identity.audience,
        "sub": STAFF_NAME,
        "iat": now,
        "exp": now + 600,
        "roles": ["staff"],
        **changes,
    }


def _published_kid(identity: LocalIdentity) -> str:
    return str(json.loads(identity.jwks_file.read_text())["keys"][0]["kid"])


def tampered(identity: LocalIdentity) -> str:
    """A client's token whose payload was rewritten to make them staff; signature kept."""
    header, _, signature = identity.token(Role.CLIENT, str(A)).split(".")
    payload = _b64(json.dumps(_claims(identity, sub=str(A))).encode())
    return f"{header}.{payload}.{signature}"


def unsigned(identity: LocalIdentity) -> str:
    """`alg: none` and no signature at all."""
    header = _b64(json.dumps({"alg": "none", "kid": _published_kid(identity)}).encode())
    return f"{header}.{_b64(json.dumps(_claims(identity)).encode())}."


def hs256_with_the_public_key(identity: LocalIdentity) -> str:
    """The classic confusion: HMAC keyed with the public key anyone can read."""
    public_pem = (
        serialization.load_pem_private_key(identity.private_key_file.read_bytes(), None)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = _b64(
        json.dumps({"alg": "HS256", "typ": "JWT", "kid": _published_kid(identity)}).encode()
    )
    payload = _b64(json.dumps(_claims(identity)).encode())
    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(mac)}"


def signed_by_another_key(identity: LocalIdentity, tmp: Path, *, same_kid: bool) -> str:
    stranger = LocalIdentity(tmp / uuid.uuid4().hex, issuer=identity.issuer)
    stranger.ensure()
    token = stranger.token(Role.STAFF, STAFF_NAME)
    if not same_kid:
        return token
    # The stranger's signature under the id of a key the services trust.
    key = serialization.load_pem_private_key(stranger.private_key_file.read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)  # the local identity's keys are RSA
    return jwt.encode(
        _claims(identity), key, algorithm="RS256", headers={"kid": _published_kid(identity)}
    )


BadToken = Callable[[LocalIdentity, Path], str | None]

BAD_TOKENS: dict[str, BadToken] = {
    "missing": lambda identity, tmp: None,
    "not a JWT": lambda identity, tmp: "not-a-token",
    "expired": lambda identity, tmp: identity.token(
        Role.STAFF, STAFF_NAME, issued_at=time.time() - 7200, ttl=3600
    ),
    "signed by another key": lambda identity, tmp: signed_by_another_key(
        identity, tmp, same_kid=False
    ),
    "another key under a trusted key's id": lambda identity, tmp: signed_by_another_key(
        identity, tmp, same_kid=True
    ),
    "for another audience": lambda identity, tmp: identity.token(
        Role.STAFF, STAFF_NAME, aud="another-platform"
    ),
    "from another issuer": lambda identity, tmp: identity.token(
        Role.STAFF, STAFF_NAME, iss="https://issuer.example"
    ),
    "alg none": lambda identity, tmp: unsigned(identity),
    "HS256 keyed with the public key": lambda identity, tmp: hs256_with_the_public_key(identity),
    "tampered payload": lambda identity, tmp: tampered(identity),
}

#: One call per distinct route, made as staff would make it on A's resources.
DISTINCT_ROUTES = list({(r.service, r.method, r.template): r for r in ROUTES}.values())


@pytest.mark.parametrize(
    "route", DISTINCT_ROUTES, ids=[f"{r.method} {r.template}" for r in DISTINCT_ROUTES]
)
@pytest.mark.parametrize("kind", BAD_TOKENS)
async def test_a_bad_token_is_refused_with_401_on_every_route(
    matrix: Matrix, route: Route, kind: str, tmp_path: Path
) -> None:
    call = matrix.world.calls[case_id(route, Role.STAFF, Target.OWN)]
    token = BAD_TOKENS[kind](matrix.identity, tmp_path)
    headers = {} if token is None else {"authorization": f"Bearer {token}"}

    response = await matrix.send(call, headers)

    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    # What is missing, never which check failed.
    assert response.json()["detail"] in {
        "a bearer token is required (Authorization: Bearer <token>)",
        "the bearer token is not valid",
        "the bearer token has expired",
    }


async def test_a_token_without_a_role_of_the_platform_may_do_nothing(matrix: Matrix) -> None:
    token = matrix.identity.token(Role.STAFF, STAFF_NAME, roles=["admin"])
    call = matrix.world.calls[case_id(ROUTES[1], Role.STAFF, Target.OWN)]

    response = await matrix.send(call, {"authorization": f"Bearer {token}"})

    assert response.status_code == 403
    assert "grants none of the roles" in response.json()["detail"]


# --- what the answers mean -------------------------------------------------------------------


async def test_another_clients_session_reads_exactly_like_a_missing_one(matrix: Matrix) -> None:
    """Session ids are sequential: walking them must not tell which exist."""
    async with matrix.client(Role.CLIENT) as client:
        booking = matrix.platform.url("booking")
        others = await client.get(f"{booking}/api/sessions/{matrix.world.others_session}")
        missing = await client.get(f"{booking}/api/sessions/{MISSING_SESSION}")

    assert others.status_code == missing.status_code == 404
    assert others.json()["detail"].replace(str(matrix.world.others_session), "N") == missing.json()[
        "detail"
    ].replace(str(MISSING_SESSION), "N")


async def test_a_trainer_completes_the_sessions_they_train_and_no_others(
    matrix: Matrix,
) -> None:
    world = matrix.world
    own, others = await world.book(A, T), await world.book(B, U)
    await world.send("booking", "PATCH", f"/api/sessions/{others}", {"status": "in_progress"})
    booking = matrix.platform.url("booking")
    async with matrix.client(Role.TRAINER) as trainer:
        for status in ("in_progress", "completed"):
            moved = await trainer.patch(f"{booking}/api/sessions/{own}", json={"status": status})
            assert moved.status_code == 200, moved.text
            assert moved.json()["status"] == status
        refused = await trainer.patch(
            f"{booking}/api/sessions/{others}", json={"status": "completed"}
        )
    assert refused.status_code == 404
    assert (await world.send("booking", "GET", f"/api/sessions/{others}"))["status"] == (
        "in_progress"
    )


async def test_a_client_books_against_credits_booking_has_heard_of_and_only_staff_override(
    matrix: Matrix,
) -> None:
    """A has credits, B bought nothing: B is refused until a purchase reaches booking, and
    only staff and services may book B anyway."""
    booking = matrix.platform.url("booking") + "/api/sessions"
    for_a = {"userId": A, "trainerId": T, "sessionDate": WHEN}
    for_b = {"userId": B, "trainerId": U, "sessionDate": WHEN}
    async with matrix.platform.http(Role.CLIENT, B) as b:
        refused = await b.post(booking, json=for_b)
    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"].startswith(f"client {B} has no session credits available")
    for role in (Role.CLIENT, Role.TRAINER):
        async with matrix.client(role) as caller:
            asked = await caller.post(booking, json={**for_a, **WITHOUT_CREDIT})
        assert asked.status_code == 403, (role, asked.text)
    for role in (Role.STAFF, Role.SERVICE):
        async with matrix.client(role) as caller:
            overridden = await caller.post(booking, json={**for_b, **WITHOUT_CREDIT})
        assert overridden.status_code == 201, overridden.text
        assert overridden.json()["bookedWithoutCredit"] is True
    async with matrix.client(Role.CLIENT) as a:
        booked = await a.post(booking, json=for_a)
    assert booked.status_code == 201, booked.text
    assert booked.json()["bookedWithoutCredit"] is False


async def test_only_staff_grant_credits(matrix: Matrix) -> None:
    credits = matrix.platform.url("credits")
    grant = {"sessions": 5, "reason": "goodwill"}
    for role in (Role.CLIENT, Role.TRAINER, Role.SERVICE):
        async with matrix.client(role) as caller:
            refused = await caller.post(f"{credits}/api/credits/{A}/grants", json=grant)
        assert refused.status_code == 403, role
    before = await matrix.world.send("credits", "GET", f"/api/credits/{A}")

    async with matrix.client(Role.STAFF) as staff:
        granted = await staff.post(f"{credits}/api/credits/{A}/grants", json=grant)

    assert granted.status_code == 201
    assert granted.json()["total"] == before["total"] + 5


async def test_a_client_cannot_log_for_another_user_nor_read_their_ledger(matrix: Matrix) -> None:
    async with matrix.client(Role.CLIENT) as client:
        logged = await client.post(
            f"{matrix.platform.url('workouts')}/api/workout/sessions",
            json={"userId": B, "title": "Not mine"},
        )
        ledger = await client.get(f"{matrix.platform.url('credits')}/api/credits/{B}/ledger")
    assert logged.status_code == 403
    assert ledger.status_code == 403
    listed = await matrix.world.send("workouts", "GET", f"/api/workout/sessions?userId={B}")
    assert "Not mine" not in {workout["title"] for workout in listed}


# --- the keys the services trust -------------------------------------------------------------


@pytest.mark.parametrize("source", ["file", "url"])
async def test_a_key_added_after_start_is_trusted_without_a_restart(
    launch: Launch,
    identity: LocalIdentity,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
) -> None:
    """The services read a JWKS file or address given to them; a token naming a key they
    do not hold makes them read it again."""
    provider = LocalIdentity(tmp_path / "rotating", issuer=identity.issuer)
    provider.ensure()
    served = _serve_directory(provider.directory) if source == "url" else None
    try:
        if served is None:
            monkeypatch.setenv(AUTH_JWKS_FILE_ENV, str(provider.jwks_file))
        else:
            monkeypatch.delenv(AUTH_JWKS_FILE_ENV)
            monkeypatch.setenv(AUTH_JWKS_URL_ENV, f"{served.url}/{provider.jwks_file.name}")
        async with launch(services=["credits"]) as platform:
            url = f"{platform.url('credits')}/api/credits/{A}"

            async def status_with(token: str) -> int:
                async with httpx.AsyncClient(timeout=10) as http:
                    response = await http.get(url, headers={"authorization": f"Bearer {token}"})
                return response.status_code

            before = provider.token(Role.STAFF, STAFF_NAME)
            assert await status_with(before) == 200
            provider.rotate()
            assert await status_with(provider.token(Role.STAFF, STAFF_NAME)) == 200
            assert await status_with(before) == 200, "a rotation keeps the earlier keys"
    finally:
        if served is not None:
            served.stop()


@dataclass
class _Served:
    url: str
    stop: Callable[[], None]


def _serve_directory(directory: Path) -> _Served:
    """The directory over HTTP, as an identity provider publishes its JWKS."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return _Served(f"http://127.0.0.1:{server.server_address[1]}", stop)
