"""Prometheus metrics of one server process: requests, check decisions and latency, and, read when
scraped: from PostgreSQL the log's size, the projection's lag (events and seconds), sweeps (how many,
the last one and what it did, the last that ordered a purge), purge orders (made, open, confirmed,
overdue), the dead letters by reason class and status, and replays; from the broker the consumer
group's lag per partition."""

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import structlog
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.bootstrap import Services
from consumers import kafka
from ledger.errors import ServiceUnavailable
from projections import deadletters, queries
from projections.retention import order_counts, sweeps

log = structlog.get_logger()

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """The registry of one app, with the instruments its handlers update."""

    def __init__(self, services: Services) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ledger_http_requests",
            "HTTP requests answered",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ledger_http_request_seconds",
            "time to answer",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "ledger_checks", "subjects checked (single and bulk)", ["decision"], registry=self.registry
        )
        self.state = LedgerState(services)
        self.registry.register(self.state)

    def close(self) -> None:
        """Close the broker client kept for scrapes, if one was opened."""
        with self.state.lock:
            if self.state.watch is not None:
                self.state.watch.close()
                self.state.watch = None

    def decided(self, allowed: int, denied: int) -> None:
        """Count check answers."""
        self.decisions.labels("allowed").inc(allowed)
        self.decisions.labels("denied").inc(denied)


class LedgerState(Collector):
    """Figures read at scrape time, from PostgreSQL and the broker, so every server process reports the
    same (a broker that does not answer leaves its figures out of that scrape, nothing else)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.watch: kafka.Watch | None = None  # opened on the first scrape, kept for the next
        self.lock = threading.Lock()  # scrapes run in the thread pool; the broker client is not shared

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        ledger = self.services.ledger
        now = datetime.now(UTC)
        reached = queries.progress(ledger)
        orders = order_counts(ledger, now, self.services.settings.purge_confirm_days)
        yield _gauge("ledger_events_position", "position of the newest stored event", reached.newest)
        yield _gauge("ledger_projection_position", "position the read model has reached", reached.projected)
        yield _gauge("ledger_projection_lag_events", "stored events not yet projected", reached.lag)
        yield _gauge(
            "ledger_projection_lag_seconds",
            "age of the oldest stored event not yet projected (0 when none)",
            queries.projection_delay(ledger, now),
        )
        with ledger.writer.datastore.transaction() as curs:
            made = ledger.orders.made(curs)
        swept = sweeps(ledger)
        yield CounterMetricFamily("ledger_purge_orders", "purge orders made by sweeps", value=made)
        yield CounterMetricFamily(
            "ledger_sweeps", "retention sweeps run, ordering or not", value=swept.sweeps
        )
        if swept.last is not None:
            yield _gauge(
                "ledger_sweep_last_timestamp_seconds",
                "when the last sweep ran, whether it ordered anything or not (Unix time)",
                swept.last.at.timestamp(),
            )
            yield _gauge("ledger_sweep_last_orders", "purge orders the last sweep made", swept.last.ordered)
            yield _gauge("ledger_sweep_last_failed", "subjects the last sweep failed on", swept.last.failed)
        if swept.last_ordered is not None:
            yield _gauge(
                "ledger_purge_last_ordered_timestamp_seconds",
                "when the last sweep that ordered a purge ran (Unix time)",
                swept.last_ordered.at.timestamp(),
            )
        yield _gauge("ledger_purge_orders_open", "purge orders not confirmed yet", orders["open"])
        yield _gauge(
            "ledger_purge_orders_overdue",
            "purge orders unconfirmed past LEDGER_PURGE_CONFIRM_DAYS",
            orders["overdue"],
        )
        yield _gauge(
            "ledger_purge_orders_confirmed",
            "purge orders confirmed (deletion.completed stored)",
            orders["confirmed"],
        )
        letters, replays = deadletters.figures(ledger)
        family = GaugeMetricFamily(
            "ledger_deadletters", "dead letters kept, by reason class and status", labels=["reason", "status"]
        )
        for reason, statuses in letters.items():
            for status, count in statuses.items():
                family.add_metric([reason, status], count)
        yield family
        yield _gauge("ledger_deadletter_replays", "dead-letter replays run", replays)
        yield from self._consumer_lag()

    def _consumer_lag(self) -> Iterator[GaugeMetricFamily]:
        """Messages past the consumer group's committed offset, per partition of the events topic."""
        with self.lock:
            try:
                if self.watch is None:
                    self.watch = kafka.Watch(self.services.kafka_bootstrap, self.services.settings)
                lags = self.watch.lags()
            except (KafkaError, ServiceUnavailable) as error:
                log.warning("metrics.broker_unreachable", error=type(error).__name__)
                if self.watch is not None:
                    self.watch.close()
                self.watch = None
                return
        family = GaugeMetricFamily(
            "ledger_consumer_lag", "messages on the events topic not yet stored", labels=["partition"]
        )
        for partition, behind in sorted(lags.items()):
            family.add_metric([str(partition)], behind)
        yield family


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=value)


class Measured:
    """ASGI middleware: count and time every request by its route template (never its path, which
    holds subject ids)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def sent(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route, scope["method"], str(status[0])).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
