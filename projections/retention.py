"""Retention across a whole ledger: which holdings have expired and must be purged."""

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from psycopg.sql import SQL

from ledger.retention import Clock, Due, Rule, due_purges, load_policy, parse_policy, request_clocks
from ledger.state import SubjectState
from ledger.store import Ledger
from projections import tables

PAGE = 2000


def rules_in_force(ledger: Ledger, configured: Path | None, at: datetime) -> list[Rule]:
    """The retention rules in force at `at`: the adopted policy, else the configured file."""
    adopted = ledger.policy().at(at)
    if adopted is None:
        return load_policy(configured)
    return parse_policy(adopted.document, f"adopted policy {adopted.digest[:16]}")


def expired(ledger: Ledger, rules: list[Rule], now: datetime, tenant: str | None = None) -> list[Due]:
    """Every holding, of every subject (of one tenant, if given), that is due for purge at `now`."""
    return [due for state in _states(ledger, tenant) for due in due_purges(state, rules, now)]


def overdue(ledger: Ledger, tenant: str, now: datetime, warn: timedelta) -> list[Clock]:
    """The tenant's open rights requests past their 30-day deadline, or within `warn` of it."""
    return [
        clock
        for state in _states(ledger, tenant, OPEN_REQUESTS)
        for clock in request_clocks(state, now, warn)
    ]


HELD_HOLDINGS = SQL("SELECT DISTINCT tenant, subject FROM proj_holdings WHERE status = 'held'")
OPEN_REQUESTS = SQL("SELECT DISTINCT tenant, subject FROM proj_deletion_requests WHERE status = 'open'")


def _states(ledger: Ledger, tenant: str | None, which: SQL = HELD_HOLDINGS) -> Iterator[SubjectState]:
    """Every projected subject that `which` selects, read in pages."""
    after = ("", "")
    while True:
        with ledger.writer.datastore.transaction() as curs:
            curs.execute(
                which
                + SQL(
                    " AND (tenant, subject) > (%s, %s) AND (%s::text IS NULL OR tenant = %s) "
                    "ORDER BY tenant, subject LIMIT %s"
                ),
                (*after, tenant, tenant, PAGE),
            )
            keys = [(row["tenant"], row["subject"]) for row in curs.fetchall()]
            if not keys:
                return
            states = tables.load(curs, keys)
        yield from (states[key] for key in keys)
        after = keys[-1]


def unconfirmed_orders(
    ledger: Ledger, tenant: str, now: datetime, confirm_days: int
) -> list[dict[str, object]]:
    """The tenant's purge orders sent more than `confirm_days` before `now` and still unconfirmed."""
    with ledger.writer.datastore.transaction() as curs:
        return ledger.orders.overdue(curs, tenant, now - timedelta(days=confirm_days))
