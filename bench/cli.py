"""What every benchmark script takes and how it runs: its options, and one line for a
platform that is not there.

Every benchmark is a script run from the repository root (`uv run python bench/<name>.py`);
the modules beside it (cli, discovery, workload, wrk, stats, output) are imported by their
own names, so none may share its name with a module of Python's or of an installed package.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from ops.local.errors import PlatformError

T = TypeVar("T")


def positive(text: str) -> int:
    """An argparse type: a whole number above zero."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not above zero")
    return value


def session_arguments(parser: argparse.ArgumentParser, *, sessions: int) -> None:
    """The options of a load of trainer-led sessions (`workload.deliver_sessions`)."""
    parser.add_argument("--sessions", type=positive, default=sessions, help="sessions per run")
    parser.add_argument("--clients", type=positive, default=1_000, help="clients sharing them")
    parser.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="longest wait for the sessions' deductions per run",
    )


def history_arguments(parser: argparse.ArgumentParser, *, default: list[int], help: str) -> None:
    """The history sizes of a cost-curve benchmark, one measurement each."""
    parser.add_argument("--history", type=int, nargs="+", default=default, help=help)


def wrk_arguments(parser: argparse.ArgumentParser, *, duration: float) -> None:
    parser.add_argument("--duration", type=float, default=duration, help="seconds of wrk per run")
    parser.add_argument("--connections", type=positive, default=32, help="wrk -c")
    parser.add_argument("--threads", type=positive, default=2, help="wrk -t")


def json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")


def arguments(description: str) -> argparse.ArgumentParser:
    """A parser with the options every benchmark takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=positive, default=3, help="runs; the median is reported")
    json_argument(parser)
    parser.add_argument(
        "--settle-timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="longest wait for the platform to catch up before each measurement",
    )
    return parser


def run(benchmark: Coroutine[Any, Any, T]) -> T:
    """Run a benchmark; a platform that is not there (or fails it) ends it with one line."""
    try:
        return asyncio.run(benchmark)
    except PlatformError as error:
        sys.exit(f"error: {error}")
