"""The short chaos run of `make test`: a workload on a platform of its own while a fault of
every kind strikes (the broker killed and PostgreSQL crashed among them), then every client
checked against the truth. `make chaos` runs the long one (docs/reliability.md)."""

from __future__ import annotations

from collections import Counter

import pytest

from ops.chaos.faults import ALL_KINDS
from ops.chaos.run import RECOVERY_LIMIT, Settings, chaos_run, summary
from ops.local.paths import Paths, repository_root

pytestmark = pytest.mark.infra

SHORT_RUN = Settings(
    seed=20261204,
    duration=45,
    rate=15,
    kinds=ALL_KINDS,
    faults_per_kind=1,
    clients=60,
    credits_replicas=2,
)


async def test_nothing_is_lost_or_charged_twice_whatever_fails() -> None:
    messages: list[str] = []

    report = await chaos_run(Paths(repository_root()), SHORT_RUN, messages.append)

    details = "\n".join(messages + summary(report))
    assert report.failure is None, details
    assert Counter(fault.kind for fault in report.faults) == {kind.value: 1 for kind in ALL_KINDS}
    assert report.delivered + report.cancelled == SHORT_RUN.sessions, details
    assert report.delivered > SHORT_RUN.sessions // 2, details
    assert report.lost == [], details
    assert report.duplicated == [], details
    assert report.wrong == [], details
    assert all(fault.recovered_in <= RECOVERY_LIMIT for fault in report.faults), details
    assert report.passed
