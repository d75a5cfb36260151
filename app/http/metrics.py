"""Prometheus metrics of one server process: requests, check decisions and latency, and, read from
PostgreSQL when scraped, the log's size, the projection's lag, the purge orders open, confirmed and
overdue, and the dead letters by reason class and status, and replays."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.bootstrap import Services
from projections import deadletters, queries
from projections.retention import order_counts

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
        self.registry.register(LedgerState(services))

    def decided(self, allowed: int, denied: int) -> None:
        """Count check answers."""
        self.decisions.labels("allowed").inc(allowed)
        self.decisions.labels("denied").inc(denied)


class LedgerState(Collector):
    """Figures read from PostgreSQL at scrape time, so every server process reports the same."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ledger = self.services.ledger
        reached = queries.progress(ledger)
        orders = order_counts(ledger, datetime.now(UTC), self.services.settings.purge_confirm_days)
        yield _gauge("ledger_events_position", "position of the newest stored event", reached.newest)
        yield _gauge("ledger_projection_position", "position the read model has reached", reached.projected)
        yield _gauge("ledger_projection_lag_events", "stored events not yet projected", reached.lag)
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
