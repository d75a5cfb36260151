"""Dead letters kept by the system of record: every refused message, why, and its bytes, sealed.

A refused message may hold personal data (that is often why it was refused), so its key and value are
kept only sealed (AES-256-GCM) under a dead-letter key of the day it arrived: a data key in the key
table (ledger/keys.py) under a tenant name no real tenant can have, wrapped by the current epoch like
any other. The retention purge deletes the letters older than LEDGER_DEADLETTER_RETENTION_DAYS and
destroys the keys of those days, so a copy that outlived the rows (an old page, a backup) no longer
opens either. Reasons are kept in clear: the contract never quotes a value in one.

A letter is identified by a keyed hash (HMAC under a key derived from the master key) of where it
came from and its bytes, so a batch delivered again after a crash records nothing twice, while a new
message at a reused offset (an embedded broker restarted from nothing) is a new letter; a reader of
the table without the master key cannot confirm a guess of the bytes from it. Every function runs in
the caller's transaction, so a letter is recorded atomically with the batch that refused it.
"""

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from ledger.crypto import MasterKey, Unreadable, seal, unseal
from ledger.errors import UnknownEvent, UsageError, WrongState
from ledger.keys import KeyStore

Cursor = psycopg.Cursor[DictRow]

# The key table's tenant for dead-letter keys: real tenant ids start with a letter or a digit.
KEY_TENANT = "_deadletters"
CUT_TO = 64 * 1024  # what is kept of a message larger than the contract takes at all

# How a reason begins, and its class (the contract's wording, consumers/contract.py and ingest.py).
_CLASSES = (
    ("empty message", "empty"),
    ("message of ", "size"),
    ("not valid JSON", "json"),
    ("not a JSON object", "json"),
    ("bound exceeded", "bounds"),
    ("unknown event type", "type"),
    ("unknown dataschema", "dataschema"),
    ("time ", "time"),
    ("conflicting duplicate", "conflict"),
    ("internal:", "internal"),
)
REASON_CLASSES = ("vocabulary", "schema", *dict.fromkeys(c for _, c in _CLASSES), "other")
OPEN, REPLAYED, DROPPED = "open", "replayed", "dropped"
STATUSES = (OPEN, REPLAYED, DROPPED)


class UnknownDeadLetter(UnknownEvent):
    """No dead letter has that id (or it was purged after its retention period)."""


def reason_class(reason: str) -> str:
    """The class of a refusal, for counting and choosing what to replay: `vocabulary` for a value
    outside a closed vocabulary, `schema` for any other schema violation, and so on."""
    if reason.startswith("schema violation"):
        return "vocabulary" if "closed vocabulary" in reason else "schema"
    return next((cls for start, cls in _CLASSES if reason.startswith(start)), "other")


def check_class(name: str) -> str:
    """`name` if it is a reason class; else a usage error listing them."""
    if name not in REASON_CLASSES:
        raise UsageError(f"unknown reason class {name!r}: use one of {', '.join(REASON_CLASSES)}")
    return name


@dataclass(frozen=True)
class Refusal:
    """A message the consumer refused: where it came from, its bytes, its tenant and subject if
    legible, why."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    tenant: str | None
    reason: str
    subject: str | None = None


@dataclass(frozen=True)
class DeadLetter:
    """A dead letter as listed: never its bytes."""

    id: int
    topic: str
    partition: int
    offset: int
    tenant: str | None
    reason_class: str
    reason: str
    received_at: datetime
    value_bytes: int
    cut: bool  # only the first part of a message too large to take was kept
    sealed: bool  # its bytes are still held (not dropped)
    status: str  # open, replayed (stored by a replay), dropped
    replay: int | None
    event_id: str | None
    dropped_at: datetime | None
    dropped_why: str | None

    @property
    def origin(self) -> str:
        """Where it was read: topic/partition/offset, as stored events name their origin."""
        return f"{self.topic}/{self.partition}/{self.offset}"


def not_open(letters: Sequence[DeadLetter], action: str) -> WrongState:
    """The one-line error for naming letters that are not open to be `action` (replayed, dropped)."""
    named = ", ".join(f"{letter.id} ({letter.status})" for letter in letters)
    many = len(letters) > 1
    return WrongState(
        f"dead letter{'s' if many else ''} {named} {'are' if many else 'is'} not open: "
        f"only open letters can be {action}"
    )


@dataclass(frozen=True)
class Opened:
    """A dead letter with its original key and value, unsealed."""

    letter: DeadLetter
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class Selection:
    """Which dead letters a list or replay is about (every filter optional)."""

    ids: tuple[int, ...] = ()
    tenant: str | None = None
    reason_class: str | None = None
    since: datetime | None = None
    status: str | None = None


class DeadLetterBook:
    """SQL for the dead-letter tables; the key store seals their bytes (None: bytes are not kept)."""

    def __init__(self, schema: str, table: str, keys: KeyStore | None) -> None:
        self.name = table
        self.table = Identifier(schema, table)
        self.replays = Identifier(schema, f"{table}_replays")
        self.keys = keys
        self.identity = None if keys is None else _identity_key(keys.master)

    def create_statements(self) -> list[Composed]:
        """The letters, and the replays that stored some of them."""
        return [
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (replay_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                "at timestamptz NOT NULL, tried integer NOT NULL, stored integer NOT NULL, "
                "refused integer NOT NULL)"
            ).format(self.replays),
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                "identity bytea NOT NULL UNIQUE, topic text NOT NULL, partition integer NOT NULL, "
                "kafka_offset bigint NOT NULL, tenant text, reason_class text NOT NULL, "
                "reason text NOT NULL, received_at timestamptz NOT NULL, value_bytes integer NOT NULL, "
                "cut boolean NOT NULL, key_day text, key_id uuid, sealed text, "
                "replay_id bigint REFERENCES {}, event_id text, dropped_at timestamptz, dropped_why text)"
            ).format(self.table, self.replays),
            SQL("CREATE INDEX IF NOT EXISTS {} ON {} (received_at)").format(
                Identifier(f"{self.name}_received"), self.table
            ),
            # Added after release: what erasing a subject finds its letters by (see `forget`).
            SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS subject_tag bytea").format(self.table),
            SQL("CREATE INDEX IF NOT EXISTS {} ON {} (subject_tag)").format(
                Identifier(f"{self.name}_subject"), self.table
            ),
        ]

    def record(self, curs: Cursor, refusals: Sequence[Refusal], now: datetime, keep: int) -> int:
        """Record the refusals not recorded before (values up to `keep` bytes whole, larger ones cut);
        return how many were new."""
        if not refusals:
            return 0
        day = now.date().isoformat()
        data_key = None if self.keys is None else self.keys.active(curs, [(KEY_TENANT, day)])[KEY_TENANT, day]
        rows = []
        for refusal in refusals:
            value = refusal.value or b""
            cut = len(value) > keep
            identity = self._identity(refusal)
            sealed = None
            if data_key is not None:
                kept = value[:CUT_TO] if cut else value
                sealed = seal(
                    data_key.secret,
                    {"key": _text(refusal.key), "value": None if refusal.value is None else _text(kept)},
                    _context(identity),
                )
            rows.append(
                (
                    identity,
                    refusal.topic,
                    refusal.partition,
                    refusal.offset,
                    refusal.tenant,
                    reason_class(refusal.reason),
                    refusal.reason,
                    len(value),
                    cut,
                    None if data_key is None else day,
                    None if data_key is None else data_key.key_id,
                    sealed,
                    self._subject_tag(refusal.tenant, refusal.subject),
                )
            )
        curs.execute(
            SQL(
                "INSERT INTO {} (identity, topic, partition, kafka_offset, tenant, reason_class, reason, "
                "value_bytes, cut, key_day, key_id, sealed, subject_tag, received_at) "
                "SELECT *, %s FROM unnest(%b::bytea[], %b::text[], %b::int[], %b::int8[], %b::text[], "
                "%b::text[], %b::text[], %b::int[], %b::bool[], %b::text[], %b::uuid[], %b::text[], "
                "%b::bytea[]) "
                "ON CONFLICT (identity) DO NOTHING RETURNING id"
            ).format(self.table),
            (now, *(list(column) for column in zip(*rows, strict=True))),
        )
        return len(curs.fetchall())

    def select(self, curs: Cursor, selection: Selection, limit: int | None = None) -> list[DeadLetter]:
        """The letters chosen, oldest first."""
        where, params = _where(selection)
        curs.execute(
            SQL(
                "SELECT {}, {} AS status, sealed IS NOT NULL AS held FROM {} WHERE {} ORDER BY id LIMIT %s"
            ).format(_COLUMNS, _STATUS, self.table, where),
            (*params, limit),
        )
        return [_letter(row) for row in curs.fetchall()]

    def counts(self, curs: Cursor, selection: Selection) -> dict[str, dict[str, int]]:
        """Per reason class, how many of the chosen letters are open, replayed and dropped."""
        where, params = _where(selection)
        curs.execute(
            SQL("SELECT {} AS status, reason_class, count(*) AS n FROM {} WHERE {} GROUP BY 1, 2").format(
                _STATUS, self.table, where
            ),
            params,
        )
        counts: dict[str, dict[str, int]] = {}
        for row in curs.fetchall():
            per_status = counts.setdefault(row["reason_class"], {OPEN: 0, REPLAYED: 0, DROPPED: 0})
            per_status[row["status"]] = row["n"]
        return dict(sorted(counts.items()))

    def get(self, curs: Cursor, letter_id: int) -> DeadLetter:
        """One letter, or `UnknownDeadLetter`."""
        found = self.select(curs, Selection(ids=(letter_id,)))
        if not found:
            raise UnknownDeadLetter(
                f"no dead letter {letter_id}: `deadletters list` shows them (they are kept "
                "LEDGER_DEADLETTER_RETENTION_DAYS days)"
            )
        return found[0]

    def open(self, curs: Cursor, letters: Sequence[DeadLetter]) -> list[Opened]:
        """The letters with their bytes unsealed; `Unreadable` when one's bytes are no longer held
        (dropped, or kept without a master key) or its day's key was destroyed."""
        if not letters:
            return []
        curs.execute(
            SQL("SELECT id, identity, key_day, key_id, sealed FROM {} WHERE id = ANY(%s)").format(self.table),
            ([letter.id for letter in letters],),
        )
        rows = {row["id"]: row for row in curs.fetchall()}
        day_keys: dict[str, dict[UUID, bytes]] = {}
        opened = []
        for letter in letters:
            row = rows[letter.id]
            if row["sealed"] is None or self.keys is None:
                raise Unreadable(f"dead letter {letter.id}: its bytes are not held (dropped, or no key)")
            if row["key_day"] not in day_keys:
                day_keys[row["key_day"]] = self.keys.for_subject(curs, KEY_TENANT, row["key_day"])
            secret = day_keys[row["key_day"]].get(row["key_id"])
            if secret is None:
                raise Unreadable(f"dead letter {letter.id}: the key of its day was destroyed")
            values = unseal(secret, row["sealed"], _context(bytes(row["identity"])))
            opened.append(Opened(letter, _bytes(values["key"]), _bytes(values["value"])))
        return opened

    def start_replay(self, curs: Cursor, now: datetime, tried: int, stored: int, refused: int) -> int:
        """Record a replay; return its id."""
        curs.execute(
            SQL(
                "INSERT INTO {} (at, tried, stored, refused) VALUES (%s, %s, %s, %s) RETURNING replay_id"
            ).format(self.replays),
            (now, tried, stored, refused),
        )
        row = curs.fetchone()
        assert row is not None
        return int(row["replay_id"])

    def replays_run(self, curs: Cursor) -> int:
        """How many replays were run."""
        curs.execute(SQL("SELECT count(*) AS n FROM {}").format(self.replays))
        row = curs.fetchone()
        return int(row["n"]) if row else 0

    def mark_replayed(self, curs: Cursor, replay_id: int, stored: Sequence[tuple[int, str]]) -> None:
        """Record that replay `replay_id` stored these letters, as these event ids."""
        curs.execute(
            SQL(
                "UPDATE {} d SET replay_id = %s, event_id = s.event_id FROM unnest(%b::int8[], %b::text[]) "
                "AS s(id, event_id) WHERE d.id = s.id AND d.replay_id IS NULL"
            ).format(self.table),
            (replay_id, [one[0] for one in stored], [one[1] for one in stored]),
        )

    def drop(self, curs: Cursor, letter_id: int, why: str, now: datetime) -> DeadLetter:
        """Record the decision to discard an open letter, and discard its bytes (their day's key
        still covers any copy left in old pages until the retention purge destroys it)."""
        letter = self.get(curs, letter_id)
        if letter.status != OPEN:
            raise not_open([letter], "dropped")
        curs.execute(
            SQL("UPDATE {} SET dropped_at = %s, dropped_why = %s, sealed = NULL WHERE id = %s").format(
                self.table
            ),
            (now, why, letter_id),
        )
        return self.get(curs, letter_id)

    def forget(self, curs: Cursor, tenant: str, subject: str, now: datetime) -> int:
        """Discard the bytes of every letter that names this subject of this tenant, as a drop with
        the reason `subject erased` (erasure reaches dead letters too); return how many."""
        tag = self._subject_tag(tenant, subject)
        if tag is None:
            return 0
        curs.execute(
            SQL(
                "UPDATE {} SET sealed = NULL, dropped_at = coalesce(dropped_at, %s), "
                "dropped_why = coalesce(dropped_why, 'subject erased') "
                "WHERE subject_tag = %s AND sealed IS NOT NULL"
            ).format(self.table),
            (now, tag),
        )
        return curs.rowcount

    def purge(self, curs: Cursor, now: datetime, days: int) -> int:
        """Delete the letters received more than `days` days before `now`, and destroy the keys of
        the days wholly before that; return how many letters were deleted."""
        cutoff = now - timedelta(days=days)
        curs.execute(SQL("DELETE FROM {} WHERE received_at < %s").format(self.table), (cutoff,))
        deleted = curs.rowcount
        if self.keys is not None:
            for day in self.keys.subjects(curs, KEY_TENANT):
                if day < cutoff.date().isoformat():
                    self.keys.destroy(curs, KEY_TENANT, day)
        return deleted

    def _subject_tag(self, tenant: str | None, subject: str | None) -> bytes | None:
        """A keyed hash of the letter's tenant and subject: found again on erasure, never read back."""
        if self.identity is None or tenant is None or subject is None:
            return None
        return hmac.new(self.identity, f"subject|{tenant}|{subject}".encode(), hashlib.sha256).digest()

    def _identity(self, refusal: Refusal) -> bytes:
        where = f"{refusal.topic}|{refusal.partition}|{refusal.offset}|".encode()
        content = where + _framed(refusal.key) + _framed(refusal.value)
        if self.identity is None:  # no master key (benchmark baselines): no bytes are kept either
            return hashlib.sha256(where).digest()
        return hmac.new(self.identity, content, hashlib.sha256).digest()


_COLUMNS = SQL(
    "id, topic, partition, kafka_offset, tenant, reason_class, reason, received_at, value_bytes, cut, "
    "replay_id, event_id, dropped_at, dropped_why"
)
_STATUS = SQL(
    "CASE WHEN replay_id IS NOT NULL THEN 'replayed' WHEN dropped_at IS NOT NULL THEN 'dropped' "
    "ELSE 'open' END"
)


def _where(selection: Selection) -> tuple[Composed, tuple[Any, ...]]:
    return (
        SQL(
            "(cardinality(%s::int8[]) = 0 OR id = ANY(%s)) AND (%s::text IS NULL OR tenant = %s) "
            "AND (%s::text IS NULL OR reason_class = %s) AND (%s::timestamptz IS NULL OR received_at >= %s) "
            "AND (%s::text IS NULL OR {} = %s)"
        ).format(_STATUS),
        (
            list(selection.ids),
            list(selection.ids),
            selection.tenant,
            selection.tenant,
            selection.reason_class,
            selection.reason_class,
            selection.since,
            selection.since,
            selection.status,
            selection.status,
        ),
    )


def _letter(row: DictRow) -> DeadLetter:
    return DeadLetter(
        id=row["id"],
        topic=row["topic"],
        partition=row["partition"],
        offset=row["kafka_offset"],
        tenant=row["tenant"],
        reason_class=row["reason_class"],
        reason=row["reason"],
        received_at=row["received_at"],
        value_bytes=row["value_bytes"],
        cut=row["cut"],
        sealed=row["held"],
        status=row["status"],
        replay=row["replay_id"],
        event_id=row["event_id"],
        dropped_at=row["dropped_at"],
        dropped_why=row["dropped_why"],
    )


def _identity_key(master: MasterKey) -> bytes:
    return hmac.new(master.secret, b"consent-ledger dead-letter identity", hashlib.sha256).digest()


def _context(identity: bytes) -> str:
    """What sealed bytes are bound to: they open only as this dead letter."""
    return f"deadletter|{identity.hex()}"


def _framed(part: bytes | None) -> bytes:
    """A part with its length, so that key and value cannot trade bytes and hash the same."""
    return b"-" if part is None else f"{len(part)}:".encode() + part


def _text(part: bytes | None) -> str | None:
    return None if part is None else base64.b64encode(part).decode()


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)
