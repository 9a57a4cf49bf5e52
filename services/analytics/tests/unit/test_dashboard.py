"""The web dashboard (`GET /dashboard`): a page and its files served by analytics itself,
with no data in them and nothing from anywhere else."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from analytics import dashboard
from analytics.dashboard import ASSETS


@pytest.fixture
async def anonymous() -> AsyncIterator[AsyncClient]:
    app = FastAPI()
    app.include_router(dashboard.router)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://analytics") as c:
        yield c


async def test_the_page_is_served_without_a_token_and_holds_no_data(
    anonymous: AsyncClient,
) -> None:
    response = await anonymous.get("/dashboard")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = response.text
    assert '<script src="/dashboard/dashboard.js" defer></script>' in page
    assert '<link rel="stylesheet" href="/dashboard/dashboard.css">' in page
    # The places the script fills, empty: no figure in the page itself.
    for hook in ('id="status"', 'id="distribution"', 'id="credits"', 'id="figures"'):
        assert hook in page
    assert not re.search(r">\s*\d+\s*<", page)
    assert "Workout Type Distribution" in page
    assert "Session Credits" in page


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("dashboard.js", "text/javascript; charset=utf-8"),
        ("dashboard.css", "text/css; charset=utf-8"),
    ],
)
async def test_the_pages_files_are_served_with_their_content_types(
    anonymous: AsyncClient, name: str, content_type: str
) -> None:
    response = await anonymous.get(f"/dashboard/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_nothing_served_names_another_place(anonymous: AsyncClient) -> None:
    """No CDN, no font, no library: every file names nothing but this service."""
    for name in ASSETS:
        path = "/dashboard" if name == "index.html" else f"/dashboard/{name}"
        body = (await anonymous.get(path)).text
        assert "http://" not in body, name
        assert "https://" not in body, name
        assert not re.search(r"""(src|href)=["']//""", body), name
        assert "@import" not in body, name


async def test_the_page_may_load_and_call_nothing_but_this_service(
    anonymous: AsyncClient,
) -> None:
    response = await anonymous.get("/dashboard")
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    for directive in ("script-src 'self'", "style-src 'self'", "connect-src 'self'"):
        assert directive in policy
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_the_script_keeps_the_token_out_of_urls_and_draws_what_the_tests_read(
    anonymous: AsyncClient,
) -> None:
    """What a browser test relies on, and the token's path: read from the fragment, kept
    in sessionStorage, removed from the address bar, sent only as a header."""
    script = (await anonymous.get("/dashboard/dashboard.js")).text
    for needed in (
        "window.location.hash",
        "sessionStorage.setItem",
        "history.replaceState",
        '"Bearer " + token',
        "Sign in: no token",
        '" workouts ("',
        '"data-kind"',
        '"data-count"',
        '"data-percentage"',
        '"aria-label"',
        '"credits-" + figure.key',
        "/session-usage/events",
        "Last-Event-ID",
        "/recent",
        "#4CAF50",
    ):
        assert needed in script, needed
    assert "?token=" not in script
    assert "innerHTML" not in script


async def test_an_unknown_file_is_404(anonymous: AsyncClient) -> None:
    for path in ("/dashboard/index.html", "/dashboard/secret.py", "/dashboard/..%2fapi.py"):
        assert (await anonymous.get(path)).status_code == 404, path
