"""The retention scheduler: sweeps find expired holdings, record and send purge orders, confirm them.

A PostgreSQL advisory lock makes sure two schedulers never sweep at once. Orders are recorded (with a
RetentionExpired event) before they are sent, and marked sent only after the broker acknowledged
them, so a crash anywhere leaves exactly one order per expired holding and at worst a re-send, which
carries the same order id. Every sweep that runs to its end is recorded (ledger/sweeps.py), ordering
or not, so that a scheduler that stopped shows as one.
"""

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import structlog
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from consumers import kafka
from ledger.errors import ConfigError, ErasureRefused
from ledger.purges import PurgeOrder, orders_for
from ledger.retry import Backoff, Retry, Skipped, Stopped
from ledger.settings import Settings
from ledger.state import unconfirmed_recipients
from ledger.store import Ledger
from ledger.sweeps import SweepRecord
from ledger.times import rfc3339
from projections.retention import expired, open_orders, rules_in_force

log = structlog.get_logger()
LOCK = 0x6C6564676572  # "ledger": the advisory lock key every scheduler takes before sweeping


@dataclass
class Sweep:
    """What one sweep did."""

    ordered: list[PurgeOrder] = field(default_factory=list)
    sent: list[PurgeOrder] = field(default_factory=list)
    confirmed: list[tuple[str, str]] = field(default_factory=list)
    shredded: list[tuple[str, str]] = field(default_factory=list)
    deadletters_purged: int = 0  # dead letters past LEDGER_DEADLETTER_RETENTION_DAYS, deleted
    skipped: Skipped = field(
        default_factory=Skipped
    )  # subjects that failed: logged, counted, left for next time

    def record(self, at: datetime, finished_at: datetime) -> SweepRecord:
        """What the record of sweeps keeps of this one."""
        return SweepRecord(
            at, finished_at, Counter(order.tenant for order in self.ordered), len(self.skipped.subjects)
        )


class Sweeper:
    """One sweep at a time across every scheduler instance."""

    def __init__(self, ledger: Ledger, settings: Settings, database_url: str, bootstrap: str) -> None:
        self.ledger = ledger
        self.settings = settings
        self.database_url = database_url
        self.bootstrap = bootstrap

    def sweep(self, now: datetime) -> Sweep | None:
        """Sweep as of `now`; None when another scheduler holds the lock."""
        with psycopg.connect(self.database_url, autocommit=True) as lock:
            row = lock.execute("SELECT pg_try_advisory_lock(%s)", (LOCK,)).fetchone()
            if not row or not row[0]:
                log.info("sweep.skipped", reason="another scheduler is sweeping")
                return None
            try:
                return self._sweep(now)
            finally:
                lock.execute("SELECT pg_advisory_unlock(%s)", (LOCK,))

    def _sweep(self, now: datetime) -> Sweep:
        done = Sweep()
        # Shred before confirming: a crash in between leaves the orders open, so the next sweep
        # shreds again (a no-op once done), where confirming first would skip the shredding for good.
        with self.ledger.writer.datastore.transaction() as curs:
            confirmable = self.ledger.orders.confirmable(curs)
        done.shredded = self._shred(confirmable, done.skipped)
        with self.ledger.writer.datastore.transaction(commit=True) as curs:
            done.confirmed = self.ledger.orders.confirm(curs, now)
        rules = rules_in_force(self.ledger, self.settings.retention_policy, now)
        ordered_already = open_orders(self.ledger, now, self.settings.purge_confirm_days)
        orders = orders_for(expired(self.ledger, rules, now, skipped=done.skipped), ordered_already)
        done.ordered = self._order(orders, now, done.skipped)
        done.sent = self._send(now)
        with self.ledger.writer.datastore.transaction(commit=True) as curs:
            done.deadletters_purged = self.ledger.deadletters.purge(
                curs, now, self.settings.deadletter_retention_days
            )
            self.ledger.sweeps.record(curs, done.record(now, datetime.now(UTC)))
        log.info(
            "sweep.done",
            ordered=len(done.ordered),
            sent=len(done.sent),
            confirmed=len(done.confirmed),
            deadletters_purged=done.deadletters_purged,
            failed=len(done.skipped.subjects),
        )
        return done

    def _order(self, orders: list[PurgeOrder], now: datetime, skipped: Skipped) -> list[PurgeOrder]:
        """Record the orders in one transaction or, should one subject's break it, each subject's in
        its own, so that the others are ordered."""
        subjects = sorted({(order.tenant, order.subject) for order in orders})

        def record(keys: Sequence[tuple[str, str]]) -> list[PurgeOrder]:
            wanted = set(keys)
            return self.ledger.order_purges([o for o in orders if (o.tenant, o.subject) in wanted], now)

        return skipped.together("order", subjects, record)

    def _send(self, now: datetime) -> list[PurgeOrder]:
        confirm_within = now - timedelta(days=self.settings.purge_confirm_days)
        with self.ledger.writer.datastore.transaction() as curs:
            orders = self.ledger.orders.to_send(curs, now, confirm_within)
        if not orders:
            return []
        producer = kafka.open_producer(self.bootstrap, self.settings)
        try:
            for order in orders:
                key = f"{order.tenant}/{order.subject}".encode()
                producer.send(self.settings.purge_topic, key=key, value=orjson.dumps(cloudevent(order, now)))
            producer.flush()
        finally:
            producer.close()
        with self.ledger.writer.datastore.transaction(commit=True) as curs:
            self.ledger.orders.mark_sent(curs, orders, now)
        return orders

    def _shred(self, confirmed: list[tuple[str, str]], skipped: Skipped) -> list[tuple[str, str]]:
        """Destroy the data key of every subject that confirming its orders leaves with nothing held."""
        return [
            (tenant, subject)
            for tenant, subject in confirmed
            if skipped.guard("shred", tenant, subject, lambda: self._shred_one(tenant, subject))  # noqa: B023 - called at once
        ]

    def _shred_one(self, tenant: str, subject: str) -> bool:
        state = self.ledger.subject(tenant, subject).state
        if any(holding.status == "held" for holding in state.holdings.values()):
            return False
        if self.settings.awaits_recipients(tenant) and unconfirmed_recipients(state):
            return False  # a recipient has a copy until it confirms its deletion
        try:
            return self.ledger.erase(tenant, subject, "retention: nothing left held") is not None
        except ErasureRefused:
            return False  # a legal hold keeps the key until it is released


def cloudevent(order: PurgeOrder, now: datetime) -> dict[str, Any]:
    """The order as a CloudEvent (schema `schemas/purge.ordered.v1.json`)."""
    return {
        "specversion": "1.0",
        "id": f"{order.order_id}/{order.resend}",
        "source": "urn:consent-ledger:scheduler",
        "type": "purge.ordered",
        "time": rfc3339(now),
        "subject": order.subject,
        "tenant": order.tenant,
        "datacontenttype": "application/json",
        "dataschema": "urn:consent-ledger:schema:purge.ordered:v1",
        "data": {
            "order_id": str(order.order_id),
            "system": order.system,
            "categories": order.categories,
            "rule": order.rule,
            "expired_at": rfc3339(order.expired_at),
            "resend": order.resend,
            "overdue": order.overdue,
        },
    }


def sweep_once(sweeper: Sweeper, now: datetime, backoff: Backoff, stop: threading.Event) -> Sweep | None:
    """One sweep as of `now`, PostgreSQL and Kafka failures waited out (a sweep is idempotent, so a
    retry after a failure half-way orders nothing twice)."""
    return Retry(backoff, "scheduler", stop).call(lambda: sweeper.sweep(now))


def cron_trigger(cron: str) -> CronTrigger:
    """The schedule of LEDGER_SWEEP_CRON, or a one-line error saying what a crontab line looks like."""
    try:
        return CronTrigger.from_crontab(cron, timezone=UTC)
    except ValueError:
        raise ConfigError(f"LEDGER_SWEEP_CRON={cron!r} is not a crontab line such as '0 * * * *'") from None


def run(sweeper: Sweeper, trigger: CronTrigger, stop: threading.Event, backoff: Backoff) -> None:
    """Sweep on the cron schedule (a missed run within an hour still runs once) until `stop`.

    A sweep that fails for anything but an outage is logged (`sweep.failed`) and the next one runs
    on schedule: the scheduler itself never stops.
    """

    def job() -> None:
        try:
            sweep_once(sweeper, datetime.now(UTC), backoff, stop)
        except Stopped:
            return
        except Exception as error:
            log.error("sweep.failed", error=type(error).__name__)

    scheduler = BlockingScheduler(timezone=UTC)
    scheduler.add_job(job, trigger, misfire_grace_time=3600, coalesce=True, max_instances=1)
    threading.Thread(target=lambda: (stop.wait(), scheduler.shutdown(wait=False)), daemon=True).start()
    scheduler.start()
