"""The workouts service's tests: the root conftest's shared fixtures (`app`, `runtime`, `api`,
`deliver`, `dead_letters`, `make_app`) give them the workouts service."""

import pytest


@pytest.fixture
def service_name() -> str:
    return "workouts"
