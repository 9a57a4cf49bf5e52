"""The booking service's tests: the root conftest's shared fixtures (`app`, `runtime`, `api`,
`deliver`, `dead_letters`, `make_app`) give them the booking service."""

import pytest

#: Another platform service, as the `source` of the events it publishes.
KIOSK = "/platform/kiosk"


@pytest.fixture
def service_name() -> str:
    return "booking"
