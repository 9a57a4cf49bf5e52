"""Files written from code and kept in the repository (the JSON Schemas, the AsyncAPI
documents), so that teams read them without running anything; a test fails when they are
stale. Each kind is a `GeneratedFiles`: where its files live, which files there are its own,
and how to render them."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def stable_json(document: Any) -> str:
    """JSON that only changes where the document does: keys sorted, two-space indents, one
    trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


@dataclass(frozen=True, slots=True)
class GeneratedFiles:
    #: What the files are, for messages: "schemas".
    what: str
    directory: Path
    #: The files of `directory` that are this kind's (others found there are left alone).
    pattern: str
    #: File name -> file text, as the code has them now.
    render: Callable[[], dict[str, str]]

    def stale(self, directory: Path | None = None) -> list[str]:
        """Names of files that are missing, different, or no longer belong."""
        directory = directory or self.directory
        expected = self.render()
        present = {path.name for path in directory.glob(self.pattern)}
        stale = [
            name
            for name, text in expected.items()
            if not (directory / name).is_file() or (directory / name).read_text() != text
        ]
        return sorted(stale + [name for name in present if name not in expected])

    def write(self, directory: Path | None = None) -> int:
        """Write every file, remove those that no longer belong; returns how many there are."""
        directory = directory or self.directory
        directory.mkdir(parents=True, exist_ok=True)
        expected = self.render()
        for path in directory.glob(self.pattern):
            if path.name not in expected:
                path.unlink()
        for name, text in expected.items():
            (directory / name).write_text(text)
        return len(expected)

    def main(self, argv: list[str] | None = None, description: str | None = None) -> int:
        """`python -m <module> [--output DIR] [--check]`: write the files, or only report
        stale ones (exit 1)."""
        parser = argparse.ArgumentParser(description=description)
        parser.add_argument("--output", type=Path, default=self.directory)
        parser.add_argument("--check", action="store_true", help="only report stale files")
        args = parser.parse_args(argv)
        if args.check:
            stale = self.stale(args.output)
            for name in stale:
                print(f"stale: {args.output / name}", file=sys.stderr)
            if stale:
                print(f"run `make schemas` to write the {self.what} again", file=sys.stderr)
            return 1 if stale else 0
        written = self.write(args.output)
        print(f"wrote {written} {self.what} to {args.output}")
        return 0
