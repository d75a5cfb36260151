"""Ingest: Kafka -> validate -> event store, committing offsets only after PostgreSQL has committed.

A crash anywhere re-delivers at most the uncommitted batch; appends are idempotent by event id, so
nothing is lost and nothing is stored twice. A refused message goes to the dead-letter topic, which
is flushed before the offsets are committed.
"""

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from consumers import kafka
from consumers.contract import Contract, Rejected
from consumers.deadletter import DeadLetters
from consumers.kafka import Record
from ledger.settings import Settings
from ledger.store import Ledger, RecordFact

log = structlog.get_logger()


@dataclass
class Triage:
    """A batch split into facts to store and records to dead-letter (with their reason)."""

    facts: list[RecordFact] = field(default_factory=list)
    refused: list[tuple[Record, str]] = field(default_factory=list)


def triage(records: Sequence[Record], contract: Contract) -> Triage:
    """Validate each record; pure, so it is tested without a broker."""
    result = Triage()
    for record in records:
        try:
            event = contract.parse(record.value)
        except Rejected as rejected:
            result.refused.append((record, rejected.reason))
            continue
        result.facts.append(
            RecordFact(
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
        )
    return result


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

    def __init__(self, ledger: Ledger, contract: Contract, deadletters: DeadLetters) -> None:
        self.ledger = ledger
        self.contract = contract
        self.deadletters = deadletters
        self.totals = Totals()

    def handle(self, records: Sequence[Record]) -> None:
        """Process a batch; when it returns, every record is stored or dead-lettered durably."""
        started = time.perf_counter()
        batch = triage(records, self.contract)
        validated = time.perf_counter()
        for record, reason in batch.refused:
            self.deadletters.send(record, reason)
        if batch.refused:
            self.deadletters.flush()
        result = self.ledger.append(batch.facts)
        stored = time.perf_counter()
        totals = self.totals
        totals.received += len(records)
        totals.stored += result.stored
        totals.duplicates += result.duplicates
        totals.deadlettered += len(batch.refused)
        totals.seconds["validate"] += validated - started
        totals.seconds["store"] += stored - validated
        log.info(
            "ingest.batch",
            received=len(records),
            stored=result.stored,
            duplicates=result.duplicates,
            deadlettered=len(batch.refused),
            offsets=_offset_ranges(records),
        )


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
    """Run the ingest loop until stopped or, with `until_idle`, until every partition is read."""
    stop = stop or threading.Event()
    kafka.ensure_topics(bootstrap, settings)
    consumer = kafka.open_consumer(bootstrap, settings)
    producer = kafka.open_producer(bootstrap)
    ingestor = Ingestor(
        ledger,
        Contract(settings.max_message_bytes),
        DeadLetters(producer, settings.deadletter_topic),
    )
    seconds = ingestor.totals.seconds
    quiet_polls = 0
    try:
        while not stop.is_set():
            polled = time.perf_counter()
            batches = consumer.poll(timeout_ms=500, max_records=settings.batch_size)
            records: list[Record] = [record for batch in batches.values() for record in batch]
            if not records:  # an idle poll (or the group join) is not consume time
                quiet_polls += 1
                if until_idle and quiet_polls >= 2 and kafka.caught_up(consumer):
                    break
                continue
            quiet_polls = 0
            seconds["consume"] += time.perf_counter() - polled
            if ingestor.totals.first_record_at is None:
                ingestor.totals.first_record_at = polled
            ingestor.handle(records)
            committing = time.perf_counter()
            kafka.commit(consumer, records)
            ingestor.totals.last_commit_at = time.perf_counter()
            seconds["commit"] += ingestor.totals.last_commit_at - committing
    finally:
        consumer.close(autocommit=False)
        producer.close()
    totals = ingestor.totals
    log.info(
        "ingest.stopped",
        received=totals.received,
        stored=totals.stored,
        duplicates=totals.duplicates,
        deadlettered=totals.deadlettered,
    )
    return totals
