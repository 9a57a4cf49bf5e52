"""Progress of a replay or rebuild: what is done of what, how fast, how long is left, and how
it reads on a terminal and in a log."""

from __future__ import annotations

import io

from aiokafka.structs import TopicPartition

from ops.progress import Progress, ProgressMeter, ProgressPrinter, describe, work_done
from ops.recovery import Outcome, summary

A0, A1, B0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)


def test_work_is_counted_from_where_the_group_was_rewound_to_the_end_offsets() -> None:
    start = {A0: 10, A1: 0, B0: 5}
    committed = {A0: 40, A1: 0}  # nothing committed on b yet
    end = {A0: 50, A1: 20, B0: 5}

    assert work_done(start, committed, end) == (30, 60)


def test_records_appended_while_following_grow_the_total() -> None:
    start = {A0: 0}

    assert work_done(start, {A0: 10}, {A0: 10}) == (10, 10)
    assert work_done(start, {A0: 10}, {A0: 14}) == (10, 14)


def test_a_committed_offset_outside_the_range_is_clamped() -> None:
    # Left behind from before the rewind (lower) or racing the end offset read (higher).
    assert work_done({A0: 10}, {A0: 3}, {A0: 20}) == (0, 10)
    assert work_done({A0: 10}, {A0: 25}, {A0: 20}) == (10, 10)


def test_the_rate_follows_the_recent_samples() -> None:
    meter = ProgressMeter("credits", window=5.0)

    first = meter.sample(0.0, 0, 1000)
    assert first.rate is None
    meter.sample(1.0, 10, 1000)  # warming up
    for second in range(2, 9):
        latest = meter.sample(float(second), 10 + 100 * (second - 1), 1000)

    assert latest.rate == 100.0
    assert latest.done == 710
    assert latest.seconds_left == 2.9


def test_progress_reads_as_done_of_total_rate_and_time_left() -> None:
    progress = Progress("credits", done=1234, total=5000, elapsed=3.0, rate=812.4)

    assert describe(progress) == (
        "credits: 1,234 of 5,000 records (24.7%), 812 records/s, about 5 s left"
    )
    assert describe(Progress("credits", 0, 5000, 0.0, None)) == (
        "credits: 0 of 5,000 records (0.0%), time left unknown"
    )
    assert describe(Progress("credits", 0, 5000, 9.0, 2.0)).endswith("about 41 min 40 s left")
    assert describe(Progress("credits", 7, 7, 1.0, 7.0)) == (
        "credits: 7 of 7 records (100.0%), 7 records/s"
    )


def test_a_terminal_gets_one_line_rewritten_in_place_a_log_one_line_per_update() -> None:
    updates = [Progress("analytics", n, 10, float(n), 1.0) for n in (1, 10)]

    terminal = io.StringIO()
    printer = ProgressPrinter(terminal, in_place=True)
    for update in updates:
        printer(update)
    printer.finish()
    assert terminal.getvalue().count("\r") == 2
    assert terminal.getvalue().rstrip(" \n").endswith("(100.0%), 1 records/s")
    assert terminal.getvalue().count("\n") == 1

    log = io.StringIO()
    printer = ProgressPrinter(log, in_place=False)
    for update in updates:
        printer(update)
    printer.finish()
    assert log.getvalue().splitlines() == [describe(update) for update in updates]


def test_the_summary_gives_records_time_and_rate() -> None:
    outcome = Outcome("credits", records=5000, catching_up=8.0, elapsed=15.24)

    assert summary(outcome, "rebuilt from") == (
        "credits: rebuilt from 5,000 records in 8.0 s (625 records/s); 15.2 s in all, "
        "stop and start included"
    )
