"""The event store: an eventsourcing application on PostgreSQL that appends facts in batches.

Appends are idempotent by (tenant, event id): a receipts table beside the library's event table
records every id stored, in the same transaction as the events themselves.
"""

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import PersistenceError, StoredEvent, Transcoder
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import get_topic
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from ledger.errors import ConfigError, UnknownSubject
from ledger.subject import FACT_CLASSES, Subject, subject_id
from ledger.transcoder import OrjsonTranscoder


@dataclass(frozen=True, slots=True)
class RecordFact:
    """Command: record one validated fact about a subject."""

    tenant: str
    subject: str
    event_id: str
    type: str
    source: str
    occurred_at: datetime
    schema_version: int
    data: dict[str, Any]
    origin: str


@dataclass(frozen=True)
class AppendResult:
    """How many facts of a batch were new, and how many had been stored before."""

    stored: int
    duplicates: int


class LedgerRecorder(PostgresApplicationRecorder):
    """The library's recorder plus the receipts table that makes appends idempotent."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self.receipts = Identifier(datastore.schema, f"{events_table_name}_receipts")
        self.events = Identifier(datastore.schema, events_table_name)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (tenant text NOT NULL, event_id text NOT NULL, "
                "originator_id uuid NOT NULL, PRIMARY KEY (tenant, event_id))"
            ).format(self.receipts)
        )

    def create_table(self) -> None:
        """Create the schema, retrying when another process is creating it at the same moment.

        Concurrent `CREATE ... IF NOT EXISTS` can still fail in PostgreSQL ("tuple concurrently
        updated", duplicate type); a consumer and a projector starting together do exactly that.
        """
        retry_schema_change(super().create_table)

    @contextmanager
    def writing(self) -> Iterator[psycopg.Cursor[DictRow]]:
        """A transaction holding the event table's write lock, so head versions cannot move."""
        with self.datastore.transaction(commit=True) as curs:
            self._lock_table(curs)
            yield curs

    def claim(
        self, curs: psycopg.Cursor[DictRow], keys: Sequence[tuple[str, str, UUID]]
    ) -> set[tuple[str, str]]:
        """Record a receipt for each (tenant, event id, aggregate id); return the pairs that were new."""
        curs.execute(
            SQL(
                "INSERT INTO {} (tenant, event_id, originator_id) "
                "SELECT * FROM unnest(%b::text[], %b::text[], %b::uuid[]) "
                "ON CONFLICT DO NOTHING RETURNING tenant, event_id"
            ).format(self.receipts),
            tuple(list(column) for column in zip(*keys, strict=True)),
        )
        return {(row["tenant"], row["event_id"]) for row in curs.fetchall()}

    def heads(self, curs: psycopg.Cursor[DictRow], ids: Sequence[UUID]) -> dict[UUID, int]:
        """The last stored version of each aggregate that has one."""
        curs.execute(
            SQL(
                "SELECT id, (SELECT max(originator_version) FROM {} WHERE originator_id = id) AS v "
                "FROM unnest(%b::uuid[]) AS id"
            ).format(self.events),
            (list(ids),),
        )
        return {row["id"]: row["v"] for row in curs.fetchall() if row["v"] is not None}

    def store(self, curs: psycopg.Cursor[DictRow], stored_events: Sequence[StoredEvent]) -> None:
        """Insert the events in the open transaction.

        The rows go into the library's own event table, but by binary COPY: the library's insert
        (an array of composites, dumped as text) spends more time in Python than PostgreSQL does.
        """
        self._notify_channel(curs)
        with curs.copy(
            SQL(
                "COPY {} (originator_id, originator_version, topic, state) FROM STDIN (FORMAT BINARY)"
            ).format(self.events)
        ) as copy:
            copy.set_types(["uuid", "int8", "text", "bytea"])
            for event in stored_events:
                copy.write_row((event.originator_id, event.originator_version, event.topic, event.state))

    def counts(self) -> dict[str, int]:
        """Stored facts per tenant."""
        with self.datastore.transaction() as curs:
            curs.execute(
                SQL("SELECT tenant, count(*) AS n FROM {} GROUP BY tenant ORDER BY tenant").format(
                    self.receipts
                )
            )
            return {row["tenant"]: row["n"] for row in curs.fetchall()}


class Ledger(Application[UUID]):
    """The event store application: subjects' facts, stored once each, in a total order."""

    name = "Ledger"

    def __init__(self, database_url: str) -> None:
        super().__init__(env=postgres_env(database_url))

    def construct_transcoder(self) -> Transcoder:
        """The library's JSON format, encoded by orjson (the encoder dominated the append path)."""
        transcoder = OrjsonTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    @property
    def writer(self) -> LedgerRecorder:
        """The recorder, typed as the ledger's own."""
        assert isinstance(self.recorder, LedgerRecorder)
        return self.recorder

    def append(self, facts: Sequence[RecordFact]) -> AppendResult:
        """Store every fact not stored before, in one transaction; return what was new."""
        batch = list({(f.tenant, f.event_id): f for f in reversed(facts)}.values())[::-1]
        if not batch:
            return AppendResult(0, len(facts))
        ids = {key: subject_id(*key) for key in {(f.tenant, f.subject) for f in batch}}
        with self.writer.writing() as curs:
            new = self.writer.claim(curs, [(f.tenant, f.event_id, ids[(f.tenant, f.subject)]) for f in batch])
            fresh = [f for f in batch if (f.tenant, f.event_id) in new]
            if fresh:
                heads = self.writer.heads(curs, list({ids[(f.tenant, f.subject)] for f in fresh}))
                self.writer.store(curs, self._encode(fresh, ids, heads))
        return AppendResult(len(fresh), len(facts) - len(fresh))

    def _encode(
        self,
        facts: Sequence[RecordFact],
        ids: dict[tuple[str, str], UUID],
        heads: dict[UUID, int],
    ) -> list[StoredEvent]:
        now = datetime.now(UTC)
        stored: list[StoredEvent] = []
        subject_topic = get_topic(Subject)
        for fact in facts:
            originator_id = ids[(fact.tenant, fact.subject)]
            version = heads.get(originator_id, 0) + 1
            if version == 1:
                registered = Subject.Registered(
                    originator_id=originator_id,
                    originator_version=1,
                    timestamp=now,
                    originator_topic=subject_topic,
                    tenant=fact.tenant,
                    subject=fact.subject,
                )
                stored.append(self.mapper.to_stored_event(registered))
                version = 2
            event = FACT_CLASSES[fact.type](
                originator_id=originator_id,
                originator_version=version,
                timestamp=now,
                tenant=fact.tenant,
                subject=fact.subject,
                event_id=fact.event_id,
                source=fact.source,
                occurred_at=fact.occurred_at,
                schema_version=fact.schema_version,
                data=fact.data,
                origin=fact.origin,
            )
            stored.append(self.mapper.to_stored_event(event))
            heads[originator_id] = version
        return stored

    def subject(self, tenant: str, subject: str) -> Subject:
        """The subject aggregate, rebuilt from its stored events."""
        try:
            aggregate: Subject = self.repository.get(subject_id(tenant, subject))
        except AggregateNotFoundError:
            raise UnknownSubject(f"tenant {tenant!r} has no subject {subject!r}: check both ids") from None
        assert isinstance(aggregate, Subject)
        return aggregate


def retry_schema_change(change: Callable[[], None], attempts: int = 10) -> None:
    """Run an idempotent schema change, again after a short pause if a concurrent one collided."""
    for attempt in range(attempts):
        try:
            change()
        except PersistenceError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1 * (attempt + 1))
        else:
            return


def postgres_env(database_url: str) -> dict[str, str]:
    """The eventsourcing library's settings for a PostgreSQL URL (TCP or unix-socket host)."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(database_url)
    except psycopg.ProgrammingError:
        raise ConfigError(
            "LEDGER_DATABASE_URL is not a PostgreSQL URL: use postgresql://user:password@host:5432/db"
        ) from None
    if not params.get("dbname"):
        raise ConfigError("LEDGER_DATABASE_URL names no database: add one, as in .../ledger")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "APPLICATION_RECORDER_TOPIC": get_topic(LedgerRecorder),
        "POSTGRES_DBNAME": str(params["dbname"]),
        "POSTGRES_HOST": str(params.get("host") or "localhost"),
        "POSTGRES_PORT": str(params.get("port") or "5432"),
        "POSTGRES_USER": str(params.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(params.get("password") or ""),
        "POSTGRES_POOL_SIZE": "2",
        "POSTGRES_CONNECT_TIMEOUT": "10",
    }
