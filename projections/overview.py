"""One tenant at a glance: its size, the clocks that are running, and when its log was last proven.

Every figure is one aggregate query over an indexed table (or a short list ordered by urgency), so
the overview costs the same whether the tenant has a hundred subjects or a million.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg.sql import SQL

from ledger.audit import Verification, last_verification
from ledger.checkpoints import TreeHead, latest_head
from ledger.retention import RIGHTS_DEADLINE, shifted
from ledger.store import Ledger
from projections import tables

SHOWN = 10  # the most urgent requests and orders listed; the counts cover all of them


@dataclass(frozen=True)
class RequestClock:
    """An open deletion request and its 30-day clock."""

    subject: str
    request_id: str
    requested_at: datetime
    deadline: datetime
    overdue: bool


@dataclass(frozen=True)
class Overview:
    """What the tenant's overview shows."""

    tenant: str
    subjects: int
    events: int
    requests_open: int
    requests_overdue: int
    oldest_requests: list[RequestClock]
    orders_open: int
    orders_overdue: int
    oldest_orders: list[dict[str, Any]]
    last_checkpoint: TreeHead | None
    last_verification: Verification | None


def overview(ledger: Ledger, tenant: str, now: datetime, confirm_days: int) -> Overview:
    """The tenant's overview at `now` (purge orders are overdue `confirm_days` after they were sent)."""
    overdue_before = shifted(now, -RIGHTS_DEADLINE)
    confirm_within = now - timedelta(days=confirm_days)
    with ledger.writer.datastore.transaction() as curs:
        # Counted for this tenant alone, each an index-only range scan of its primary key.
        curs.execute(
            SQL(
                "SELECT (SELECT count(*) FROM {} WHERE tenant = %s) AS subjects, "
                "(SELECT count(*) FROM {} WHERE tenant = %s) AS events"
            ).format(tables.SUBJECTS, ledger.writer.receipts),
            (tenant, tenant),
        )
        counted = curs.fetchone() or {"subjects": 0, "events": 0}
        curs.execute(
            SQL(
                "SELECT count(*) AS open, count(*) FILTER (WHERE requested_at < %s) AS overdue "
                "FROM proj_deletion_requests WHERE tenant = %s AND status = 'open'"
            ),
            (overdue_before, tenant),
        )
        requests = curs.fetchone() or {"open": 0, "overdue": 0}
        curs.execute(
            SQL(
                "SELECT subject, request_id, requested_at FROM proj_deletion_requests "
                "WHERE tenant = %s AND status = 'open' ORDER BY requested_at, subject LIMIT %s"
            ),
            (tenant, SHOWN),
        )
        oldest = [
            RequestClock(
                row["subject"],
                row["request_id"],
                row["requested_at"],
                shifted(row["requested_at"], RIGHTS_DEADLINE),
                shifted(row["requested_at"], RIGHTS_DEADLINE) < now,
            )
            for row in curs.fetchall()
        ]
        curs.execute(
            SQL(
                "SELECT count(*) AS open, count(*) FILTER (WHERE sent_at < %s) AS overdue FROM {} "
                "WHERE tenant = %s AND confirmed_at IS NULL"
            ).format(ledger.orders.table),
            (confirm_within, tenant),
        )
        orders = curs.fetchone() or {"open": 0, "overdue": 0}
        curs.execute(
            SQL(
                "SELECT order_id, subject, system, categories, ordered_at, sent_at, "
                "sent_at < %s AS overdue FROM {} WHERE tenant = %s AND confirmed_at IS NULL "
                "ORDER BY ordered_at, order_id LIMIT %s"
            ).format(ledger.orders.table),
            (confirm_within, tenant, SHOWN),
        )
        oldest_orders = list(curs.fetchall())
    return Overview(
        tenant=tenant,
        subjects=counted["subjects"],
        events=counted["events"],
        requests_open=requests["open"],
        requests_overdue=requests["overdue"],
        oldest_requests=oldest,
        orders_open=orders["open"],
        orders_overdue=orders["overdue"],
        oldest_orders=oldest_orders,
        last_checkpoint=latest_head(ledger),
        last_verification=last_verification(ledger),
    )


def subjects_page(ledger: Ledger, tenant: str, start: str, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` of the tenant's subjects from id `start` on, in id order (keyset: one index range
    scan, however far into the tenant), with when each was last seen and whether it was erased."""
    with ledger.writer.datastore.transaction() as curs:
        curs.execute(
            SQL(
                "SELECT subject, first_seen, last_event_at, erased FROM {} "
                "WHERE tenant = %s AND subject >= %s ORDER BY subject LIMIT %s"
            ).format(tables.SUBJECTS),
            (tenant, start, limit),
        )
        return list(curs.fetchall())
