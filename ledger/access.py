"""Who may ask the ledger what: API keys per tenant with a role, and the log of personal-data reads.

A key is shown once, when it is created, and stored only as the SHA-256 of its text: it is 32 random
bytes, so a hash is enough (no salt or slow hash is needed against guessing). The access log is
append-only: a trigger refuses every UPDATE and DELETE, so a reader cannot erase the trace of a read.
A console session (a sign-in with a key) is stored the same way, as the hash of its random token, and
lives only as long as its key: revoking the key ends its sessions at once, in every server process.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from ledger.errors import UsageError

Cursor = psycopg.Cursor[DictRow]

PUBLISHER = "publisher"  # POST events
CHECKER = "checker"  # may this subject be contacted (one or many)
AUDITOR = "auditor"  # every read of its tenant
ADMIN = "admin"  # every tenant, verify, key management
ROLES = (PUBLISHER, CHECKER, AUDITOR, ADMIN)
SESSION_HOURS = 12  # a sign-in lasts a working day at most
PREFIX = "clk"  # consent-ledger key: `clk_<id>_<secret>`, so a leaked key is recognisable in a scan


@dataclass(frozen=True)
class ApiKey:
    """A key as stored: never its text, only who holds it and what it may do."""

    key_id: str
    tenant: str | None  # None: an admin key, for every tenant
    role: str
    created_at: datetime
    revoked_at: datetime | None

    def sees(self, tenant: str) -> bool:
        """Whether this key may see anything of `tenant` at all."""
        return self.tenant is None or self.tenant == tenant


@dataclass(frozen=True)
class Access:
    """One read of a subject's personal data: who, which subject, through which endpoint, when."""

    at: datetime
    key_id: str
    role: str
    tenant: str
    subject: str
    endpoint: str


@dataclass(frozen=True)
class Session:
    """A signed-in console: the key it was opened with and the token its forms must carry."""

    key: ApiKey
    csrf: str
    expires_at: datetime


def digest(text: str) -> str:
    """What is stored of a key: the hex SHA-256 of its text."""
    return hashlib.sha256(text.encode()).hexdigest()


class ApiKeys:
    """SQL for the key table; every function runs in the caller's transaction."""

    def __init__(self, schema: str, table: str) -> None:
        self.table = Identifier(schema, table) if schema else Identifier(table)

    def create_statement(self) -> Composed:
        """The key table: id, holder, role, the hash of the text, when created and revoked."""
        return SQL(
            "CREATE TABLE IF NOT EXISTS {} (key_id text PRIMARY KEY, tenant text, role text NOT NULL, "
            "hash text NOT NULL UNIQUE, created_at timestamptz NOT NULL DEFAULT now(), "
            "revoked_at timestamptz)"
        ).format(self.table)

    def create(self, curs: Cursor, tenant: str | None, role: str) -> tuple[ApiKey, str]:
        """A new key for `tenant` (None for an admin key) with `role`; returns it and its text."""
        if role not in ROLES:
            raise UsageError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
        if (role == ADMIN) != (tenant is None):
            raise UsageError(
                "an admin key is for every tenant: leave out --tenant"
                if role == ADMIN
                else f"a {role} key belongs to one tenant: give --tenant"
            )
        key_id = secrets.token_hex(6)
        text = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        curs.execute(
            SQL("INSERT INTO {} (key_id, tenant, role, hash) VALUES (%s, %s, %s, %s) RETURNING *").format(
                self.table
            ),
            (key_id, tenant, role, digest(text)),
        )
        row = curs.fetchone()
        assert row is not None
        return key_of(row), text

    def find(self, curs: Cursor, text: str) -> ApiKey | None:
        """The live key whose text this is, or None (unknown or revoked)."""
        curs.execute(
            SQL("SELECT * FROM {} WHERE hash = %s AND revoked_at IS NULL").format(self.table),
            (digest(text),),
            prepare=True,
        )
        row = curs.fetchone()
        return None if row is None else key_of(row)

    def all(self, curs: Cursor) -> list[ApiKey]:
        """Every key ever created, revoked ones too, oldest first."""
        curs.execute(SQL("SELECT * FROM {} ORDER BY created_at, key_id").format(self.table))
        return [key_of(row) for row in curs.fetchall()]

    def revoke(self, curs: Cursor, key_id: str) -> ApiKey:
        """Revoke a key from now on (again is a no-op); an unknown id is a usage error."""
        curs.execute(
            SQL(
                "UPDATE {} SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = %s RETURNING *"
            ).format(self.table),
            (key_id,),
        )
        row = curs.fetchone()
        if row is None:
            raise UsageError(f"no API key with id {key_id!r}: `consent-ledger keys list` shows them")
        return key_of(row)


class AccessLog:
    """SQL for the append-only log of reads of personal data."""

    def __init__(self, schema: str, table: str) -> None:
        self.name = table
        self.table = Identifier(schema, table) if schema else Identifier(table)

    def create_statements(self) -> list[Composed]:
        """The log table, and a trigger that refuses to change or delete a row of it."""
        guard = Identifier(f"{self.name}_append_only")
        return [
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, "
                "at timestamptz NOT NULL DEFAULT clock_timestamp(), key_id text NOT NULL, "
                "role text NOT NULL, tenant text NOT NULL, subject text NOT NULL, endpoint text NOT NULL)"
            ).format(self.table),
            SQL("CREATE INDEX IF NOT EXISTS {} ON {} (tenant, subject, id)").format(
                Identifier(f"{self.name}_subject"), self.table
            ),
            SQL("CREATE INDEX IF NOT EXISTS {} ON {} (tenant, id)").format(
                Identifier(f"{self.name}_tenant"), self.table
            ),
            SQL(
                "CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION 'the access log is append-only'; END $$"
            ).format(guard),
            SQL(
                "CREATE OR REPLACE TRIGGER {} BEFORE UPDATE OR DELETE OR TRUNCATE ON {} "
                "FOR EACH STATEMENT EXECUTE FUNCTION {}()"
            ).format(guard, self.table, guard),
        ]

    def record(self, curs: Cursor, key: ApiKey, tenant: str, subject: str, endpoint: str) -> None:
        """Note that `key` read the personal data of this subject through `endpoint`."""
        curs.execute(
            SQL(
                "INSERT INTO {} (key_id, role, tenant, subject, endpoint) VALUES (%s, %s, %s, %s, %s)"
            ).format(self.table),
            (key.key_id, key.role, tenant, subject, endpoint),
        )

    def read(self, curs: Cursor, tenant: str, subject: str | None = None) -> list[Access]:
        """Every recorded read of the tenant's subjects (or of one), oldest first."""
        curs.execute(
            SQL(
                "SELECT at, key_id, role, tenant, subject, endpoint FROM {} "
                "WHERE tenant = %s AND (%s::text IS NULL OR subject = %s) ORDER BY id"
            ).format(self.table),
            (tenant, subject, subject),
        )
        return [Access(**row) for row in curs.fetchall()]

    def latest(self, curs: Cursor, tenant: str, before: int | None, limit: int) -> list[tuple[int, Access]]:
        """Up to `limit` of the tenant's recorded reads, newest first, each with its number; from
        before number `before` when given (keyset: an index range scan, however long the log)."""
        curs.execute(
            SQL(
                "SELECT id, at, key_id, role, tenant, subject, endpoint FROM {} "
                "WHERE tenant = %s AND (%s::bigint IS NULL OR id < %s) ORDER BY id DESC LIMIT %s"
            ).format(self.table),
            (tenant, before, before, limit),
        )
        return [(row.pop("id"), Access(**row)) for row in curs.fetchall()]


class Sessions:
    """SQL for console sessions; every function runs in the caller's transaction."""

    def __init__(self, schema: str, table: str, keys: ApiKeys) -> None:
        self.table = Identifier(schema, table) if schema else Identifier(table)
        self.keys = keys

    def create_statement(self) -> Composed:
        """The session table: the hash of the token, the key, the form token, when it ends."""
        return SQL(
            "CREATE TABLE IF NOT EXISTS {} (hash text PRIMARY KEY, key_id text NOT NULL, "
            "csrf text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), "
            "expires_at timestamptz NOT NULL)"
        ).format(self.table)

    def open(self, curs: Cursor, key: ApiKey) -> str:
        """A new session of `key`; returns its token (only its hash is stored). Ended sessions go."""
        curs.execute(SQL("DELETE FROM {} WHERE expires_at < now()").format(self.table))
        token = secrets.token_urlsafe(32)
        curs.execute(
            SQL(
                "INSERT INTO {} (hash, key_id, csrf, expires_at) "
                "VALUES (%s, %s, %s, now() + make_interval(hours => %s))"
            ).format(self.table),
            (digest(token), key.key_id, secrets.token_urlsafe(32), SESSION_HOURS),
        )
        return token

    def find(self, curs: Cursor, token: str) -> Session | None:
        """The live session of this token, or None (unknown, ended, or its key revoked)."""
        curs.execute(
            SQL(
                "SELECT k.*, s.csrf, s.expires_at AS session_expires_at FROM {} s JOIN {} k "
                "ON k.key_id = s.key_id WHERE s.hash = %s AND s.expires_at > now() "
                "AND k.revoked_at IS NULL"
            ).format(self.table, self.keys.table),
            (digest(token),),
            prepare=True,
        )
        row = curs.fetchone()
        return None if row is None else Session(key_of(row), row["csrf"], row["session_expires_at"])

    def close(self, curs: Cursor, token: str) -> None:
        """End the session of this token (an unknown one is a no-op)."""
        curs.execute(SQL("DELETE FROM {} WHERE hash = %s").format(self.table), (digest(token),))


def key_of(row: DictRow) -> ApiKey:
    """The key a row of the key table (or a statement selecting its columns) describes."""
    return ApiKey(row["key_id"], row["tenant"], row["role"], row["created_at"], row["revoked_at"])
