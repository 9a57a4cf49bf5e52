"""The one error the local platform raises, and the sentences that tell the operator what to do.

Every failure of `ops up`/`ops down` becomes a `PlatformError` whose message is a single line
naming the step and the next action, so the CLI can print it instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path


class PlatformError(Exception):
    """A failure the operator can act on; its message says how."""


def java_missing() -> PlatformError:
    return PlatformError(
        "Java was not found: install a Java 17 runtime: apt-get install openjdk-17-jre-headless"
    )


def java_too_old(version: str) -> PlatformError:
    return PlatformError(
        f"Java {version} is too old for Kafka 4 (needs 17 or newer): "
        "install a Java 17 runtime: apt-get install openjdk-17-jre-headless"
    )


def maven_missing() -> PlatformError:
    return PlatformError(
        "Maven was not found and the Kafka jars are not cached yet: "
        "install it: apt-get install maven"
    )


def port_taken(port: int, needed_by: str, holder: str, remedy: str = "") -> PlatformError:
    remedy = remedy or "stop that process"
    return PlatformError(
        f"port {port} (needed by {needed_by}) is already taken by {holder}, "
        f"which this platform did not start: {remedy}"
    )


def step_timed_out(step: str, seconds: float, log: Path) -> PlatformError:
    return PlatformError(f"{step} did not finish within {seconds:g} s: read {log}")


def step_failed(step: str, log: Path) -> PlatformError:
    return PlatformError(f"{step} failed: read {log}")


def process_exited(what: str, log: Path) -> PlatformError:
    return PlatformError(f"{what} exited while starting: read {log}")
