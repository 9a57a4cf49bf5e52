"""Every service's HTTP API fuzzed from the OpenAPI document it serves, over HTTP against the
four services running as processes on real Kafka and PostgreSQL.

Schemathesis draws requests from each service's own `/openapi.json` (the boundaries of every
parameter, then random valid and invalid requests) and sends each with no token and with the
token of every role. No answer may be a 5xx, and every answer must be one the document gives:
its status, content type, headers and body; valid requests are not refused as invalid, invalid
ones are refused, and a route declaring the bearer scheme refuses a request without it. Then
chains of requests follow the links Schemathesis infers from the documents (a session booked,
then read and changed). The draws are the same on every run (`testkit.api_fuzzing`).

What the fuzzing found is pinned by the explicit tests at the end.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.generation.stateful.state_machine import APIStateMachine
from schemathesis.schemas import BaseSchema

from contracts.identity import Role
from testkit.api_fuzzing import SEED, fuzzing_config, served_schema

from .platform import IsolatedPlatform

pytestmark = pytest.mark.infra

SERVICE_NAMES = ("booking", "workouts", "credits", "analytics")
#: Who calls: nobody (no token), then a token of each role.
CALLERS: dict[str, Role | None] = {
    "anonymous": None,
    "client": Role.CLIENT,
    "trainer": Role.TRAINER,
    "staff": Role.STAFF,
    "service": Role.SERVICE,
}
#: Whom each role's token names.
SUBJECTS: dict[Role, str] = {
    Role.CLIENT: "1001",
    Role.TRAINER: "2001",
    Role.STAFF: "fuzz-staff",
    Role.SERVICE: "fuzz-kiosk",
}
#: Random requests per operation, beyond the boundaries of its parameters.
MAX_EXAMPLES = 8
#: Chains of requests per service, and the most requests in one.
CHAINS, CHAIN_STEPS = 20, 6


def bearer_of(platform: IsolatedPlatform, role: Role | None) -> dict[str, str]:
    """A caller's headers: none, or a token of its role."""
    if role is None:
        return {}
    return {"Authorization": f"Bearer {platform.tokens(role, SUBJECTS[role])}"}


@pytest.fixture(params=CALLERS)
def bearer(request: pytest.FixtureRequest, module_platform: IsolatedPlatform) -> dict[str, str]:
    return bearer_of(module_platform, CALLERS[request.param])


@pytest.fixture(params=SERVICE_NAMES)
def service_api(
    request: pytest.FixtureRequest, module_platform: IsolatedPlatform, bearer: dict[str, str]
) -> BaseSchema:
    """A running service's own OpenAPI document, for each caller."""
    schema = served_schema(
        module_platform.url(request.param), fuzzing_config(max_examples=MAX_EXAMPLES)
    )
    # The open routes (health, metrics, AsyncAPI) take no token: fuzzed without one only.
    return schema.include(path_regex="^/api/") if bearer else schema


@pytest.fixture(autouse=True)
def node_id_the_lazy_loader_renames(request: pytest.FixtureRequest) -> None:
    """Schemathesis names each operation's report by rewriting the node's `_nodeid`, an
    attribute pytest 9.2 no longer keeps: given back, as the node's own id."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


lazy_api = schemathesis.pytest.from_fixture("service_api")


@lazy_api.parametrize()
def test_no_request_breaks_a_service_or_its_documentation(
    case: Case[Any], bearer: dict[str, str]
) -> None:
    case.call_and_validate(headers=bearer)


@pytest.mark.parametrize("service", ["booking", "workouts"])
def test_chained_requests_get_only_documented_answers(
    module_platform: IsolatedPlatform, service: str
) -> None:
    """Staff may create what the other routes act on: each chain starts from what a request
    created (a session, a group session, a workout) and goes on with its id."""
    schema = served_schema(
        module_platform.url(service),
        fuzzing_config(max_examples=CHAINS, stateful_steps=CHAIN_STEPS),
    )
    headers = bearer_of(module_platform, Role.STAFF)

    def as_staff(machine: APIStateMachine, case: Case[Any]) -> dict[str, Any]:
        return {"headers": headers}

    chains: type[APIStateMachine] = type(
        "Chains", (schema.as_state_machine(),), {"get_call_kwargs": as_staff}
    )
    chains.run(
        settings=settings(
            max_examples=CHAINS,
            stateful_step_count=CHAIN_STEPS,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )


# --- what the fuzzing found ---------------------------------------------------------------


async def document_of(platform: IsolatedPlatform, service: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        document: dict[str, Any] = (await http.get(platform.url(service) + "/openapi.json")).json()
    return document


@pytest.mark.parametrize(
    ("service", "path", "allowed"),
    [
        ("booking", "/api/sessions", "GET, POST"),
        ("booking", "/api/sessions/1", "GET, PATCH"),
        ("booking", "/api/group-sessions/1/participants/2", "DELETE, PUT"),
        ("workouts", "/api/workout/sessions", "GET, POST"),
    ],
)
async def test_a_method_a_path_does_not_take_is_a_405_naming_every_method_it_does(
    module_platform: IsolatedPlatform, service: str, path: str, allowed: str
) -> None:
    """Starlette named the methods of the first route of the path alone (`Allow: POST`)."""
    async with module_platform.http(Role.STAFF) as http:
        response = await http.request("OPTIONS", module_platform.url(service) + path)

    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json() == {"detail": "Method Not Allowed"}


@pytest.mark.parametrize(
    ("service", "method", "path"),
    [
        ("booking", "POST", "/api/sessions"),
        ("booking", "PATCH", "/api/sessions/1"),
        ("workouts", "POST", "/api/workout/sessions"),
        ("credits", "POST", "/api/credits/1/grants"),
    ],
)
async def test_a_body_that_is_not_utf8_is_a_documented_400(
    module_platform: IsolatedPlatform, service: str, method: str, path: str
) -> None:
    """The answer was right, a JSON 400, but no document named it; nor the 413 of a body
    past the limit, nor the 503 of a database or identity provider out of reach."""
    async with module_platform.http(Role.STAFF) as http:
        response = await http.request(
            method,
            module_platform.url(service) + path,
            content=b"\xff\xfe\x13",
            headers={"content-type": "application/json"},
        )
    document = await document_of(module_platform, service)
    template = path.replace("/1", "/{session_id}" if service == "booking" else "/{user_id}")

    assert response.status_code == 400
    assert response.json() == {"detail": "There was an error parsing the body"}
    documented = document["paths"][template][method.lower()]["responses"]
    assert {"400", "413", "503"} <= documented.keys()


async def test_a_workout_with_null_status_and_exercises_is_taken_as_documented(
    module_platform: IsolatedPlatform,
) -> None:
    """Null status, type and exercises were taken for their defaults (completed, solo, none),
    while the document allowed none of them: Schemathesis sent them as invalid and they were
    logged."""
    body: dict[str, Any] = {
        "userId": 1001,
        "title": "Run",
        "status": None,
        "sessionType": None,
        "exercises": [{"name": "Squat", "sets": None}],
    }
    workouts = module_platform.url("workouts")
    async with module_platform.http(Role.STAFF) as http:
        logged = await http.post(f"{workouts}/api/workout/sessions", json=body)
        bare = await http.post(
            f"{workouts}/api/workout/sessions",
            json={"userId": 1001, "title": "Run", "exercises": None},
        )
    schemas = (await document_of(module_platform, "workouts"))["components"]["schemas"]

    assert logged.status_code == bare.status_code == 201, (logged.text, bare.text)
    assert logged.json()["status"] == "completed"
    assert logged.json()["sessionType"] == "solo"
    assert logged.json()["exercises"][0]["sets"] == []
    assert bare.json()["exercises"] == []
    for model, field in [
        ("LogWorkoutRequest", "status"),
        ("LogWorkoutRequest", "sessionType"),
        ("LogWorkoutRequest", "exercises"),
        ("ExerciseInput", "sets"),
    ]:
        assert {"type": "null"} in schemas[model]["properties"][field]["anyOf"], (model, field)


def test_the_fuzzing_draws_the_same_requests_on_every_run() -> None:
    config = fuzzing_config(max_examples=MAX_EXAMPLES)
    drawn = config.projects.get_default().get_hypothesis_settings(phase="fuzzing")

    assert config.seed == SEED
    assert drawn.derandomize
    assert drawn.database is None
    assert drawn.max_examples == MAX_EXAMPLES


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"date": "1065-06-23T04:05:36+15:46"}, "date"),
        ({"date": "9000-01-01T00:00:00Z"}, "date"),
        ({"date": 0}, "date"),
        ({"exercises": [{"name": "Squat", "sets": [{"reps": 5, "weight": False}]}]}, "weight"),
        ({"exercises": [{"name": "Squat", "sets": [{"reps": True}]}]}, "reps"),
    ],
)
async def test_a_workout_outside_what_its_event_may_carry_is_a_422(
    module_platform: IsolatedPlatform, change: dict[str, Any], field: str
) -> None:
    """A date before 1900 was taken, then refused by the `WorkoutLogged` it makes: a 500.
    A boolean was taken for a weight or a count, and a number for a date (as a Unix time),
    where the document says a number and a string."""
    body = {"userId": 1001, "title": "Run", **change}
    async with module_platform.http(Role.STAFF) as http:
        response = await http.post(
            module_platform.url("workouts") + "/api/workout/sessions", json=body
        )

    assert response.status_code == 422, response.text
    assert field in {str(part) for error in response.json()["detail"] for part in error["loc"]}
