"""Per-subject data keys in PostgreSQL, wrapped by the key of an epoch, which the master key wraps.

One active key per (tenant, subject); erasure destroys it (its wrapped bytes are overwritten, then its
row is deleted) and the next event of that subject gets a new one. Data keys are wrapped by the key
of the current *epoch*, a random key stored only wrapped by the master key. `rotate` starts a new
epoch and re-wraps every live data key under it; `retire` then destroys the epochs no data key
depends on. A copy of a destroyed key's row that outlived it (an old table page, the WAL, a backup)
still needs its epoch's key: once that epoch is retired, nothing the ledger holds opens it, the
master key included. Every function runs in the caller's transaction, so a key is created or
destroyed atomically with the events that use it.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from ledger.crypto import MasterKey, Unreadable, new_data_key
from ledger.errors import WrongMasterKey

Cursor = psycopg.Cursor[DictRow]


@dataclass(frozen=True)
class DataKey:
    """An unwrapped data key and its id (the id is stored with every value it seals)."""

    key_id: UUID
    secret: bytes


@dataclass(frozen=True)
class Epoch:
    """A key epoch still alive: when it started, and how many data keys it wraps."""

    number: int
    created_at: datetime
    keys: int


def wrap_context(tenant: str, subject: str, key_id: UUID) -> str:
    """What a wrapped key is bound to: it opens only for this tenant, subject and key id."""
    return f"data-key|{tenant}|{subject}|{key_id}"


def _epoch_context(number: int) -> str:
    return f"epoch-key|{number}"


class KeyStore:
    """SQL for the data-key and epoch tables; the master key wraps the epoch keys."""

    def __init__(self, schema: str, table: str, master: MasterKey) -> None:
        self.table = Identifier(schema, table)
        self.epochs = Identifier(schema, f"{table}_epochs")
        self.active_index = Identifier(f"{table}_active")
        self.schema, self.name = schema, table
        self.master = master

    def create_statements(self) -> list[Composed]:
        """The tables, with at most one active key per subject."""
        return [
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (key_id uuid PRIMARY KEY, tenant text NOT NULL, "
                "subject text NOT NULL, wrapped bytea, kek_id text, created_at timestamptz NOT NULL "
                "DEFAULT now(), destroyed_at timestamptz, epoch integer)"
            ).format(self.table),
            # Tables made before epochs lack the column; ALTER only then, as it locks the whole table.
            SQL(
                "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE "
                "table_schema = {} AND table_name = {} AND column_name = 'epoch') THEN "
                "ALTER TABLE {} ADD COLUMN epoch integer; END IF; END $$"
            ).format(self.schema, self.name, self.table),
            SQL(
                "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} (tenant, subject) WHERE destroyed_at IS NULL"
            ).format(self.active_index, self.table),
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (epoch integer PRIMARY KEY, wrapped bytea NOT NULL, "
                "fingerprint text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
            ).format(self.epochs),
        ]

    def active(self, curs: Cursor, subjects: Sequence[tuple[str, str]]) -> dict[tuple[str, str], DataKey]:
        """The active key of each of these subjects, creating one where a subject has none."""
        curs.execute(
            SQL(
                "SELECT k.key_id, k.tenant, k.subject, k.wrapped, k.epoch, k.kek_id FROM {} k "
                "JOIN unnest(%b::text[], %b::text[]) AS s(tenant, subject) "
                "ON k.tenant = s.tenant AND k.subject = s.subject WHERE k.destroyed_at IS NULL"
            ).format(self.table),
            ([s[0] for s in subjects], [s[1] for s in subjects]),
        )
        rows = curs.fetchall()
        epochs = self._epoch_keys(curs)
        found = {
            (row["tenant"], row["subject"]): DataKey(row["key_id"], self._unwrap(row, epochs)) for row in rows
        }
        missing = [pair for pair in dict.fromkeys(subjects) if pair not in found]
        created = {pair: DataKey(uuid4(), new_data_key()) for pair in missing}
        if created:
            number = max(epochs) if epochs else self._start_epoch(curs, epochs)
            kek = MasterKey(epochs[number])
            keys = [
                (key.key_id, tenant, subject, kek.wrap(key.secret, wrap_context(tenant, subject, key.key_id)))
                for (tenant, subject), key in created.items()
            ]
            curs.execute(
                SQL(
                    "INSERT INTO {} (key_id, tenant, subject, wrapped, epoch) "
                    "SELECT *, %s FROM unnest(%b::uuid[], %b::text[], %b::text[], %b::bytea[])"
                ).format(self.table),
                (number, *(list(column) for column in zip(*keys, strict=True))),
            )
        return found | created

    def for_subject(self, curs: Cursor, tenant: str, subject: str) -> dict[UUID, bytes]:
        """Every key of the subject not destroyed, unwrapped (a destroyed key is simply absent)."""
        curs.execute(
            SQL(
                "SELECT key_id, tenant, subject, wrapped, epoch, kek_id FROM {} "
                "WHERE tenant = %s AND subject = %s AND wrapped IS NOT NULL"
            ).format(self.table),
            (tenant, subject),
        )
        rows = curs.fetchall()
        if not rows:
            return {}
        epochs = self._epoch_keys(curs)
        return {row["key_id"]: self._unwrap(row, epochs) for row in rows}

    def subjects(self, curs: Cursor, tenant: str) -> list[str]:
        """The subjects of `tenant` that have a live key."""
        curs.execute(
            SQL("SELECT DISTINCT subject FROM {} WHERE tenant = %s AND destroyed_at IS NULL").format(
                self.table
            ),
            (tenant,),
        )
        return sorted(row["subject"] for row in curs.fetchall())

    def destroy(self, curs: Cursor, tenant: str, subject: str) -> list[UUID]:
        """Shred the subject's active key, overwritten and then deleted; return the ids destroyed.

        PostgreSQL writes an overwrite as a new row version and leaves the old one in its page until
        the page is reused, so old bytes can outlive this: retiring the key's epoch is what makes
        such copies useless.
        """
        where = SQL("WHERE tenant = %s AND subject = %s AND destroyed_at IS NULL")
        curs.execute(
            SQL("UPDATE {} SET wrapped = decode(repeat('00', octet_length(wrapped)), 'hex') {}").format(
                self.table, where
            ),
            (tenant, subject),
        )
        curs.execute(SQL("DELETE FROM {} {} RETURNING key_id").format(self.table, where), (tenant, subject))
        return [row["key_id"] for row in curs.fetchall()]

    def rotate(self, curs: Cursor) -> tuple[int, int]:
        """Start a new epoch and re-wrap every live data key under it; return (epoch, keys re-wrapped)."""
        epochs = self._epoch_keys(curs)
        curs.execute(
            SQL(
                "SELECT key_id, tenant, subject, wrapped, epoch, kek_id FROM {} WHERE wrapped IS NOT NULL "
                "FOR UPDATE"
            ).format(self.table)
        )
        rows = curs.fetchall()
        number = self._start_epoch(curs, epochs)
        kek = MasterKey(epochs[number])
        rewrapped = []
        for row in rows:
            context = wrap_context(row["tenant"], row["subject"], row["key_id"])
            rewrapped.append((row["key_id"], kek.wrap(self._unwrap(row, epochs), context)))
        if rewrapped:
            curs.execute(
                SQL(
                    "UPDATE {} k SET wrapped = r.wrapped, epoch = %s, kek_id = NULL "
                    "FROM unnest(%b::uuid[], %b::bytea[]) AS r(key_id, wrapped) WHERE k.key_id = r.key_id"
                ).format(self.table),
                (number, [r[0] for r in rewrapped], [r[1] for r in rewrapped]),
            )
        return number, len(rewrapped)

    def retire(self, curs: Cursor) -> list[int]:
        """Destroy every epoch but the newest that no data key depends on; return their numbers."""
        unused = SQL(
            "WHERE epoch < (SELECT max(epoch) FROM {}) "
            "AND NOT EXISTS (SELECT 1 FROM {} k WHERE k.epoch = e.epoch)"
        ).format(self.epochs, self.table)
        curs.execute(
            SQL("UPDATE {} e SET wrapped = decode(repeat('00', octet_length(wrapped)), 'hex') {}").format(
                self.epochs, unused
            )
        )
        curs.execute(SQL("DELETE FROM {} e {} RETURNING epoch").format(self.epochs, unused))
        return sorted(row["epoch"] for row in curs.fetchall())

    def rewrap_epochs(self, curs: Cursor, new: MasterKey) -> None:
        """Wrap every epoch key under a new master key (data keys are wrapped by epoch keys)."""
        for number, secret in self._epoch_keys(curs).items():
            curs.execute(
                SQL("UPDATE {} SET wrapped = %s, fingerprint = %s WHERE epoch = %s").format(self.epochs),
                (new.wrap(secret, _epoch_context(number)), new.key_id, number),
            )

    def live_epochs(self, curs: Cursor) -> list[Epoch]:
        """The epochs not retired, oldest first, with how many data keys each wraps."""
        curs.execute(
            SQL(
                "SELECT e.epoch, e.created_at, count(k.key_id) AS keys FROM {} e LEFT JOIN {} k "
                "ON k.epoch = e.epoch GROUP BY e.epoch, e.created_at ORDER BY e.epoch"
            ).format(self.epochs, self.table)
        )
        return [Epoch(row["epoch"], row["created_at"], row["keys"]) for row in curs.fetchall()]

    def _epoch_keys(self, curs: Cursor) -> dict[int, bytes]:
        """Every live epoch's key, unwrapped, once the master key is known to be the right one."""
        curs.execute(SQL("SELECT epoch, wrapped, fingerprint FROM {} ORDER BY epoch").format(self.epochs))
        keys = {}
        for row in curs.fetchall():
            self._check(row["fingerprint"])
            keys[row["epoch"]] = self.master.unwrap(bytes(row["wrapped"]), _epoch_context(row["epoch"]))
        return keys

    def _start_epoch(self, curs: Cursor, epochs: dict[int, bytes]) -> int:
        """A new epoch with a random key, wrapped by the master key; added to `epochs`."""
        number = max(epochs, default=0) + 1
        epochs[number] = new_data_key()
        curs.execute(
            SQL("INSERT INTO {} (epoch, wrapped, fingerprint) VALUES (%s, %s, %s)").format(self.epochs),
            (number, self.master.wrap(epochs[number], _epoch_context(number)), self.master.key_id),
        )
        return number

    def _unwrap(self, row: dict[str, Any], epochs: dict[int, bytes]) -> bytes:
        context = wrap_context(row["tenant"], row["subject"], row["key_id"])
        if row["epoch"] is None:  # wrapped by the master key itself, before epochs existed
            self._check(row["kek_id"])
            return self.master.unwrap(bytes(row["wrapped"]), context)
        if row["epoch"] not in epochs:
            raise Unreadable(
                f"data key {row['key_id']} was wrapped under epoch {row['epoch']}, which was retired"
            )
        return MasterKey(epochs[row["epoch"]]).unwrap(bytes(row["wrapped"]), context)

    def _check(self, fingerprint: str | None) -> None:
        if fingerprint is not None and fingerprint != self.master.key_id:
            raise WrongMasterKey(
                f"wrong master key (fingerprint {self.master.key_id}): the ledger's keys are wrapped by "
                f"the master key with fingerprint {fingerprint}; set LEDGER_MASTER_KEY or "
                "LEDGER_MASTER_KEY_FILE to that key (after `rotate-key --new-key-file`, the new one)"
            )
