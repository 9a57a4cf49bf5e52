"""The booking service's tests: the root conftest's shared fixtures (`app`, `runtime`, `api`,
`deliver`, `dead_letters`, `make_app`) give them the booking service."""

from collections.abc import Callable

import pytest

from contracts.identity import Role
from ops.identity import LocalIdentity

#: Another platform service, as the `source` of the events it publishes.
KIOSK = "/platform/kiosk"

#: The headers of a caller in a role, as a subject (a user id, or a staff or service name).
HeadersOf = Callable[[Role, int | str], dict[str, str]]


@pytest.fixture
def service_name() -> str:
    return "booking"


@pytest.fixture
def headers_of(identity: LocalIdentity) -> HeadersOf:
    def headers(role: Role, subject: int | str) -> dict[str, str]:
        return {"authorization": f"Bearer {identity.token(role, str(subject))}"}

    return headers
