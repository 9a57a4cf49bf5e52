"""The credits service's tests: the root conftest's shared fixtures (`app`, `runtime`, `api`,
`deliver`, `dead_letters`, `make_app`) give them the credits service."""

from collections.abc import AsyncIterator, Callable

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from contracts.identity import Role
from ops.identity import LocalIdentity
from testkit.events import CLIENT


@pytest.fixture
def service_name() -> str:
    return "credits"


@pytest.fixture
async def as_role(
    app: FastAPI, identity: LocalIdentity
) -> AsyncIterator[Callable[..., AsyncClient]]:
    """The API called with a token of another role, or with none."""
    clients: list[AsyncClient] = []

    def client(role: Role | None = None, subject: str = str(CLIENT)) -> AsyncClient:
        headers = (
            {} if role is None else {"authorization": f"Bearer {identity.token(role, subject)}"}
        )
        made = AsyncClient(
            transport=ASGITransport(app=app), base_url="http://credits", headers=headers
        )
        clients.append(made)
        return made

    yield client
    for made in clients:
        await made.aclose()
