"""Debian packages the platform needs, installed with apt-get when missing: as root (the
sessions here are root); anyone else is told the command to run. apt-get's output goes to
`.local/log/apt.log`, and a failure names that file."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence

from ops.local import errors
from ops.local.paths import Paths

APT_TIMEOUT = 900.0


def install_commands(packages: Sequence[str]) -> list[list[str]]:
    return [
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", *packages],
    ]


def refuse_unless_root(what: str, packages: Sequence[str]) -> None:
    """Only root installs packages: anyone else is told the command to run."""
    if os.geteuid() != 0:
        raise errors.PlatformError(
            f"{what} is not installed: install it: apt-get install {' '.join(packages)}"
        )


def install(packages: Sequence[str], paths: Paths, env: Mapping[str, str] | None = None) -> None:
    """`apt-get update`, then install `packages` without questions; `env` adds settings."""
    log = paths.log("apt")
    log.parent.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", **(env or {})}
    with log.open("ab") as output:
        for command in install_commands(packages):
            try:
                result = subprocess.run(
                    command,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    env=environment,
                    timeout=APT_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise errors.step_timed_out(" ".join(command), APT_TIMEOUT, log) from None
            if result.returncode != 0:
                raise errors.step_failed(" ".join(command), log)
