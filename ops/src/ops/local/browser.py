"""The real browser of the browser tests: Debian's `chromium` and `chromium-driver` (the
same version, so the driver speaks to the browser), installed with apt-get when missing as
PostgreSQL's server is. Browser builds that test tools download (`playwright install`,
Selenium Manager) are out of reach here: the tests drive the system Chromium through the
system `chromedriver`."""

from __future__ import annotations

import shutil
from collections.abc import Callable

from ops.local import apt, errors
from ops.local.paths import Paths
from ops.local.report import Say

PACKAGES = ("chromium", "chromium-driver")
#: What the packages put on PATH: the browser, and the driver that Selenium starts.
EXECUTABLES = ("chromium", "chromedriver")


def missing(which: Callable[[str], str | None] | None = None) -> list[str]:
    found = which or shutil.which
    return [name for name in EXECUTABLES if found(name) is None]


def ensure_browser(paths: Paths, say: Say) -> list[str]:
    """Install Chromium and its driver unless both are on PATH; returns their paths."""
    if missing():
        apt.refuse_unless_root("Chromium or its driver", PACKAGES)
        say(
            f"Chromium: installing the browser and its driver (apt-get install "
            f"{' '.join(PACKAGES)}), once"
        )
        apt.install(PACKAGES, paths)
        still = missing()
        if still:
            raise errors.PlatformError(
                f"{', '.join(still)} is still not on PATH after apt-get install "
                f"{' '.join(PACKAGES)}: read {paths.log('apt')}"
            )
    return [str(shutil.which(name)) for name in EXECUTABLES]
