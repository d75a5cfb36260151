"""The record of retention sweeps: one row for every sweep that ran, whether it ordered anything or not.

Orders alone say when a sweep last found something to purge; they cannot tell a scheduler that
stopped from one that runs and finds nothing. Each sweep therefore records when it ran (its clock, and
when it finished), how many purges it ordered for each tenant and how many subjects it failed on. The
row is written by whichever scheduler process swept and read by every other process (`stats`, the
HTTP API's `/metrics`, the console), so it lives in PostgreSQL. Every function runs in the caller's
transaction.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier
from psycopg.types.json import Jsonb

from ledger.times import rfc3339

Cursor = psycopg.Cursor[DictRow]


@dataclass(frozen=True)
class SweepRecord:
    """One sweep: as of when, when it finished, purges ordered per tenant, subjects it failed on."""

    at: datetime  # the sweep's clock: the instant it swept as of
    finished_at: datetime
    orders: Mapping[str, int]  # tenant -> purge orders made (tenants it ordered nothing for are absent)
    failed: int

    @property
    def ordered(self) -> int:
        """Purge orders made, over every tenant."""
        return sum(self.orders.values())

    def as_json(self, tenant: str | None = None) -> dict[str, Any]:
        """The record as `stats --json` gives it; for one tenant, its orders alone and nothing that
        counts other tenants' subjects (a sweep covers every tenant, so its times are each one's)."""
        when = {"at": rfc3339(self.at), "finished_at": rfc3339(self.finished_at)}
        if tenant is not None:
            return when | {"ordered": self.orders.get(tenant, 0)}
        return when | {"ordered": self.ordered, "orders": dict(self.orders), "failed": self.failed}


@dataclass(frozen=True)
class SweepSummary:
    """What the record says about sweeps: how many ran, the last one, and the last that ordered."""

    sweeps: int
    last: SweepRecord | None
    last_ordered: SweepRecord | None  # the newest sweep that ordered at least one purge (of the tenant)

    def as_json(self, tenant: str | None = None) -> dict[str, Any]:
        """`last_sweep` and `last_sweep_ordered` (null: none yet) as `stats --json` gives them."""
        return {
            "sweeps": self.sweeps,
            "last_sweep": None if self.last is None else self.last.as_json(tenant),
            "last_sweep_ordered": None if self.last_ordered is None else self.last_ordered.as_json(tenant),
        }


class SweepLog:
    """SQL for the record of sweeps."""

    def __init__(self, schema: str, table: str) -> None:
        self.table = Identifier(schema, table)

    def create_statement(self) -> Composed:
        """The table of sweeps, in the order they finished."""
        return SQL(
            "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, swept_at timestamptz NOT NULL, "
            "finished_at timestamptz NOT NULL, orders jsonb NOT NULL, ordered integer NOT NULL, "
            "failed integer NOT NULL)"
        ).format(self.table)

    def record(self, curs: Cursor, sweep: SweepRecord) -> None:
        """Record a sweep that ran."""
        curs.execute(
            SQL(
                "INSERT INTO {} (swept_at, finished_at, orders, ordered, failed) VALUES (%s, %s, %s, %s, %s)"
            ).format(self.table),
            (sweep.at, sweep.finished_at, Jsonb(dict(sweep.orders)), sweep.ordered, sweep.failed),
        )

    def summary(self, curs: Cursor, tenant: str | None = None) -> SweepSummary:
        """How many sweeps ran, the newest, and the newest that ordered a purge (for `tenant`: of its).

        Newest by when it was recorded, not by its clock, which a caller (a test) may set."""
        curs.execute(SQL("SELECT count(*) AS sweeps FROM {}").format(self.table))
        counted = curs.fetchone()
        assert counted is not None  # an aggregate without GROUP BY always answers one row
        newest = SQL("SELECT swept_at, finished_at, orders, failed FROM {} {} ORDER BY id DESC LIMIT 1")
        curs.execute(newest.format(self.table, SQL("")))
        last = curs.fetchone()
        ordering = SQL("WHERE ordered > 0") if tenant is None else SQL("WHERE orders ? %s")
        curs.execute(newest.format(self.table, ordering), () if tenant is None else (tenant,))
        last_ordered = curs.fetchone()
        return SweepSummary(counted["sweeps"], _record(last), _record(last_ordered))


def _record(row: DictRow | None) -> SweepRecord | None:
    if row is None:
        return None
    return SweepRecord(row["swept_at"], row["finished_at"], row["orders"], row["failed"])
