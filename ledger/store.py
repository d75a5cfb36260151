"""The event store: an eventsourcing application on PostgreSQL that appends facts in batches.

Appends are idempotent by (tenant, event id): a receipts table beside the library's event table
records every id stored, in the same transaction as the events themselves. Personal fields are
sealed under the subject's data key (ledger/keys.py) and every event carries the hash of its
subject's previous event (ledger/chain.py), in that same transaction.
"""

import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import orjson
import psycopg
import structlog
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Notification, PersistenceError, StoredEvent, Transcoder
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import get_topic
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from ledger.access import Access, AccessLog, ApiKey, ApiKeys, Sessions
from ledger.chain import GENESIS, record_hash
from ledger.compression import StateCompressor
from ledger.crypto import MasterKey, seal
from ledger.deadletters import DeadLetterBook
from ledger.declaration import Declarations, declaration_id
from ledger.errors import ConfigError, ErasureRefused, UnknownSubject
from ledger.keys import DataKey, Epoch, KeyStore
from ledger.policy import POLICY_ID, RetentionPolicy, digest
from ledger.purges import OrderBook, PurgeOrder
from ledger.state import SubjectState, erasure_due
from ledger.subject import FACT_CLASSES, Subject, subject_id
from ledger.sweeps import SweepLog
from ledger.transcoder import OrjsonTranscoder

log = structlog.get_logger()
_Recorded = TypeVar("_Recorded", RetentionPolicy.Adopted, Declarations.Declared)
Cursor = psycopg.Cursor[DictRow]


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
    personal: dict[str, Any]
    origin: str


@dataclass(frozen=True)
class Head:
    """The last stored event of a subject: its version and its record hash."""

    version: int
    hash: str


def fingerprint(fact: RecordFact) -> bytes:
    """What makes a redelivered fact the same fact: everything but its key (tenant, event id) and
    origin, with times in UTC and sets in order.

    Personal values count by their field names only: a hash of them would outlive the data key
    whose destruction erases them (and confirm a guess of an erased phone number).
    """
    content = (
        fact.type,
        fact.subject,
        fact.source,
        fact.occurred_at.astimezone(UTC).isoformat(),
        fact.schema_version,
        {name: sorted(value) if isinstance(value, list) else value for name, value in fact.data.items()},
        sorted(fact.personal),
    )
    return hashlib.blake2b(orjson.dumps(content, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


@dataclass(frozen=True)
class Rotation:
    """What `rotate-key` did: the epoch it started, the data keys re-wrapped, the epochs retired."""

    epoch: int
    rewrapped: int
    retired: list[int]


@dataclass(frozen=True)
class AppendResult:
    """How many facts of a batch were new, how many had been stored before (the same fact again), and
    which (by position in the batch) reuse a stored or earlier id for different content."""

    stored: int
    duplicates: int
    conflicts: tuple[int, ...] = ()


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
        # Added after release: databases created before it gain the column, their receipts stay NULL.
        self.sql_create_statements.append(
            SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS fingerprint bytea").format(self.receipts)
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
            self.lock(curs)
            yield curs

    def lock(self, curs: psycopg.Cursor[DictRow]) -> None:
        """Take the event table's write lock in the caller's transaction (see `writing`)."""
        self._lock_table(curs)

    def claim(
        self, curs: psycopg.Cursor[DictRow], receipts: Sequence[tuple[str, str, UUID, bytes]]
    ) -> set[tuple[str, str]]:
        """Record each (tenant, event id, aggregate id, fingerprint); return the (tenant, event id) new."""
        curs.execute(
            SQL(
                "INSERT INTO {} (tenant, event_id, originator_id, fingerprint) "
                "SELECT * FROM unnest(%b::text[], %b::text[], %b::uuid[], %b::bytea[]) "
                "ON CONFLICT DO NOTHING RETURNING tenant, event_id"
            ).format(self.receipts),
            tuple(list(column) for column in zip(*receipts, strict=True)),
        )
        return {(row["tenant"], row["event_id"]) for row in curs.fetchall()}

    def fingerprints(
        self, curs: psycopg.Cursor[DictRow], keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], bytes | None]:
        """The stored fingerprint of each (tenant, event id) (None for receipts older than fingerprints)."""
        curs.execute(
            SQL(
                "SELECT r.tenant, r.event_id, r.fingerprint FROM unnest(%b::text[], %b::text[]) "
                "AS k(tenant, event_id) JOIN {} r USING (tenant, event_id)"
            ).format(self.receipts),
            tuple(list(column) for column in zip(*keys, strict=True)),
        )
        return {
            (row["tenant"], row["event_id"]): None
            if row["fingerprint"] is None
            else bytes(row["fingerprint"])
            for row in curs.fetchall()
        }

    def heads(self, curs: psycopg.Cursor[DictRow], ids: Sequence[UUID]) -> dict[UUID, Head]:
        """The last stored event of each aggregate that has one."""
        curs.execute(
            SQL(
                "SELECT id, e.originator_version, e.topic, e.state FROM unnest(%b::uuid[]) AS id "
                "JOIN LATERAL (SELECT originator_version, topic, state FROM {} WHERE originator_id = id "
                "ORDER BY originator_version DESC LIMIT 1) e ON true"
            ).format(self.events),
            (list(ids),),
        )
        return {
            row["id"]: Head(
                row["originator_version"],
                record_hash(row["id"], row["originator_version"], row["topic"], bytes(row["state"])),
            )
            for row in curs.fetchall()
        }

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

    def located(self, tenant: str, event_id: str) -> list[Notification]:
        """Every stored event of the subject that the tenant's event `event_id` belongs to."""
        with self.datastore.transaction() as curs:
            curs.execute(
                SQL(
                    "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state "
                    "FROM {} r JOIN {} e ON e.originator_id = r.originator_id "
                    "WHERE r.tenant = %s AND r.event_id = %s ORDER BY e.originator_version"
                ).format(self.receipts, self.events),
                (tenant, event_id),
            )
            return [
                Notification(
                    id=row["notification_id"],
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]

    def last_notification(self, originator_id: UUID, topics: Sequence[str]) -> int:
        """The log position of the aggregate's last event of one of these topics (0 when none)."""
        with self.datastore.transaction() as curs:
            curs.execute(
                SQL(
                    "SELECT max(notification_id) AS n FROM {} WHERE originator_id = %s AND topic = ANY(%s)"
                ).format(self.events),
                (originator_id, list(topics)),
            )
            row = curs.fetchone()
            return int(row["n"] or 0) if row else 0

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
    """The event store application: subjects' facts, stored once each, in a total order.

    With no master key (benchmark baselines only), personal fields are dropped, never stored in
    clear, and events are not chained.
    """

    name = "Ledger"

    def __init__(self, database_url: str, master_key: MasterKey | None) -> None:
        super().__init__(env=postgres_env(database_url))
        self.database_url = database_url  # for worker processes, which open their own connections
        self.master_key = master_key
        self.keys = (
            None
            if master_key is None
            else KeyStore(self.writer.datastore.schema, f"{self.writer.events_table_name}_keys", master_key)
        )
        self.orders = OrderBook(self.writer.datastore.schema, f"{self.writer.events_table_name}_purge_orders")
        self.sweeps = SweepLog(self.writer.datastore.schema, f"{self.writer.events_table_name}_sweeps")
        self.api_keys = ApiKeys(self.writer.datastore.schema, f"{self.writer.events_table_name}_api_keys")
        self.access_log = AccessLog(
            self.writer.datastore.schema, f"{self.writer.events_table_name}_access_log"
        )
        self.sessions = Sessions(
            self.writer.datastore.schema, f"{self.writer.events_table_name}_sessions", self.api_keys
        )
        self.deadletters = self._deadletter_book()

    def _deadletter_book(self) -> DeadLetterBook:
        """The dead letters, their bytes sealed under keys of the current key store."""
        return DeadLetterBook(
            self.writer.datastore.schema, f"{self.writer.events_table_name}_deadletters", self.keys
        )

    def create_tables(self) -> None:
        """Create the event table, its receipts, the data keys, the purge orders, the record of sweeps,
        the API keys, the console sessions, the access log and the dead letters where missing.

        Never done on construction: a query must work for a role that may only SELECT
        (projections/schema.py creates every table of the ledger, for `migrate`, `up` and the components).
        """
        self.writer.create_table()
        retry_schema_change(self._create_side_tables)

    def _create_side_tables(self) -> None:
        with self.writer.datastore.transaction(commit=True) as curs:
            curs.execute(self.orders.create_statement())
            curs.execute(self.sweeps.create_statement())
            curs.execute(self.api_keys.create_statement())
            curs.execute(self.sessions.create_statement())
            for statement in self.access_log.create_statements():
                curs.execute(statement)
            for statement in self.deadletters.create_statements():
                curs.execute(statement)
            for statement in [] if self.keys is None else self.keys.create_statements():
                curs.execute(statement)

    def order_purges(self, orders: Sequence[PurgeOrder], now: datetime) -> list[PurgeOrder]:
        """Record the orders not recorded before, each with a RetentionExpired event, in one transaction."""
        with self.writer.writing() as curs:
            recorded = self.orders.record(curs, orders, now)
            new = [order for order in orders if order.order_id in recorded]
            ids = {order.order_id: subject_id(order.tenant, order.subject) for order in new}
            heads = self.writer.heads(curs, list(set(ids.values())))
            stored: list[StoredEvent] = []
            for order in new:
                originator_id = ids[order.order_id]
                head = heads[originator_id]
                expired = Subject.RetentionExpired(
                    originator_id=originator_id,
                    originator_version=head.version + 1,
                    timestamp=datetime.now(UTC),  # when recorded; `now` is the sweep's (injectable) clock
                    tenant=order.tenant,
                    subject=order.subject,
                    system=order.system,
                    categories=order.categories,
                    rule=order.rule,
                    expired_at=order.expired_at,
                    order_id=str(order.order_id),
                    previous_hash=head.hash,
                )
                heads[originator_id] = self._chain(stored, expired)
            self.writer.store(curs, stored)
        for order in new:
            log.info(
                "retention.expired", tenant=order.tenant, subject=order.subject, order=str(order.order_id)
            )
        return new

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

    def append(
        self,
        facts: Sequence[RecordFact],
        then: Callable[[Cursor, tuple[int, ...]], None] | None = None,
    ) -> AppendResult:
        """Store every fact not stored before, in one transaction; return what was new, what was
        stored before, and which facts reuse an id for different content (neither stored nor dropped).

        `then(cursor, conflicts)` runs last in that transaction, so what it records (the batch's dead
        letters) commits together with the facts or not at all.
        """
        if not facts and then is None:
            return AppendResult(0, 0)
        prints = [fingerprint(f) for f in facts]
        first: dict[tuple[str, str], int] = {}
        for index, f in enumerate(facts):
            first.setdefault((f.tenant, f.event_id), index)
        batch = [facts[index] for index in first.values()]
        ids = {key: subject_id(*key) for key in {(f.tenant, f.subject) for f in batch}}
        with self.writer.writing() as curs:
            receipts = [
                (f.tenant, f.event_id, ids[(f.tenant, f.subject)], prints[i])
                for i, f in zip(first.values(), batch, strict=True)
            ]
            new = self.writer.claim(curs, receipts) if receipts else set()
            fresh = [f for f in batch if (f.tenant, f.event_id) in new]
            if fresh:
                heads = self.writer.heads(curs, list({ids[(f.tenant, f.subject)] for f in fresh}))
                keys = self._data_keys(curs, fresh)
                self.writer.store(curs, self._encode(fresh, ids, heads, keys))
            seen = [key for key in first if key not in new]
            stored_prints = self.writer.fingerprints(curs, seen) if seen else {}
            # What each fact must match to be a duplicate: the stored receipt, else the batch's first.
            reference = {
                key: stored_prints[key] if key in stored_prints else prints[i] for key, i in first.items()
            }
            conflicts = tuple(
                index
                for index, f in enumerate(facts)
                if (known := reference[(f.tenant, f.event_id)]) is not None and known != prints[index]
            )
            if then is not None:
                then(curs, conflicts)
        return AppendResult(len(fresh), len(facts) - len(fresh) - len(conflicts), conflicts)

    def _data_keys(
        self, curs: psycopg.Cursor[DictRow], facts: Sequence[RecordFact]
    ) -> dict[tuple[str, str], DataKey]:
        subjects = [(f.tenant, f.subject) for f in facts if f.personal]
        if self.keys is None or not subjects:
            return {}
        return self.keys.active(curs, subjects)

    def _encode(
        self,
        facts: Sequence[RecordFact],
        ids: dict[tuple[str, str], UUID],
        heads: dict[UUID, Head],
        keys: dict[tuple[str, str], DataKey],
    ) -> list[StoredEvent]:
        now = datetime.now(UTC)
        stored: list[StoredEvent] = []
        subject_topic = get_topic(Subject)
        for fact in facts:
            originator_id = ids[(fact.tenant, fact.subject)]
            head = heads.get(originator_id)
            if head is None:
                registered = Subject.Registered(
                    originator_id=originator_id,
                    originator_version=1,
                    timestamp=now,
                    originator_topic=subject_topic,
                    tenant=fact.tenant,
                    subject=fact.subject,
                )
                head = self._chain(stored, registered)
            key = keys.get((fact.tenant, fact.subject))
            event = FACT_CLASSES[fact.type](
                originator_id=originator_id,
                originator_version=head.version + 1,
                timestamp=now,
                tenant=fact.tenant,
                subject=fact.subject,
                event_id=fact.event_id,
                source=fact.source,
                occurred_at=fact.occurred_at,
                schema_version=fact.schema_version,
                data=fact.data,
                sealed=None
                if key is None
                else seal(key.secret, fact.personal, seal_context(fact.tenant, fact.subject, fact.event_id)),
                key_id=None if key is None else str(key.key_id),
                origin=fact.origin,
                previous_hash=head.hash,
            )
            heads[originator_id] = self._chain(stored, event)
        return stored

    def _chain(self, stored: list[StoredEvent], event: Any) -> Head:
        """Encode `event` onto `stored`; its record hash links the subject's next event to it."""
        record = self.mapper.to_stored_event(event)
        stored.append(record)
        if self.master_key is None:
            return Head(record.originator_version, GENESIS)
        version = record.originator_version
        return Head(version, record_hash(event.originator_id, version, record.topic, record.state))

    def erase(self, tenant: str, subject: str, reason: str) -> Subject.Erased | None:
        """Destroy the subject's data key and record that it happened; None if there was nothing to do.

        Refused while a legal hold stands.
        """
        with self.writer.writing() as curs:
            state = self.subject(tenant, subject).state  # read under the write lock: nothing can move
            if state.legal_holds:
                hold = next(iter(state.legal_holds.values()))
                raise ErasureRefused(
                    f"legal hold {hold.hold_id!r} ({hold.reason}) covers subject {subject!r} of tenant "
                    f"{tenant!r}: release it (legalhold.released) before erasing"
                )
            erased = self._shred(curs, state, reason)
        if erased is not None:
            log.info("subject.erased", tenant=tenant, subject=subject, keys=len(erased.destroyed_keys))
        return erased

    def erase_due(
        self,
        curs: psycopg.Cursor[DictRow],
        subjects: Sequence[tuple[str, str]],
        awaits_recipients: Callable[[str], bool],
    ) -> list[Subject.Erased]:
        """In the caller's transaction, shred each of these subjects whose erasure is due now.

        Due is decided on the whole stored history under the write lock, so a hold recorded after
        what the caller has read still counts; `awaits_recipients` says per tenant whether
        recipients must have confirmed deletion too. The caller logs the erasures once committed.
        """
        if self.keys is None:
            return []
        self.writer.lock(curs)
        erased = []
        for tenant, subject in subjects:
            state = self.subject(tenant, subject).state
            request = erasure_due(state, await_recipients=awaits_recipients(tenant))
            if request is None:
                continue  # a hold placed, or an erasure recorded, since the caller read the subject
            done = self._shred(curs, state, f"verified deletion request {request.request_id} completed")
            if done is not None:
                erased.append(done)
        return erased

    def _shred(
        self, curs: psycopg.Cursor[DictRow], state: SubjectState, reason: str
    ) -> Subject.Erased | None:
        """Destroy the subject's active key and append `Subject.Erased`, under the caller's write lock."""
        if self.keys is None:
            raise ConfigError("erasure needs the master key: set LEDGER_MASTER_KEY or LEDGER_MASTER_KEY_FILE")
        destroyed = self.keys.destroy(curs, state.tenant, state.subject)
        self.deadletters.forget(curs, state.tenant, state.subject, datetime.now(UTC))
        if state.erased and not destroyed:
            return None
        originator_id = subject_id(state.tenant, state.subject)
        head = self.writer.heads(curs, [originator_id])[originator_id]
        erased = Subject.Erased(
            originator_id=originator_id,
            originator_version=head.version + 1,
            timestamp=datetime.now(UTC),
            tenant=state.tenant,
            subject=state.subject,
            reason=reason,
            destroyed_keys=[str(key_id) for key_id in destroyed],
            previous_hash=head.hash,
        )
        stored: list[StoredEvent] = []
        self._chain(stored, erased)
        self.writer.store(curs, stored)
        return erased

    def adopt_policy(
        self, document: dict[str, Any], adopted_by: str, reason: str
    ) -> RetentionPolicy.Adopted | None:
        """Record that `document` is the retention policy from now on; None if it already is."""

        def adopted(version: int, now: datetime, previous_hash: str) -> RetentionPolicy.Adopted:
            return RetentionPolicy.Adopted(
                originator_id=POLICY_ID,
                originator_version=version,
                timestamp=now,
                document=document,
                digest=digest(document),
                adopted_by=adopted_by,
                reason=reason,
                previous_hash=previous_hash,
            )

        current = self.policy().adoptions
        unchanged = bool(current) and current[-1].digest == digest(document)
        recorded = self._record_document(POLICY_ID, RetentionPolicy, unchanged, adopted)
        if recorded is not None:
            log.info("policy.adopted", digest=recorded.digest, adopted_by=adopted_by)
        return recorded

    def policy(self) -> RetentionPolicy:
        """The history of retention policies (empty when none was ever adopted)."""
        try:
            history: RetentionPolicy = self.repository.get(POLICY_ID)
        except AggregateNotFoundError:
            return RetentionPolicy()
        return history

    def declare(
        self, tenant: str, document: dict[str, Any], declared_by: str, reason: str
    ) -> Declarations.Declared | None:
        """Record that `document` is what `tenant` declares from now on; None if it already is."""
        originator_id = declaration_id(tenant)

        def declared(version: int, now: datetime, previous_hash: str) -> Declarations.Declared:
            return Declarations.Declared(
                originator_id=originator_id,
                originator_version=version,
                timestamp=now,
                tenant=tenant,
                document=document,
                digest=digest(document),
                declared_by=declared_by,
                reason=reason,
                previous_hash=previous_hash,
            )

        current = self.declarations(tenant).declarations
        unchanged = bool(current) and current[-1].digest == digest(document)
        recorded = self._record_document(originator_id, Declarations, unchanged, declared)
        if recorded is not None:
            log.info("declaration.recorded", tenant=tenant, digest=recorded.digest, declared_by=declared_by)
        return recorded

    def declarations(self, tenant: str) -> Declarations:
        """The tenant's declarations (none when it never declared)."""
        try:
            history: Declarations = self.repository.get(declaration_id(tenant))
        except AggregateNotFoundError:
            return Declarations()
        return history

    def _record_document(
        self,
        originator_id: UUID,
        history: type[RetentionPolicy] | type[Declarations],
        unchanged: bool,
        make: Callable[[int, datetime, str], _Recorded],
    ) -> _Recorded | None:
        """Append the next event of a document's history (starting the history if needed), chained;
        None when the document is unchanged."""
        if unchanged:
            return None
        now = datetime.now(UTC)
        with self.writer.writing() as curs:
            head = self.writer.heads(curs, [originator_id]).get(originator_id)
            stored: list[StoredEvent] = []
            if head is None:
                started = history.Started(
                    originator_id=originator_id,
                    originator_version=1,
                    timestamp=now,
                    originator_topic=get_topic(history),
                )
                head = self._chain(stored, started)
            recorded = make(head.version + 1, now, head.hash)
            self._chain(stored, recorded)
            self.writer.store(curs, stored)
        return recorded

    def rotate_keys(self, new: MasterKey | None, *, retire: bool) -> Rotation:
        """Start a new key epoch and re-wrap every live data key under it, in one transaction; with
        `new`, the epoch keys are wrapped by that master key from now on; with `retire`, destroy
        the epochs no data key depends on any more. Events are untouched."""
        if self.keys is None:
            raise ConfigError("key rotation needs the current master key: set LEDGER_MASTER_KEY")
        with self.writer.writing() as curs:  # no data key is created under the old epoch meanwhile
            epoch, count = self.keys.rotate(curs)
            retired = self.keys.retire(curs) if retire else []
            if new is not None:  # after retiring: a retired epoch is never wrapped by the new key
                self.keys.rewrap_epochs(curs, new)
        if new is not None:
            self.master_key = new
            self.keys = KeyStore(self.writer.datastore.schema, f"{self.writer.events_table_name}_keys", new)
            self.deadletters = self._deadletter_book()
        log.info("keys.rotated", epoch=epoch, keys=count, retired=retired, kek=self.keys.master.key_id)
        return Rotation(epoch, count, retired)

    def key_epochs(self) -> list[Epoch]:
        """The key epochs not yet retired, oldest first."""
        if self.keys is None:
            return []
        with self.writer.datastore.transaction() as curs:
            return self.keys.live_epochs(curs)

    def create_api_key(self, tenant: str | None, role: str) -> tuple[ApiKey, str]:
        """A new API key of `tenant` (None: every tenant) and `role`, and its text, which exists
        nowhere else (only its hash is stored)."""
        with self.writer.datastore.transaction(commit=True) as curs:
            return self.api_keys.create(curs, tenant, role)

    def list_api_keys(self) -> list[ApiKey]:
        """Every API key, live or revoked (never their text)."""
        with self.writer.datastore.transaction() as curs:
            return self.api_keys.all(curs)

    def revoke_api_key(self, key_id: str) -> ApiKey:
        """Refuse the key from its next request on; the key as stored."""
        with self.writer.datastore.transaction(commit=True) as curs:
            return self.api_keys.revoke(curs, key_id)

    def record_access(self, key: ApiKey, tenant: str, subject: str, endpoint: str) -> None:
        """Record that `key` read the subject's personal data through `endpoint` (before it is answered)."""
        with self.writer.datastore.transaction(commit=True) as curs:
            self.access_log.record(curs, key, tenant, subject, endpoint)

    def accesses(self, tenant: str, subject: str | None = None) -> list[Access]:
        """The tenant's (or one subject's) recorded reads of personal data, oldest first."""
        with self.writer.datastore.transaction() as curs:
            return self.access_log.read(curs, tenant, subject)

    def subject(self, tenant: str, subject: str) -> Subject:
        """The subject aggregate, rebuilt from its stored events."""
        try:
            aggregate: Subject = self.repository.get(subject_id(tenant, subject))
        except AggregateNotFoundError:
            raise _unknown(tenant, subject) from None
        return aggregate

    def subject_events(
        self, tenant: str, subject: str, after: int = 0, limit: int | None = None
    ) -> list[DomainEventProtocol[UUID]]:
        """Every stored event of the subject, oldest first, read once (or a page: `limit` events
        after version `after`)."""
        stored = self.stored_subject_events(tenant, subject, after, limit)
        return [self.mapper.to_domain_event(event) for event in stored]

    def stored_subject_events(
        self, tenant: str, subject: str, after: int = 0, limit: int | None = None
    ) -> Sequence[StoredEvent]:
        """Every stored event of the subject as recorded (not decoded), oldest first (or a page:
        `limit` events after version `after`)."""
        stored = self.recorder.select_events(subject_id(tenant, subject), gt=after or None, limit=limit)
        if not stored and not after:
            raise _unknown(tenant, subject)
        return stored


def _unknown(tenant: str, subject: str) -> UnknownSubject:
    return UnknownSubject(f"tenant {tenant!r} has no subject {subject!r}: check both ids")


def seal_context(tenant: str, subject: str, event_id: str) -> str:
    """What a sealed value is bound to: it opens only as this event of this subject."""
    return f"personal|{tenant}|{subject}|{event_id}"


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
        # A transaction idle this long is ended, its locks freed (the library's default, 5 s, ended
        # batch appends that a loaded machine took longer to encode between two statements).
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "60",
        "CREATE_TABLE": "no",  # schema changes are `migrate`'s (projections/schema.py), never a query's
        # Every state deflated over a dictionary as it is stored; states stored before read as they are.
        "COMPRESSOR_TOPIC": get_topic(StateCompressor),
    }
