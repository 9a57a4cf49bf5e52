"""`/docs` is Swagger UI, and `/asyncapi` the AsyncAPI web component, on the service's own
files: the pages name no other host, and the files they name are served."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import pytest
from httpx import ASGITransport, AsyncClient

from servicekit.docs import asyncapi_page
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


async def test_the_asyncapi_page_loads_nothing_from_another_host(http: AsyncClient) -> None:
    response = await http.get("/asyncapi")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    loaded = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", response.text)
    loaded.remove("data:,")  # no favicon: the browser would ask for /favicon.ico
    assert sorted(loaded) == [
        "/static/asyncapi/asyncapi-standalone.js",
        "/static/asyncapi/default.min.css",
    ]
    for url in loaded:
        file = await http.get(url)
        assert file.status_code == 200, url
        assert len(file.content) > 1000


def test_the_asyncapi_page_keeps_a_hostile_document_inside_its_script() -> None:
    """A description that closes the script element cannot end it early and run as HTML."""
    hostile = json.dumps({"info": {"description": "</script><script>alert(1)</script><!--"}})

    page = asyncapi_page("Probe <b>", hostile)

    assert page.count("</script>") == 2  # the bundle's element and the render call's
    assert "<b>" not in page
    script = page.split("<script>\n", 1)[1].split("</script>", 1)[0]
    settings = json.loads(script.split("render(", 1)[1].rsplit(", document", 1)[0])
    assert json.loads(settings["schema"]) == json.loads(hostile)
