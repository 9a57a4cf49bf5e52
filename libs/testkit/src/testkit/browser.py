"""A real browser for the tests (a pytest plugin, named by `testkit.plugin`): headless
Chromium, Debian's, driven through the system `chromedriver` by Selenium (`make browser`
installs both). Nothing is downloaded: no Selenium Manager, no browser build of a tool's own.

Every page a test opens may load only what the machine serves itself. The `browser`
fixture's guard records every request the page makes (Chrome's DevTools `Network` events,
read from chromedriver's performance log) and fails the test after it ran if any went to
another host; Chromium is also started with every other host name unresolvable, so such a
request never leaves the machine. `local_site` serves a folder on 127.0.0.1 for a test.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

WINDOW_SIZE = (1280, 900)
#: Addresses that stay on this machine, and schemes that make no request at all.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
LOCAL_SCHEMES = frozenset({"data", "blob", "about"})
#: The DevTools events that announce a request, and where each keeps its URL.
REQUEST_EVENTS = {
    "Network.requestWillBeSent": ("request", "url"),
    "Network.webSocketCreated": ("url",),
}

CHROMIUM_ARGUMENTS = (
    "--headless=new",
    # The sessions here are root, and Chromium's sandbox refuses to run as root.
    "--no-sandbox",
    # /dev/shm is small in containers; Chromium then crashes on large pages.
    "--disable-dev-shm-usage",
    f"--window-size={WINDOW_SIZE[0]},{WINDOW_SIZE[1]}",
    # Only local names resolve: a request to any other host fails at once, on the machine.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    # Nothing of the browser's own (updates, sync, safe browsing, field trials) either.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
)


class BrowserMissing(RuntimeError):
    """Chromium or chromedriver is not installed: `make browser` installs both."""


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return True
    return parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname in LOCAL_HOSTS


def chromium_options() -> webdriver.ChromeOptions:
    options = webdriver.ChromeOptions()
    options.binary_location = _executable("chromium")
    for argument in CHROMIUM_ARGUMENTS:
        options.add_argument(argument)
    # chromedriver keeps the DevTools events of the page, `Network` ones included.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return options


def _executable(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BrowserMissing(
            f"{name} is not on PATH: install Chromium and its driver with `make browser` "
            "(apt-get install chromium chromium-driver)"
        )
    return path


@contextlib.contextmanager
def headless_chromium() -> Iterator[webdriver.Chrome]:
    """Headless Chromium through the system chromedriver, with its `Network` events on."""
    service = Service(executable_path=_executable("chromedriver"))
    driver = webdriver.Chrome(options=chromium_options(), service=service)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        yield driver
    finally:
        driver.quit()


@dataclass
class RequestGuard:
    """Every URL the browser's pages asked for, in order, read from its performance log."""

    driver: webdriver.Chrome
    requested: list[str] = field(default_factory=list)

    def read(self) -> list[str]:
        """What was requested so far (the log is drained by each read, so kept here)."""
        # Selenium leaves `get_log` unannotated: a list of {"message": "<JSON>", ...}.
        entries = self.driver.get_log("performance")  # type: ignore[no-untyped-call]
        for entry in entries:
            event = json.loads(entry["message"])["message"]
            where = REQUEST_EVENTS.get(event.get("method", ""))
            if where is not None:
                value = event["params"]
                for key in where:
                    value = value[key]
                self.requested.append(str(value))
        return self.requested

    def foreign(self) -> list[str]:
        """The requests that went to another host than this machine."""
        return [url for url in self.read() if not is_local(url)]

    def check(self) -> None:
        """Fail the test when a page requested anything from another host."""
        foreign = self.foreign()
        if foreign:
            pytest.fail(
                "the page requested from another host than this machine: "
                + ", ".join(dict.fromkeys(foreign)),
                pytrace=False,
            )


@pytest.fixture
def request_guard() -> Iterator[RequestGuard]:
    """The guard of one test's browser: fails the test afterwards if a page it opened
    requested anything from another host. Ask for it to see what was requested."""
    with headless_chromium() as driver:
        guard = RequestGuard(driver)
        yield guard
        guard.check()


@pytest.fixture
def browser(request_guard: RequestGuard) -> webdriver.Chrome:
    """Headless Chromium (1280x900) for one test, under its `request_guard`."""
    return request_guard.driver


@contextlib.contextmanager
def local_site(directory: Path) -> Iterator[str]:
    """Serve `directory` on 127.0.0.1 (a free port) while in the block; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="local-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep the tests' output free of access logs."""
