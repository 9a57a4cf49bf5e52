"""How far a replay or rebuild has got, and how it is shown to the operator.

Progress is measured on the broker, not inside the service: the records of the group's input
topics between the offsets it was rewound to and the end offsets are the work, and its
committed offsets are what is done. A service commits a record only after applying it, so
"done" never runs ahead of its database.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TextIO

from aiokafka.structs import TopicPartition

#: The rate shown (and the time left) is over this many seconds of recent samples, so it
#: follows the service as it warms up rather than averaging in its start-up.
RATE_WINDOW = 5.0


@dataclass(frozen=True, slots=True)
class Progress:
    service: str
    done: int
    total: int
    elapsed: float
    #: Records per second lately; None until there are two samples to compare.
    rate: float | None

    @property
    def left(self) -> int:
        return max(0, self.total - self.done)

    @property
    def seconds_left(self) -> float | None:
        if not self.left:
            return 0.0
        if not self.rate:
            return None
        return self.left / self.rate


def work_done(
    start: Mapping[TopicPartition, int],
    committed: Mapping[TopicPartition, int],
    end: Mapping[TopicPartition, int],
) -> tuple[int, int]:
    """(records done, records in all) since `start`, from committed and end offsets. A
    partition the group has not committed on yet has done nothing; a new partition (or a
    topic created since the rewind) counts from its beginning, offset 0."""
    done = total = 0
    for partition, last in end.items():
        first = start.get(partition, 0)
        total += max(0, last - first)
        position = min(max(committed.get(partition, first), first), last)
        done += position - first
    return done, total


class ProgressMeter:
    """Turns samples of (seconds since start, records done, records in all) into `Progress`."""

    def __init__(self, service: str, window: float = RATE_WINDOW) -> None:
        self.service = service
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def sample(self, elapsed: float, done: int, total: int) -> Progress:
        self._samples.append((elapsed, done))
        while len(self._samples) > 2 and elapsed - self._samples[1][0] >= self.window:
            self._samples.popleft()
        rate = None
        if len(self._samples) >= 2:
            (first_at, first_done), (last_at, last_done) = self._samples[0], self._samples[-1]
            if last_at > first_at:
                rate = max(0, last_done - first_done) / (last_at - first_at)
        return Progress(self.service, done, total, elapsed, rate)


def duration(seconds: float) -> str:
    """'45 s', '3 min 07 s', '2 h 05 min'."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def describe(progress: Progress) -> str:
    """'credits: 1,234 of 5,000 records (24.7%), 812 records/s, about 5 s left'."""
    share = 100.0 * progress.done / progress.total if progress.total else 100.0
    line = f"{progress.service}: {progress.done:,} of {progress.total:,} records ({share:.1f}%)"
    if progress.rate is not None:
        line += f", {progress.rate:,.0f} records/s"
    left = progress.seconds_left
    if left is None:
        line += ", time left unknown"
    elif progress.left:
        line += f", about {duration(left)} left"
    return line


class ProgressPrinter:
    """Shows each update: rewritten in place on a terminal, one line each elsewhere (a log,
    a CI job), where carriage returns would pile up."""

    def __init__(self, stream: TextIO | None = None, *, in_place: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.in_place = self.stream.isatty() if in_place is None else in_place
        self._width = 0

    def __call__(self, progress: Progress) -> None:
        line = describe(progress)
        if self.in_place:
            padding = " " * max(0, self._width - len(line))
            self.stream.write(f"\r{line}{padding}")
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def finish(self) -> None:
        """End the in-place line, so what follows starts on a line of its own."""
        if self.in_place and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0


#: What a replay or rebuild calls with each update.
OnProgress = Callable[[Progress], None]


def ignore(_: Progress) -> None:
    """An `OnProgress` for callers that show nothing."""
