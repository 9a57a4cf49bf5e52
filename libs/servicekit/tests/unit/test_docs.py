"""`/docs` is Swagger UI on the service's own files: the page names no other host, and the
files it names are served, with their content types."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from httpx import ASGITransport, AsyncClient

from testkit.probe import serverless_runtime


@pytest.fixture
async def http() -> AsyncIterator[AsyncClient]:
    runtime = serverless_runtime()
    app = runtime.create_app(title="Probe")
    try:
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://probe") as client:
            yield client
    finally:
        await runtime.database.dispose()


def referenced(html: str) -> list[str]:
    """Every URL the page loads or links to: attributes and the script's string literals."""
    attributes = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", html)
    literals = re.findall(r"""["']((?:[a-z][a-z0-9+.-]*:)?//[^"']*)["']""", html, re.I)
    return attributes + literals


async def test_docs_load_nothing_from_another_host(http: AsyncClient) -> None:
    response = await http.get("/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    urls = referenced(html)
    assert urls, html
    assert all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    assert "http:" not in html
    assert "https:" not in html
    assert "url: '/openapi.json'" in html
    # No badge that sends the document to validator.swagger.io.
    assert '"validatorUrl": null' in html


@pytest.mark.parametrize(
    ("suffix", "content_type"),
    [(".js", "text/javascript"), (".css", "text/css"), (".png", "image/png")],
)
async def test_the_files_the_docs_name_are_served(
    http: AsyncClient, suffix: str, content_type: str
) -> None:
    [url] = [u for u in referenced((await http.get("/docs")).text) if u.endswith(suffix)]

    response = await http.get(url)

    assert response.status_code == 200, url
    assert response.headers["content-type"].split(";")[0] == content_type
    assert len(response.content) > 100


async def test_the_oauth2_redirect_page_is_served_and_redoc_is_not(http: AsyncClient) -> None:
    assert (await http.get("/docs/oauth2-redirect")).status_code == 200
    assert (await http.get("/redoc")).status_code == 404


async def test_the_docs_are_open_and_out_of_the_openapi_document(http: AsyncClient) -> None:
    """No token needed, as before; neither the page nor its files are API operations."""
    document = (await http.get("/openapi.json")).json()

    assert (await http.get("/docs")).status_code == 200
    assert not [path for path in document["paths"] if path.startswith(("/docs", "/static"))]
