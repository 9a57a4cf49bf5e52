"""Prometheus metrics of one service process, served at `GET /metrics`.

Each `Metrics` has a registry of its own (never prometheus_client's global one), so several
runtimes in one process (as in the tests) count separately. Counters and the histogram are
updated as things happen; the outbox and consumer lag gauges are computed when scraped:
`Metrics.render` first awaits the refresh callbacks the runtime registered (one cheap query
on the outbox table; for the lag, the end offsets of the partitions the running consumer
holds, in one request, against the positions it already knows), then renders. A service
adds gauges of its own the same way (`Metrics.gauges_at_scrape`). A refresh that fails
leaves its gauges out of that scrape rather than stale.
docs/observability.md lists every series.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from fastapi import APIRouter, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

_Labelled = TypeVar("_Labelled", Counter, Histogram)

#: The event type label of a record that is not a readable CloudEvent.
UNKNOWN_EVENT_TYPE = "unknown"

#: Handler latency buckets, in seconds: a handler is one short transaction; a slow one waits
#: for a lock or a struggling database.
HANDLER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class OutboxBacklog:
    rows: int
    oldest_age_seconds: float


@dataclass(frozen=True, slots=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    records: int


@dataclass
class ScrapeTimeState:
    """What the last scrape's refresh found; `None` or empty means unknown: not reported."""

    outbox: OutboxBacklog | None = None
    lag: list[PartitionLag] = field(default_factory=list)


class _ScrapeTimeCollector(Collector):
    def __init__(self, state: ScrapeTimeState) -> None:
        self.state = state

    def describe(self) -> Iterable[Metric]:
        return _families(ScrapeTimeState())

    def collect(self) -> Iterable[Metric]:
        return _families(self.state)


def _families(state: ScrapeTimeState) -> list[Metric]:
    backlog = GaugeMetricFamily(
        "platform_outbox_backlog_rows", "Events in the outbox, written and not yet published."
    )
    age = GaugeMetricFamily(
        "platform_outbox_oldest_age_seconds",
        "Age of the oldest event waiting in the outbox (0 when it is empty).",
    )
    if state.outbox is not None:
        backlog.add_metric([], state.outbox.rows)
        age.add_metric([], state.outbox.oldest_age_seconds)
    lag = GaugeMetricFamily(
        "platform_consumer_lag_records",
        "Records in a partition not yet handed to this process's consumer "
        "(end offset - position), for the partitions assigned to it.",
        labels=["group", "topic", "partition"],
    )
    for item in state.lag:
        lag.add_metric([item.group, item.topic, str(item.partition)], item.records)
    return [backlog, age, lag]


Refresh = Callable[[ScrapeTimeState], Awaitable[None]]
#: A service's own measurement: each gauge's name and its value now.
Measure = Callable[[], Awaitable[Mapping[str, float]]]


class _MeasuredGauges(Collector):
    """Unlabelled gauges of a service's own, valued by its last measurement."""

    def __init__(self, documentation: Mapping[str, str]) -> None:
        self.documentation = dict(documentation)
        self.values: Mapping[str, float] = {}

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(name, text) for name, text in self.documentation.items()]

    def collect(self) -> Iterable[Metric]:
        families = []
        for name, text in self.documentation.items():
            family = GaugeMetricFamily(name, text)
            if name in self.values:
                family.add_metric([], self.values[name])
            families.append(family)
        return families


class Metrics:
    """The metrics of one service process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events_consumed = Counter(
            "platform_events_consumed",
            "Records the idempotent consumer finished with, by what became of them.",
            ["topic", "event_type", "outcome"],
            registry=self.registry,
        )
        self.events_published = Counter(
            "platform_events_published",
            "Events the outbox relay published (acknowledged by the broker).",
            ["topic", "event_type"],
            registry=self.registry,
        )
        self.events_dead_lettered = Counter(
            "platform_events_dead_lettered",
            "Records sent to the dead-letter topic, by their original topic and kind of reason.",
            ["topic", "reason"],
            registry=self.registry,
        )
        self.events_refused = Counter(
            "platform_events_refused",
            "Outbox events the broker refused for good (too large for their topic): left in "
            "the outbox, set aside and tried again later, while the others are published.",
            ["topic", "event_type"],
            registry=self.registry,
        )
        self.handler_duration = Histogram(
            "platform_handler_duration_seconds",
            "Time to apply one event: its transaction, the handler and the idempotency check.",
            ["event_type"],
            buckets=HANDLER_BUCKETS,
            registry=self.registry,
        )
        self._scrape_time = ScrapeTimeState()
        self.registry.register(_ScrapeTimeCollector(self._scrape_time))
        self._refreshes: list[Refresh] = []
        self._children: dict[tuple[object, ...], Counter | Histogram] = {}

    def labelled(self, metric: _Labelled, *values: str) -> _Labelled:
        """`metric.labels(*values)`, made once per combination: every record consumed asks
        for two, and `labels` costs more than the count or observation they are for."""
        key = (metric, *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child  # type: ignore[return-value]  # made from `metric`: the same kind

    def on_scrape(self, refresh: Refresh) -> None:
        """Run `refresh` before each scrape to update the scrape-time gauges."""
        self._refreshes.append(refresh)

    def gauges_at_scrape(self, documentation: Mapping[str, str], measure: Measure) -> None:
        """Serve gauges of the service's own (`documentation`: each name and its help),
        valued by `measure` at each scrape. Measured where the figures live (its database),
        they are the same from every replica and survive restarts."""
        gauges = _MeasuredGauges(documentation)
        self.registry.register(gauges)

        async def refresh(_: ScrapeTimeState) -> None:
            gauges.values = {}
            gauges.values = await measure()

        self.on_scrape(refresh)

    async def render(self) -> bytes:
        self._scrape_time.outbox = None
        self._scrape_time.lag = []
        for refresh in self._refreshes:
            try:
                await refresh(self._scrape_time)
            except Exception as error:
                log.warning("a metrics refresh failed (%s: %s)", type(error).__name__, error)
        return generate_latest(self.registry)


def metrics_router(metrics: Metrics) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
    )
    async def scrape() -> Response:
        return Response(await metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router
