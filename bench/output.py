"""What a benchmark prints and writes: progress lines, Markdown tables, the machine, and its
results as JSON."""

from __future__ import annotations

import argparse
import json
import os
import platform as python_platform
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: Progress lines are rewritten at most this often by default.
STATUS_INTERVAL = 0.5
_last_status = 0.0


def status(text: str, *, every: float = STATUS_INTERVAL) -> None:
    """A progress line, rewritten in place (at most once per `every` seconds)."""
    global _last_status
    now = time.monotonic()
    if now - _last_status < every:
        return
    _last_status = now
    print(f"\r  {text:<90}", end="", flush=True)


def clear_status() -> None:
    global _last_status
    _last_status = 0.0
    print(f"\r{'':<92}\r", end="", flush=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    """A Markdown table, its columns padded to line up. `align` has an `l` (left) or `r`
    (right) per column; by default the first column is aligned left, the others (figures)
    right."""
    align = align or "l" + "r" * (len(headers) - 1)
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    widths = [max(width, 3) for width in widths]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.ljust(width) if side == "l" else cell.rjust(width)
            for cell, width, side in zip(cells, widths, align, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|".join(
        "-" * (width + 2) if side == "l" else "-" * (width + 1) + ":"
        for width, side in zip(widths, align, strict=True)
    )
    return [line(headers), f"|{rule}|", *(line(row) for row in rows)]


def machine_summary() -> str:
    return f"{os.cpu_count()} CPUs, Python {python_platform.python_version()}"


def today() -> str:
    return time.strftime("%Y-%m-%d")


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": python_platform.python_version(),
        "system": python_platform.platform(),
        "load_average_at_end": list(os.getloadavg()),
    }


def finish(
    arguments: argparse.Namespace,
    benchmark: str,
    lines: Sequence[str],
    runs: Sequence[dict[str, Any]],
    medians: dict[str, Any],
    targets: dict[str, Any],
) -> None:
    """Print the report; with `--json PATH`, write the runs, medians and targets there too."""
    print()
    print("\n".join(lines))
    path: Path | None = arguments.json
    if path is None:
        return
    parameters = {
        name: str(value) if isinstance(value, Path) else value
        for name, value in vars(arguments).items()
    }
    document = {
        "benchmark": benchmark,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "parameters": parameters,
        "runs": list(runs),
        "median": medians,
        "targets": targets,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"results written to {path}")


def verdict(met: bool) -> str:
    return "yes" if met else "no"
