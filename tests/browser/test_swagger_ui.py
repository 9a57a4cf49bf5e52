"""A service's `/docs` and `/asyncapi` in a real browser: Swagger UI and the AsyncAPI web
component render the service's own documents from files the service serves, and the pages
ask no other host for anything (the `browser` fixture's guard)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from testkit.browser import RequestGuard
from testkit.probe import serverless_runtime

pytestmark = pytest.mark.browser


@pytest.fixture
def service_url() -> Iterator[str]:
    """A service's app on 127.0.0.1 (a free port), without its lifespan: no Kafka needed."""
    runtime = serverless_runtime()
    app = runtime.create_app(title="Probe service")
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_config=None)
    )
    thread = threading.Thread(target=server.run, name="probe-service", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the probe service did not start"
        time.sleep(0.05)
    [listening] = server.servers[0].sockets
    try:
        yield f"http://127.0.0.1:{listening.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_swagger_ui_renders_from_the_services_own_files(
    browser: webdriver.Chrome, request_guard: RequestGuard, service_url: str
) -> None:
    browser.get(f"{service_url}/docs")

    title = WebDriverWait(browser, 15).until(
        lambda d: d.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title")
    )
    assert title.text.startswith("Probe service")
    requested = request_guard.read()
    assert f"{service_url}/static/swagger/swagger-ui-bundle.js" in requested
    assert f"{service_url}/openapi.json" in requested


def test_the_asyncapi_page_renders_from_the_services_own_files(
    browser: webdriver.Chrome, request_guard: RequestGuard, service_url: str
) -> None:
    browser.get(f"{service_url}/asyncapi")

    title = WebDriverWait(browser, 20).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#introduction")
    )
    assert title.text.startswith("Probe service")
    assert "consumes (receive) and publishes to (send)" in title.text
    assert request_guard.read() == [
        f"{service_url}/asyncapi",
        f"{service_url}/static/asyncapi/default.min.css",
        f"{service_url}/static/asyncapi/asyncapi-standalone.js",
    ]
