"""Per-subject data keys in PostgreSQL, stored only wrapped by the master key (KEK).

One active key per (tenant, subject); erasure destroys it (the wrapped bytes are overwritten with
NULL) and the next event of that subject gets a new one. Every function runs in the caller's
transaction, so a key is created or destroyed atomically with the events that use it.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID, uuid4

import psycopg
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from ledger.crypto import MasterKey, new_data_key

Cursor = psycopg.Cursor[DictRow]


@dataclass(frozen=True)
class DataKey:
    """An unwrapped data key and its id (the id is stored with every value it seals)."""

    key_id: UUID
    secret: bytes


def wrap_context(tenant: str, subject: str, key_id: UUID) -> str:
    """What a wrapped key is bound to: it opens only for this tenant, subject and key id."""
    return f"data-key|{tenant}|{subject}|{key_id}"


class KeyStore:
    """SQL for the data-key table; the master key wraps and unwraps."""

    def __init__(self, schema: str, table: str, master: MasterKey) -> None:
        self.table = Identifier(schema, table)
        self.active_index = Identifier(f"{table}_active")
        self.master = master

    def create_statements(self) -> list[Composed]:
        """The table, with at most one active (not destroyed) key per subject."""
        return [
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (key_id uuid PRIMARY KEY, tenant text NOT NULL, "
                "subject text NOT NULL, wrapped bytea, kek_id text, created_at timestamptz NOT NULL "
                "DEFAULT now(), destroyed_at timestamptz)"
            ).format(self.table),
            SQL(
                "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} (tenant, subject) WHERE destroyed_at IS NULL"
            ).format(self.active_index, self.table),
        ]

    def active(self, curs: Cursor, subjects: Sequence[tuple[str, str]]) -> dict[tuple[str, str], DataKey]:
        """The active key of each of these subjects, creating one where a subject has none."""
        curs.execute(
            SQL(
                "SELECT k.key_id, k.tenant, k.subject, k.wrapped FROM {} k "
                "JOIN unnest(%b::text[], %b::text[]) AS s(tenant, subject) "
                "ON k.tenant = s.tenant AND k.subject = s.subject WHERE k.destroyed_at IS NULL"
            ).format(self.table),
            ([s[0] for s in subjects], [s[1] for s in subjects]),
        )
        found = {
            (row["tenant"], row["subject"]): DataKey(
                row["key_id"],
                self.master.unwrap(
                    row["wrapped"], wrap_context(row["tenant"], row["subject"], row["key_id"])
                ),
            )
            for row in curs.fetchall()
        }
        missing = [pair for pair in dict.fromkeys(subjects) if pair not in found]
        created = {pair: DataKey(uuid4(), new_data_key()) for pair in missing}
        if created:
            rows = [
                (
                    key.key_id,
                    tenant,
                    subject,
                    self.master.wrap(key.secret, wrap_context(tenant, subject, key.key_id)),
                )
                for (tenant, subject), key in created.items()
            ]
            curs.execute(
                SQL(
                    "INSERT INTO {} (key_id, tenant, subject, wrapped, kek_id) "
                    "SELECT *, %s FROM unnest(%b::uuid[], %b::text[], %b::text[], %b::bytea[])"
                ).format(self.table),
                (self.master.key_id, *(list(column) for column in zip(*rows, strict=True))),
            )
        return found | created

    def for_subject(self, curs: Cursor, tenant: str, subject: str) -> dict[UUID, bytes | None]:
        """Every key the subject ever had: unwrapped, or None where destroyed."""
        curs.execute(
            SQL("SELECT key_id, wrapped FROM {} WHERE tenant = %s AND subject = %s").format(self.table),
            (tenant, subject),
        )
        return {
            row["key_id"]: None
            if row["wrapped"] is None
            else self.master.unwrap(row["wrapped"], wrap_context(tenant, subject, row["key_id"]))
            for row in curs.fetchall()
        }

    def destroy(self, curs: Cursor, tenant: str, subject: str) -> list[UUID]:
        """Shred the subject's active key; return the ids of the keys destroyed."""
        curs.execute(
            SQL(
                "UPDATE {} SET wrapped = NULL, kek_id = NULL, destroyed_at = now() "
                "WHERE tenant = %s AND subject = %s AND destroyed_at IS NULL RETURNING key_id"
            ).format(self.table),
            (tenant, subject),
        )
        return [row["key_id"] for row in curs.fetchall()]

    def rewrap(self, curs: Cursor, new: MasterKey) -> int:
        """Re-wrap every live data key from this store's master key to `new`; events are untouched."""
        curs.execute(
            SQL(
                "SELECT key_id, tenant, subject, wrapped FROM {} WHERE wrapped IS NOT NULL FOR UPDATE"
            ).format(self.table)
        )
        rewrapped = []
        for row in curs.fetchall():
            context = wrap_context(row["tenant"], row["subject"], row["key_id"])
            rewrapped.append((row["key_id"], new.wrap(self.master.unwrap(row["wrapped"], context), context)))
        if rewrapped:
            curs.execute(
                SQL(
                    "UPDATE {} k SET wrapped = r.wrapped, kek_id = %s "
                    "FROM unnest(%b::uuid[], %b::bytea[]) AS r(key_id, wrapped) WHERE k.key_id = r.key_id"
                ).format(self.table),
                (new.key_id, [r[0] for r in rewrapped], [r[1] for r in rewrapped]),
            )
        return len(rewrapped)
