"""The purge agent an owning system runs: it carries out the ledger's purge orders for that system and
confirms each one with a `deletion.completed` event.

    from consumers.purge_agent import PurgeAgent, Refuse
    from ledger.purges import PurgeOrder

    def delete(order: PurgeOrder) -> None:
        # Delete order.categories of order.subject (of order.tenant) in this system. Deleting what is
        # already gone must succeed: an order can come more than once.
        if crm.under_investigation(order.tenant, order.subject):
            raise Refuse("held for an open investigation")  # one line, no personal data
        crm.delete(order.tenant, order.subject, order.categories)

    PurgeAgent("crm", delete).run()  # or: consent-ledger purge-agent --system crm --handler mycrm:delete

The agent reads `ledger.purge-orders` in a consumer group of its own per system and ignores other
systems' orders. For each order of its system it calls the handler (again after a pause when it
raises, with the ledger's backoff, for up to LEDGER_RETRY_GIVE_UP_S), then publishes
`deletion.completed` (system, categories, and the order id as `request_id`) to the events topic,
and commits the offsets only once the broker has every confirmation of the batch.

Delivery is at least once, and confirmation idempotent by order id: the agent remembers, in a small
SQLite file of its own, each order it executed and when. An order that comes again (a crash before
the commit, or the ledger re-sending an order it has not seen confirmed) is confirmed again without
calling the handler, with the same event (its id derived from the order id, its time the remembered
one), which the ledger's idempotent append stores once. Killed between the handler and remembering,
the agent calls the handler once more, which is why deleting must be repeatable.

An order the handler refuses (`Refuse`), keeps failing, or that does not parse goes to the agent's
dead-letter topic (LEDGER_PURGE_DEADLETTER_TOPIC) with the reason, and stays unconfirmed: the ledger
re-sends it once LEDGER_PURGE_CONFIRM_DAYS have passed, and `overdue` shows it meanwhile.
"""

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import closing, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import jsonschema_rs
import orjson
import structlog
from kafka import KafkaProducer
from kafka.future import Future

import schemas
from consumers import kafka
from consumers.contract import Contract, Rejected
from consumers.deadletter import DeadLetters
from consumers.kafka import Record
from ledger.errors import ConfigError, UsageError
from ledger.purges import PurgeOrder
from ledger.retry import Backoff, GaveUp, Retry, Stopped
from ledger.settings import Settings
from ledger.times import parse, rfc3339

log = structlog.get_logger()
Handler = Callable[[PurgeOrder], None]
SOURCE = "urn:consent-ledger:purge-agent:{system}"
POLL_ORDERS = 10


class Refuse(Exception):
    """Raised by a handler that will not carry out an order: the order is dead-lettered with this
    reason (one line, no personal data) and stays unconfirmed."""


@dataclass
class AgentTotals:
    """What an agent did since it started."""

    received: int = 0  # orders of every system read
    executed: int = 0  # orders the handler carried out
    confirmed: int = 0  # deletion.completed published (an order again included)
    deadlettered: int = 0  # refused, failing or unreadable orders

    def summary(self) -> str:
        """The counts, as one line for a person."""
        return (
            f"received {self.received}, executed {self.executed}, confirmed {self.confirmed}, "
            f"dead-lettered {self.deadlettered}"
        )


class Memory:
    """The orders this agent executed, and when: a SQLite file, written before each confirmation."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.connection.execute("PRAGMA journal_mode = WAL")
        self.connection.execute("PRAGMA synchronous = FULL")
        self.connection.execute(
            "CREATE TABLE IF NOT EXISTS executed (order_id TEXT PRIMARY KEY, completed_at TEXT NOT NULL)"
        )

    def completed_at(self, order_id: UUID) -> datetime | None:
        """When the order was executed, if it was."""
        with closing(
            self.connection.execute("SELECT completed_at FROM executed WHERE order_id = ?", (str(order_id),))
        ) as rows:
            row = rows.fetchone()
        return None if row is None else parse(row[0])

    def remember(self, order_id: UUID, at: datetime) -> None:
        """Record, durably, that the order was executed at `at`."""
        self.connection.execute(
            "INSERT OR IGNORE INTO executed (order_id, completed_at) VALUES (?, ?)",
            (str(order_id), rfc3339(at)),
        )

    def close(self) -> None:
        """Close the file."""
        self.connection.close()


def confirmation(order: PurgeOrder, completed_at: datetime) -> dict[str, Any]:
    """The `deletion.completed` CloudEvent confirming `order`: the same event every time for one order
    and time, so the ledger stores it once however often it is sent."""
    return {
        "specversion": "1.0",
        "id": str(uuid5(NAMESPACE_URL, f"urn:consent-ledger:deletion:{order.order_id}")),
        "source": SOURCE.format(system=order.system),
        "type": "deletion.completed",
        "time": rfc3339(completed_at),
        "subject": order.subject,
        "tenant": order.tenant,
        "datacontenttype": "application/json",
        "data": {"system": order.system, "request_id": str(order.order_id), "categories": order.categories},
    }


class Orders:
    """Reads purge orders off the wire (schema `schemas/purge.ordered.v1.json`)."""

    def __init__(self) -> None:
        vocabulary = schemas.load(schemas.VOCABULARY)
        self.validator = jsonschema_rs.validator_for(
            schemas.load(schemas.PURGE_ORDER),
            registry=jsonschema_rs.Registry([(vocabulary["$id"], vocabulary)]),
        )

    def parse(self, value: bytes | None) -> PurgeOrder:
        """The order in `value`, or `Rejected` saying (without quoting it) why it is none."""
        try:
            document = orjson.loads(value or b"")
        except orjson.JSONDecodeError:
            raise Rejected("not a purge order: not valid JSON") from None
        if not self.validator.is_valid(document):
            raise Rejected("not a purge order: breaks schemas/purge.ordered.v1.json")
        data = document["data"]
        try:
            return PurgeOrder(
                order_id=UUID(data["order_id"]),
                tenant=document["tenant"],
                subject=document["subject"],
                system=data["system"],
                categories=list(data["categories"]),
                rule=data["rule"],
                expired_at=parse(data["expired_at"]),
                resend=data["resend"],
                overdue=data["overdue"],
            )
        except ValueError:
            raise Rejected("not a purge order: order_id is no UUID or expired_at no RFC 3339 time") from None


class PurgeAgent:
    """Carries out one system's purge orders with `handler` and confirms them (see the module)."""

    def __init__(
        self,
        system: str,
        handler: Handler,
        settings: Settings | None = None,
        *,
        state: Path | None = None,
        bootstrap: str | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        if not _is_system(system):
            raise UsageError(f"system {system!r} is not a system name: lower-case letters, digits, . _ -")
        self.system = system
        self.handler = handler
        self.state = state or self.settings.home / f"purge-agent-{system}.sqlite"
        self.bootstrap = bootstrap
        self.group = f"{self.settings.consumer_group}.purge-agent.{system}"
        self.orders = Orders()
        self.contract = Contract(self.settings.max_message_bytes)
        self.totals = AgentTotals()

    def run(self, *, until_idle: bool = False, stop: threading.Event | None = None) -> AgentTotals:
        """Execute orders until stopped or, with `until_idle`, until every order is read; broker
        failures are waited out (with `until_idle` for LEDGER_RETRY_GIVE_UP_S, then `GaveUp`)."""
        stop = stop or threading.Event()
        bootstrap = self.bootstrap or self.settings.kafka_bootstrap
        if bootstrap is None:
            raise ConfigError("the purge agent needs the broker: set LEDGER_KAFKA_BOOTSTRAP (host:port,...)")
        retry = Retry(Backoff.from_settings(self.settings, bounded=until_idle), "purge-agent", stop)
        memory = Memory(self.state)
        try:
            with suppress(Stopped):
                while not stop.is_set():
                    try:
                        self._session(bootstrap, memory, until_idle=until_idle, stop=stop)
                        break
                    except (GaveUp, UsageError):
                        raise
                    except Exception as error:  # the broker failed: new clients after a pause
                        retry.failed(error)
        finally:
            memory.close()
        log.info("purge_agent.stopped", system=self.system, **vars(self.totals))
        return self.totals

    def _session(self, bootstrap: str, memory: Memory, *, until_idle: bool, stop: threading.Event) -> None:
        kafka.ensure_topics(bootstrap, self.settings)
        # A handler may be retried for up to LEDGER_RETRY_GIVE_UP_S per order: few orders a poll, and
        # room between polls, so the group does not drop the agent while it waits.
        consumer = kafka.open_consumer(
            bootstrap,
            self.settings,
            self.settings.purge_topic,
            group_id=self.group,
            max_poll_records=POLL_ORDERS,
            max_poll_interval_ms=max(300_000, POLL_ORDERS * (self.settings.retry_give_up_s + 30) * 1000),
        )
        producer = kafka.open_producer(bootstrap, self.settings)
        deadletters = DeadLetters(producer, self.settings.purge_deadletter_topic, "purge_agent.deadlettered")
        quiet_polls = 0
        try:
            while not stop.is_set():
                batches = consumer.poll(timeout_ms=500)
                records: list[Record] = [record for batch in batches.values() for record in batch]
                if not records:
                    quiet_polls += 1
                    if until_idle and quiet_polls >= 2 and kafka.caught_up(consumer):
                        return
                    continue
                quiet_polls = 0
                self.handle(records, memory, producer, deadletters, stop)
                kafka.commit(consumer, records)
        finally:
            consumer.close(autocommit=False)
            producer.close()

    def handle(
        self,
        records: Sequence[Record],
        memory: Memory,
        producer: KafkaProducer,
        deadletters: DeadLetters,
        stop: threading.Event,
    ) -> None:
        """Execute and confirm a batch of orders; when it returns, the broker has every confirmation
        and dead letter, so the caller may commit the offsets."""
        sent: list[Future] = []
        for record in records:
            self.totals.received += 1
            try:
                order = self.orders.parse(record.value)
            except Rejected as rejected:
                self._refuse(deadletters, record, rejected.reason)
                continue
            if order.system != self.system:
                continue
            completed_at = memory.completed_at(order.order_id)
            if completed_at is None:
                reason = self._execute(order, stop)
                if reason is not None:
                    self._refuse(deadletters, record, reason, order)
                    continue
                completed_at = datetime.now(UTC)
                memory.remember(order.order_id, completed_at)
                self.totals.executed += 1
            event = confirmation(order, completed_at)
            value = orjson.dumps(event)
            key = self.contract.parse(value).key  # a confirmation the ledger would refuse is a bug here
            sent.append(producer.send(self.settings.events_topic, key=key, value=value))
            self.totals.confirmed += 1
            log.info("purge.confirmed", system=self.system, tenant=order.tenant, order=str(order.order_id))
        producer.flush()
        deadletters.flush()
        failure = next((future.exception for future in sent if future.failed()), None)
        if failure is not None:
            raise failure

    def _execute(self, order: PurgeOrder, stop: threading.Event) -> str | None:
        """Call the handler until it succeeds (None), refuses, or keeps failing (the reason)."""
        failures: list[str] = []
        backoff = Backoff.from_settings(self.settings, bounded=True)
        retry = Retry(
            backoff,
            f"purge-agent handler ({self.system})",
            stop,
            retry_on=lambda e: not isinstance(e, Refuse),
        )

        def attempt() -> None:
            started = time.monotonic()
            try:
                self.handler(order)
            except Refuse:
                raise
            except Exception as error:
                failures.append(type(error).__name__)
                raise
            log.info(
                "purge.executed",
                system=self.system,
                order=str(order.order_id),
                seconds=round(time.monotonic() - started, 3),
            )

        try:
            retry.call(attempt)
        except Refuse as refused:
            return f"refused by the handler of system {self.system}: {refused}"
        except GaveUp:
            return (
                f"the handler of system {self.system} failed {len(failures)} time(s) (last: {failures[-1]}); "
                "the ledger re-sends the order once it is overdue"
            )
        return None

    def _refuse(
        self, deadletters: DeadLetters, record: Record, reason: str, order: PurgeOrder | None = None
    ) -> None:
        deadletters.send(record, reason)
        self.totals.deadlettered += 1
        log.warning(
            "purge.refused",
            system=self.system,
            order=None if order is None else str(order.order_id),
            reason=reason,
        )


def _is_system(name: str) -> bool:
    """Whether `name` is a system name as the vocabulary defines it."""
    pattern = schemas.load(schemas.VOCABULARY)["$defs"]["system"]["pattern"]
    return jsonschema_rs.validator_for({"type": "string", "pattern": pattern}).is_valid(name)
