"""Prometheus metrics for ``/metrics`` (prometheus-client, one registry per daemon).

Counters are fed by the runner (polls, API calls, events seen); store-derived
figures (outbox depth and age, deliveries by sink and status) are read at scrape
time through a :class:`StoreStats` callback, so they are right even after a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import httpx
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from watcher.store.view import StoreStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _StoreCollector(Collector):
    def __init__(self, read: Callable[[], StoreStats | None]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        stats = self._read()
        if stats is None:
            return
        depth = GaugeMetricFamily(
            "watcher_outbox_depth", "Deliveries pending (queued or waiting for a retry)"
        )
        depth.add_metric([], stats.outbox_depth)
        yield depth
        age = GaugeMetricFamily(
            "watcher_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending delivery (0 when none)",
        )
        age.add_metric([], stats.oldest_pending_age_s)
        yield age
        by_status = GaugeMetricFamily(
            "watcher_deliveries",
            "Deliveries in the store by sink and status",
            labels=["sink", "status"],
        )
        for (sink, status), count in sorted(stats.deliveries.items()):
            by_status.add_metric([sink, status], count)
        yield by_status

    def describe(self) -> Iterator[Metric]:
        return iter(())


class _SinkCollector(Collector):
    def __init__(self, read: Callable[[], Mapping[str, str]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        degraded = GaugeMetricFamily(
            "watcher_sink_degraded",
            "1 when a sink is degraded (Python handlers stuck past their timeout)",
            labels=["sink"],
        )
        for sink, health in sorted(self._read().items()):
            degraded.add_metric([sink], 0 if health == "ok" else 1)
        yield degraded

    def describe(self) -> Iterator[Metric]:
        return iter(())


class Metrics:
    """The daemon's metrics; ``render()`` gives the Prometheus text format."""

    def __init__(self, store_stats: Callable[[], StoreStats | None] | None = None) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: they double every counter
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.polls = Counter(
            "watcher_polls", "Polls finished", ["source", "mode", "outcome"], registry=r
        )
        self.poll_duration = Histogram(
            "watcher_poll_duration_seconds",
            "Poll duration",
            ["source", "mode"],
            buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
            registry=r,
        )
        self.last_success = Gauge(
            "watcher_last_successful_poll_timestamp_seconds",
            "Unix time of the last successful poll per source",
            ["source"],
            registry=r,
        )
        self.api_calls = Counter(
            "watcher_api_calls", "Gainsight API calls made", ["status_class"], registry=r
        )
        self.api_throttled = Counter(
            "watcher_api_rate_limited", "Gainsight API calls answered 429", registry=r
        )
        self.events = Counter("watcher_events", "Change events committed", ["type"], registry=r)
        self.deliveries = Counter(
            "watcher_delivery_attempts",
            "Delivery attempts by sink and outcome",
            ["sink", "outcome"],
            registry=r,
        )
        self.reloads = Counter(
            "watcher_config_reloads", "SIGHUP reloads by outcome", ["outcome"], registry=r
        )
        if store_stats is not None:
            r.register(_StoreCollector(store_stats))
        self._sinks_watched = False

    def delivery(self, sink: str, outcome: str) -> None:
        """One delivery of ``sink`` ended with ``outcome`` (the dispatcher counts it
        where it happens: ``delivered``, ``failed``, ``dead``, ``suppressed``)."""
        self.deliveries.labels(sink=sink, outcome=outcome).inc()

    def watch_sinks(self, read: Callable[[], Mapping[str, str]]) -> None:
        """Report ``watcher_sink_degraded`` from ``read()`` at scrape time (once)."""
        if not self._sinks_watched:
            self._sinks_watched = True
            self.registry.register(_SinkCollector(read))

    def render(self) -> bytes:
        data: bytes = generate_latest(self.registry)
        return data

    async def on_response(self, response: httpx.Response) -> None:
        """httpx response hook: count every Gainsight call (and every 429)."""
        self.api_calls.labels(status_class=f"{response.status_code // 100}xx").inc()
        if response.status_code == 429:
            self.api_throttled.inc()
