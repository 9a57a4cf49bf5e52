"""`ops browser` (`make browser`): Debian's Chromium and its driver, installed with apt-get
as PostgreSQL's server is, only when one of them is missing from PATH."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from ops.local import apt, browser
from ops.local.errors import PlatformError
from ops.local.paths import Paths

INSTALLED = {"chromium": "/usr/bin/chromium", "chromedriver": "/usr/bin/chromedriver"}


def test_chromium_and_its_driver_are_installed_from_debian_without_questions() -> None:
    update, install = apt.install_commands(browser.PACKAGES)

    assert update == ["apt-get", "update"]
    assert install[:3] == ["apt-get", "install", "-y"]
    assert {"chromium", "chromium-driver"} <= set(install)


def test_what_is_missing_is_what_is_not_on_path() -> None:
    assert browser.missing(INSTALLED.get) == []
    assert browser.missing({"chromium": "/usr/bin/chromium"}.get) == ["chromedriver"]


def test_nothing_is_installed_when_both_are_on_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("shutil.which", INSTALLED.get)

    def refuse(*_: object) -> None:
        raise AssertionError("apt-get must not run")

    monkeypatch.setattr(apt, "install", refuse)

    assert browser.ensure_browser(Paths(tmp_path), print) == list(INSTALLED.values())


def test_anyone_but_root_is_told_the_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("shutil.which", lambda _: None)
    monkeypatch.setattr("os.geteuid", lambda: 1000)

    with pytest.raises(PlatformError) as refused:
        browser.ensure_browser(Paths(tmp_path), print)

    assert str(refused.value) == (
        "Chromium or its driver is not installed: "
        "install it: apt-get install chromium chromium-driver"
    )


def test_root_installs_both_and_says_so_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    on_path: dict[str, str] = {}
    installed: list[Sequence[str]] = []

    def install(packages: Sequence[str], paths: Paths) -> None:
        installed.append(packages)
        on_path.update(INSTALLED)

    monkeypatch.setattr("shutil.which", on_path.get)
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr(apt, "install", install)
    said: list[str] = []

    assert browser.ensure_browser(Paths(tmp_path), said.append) == list(INSTALLED.values())
    assert installed == [browser.PACKAGES]
    assert said == [
        "Chromium: installing the browser and its driver "
        "(apt-get install chromium chromium-driver), once"
    ]


def test_a_failed_apt_get_names_its_log(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(apt, "install_commands", lambda _: [["false"]])

    with pytest.raises(PlatformError) as failed:
        apt.install(browser.PACKAGES, Paths(tmp_path))

    assert str(failed.value) == f"false failed: read {Paths(tmp_path).log('apt')}"
