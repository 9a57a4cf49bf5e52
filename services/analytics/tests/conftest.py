"""The analytics service's tests: the root conftest's shared fixtures (`app`, `runtime`, `api`,
`deliver`, `dead_letters`, `make_app`) give them the analytics service; `deliver` takes the
moment an event was sent (`time=`), which is what `asOf` reports."""

import pytest


@pytest.fixture
def service_name() -> str:
    return "analytics"
