"""Retention across a whole ledger: which holdings have expired and must be purged."""

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from psycopg.sql import SQL

from ledger.purges import HoldingKey, OpenOrder, due_key
from ledger.retention import Clock, Due, Rule, due_purges, load_policy, parse_policy, request_clocks
from ledger.retry import Skipped
from ledger.state import SubjectState
from ledger.store import Ledger
from projections import tables
from projections.queries import order_fields, plain

PAGE = 2000


def rules_in_force(ledger: Ledger, configured: Path | None, at: datetime) -> list[Rule]:
    """The retention rules in force at `at`: the adopted policy, else the configured file."""
    adopted = ledger.policy().at(at)
    if adopted is None:
        return load_policy(configured)
    return parse_policy(adopted.document, f"adopted policy {adopted.digest[:16]}")


def expired(
    ledger: Ledger,
    rules: list[Rule],
    now: datetime,
    tenant: str | None = None,
    skipped: Skipped | None = None,
) -> list[Due]:
    """Every holding, of every subject (of one tenant, if given), that is due for purge at `now`.

    A subject that cannot be read or evaluated is left out and noted in `skipped`; the rest are listed.
    """
    skipped = skipped or Skipped()
    due: list[Due] = []
    for state in _states(ledger, tenant, skipped):
        found = skipped.guard("expiry", state.tenant, state.subject, lambda: due_purges(state, rules, now))  # noqa: B023 - called at once
        due.extend(found or [])
    return due


@dataclass(frozen=True)
class DuePurge:
    """A holding due for purge, and the open order that covers it already, if one does."""

    due: Due
    order: OpenOrder | None

    def as_json(self) -> dict[str, Any]:
        """A row of `purge --dry-run --json`."""
        row: dict[str, Any] = plain(asdict(self.due))
        return row | order_fields(self.order)


def due_for_purge(
    ledger: Ledger,
    rules: list[Rule],
    now: datetime,
    confirm_days: int,
    *,
    tenant: str | None = None,
    skipped: Skipped | None = None,
) -> list[DuePurge]:
    """What `purge --dry-run` (and `scheduler --dry-run`) lists: every holding due for purge at `now`,
    each with the order already open for it."""
    orders = open_orders(ledger, now, confirm_days, tenant)
    return [DuePurge(due, orders.get(due_key(due))) for due in expired(ledger, rules, now, tenant, skipped)]


def open_orders(
    ledger: Ledger, now: datetime, confirm_days: int, tenant: str | None = None, subject: str | None = None
) -> dict[HoldingKey, OpenOrder]:
    """The holdings (of a tenant, of a subject) whose purge is ordered and not yet confirmed, as of `now`."""
    with ledger.writer.datastore.transaction() as curs:
        return ledger.orders.open_orders(curs, now - timedelta(days=confirm_days), tenant, subject)


def overdue(ledger: Ledger, tenant: str, now: datetime, warn: timedelta) -> list[Clock]:
    """The tenant's open rights requests past their 30-day deadline, or within `warn` of it."""
    return [
        clock
        for state in _states(ledger, tenant, Skipped(), OPEN_REQUESTS)
        for clock in request_clocks(state, now, warn)
    ]


HELD_HOLDINGS = SQL("SELECT DISTINCT tenant, subject FROM proj_holdings WHERE status = 'held'")
OPEN_REQUESTS = SQL("SELECT DISTINCT tenant, subject FROM proj_deletion_requests WHERE status = 'open'")


def _states(
    ledger: Ledger, tenant: str | None, skipped: Skipped, which: SQL = HELD_HOLDINGS
) -> Iterator[SubjectState]:
    """Every projected subject that `which` selects, read in pages; those that cannot be read are
    noted in `skipped`."""
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
        states = _load(ledger, keys, skipped)
        yield from (states[key] for key in keys if key in states)
        after = keys[-1]


def unconfirmed_orders(
    ledger: Ledger, tenant: str, now: datetime, confirm_days: int
) -> list[dict[str, object]]:
    """The tenant's purge orders sent more than `confirm_days` before `now` and still unconfirmed."""
    with ledger.writer.datastore.transaction() as curs:
        return ledger.orders.overdue(curs, tenant, now - timedelta(days=confirm_days))


def _load(
    ledger: Ledger, keys: Sequence[tuple[str, str]], skipped: Skipped
) -> dict[tuple[str, str], SubjectState]:
    """The page's states; should the page not be readable, each subject's on its own, so that one row
    Python cannot hold (a time after year 9999 written by hand) costs only its own subject."""

    def read(page: Sequence[tuple[str, str]]) -> list[SubjectState]:
        with ledger.writer.datastore.transaction() as curs:
            return list(tables.load(curs, page).values())

    return {(state.tenant, state.subject): state for state in skipped.together("read", keys, read)}
