"""Purge orders: one per expired (subject, system) holding, recorded before it is sent, confirmed later.

An order's id is derived from what it orders, so a sweep that runs twice, or again after a crash,
finds the order already recorded and orders nothing twice. While a holding (tenant, subject, system,
category) has an open order, it is not ordered again, whatever a new policy says about its expiry:
the order stands until the system confirms. Every function runs in the caller's transaction.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

import psycopg
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from ledger.retention import Due
from ledger.times import rfc3339

Cursor = psycopg.Cursor[DictRow]


@dataclass(frozen=True)
class PurgeOrder:
    """Delete these categories of this subject in this system (and confirm with deletion.completed)."""

    order_id: UUID
    tenant: str
    subject: str
    system: str
    categories: list[str]
    rule: str
    expired_at: datetime
    resend: int = 0
    overdue: bool = False


HoldingKey = tuple[str, str, str, str]  # tenant, subject, system, category


@dataclass(frozen=True)
class OpenOrder:
    """An order recorded for a holding and not yet confirmed."""

    order_id: UUID
    ordered_at: datetime
    overdue: bool  # sent, and unconfirmed for longer than LEDGER_PURGE_CONFIRM_DAYS

    def note(self) -> str:
        """What a person reads beside the holding."""
        ordered = rfc3339(self.ordered_at)
        return f"purge ordered {ordered}, awaiting confirmation" + (", overdue" if self.overdue else "")


def due_key(item: Due) -> HoldingKey:
    """The holding a due purge is about."""
    return (item.tenant, item.subject, item.system, item.category)


def orders_for(
    due: Sequence[Due], open_orders: Mapping[HoldingKey, OpenOrder] | None = None
) -> list[PurgeOrder]:
    """One order per (tenant, subject, system), naming every expired category held there that no
    open order covers already."""
    grouped: dict[tuple[str, str, str], list[Due]] = {}
    for item in due:
        if due_key(item) not in (open_orders or {}):
            grouped.setdefault((item.tenant, item.subject, item.system), []).append(item)
    orders = []
    for (tenant, subject, system), items in sorted(grouped.items()):
        categories = sorted({item.category for item in items})
        expired_at = max(item.expires_at for item in items)
        identity = f"{tenant}/{subject}/{system}/{','.join(categories)}/{expired_at.isoformat()}"
        order_id = uuid5(NAMESPACE_URL, f"urn:consent-ledger:purge:{identity}")
        rule = ",".join(sorted({item.rule for item in items}))
        orders.append(PurgeOrder(order_id, tenant, subject, system, categories, rule, expired_at))
    return orders


# An open order (alias o) whose holdings the read model no longer shows held.
_GONE = SQL(
    "o.confirmed_at IS NULL AND NOT EXISTS ("
    "SELECT 1 FROM proj_holdings h WHERE h.tenant = o.tenant AND h.subject = o.subject "
    "AND h.system = o.system AND h.category = ANY(o.categories) AND h.status = 'held') "
    "AND NOT EXISTS (SELECT 1 FROM proj_intervals i WHERE i.tenant = o.tenant "
    "AND i.subject = o.subject AND i.system = o.system AND i.category = ANY(o.categories) "
    "AND i.held_until IS NULL)"
)


class OrderBook:
    """SQL for the purge-order table."""

    def __init__(self, schema: str, table: str) -> None:
        self.table = Identifier(schema, table)

    def create_statement(self) -> Composed:
        """The table of orders: recorded, sent, re-sent, confirmed."""
        return SQL(
            "CREATE TABLE IF NOT EXISTS {} (order_id uuid PRIMARY KEY, tenant text NOT NULL, "
            "subject text NOT NULL, system text NOT NULL, categories text[] NOT NULL, rule text NOT NULL, "
            "expired_at timestamptz NOT NULL, ordered_at timestamptz NOT NULL, sent_at timestamptz, "
            "resend integer NOT NULL DEFAULT 0, confirmed_at timestamptz)"
        ).format(self.table)

    def record(self, curs: Cursor, orders: Sequence[PurgeOrder], now: datetime) -> set[UUID]:
        """Record the orders not recorded before; return their ids."""
        recorded: set[UUID] = set()
        statement = SQL(
            "INSERT INTO {} (order_id, tenant, subject, system, categories, rule, expired_at, ordered_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING order_id"
        ).format(self.table)
        for o in orders:
            curs.execute(
                statement,
                (o.order_id, o.tenant, o.subject, o.system, o.categories, o.rule, o.expired_at, now),
            )
            recorded.update(row["order_id"] for row in curs.fetchall())
        return recorded

    def to_send(self, curs: Cursor, now: datetime, confirm_within: datetime) -> list[PurgeOrder]:
        """Orders never sent, and orders sent before `confirm_within` that nobody confirmed (overdue)."""
        curs.execute(
            SQL(
                "SELECT * FROM {} WHERE confirmed_at IS NULL AND (sent_at IS NULL OR sent_at < %s) "
                "ORDER BY ordered_at, order_id"
            ).format(self.table),
            (confirm_within,),
        )
        return [_order(row) for row in curs.fetchall()]

    def mark_sent(self, curs: Cursor, orders: Sequence[PurgeOrder], now: datetime) -> None:
        """Record that these orders went out (again)."""
        curs.execute(
            SQL(
                "UPDATE {} o SET sent_at = %s, resend = s.resend FROM unnest(%b::uuid[], %b::int[]) "
                "AS s(order_id, resend) WHERE o.order_id = s.order_id"
            ).format(self.table),
            (now, [o.order_id for o in orders], [o.resend for o in orders]),
        )

    def confirmable(self, curs: Cursor) -> list[tuple[str, str]]:
        """The (tenant, subject) pairs `confirm` would confirm an order of now."""
        curs.execute(
            SQL("SELECT DISTINCT tenant, subject FROM {} o WHERE {} ORDER BY tenant, subject").format(
                self.table, _GONE
            )
        )
        return [(row["tenant"], row["subject"]) for row in curs.fetchall()]

    def confirm(self, curs: Cursor, now: datetime) -> list[tuple[str, str]]:
        """Confirm every open order none of whose categories the read model shows held in its system
        (or, for a recipient, still held there since it was shared); return the (tenant, subject)
        pairs confirmed."""
        curs.execute(
            SQL("UPDATE {} o SET confirmed_at = %s WHERE {} RETURNING tenant, subject").format(
                self.table, _GONE
            ),
            (now,),
        )
        return sorted({(row["tenant"], row["subject"]) for row in curs.fetchall()})

    def open_orders(
        self, curs: Cursor, confirm_within: datetime, tenant: str | None = None, subject: str | None = None
    ) -> dict[HoldingKey, OpenOrder]:
        """Every holding (of a tenant, of a subject) with an open order; overdue when it was sent
        before `confirm_within`."""
        curs.execute(
            SQL(
                "SELECT order_id, tenant, subject, system, unnest(categories) AS category, ordered_at, "
                "sent_at < %s AS overdue FROM {} WHERE confirmed_at IS NULL "
                "AND (%s::text IS NULL OR tenant = %s) AND (%s::text IS NULL OR subject = %s)"
            ).format(self.table),
            (confirm_within, tenant, tenant, subject, subject),
        )
        return {
            (row["tenant"], row["subject"], row["system"], row["category"]): OpenOrder(
                row["order_id"], row["ordered_at"], bool(row["overdue"])
            )
            for row in curs.fetchall()
        }

    def counts(self, curs: Cursor, confirm_within: datetime) -> dict[str, int]:
        """Over every tenant: orders not yet confirmed (`open`), those of them sent before
        `confirm_within` (`overdue`), and orders confirmed (`confirmed`)."""
        curs.execute(
            SQL(
                "SELECT count(*) FILTER (WHERE confirmed_at IS NULL) AS open, "
                "count(*) FILTER (WHERE confirmed_at IS NOT NULL) AS confirmed, "
                "count(*) FILTER (WHERE confirmed_at IS NULL AND sent_at < %s) AS overdue FROM {}"
            ).format(self.table),
            (confirm_within,),
        )
        row = curs.fetchone()
        assert row is not None  # an aggregate without GROUP BY always answers one row
        return {"open": row["open"], "confirmed": row["confirmed"], "overdue": row["overdue"]}

    def made(self, curs: Cursor) -> int:
        """Over every tenant: how many orders were ever made (when the last was: ledger/sweeps.py)."""
        curs.execute(SQL("SELECT count(*) AS made FROM {}").format(self.table))
        row = curs.fetchone()
        assert row is not None  # an aggregate without GROUP BY always answers one row
        return int(row["made"])

    def overdue(self, curs: Cursor, tenant: str, confirm_within: datetime) -> list[dict[str, object]]:
        """The tenant's orders sent before `confirm_within` and still unconfirmed."""
        curs.execute(
            SQL(
                "SELECT order_id, subject, system, categories, ordered_at, sent_at, resend FROM {} "
                "WHERE tenant = %s AND confirmed_at IS NULL AND sent_at < %s ORDER BY ordered_at"
            ).format(self.table),
            (tenant, confirm_within),
        )
        return list(curs.fetchall())


def _order(row: DictRow) -> PurgeOrder:
    """An order read back for sending: a re-send if it went out before."""
    again = row["sent_at"] is not None
    return PurgeOrder(
        order_id=row["order_id"],
        tenant=row["tenant"],
        subject=row["subject"],
        system=row["system"],
        categories=list(row["categories"]),
        rule=row["rule"],
        expired_at=row["expired_at"],
        resend=row["resend"] + again,
        overdue=again,
    )
