"""One tenant at a glance: its size, the clocks that are running, when the retention sweep last ran
(and last ordered a purge of the tenant's), its dead letters, and when its log was last proven.

Every figure is one aggregate query over an indexed table or a short list ordered by urgency; the
rights requests are counted and ordered by their deadlines in SQL (`projections.deadlines`), and only
the few shown get their clocks in Python. None of it loads the tenant.
"""

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from psycopg.rows import DictRow
from psycopg.sql import SQL

from ledger.audit import Verification, last_verification
from ledger.checkpoints import TreeHead, latest_head
from ledger.deadletters import Selection
from ledger.rights import RightsClock, clock, deadline_rules
from ledger.state import Holding, RightsRequest, SubjectState
from ledger.store import Ledger
from ledger.sweeps import SweepSummary
from projections import tables
from projections.deadlines import open_requests

SHOWN = 10  # the most urgent requests and orders listed; the counts cover all of them


@dataclass(frozen=True)
class Overview:
    """What the tenant's overview shows."""

    tenant: str
    subjects: int
    events: int
    requests_open: int
    requests_overdue: int
    soonest_requests: list[RightsClock]
    orders_open: int
    orders_overdue: int
    oldest_orders: list[dict[str, Any]]
    sweeps: SweepSummary  # the last sweep, and the last that ordered a purge of this tenant's
    dead_letters: dict[str, dict[str, int]]  # per reason class: open, replayed, dropped
    last_checkpoint: TreeHead | None
    last_verification: Verification | None


def overview(ledger: Ledger, tenant: str, now: datetime, confirm_days: int) -> Overview:
    """The tenant's overview at `now` (purge orders are overdue `confirm_days` after they were sent)."""
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
        dead_letters = ledger.deadletters.counts(curs, Selection(tenant=tenant))
        sweeps = ledger.sweeps.summary(curs, tenant)
        requests = open_requests(curs, tenant, now, deadline_rules(), SHOWN)
        soonest = _clocks(curs, tenant, requests.soonest, now)
    return Overview(
        tenant=tenant,
        subjects=counted["subjects"],
        events=counted["events"],
        requests_open=requests.open,
        requests_overdue=requests.overdue,
        soonest_requests=soonest,
        orders_open=orders["open"],
        orders_overdue=orders["overdue"],
        oldest_orders=oldest_orders,
        sweeps=sweeps,
        dead_letters=dead_letters,
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


def _clocks(curs: tables.Cursor, tenant: str, rows: list[DictRow], now: datetime) -> list[RightsClock]:
    """The clocks of these open requests, soonest due first, from the two things a clock reads: the
    request and its subject's holdings (for its jurisdiction)."""
    states: dict[str, SubjectState] = {}
    for row in rows:
        state = states.setdefault(row["subject"], SubjectState(tenant=tenant, subject=row["subject"]))
        state.rights_requests[row["request_id"]] = RightsRequest(**_fields(RightsRequest, row))
    curs.execute(
        "SELECT * FROM proj_holdings WHERE tenant = %s AND subject = ANY(%s) AND jurisdiction IS NOT NULL",
        (tenant, list(states)),
    )
    for row in curs.fetchall():
        states[row["subject"]].holdings[(row["category"], row["system"])] = Holding(**_fields(Holding, row))
    rules = deadline_rules()
    found = [
        found
        for state in states.values()
        for request in state.rights_requests.values()
        if (found := clock(state, request, now, rules)) is not None
    ]
    return sorted(found, key=lambda c: (c.deadline, c.subject, c.request_id))


def _fields(kind: type[Any], row: dict[str, Any]) -> dict[str, Any]:
    return {item.name: row[item.name] for item in fields(kind)}
