"""Ingest: Kafka -> validate -> event store, committing offsets only after PostgreSQL has committed.

A crash anywhere re-delivers at most the uncommitted batch; appends are idempotent by event id, so
nothing is lost and nothing is stored twice. A refused message is recorded in PostgreSQL
(ledger/deadletters.py) in the batch's own transaction, and goes to the dead-letter topic, which is
flushed before the offsets are committed.
"""

import contextlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from consumers import kafka
from consumers.contract import CloudEvent, Contract, Rejected, internal
from consumers.deadletter import DeadLetters, refusal
from consumers.kafka import Record
from ledger.errors import ConfigError
from ledger.retry import Backoff, GaveUp, Retry, Stopped, transient
from ledger.settings import Settings
from ledger.store import Cursor, Ledger, RecordFact

log = structlog.get_logger()


CONFLICT = (
    "conflicting duplicate: this tenant's event id was stored before with different content "
    "(a new fact needs a new id)"
)


@dataclass
class Triage:
    """A batch split into facts to store (with their records) and records refused (with a reason)."""

    accepted: list[tuple[Record, RecordFact]] = field(default_factory=list)
    refused: list[tuple[Record, str]] = field(default_factory=list)

    @property
    def facts(self) -> list[RecordFact]:
        """The accepted facts, in the order their records came."""
        return [fact for _, fact in self.accepted]


def triage(records: Sequence[Record], contract: Contract) -> Triage:
    """Give each record a verdict; pure, so it is tested without a broker."""
    result = Triage()
    for record in records:
        try:
            result.accepted.append((record, _fact(record, contract.parse(record.value))))
        except Rejected as rejected:
            result.refused.append((record, rejected.reason))
        except Exception as error:
            result.refused.append((record, internal(error)))
    return result


def _fact(record: Record, event: CloudEvent) -> RecordFact:
    return RecordFact(
        tenant=event.tenant,
        subject=event.subject,
        event_id=event.id,
        type=event.type,
        source=event.source,
        occurred_at=event.time,
        schema_version=event.schema_version,
        data=event.data,
        personal=event.personal,
        origin=f"{record.topic}/{record.partition}/{record.offset}",
    )


@dataclass
class Totals:
    """Running counts of one consumer, and where its time went."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    deadlettered: int = 0
    seconds: dict[str, float] = field(
        default_factory=lambda: {"consume": 0.0, "validate": 0.0, "store": 0.0, "commit": 0.0}
    )
    first_record_at: float | None = None
    last_commit_at: float | None = None

    def summary(self) -> str:
        """The counts, as one line for a person."""
        return (
            f"received {self.received}, stored {self.stored}, "
            f"duplicates {self.duplicates}, dead-lettered {self.deadlettered}"
        )

    @property
    def active_seconds(self) -> float:
        """From the first record received to the last offset commit (excludes the group join)."""
        if self.first_record_at is None or self.last_commit_at is None:
            return 0.0
        return self.last_commit_at - self.first_record_at


class Ingestor:
    """Handles one polled batch: validate, dead-letter, store; the caller commits afterwards."""

    def __init__(
        self, ledger: Ledger, contract: Contract, deadletters: DeadLetters, totals: Totals | None = None
    ) -> None:
        self.ledger = ledger
        self.contract = contract
        self.deadletters = deadletters
        self.totals = totals or Totals()

    def handle(self, records: Sequence[Record]) -> None:
        """Process a batch; when it returns, every record is stored or dead-lettered durably."""
        started = time.perf_counter()
        batch = triage(records, self.contract)
        validated = time.perf_counter()
        stored, duplicates = self._store(batch)
        for record, reason in batch.refused:
            self.deadletters.send(record, reason)
        if batch.refused:
            self.deadletters.flush()
        finished = time.perf_counter()
        totals = self.totals
        totals.received += len(records)
        totals.stored += stored
        totals.duplicates += duplicates
        totals.deadlettered += len(batch.refused)
        totals.seconds["validate"] += validated - started
        totals.seconds["store"] += finished - validated
        log.info(
            "ingest.batch",
            received=len(records),
            stored=stored,
            duplicates=duplicates,
            deadlettered=len(batch.refused),
            offsets=_offset_ranges(records),
        )

    def _store(self, batch: Triage) -> tuple[int, int]:
        """Append the accepted facts in one transaction; return (stored, duplicates).

        Facts that reuse an id for different content are moved to `batch.refused`; every refusal is
        recorded as a dead letter in the transaction that stores the facts. Should the append fail for
        anything but an outage (which the caller waits out) or the configuration, one fact must be at
        fault: the facts are appended one at a time instead, the ones that fail are refused too, and
        the refusals are recorded in a transaction of their own.
        """
        refused = list(batch.refused)
        try:
            return self._append(batch.accepted, batch, refused)
        except Exception as error:
            if _not_the_message(error):
                raise
            log.warning("ingest.isolating", error=type(error).__name__, facts=len(batch.accepted))
        stored = duplicates = 0
        for accepted in batch.accepted:
            try:
                one_stored, one_duplicate = self._append([accepted], batch, [])
            except Exception as error:
                if _not_the_message(error):
                    raise
                refused.append((accepted[0], internal(error)))
                batch.refused.append(refused[-1])
            else:
                stored, duplicates = stored + one_stored, duplicates + one_duplicate
        if refused:
            self._append([], batch, refused)
        return stored, duplicates

    def _append(
        self,
        accepted: Sequence[tuple[Record, RecordFact]],
        batch: Triage,
        refused: Sequence[tuple[Record, str]],
    ) -> tuple[int, int]:
        """Store `accepted` and record `refused` and the conflicts found, in one transaction."""

        def letters(curs: Cursor, conflicts: tuple[int, ...]) -> None:
            every = [*refused, *((accepted[index][0], CONFLICT) for index in conflicts)]
            self.ledger.deadletters.record(
                curs,
                [refusal(record, reason, self.contract.max_message_bytes) for record, reason in every],
                datetime.now(UTC),
                keep=self.contract.max_message_bytes,
            )

        result = self.ledger.append([fact for _, fact in accepted], then=letters)
        batch.refused.extend((accepted[index][0], CONFLICT) for index in result.conflicts)
        return result.stored, result.duplicates


def _not_the_message(error: Exception) -> bool:
    """An outage, or a configuration error (a wrong master key): stop, rather than dead-letter every
    message."""
    return transient(error) or isinstance(error, ConfigError)


def _offset_ranges(records: Sequence[Record]) -> dict[str, list[int]]:
    """First and last offset per topic/partition, for the log line of a batch."""
    ranges: dict[str, list[int]] = {}
    for record in records:
        span = ranges.setdefault(f"{record.topic}/{record.partition}", [record.offset, record.offset])
        span[0], span[1] = min(span[0], record.offset), max(span[1], record.offset)
    return ranges


def consume(
    settings: Settings,
    ledger: Ledger,
    bootstrap: str,
    *,
    until_idle: bool,
    stop: threading.Event | None = None,
) -> Totals:
    """Run the ingest loop until stopped or, with `until_idle`, until every partition is read.

    PostgreSQL and Kafka failures are waited out (ledger/retry.py); with `until_idle` only for
    LEDGER_RETRY_GIVE_UP_S, then `GaveUp` says so.
    """
    stop = stop or threading.Event()
    retry = Retry(Backoff.from_settings(settings, bounded=until_idle), "consumer", stop)
    totals = Totals()
    with contextlib.suppress(Stopped):
        while not stop.is_set():
            try:
                _session(settings, ledger, bootstrap, totals, retry, until_idle=until_idle, stop=stop)
                break
            except GaveUp:
                raise
            except Exception as error:  # Kafka failed: open new clients after a pause
                retry.failed(error)
    log.info(
        "ingest.stopped",
        received=totals.received,
        stored=totals.stored,
        duplicates=totals.duplicates,
        deadlettered=totals.deadlettered,
    )
    return totals


def _session(
    settings: Settings,
    ledger: Ledger,
    bootstrap: str,
    totals: Totals,
    retry: Retry,
    *,
    until_idle: bool,
    stop: threading.Event,
) -> None:
    """Ingest with one set of Kafka clients until stopped or idle.

    A batch that PostgreSQL refuses for now is stored again after a pause (its offsets stay
    uncommitted meanwhile); a Kafka failure closes the clients and propagates, and the group then
    re-delivers from the last committed offsets, where idempotent appends make repeats no-ops.
    """
    kafka.ensure_topics(bootstrap, settings)
    consumer = kafka.open_consumer(bootstrap, settings)
    producer = kafka.open_producer(bootstrap, settings)
    ingestor = Ingestor(
        ledger,
        Contract(settings.max_message_bytes, settings.extra_channels, settings.keywords),
        DeadLetters(producer, settings.deadletter_topic, "ingest.deadlettered"),
        totals,
    )
    seconds = totals.seconds
    quiet_polls = 0
    try:
        while not stop.is_set():
            polled = time.perf_counter()
            batches = consumer.poll(timeout_ms=500, max_records=settings.batch_size)
            records: list[Record] = [record for batch in batches.values() for record in batch]
            if not records:  # an idle poll (or the group join) is not consume time
                quiet_polls += 1
                if until_idle and quiet_polls >= 2 and kafka.caught_up(consumer):
                    return
                continue
            quiet_polls = 0
            seconds["consume"] += time.perf_counter() - polled
            if totals.first_record_at is None:
                totals.first_record_at = polled
            retry.call(lambda: ingestor.handle(records))  # noqa: B023 - called at once, in this iteration
            committing = time.perf_counter()
            kafka.commit(consumer, records)
            totals.last_commit_at = time.perf_counter()
            seconds["commit"] += totals.last_commit_at - committing
    finally:
        consumer.close(autocommit=False)
        producer.close()
