"""The browser tests' own proof (`testkit.browser`): headless Chromium opens a page served on
this machine, and the guard catches a page that asks another host for anything."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from testkit.browser import WINDOW_SIZE, RequestGuard, headless_chromium, is_local, local_site

pytestmark = pytest.mark.browser

FOREIGN_IMAGE = "http://example.invalid/x.png"
TITLE_PAGE = """<!DOCTYPE html>
<html><head><title>loading</title></head>
<body><p id="said"></p>
<script>
  document.title = "served here";
  document.getElementById("said").textContent = navigator.userAgent;
</script></body></html>
"""
FOREIGN_PAGE = f"""<!DOCTYPE html>
<html><head><title>foreign</title></head>
<body><img id="pixel" src="{FOREIGN_IMAGE}" alt="">
<script>
  const pixel = document.getElementById("pixel");
  const done = () => document.body.dataset.done = "yes";
  pixel.onerror = done; pixel.onload = done;
</script></body></html>
"""


def site(tmp_path: Path, **pages: str) -> Path:
    for name, html in pages.items():
        (tmp_path / f"{name}.html").write_text(html)
    return tmp_path


def wait_until_done(driver: webdriver.Chrome) -> None:
    WebDriverWait(driver, 10).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-done") == "yes"
    )


def test_headless_chromium_opens_a_page_served_here(
    browser: webdriver.Chrome, request_guard: RequestGuard, tmp_path: Path
) -> None:
    with local_site(site(tmp_path, index=TITLE_PAGE)) as base:
        browser.get(f"{base}/index.html")
        WebDriverWait(browser, 10).until(lambda d: d.title == "served here")

        said = browser.find_element(By.ID, "said").text
    assert "HeadlessChrome" in said
    assert browser.get_window_size() == {"width": WINDOW_SIZE[0], "height": WINDOW_SIZE[1]}
    assert f"{base}/index.html" in request_guard.read()
    assert request_guard.foreign() == []


def test_the_guard_reports_a_request_to_another_host(tmp_path: Path) -> None:
    with local_site(site(tmp_path, index=FOREIGN_PAGE)) as base, headless_chromium() as driver:
        guard = RequestGuard(driver)
        driver.get(f"{base}/index.html")
        wait_until_done(driver)

        assert guard.foreign() == [FOREIGN_IMAGE]
        with pytest.raises(pytest.fail.Exception, match=re.escape(FOREIGN_IMAGE)):
            guard.check()


def test_the_browser_fixture_fails_a_test_whose_page_asks_another_host(tmp_path: Path) -> None:
    """The fixture's guard, in a pytest run of its own: the test's body passes, the run fails
    naming the foreign request."""
    site(tmp_path, index=FOREIGN_PAGE)
    (tmp_path / "test_foreign.py").write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path

            from selenium.webdriver.common.by import By
            from selenium.webdriver.support.wait import WebDriverWait

            from testkit.browser import local_site


            def test_a_page_that_asks_another_host(browser):
                with local_site(Path({str(tmp_path)!r})) as base:
                    browser.get(base + "/index.html")
                    WebDriverWait(browser, 10).until(
                        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-done")
                    )
            """
        )
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "testkit.browser",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            "-q",
            str(tmp_path / "test_foreign.py"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )

    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 passed, 1 error" in run.stdout, run.stdout
    assert f"the page requested from another host than this machine: {FOREIGN_IMAGE}" in run.stdout


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8004/dashboard", True),
        ("http://localhost/x", True),
        ("ws://[::1]:9/stream", True),
        ("data:image/png;base64,AAAA", True),
        ("blob:http://127.0.0.1/1", True),
        ("about:blank", True),
        ("http://example.invalid/x.png", False),
        ("https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css", False),
        ("http://127.0.0.1.example.com/", False),
        ("file:///etc/passwd", False),
    ],
)
def test_local_means_this_machine(url: str, local: bool) -> None:
    assert is_local(url) is local
