"""The analytics service's tests: the root conftest's shared fixtures (`app`, `runtime`, `api`,
`deliver`, `dead_letters`, `make_app`) give them the analytics service; `deliver` takes the
moment an event was sent (`time=`), which is what `asOf` reports. `anonymous` calls the
service without a token; `stories.caller` with one of a given role and subject."""

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient


@pytest.fixture
def service_name() -> str:
    return "analytics"


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://analytics") as c:
        yield c
