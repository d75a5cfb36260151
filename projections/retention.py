"""Retention across a whole ledger: which holdings have expired and must be purged."""

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from psycopg.sql import SQL

from ledger.purges import HoldingKey, OpenOrder, due_key
from ledger.retention import (
    EARLIER,
    LATER,
    SCHEDULED,
    UNCHANGED,
    Due,
    Retention,
    Rule,
    due_purges,
    load_policy,
    parse_policy,
    retention,
    shift,
)
from ledger.retry import Skipped
from ledger.state import HELD, SubjectState
from ledger.store import Ledger
from ledger.sweeps import SweepSummary
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
    for state in subject_states(ledger, tenant, skipped):
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


def due_page(
    ledger: Ledger,
    rules: list[Rule],
    now: datetime,
    confirm_days: int,
    *,
    tenant: str,
    start: str,
    limit: int,
    scan: int = 500,
) -> tuple[list[DuePurge], str | None]:
    """A page of what `due_for_purge` lists for one tenant: the holdings due of subjects from id `start`
    on, until `limit` are found or `scan` subjects holding data were read (so a page costs the same
    however few are due); and the subject the next page starts from (None: no more)."""
    found: list[DuePurge] = []
    skipped = Skipped()
    states = subject_states(ledger, tenant, skipped, after=(tenant, start), inclusive=True, page=scan + 1)
    for read, state in enumerate(states):
        if len(found) >= limit or read >= scan:
            return found, state.subject
        due = skipped.guard("expiry", state.tenant, state.subject, lambda: due_purges(state, rules, now))  # noqa: B023 - called at once
        if due:
            orders = open_orders(ledger, now, confirm_days, tenant, state.subject)
            found.extend(DuePurge(item, orders.get(due_key(item))) for item in due)
    return found, None


@dataclass(frozen=True)
class Compared:
    """One holding's retention under the policy in force and under a proposed one."""

    subject: str
    category: str
    system: str
    current: Retention
    proposed: Retention


@dataclass
class WhatIf:
    """How a proposed policy would move the tenant's held holdings' expiry: counts, the first few of
    each direction, and how many would be due at once that are not due now."""

    held: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {EARLIER: 0, LATER: 0, UNCHANGED: 0})
    examples: dict[str, list[Compared]] = field(default_factory=lambda: {EARLIER: [], LATER: []})
    due_at_once: int = 0


def what_if(
    ledger: Ledger, tenant: str, current: list[Rule], proposed: list[Rule], *, now: datetime, shown: int
) -> WhatIf:
    """Every held holding of the tenant, under `current` and `proposed` rules, compared (read in pages
    of subjects: memory stays flat however large the tenant)."""
    result = WhatIf()
    for state in subject_states(ledger, tenant, Skipped()):
        for holding in state.holdings.values():
            if holding.status != HELD:
                continue
            before, after = retention(holding, state, current), retention(holding, state, proposed)
            direction = shift(before, after)
            result.held += 1
            result.counts[direction] += 1
            if direction != UNCHANGED and len(result.examples[direction]) < shown:
                result.examples[direction].append(
                    Compared(state.subject, holding.category, holding.system, before, after)
                )
            result.due_at_once += _due(after, now) and not _due(before, now)
    return result


def _due(kept: Retention, now: datetime) -> bool:
    return kept.status == SCHEDULED and kept.expires_at is not None and kept.expires_at <= now


def open_orders(
    ledger: Ledger, now: datetime, confirm_days: int, tenant: str | None = None, subject: str | None = None
) -> dict[HoldingKey, OpenOrder]:
    """The holdings (of a tenant, of a subject) whose purge is ordered and not yet confirmed, as of `now`."""
    with ledger.writer.datastore.transaction() as curs:
        return ledger.orders.open_orders(curs, now - timedelta(days=confirm_days), tenant, subject)


HELD_HOLDINGS = SQL("SELECT DISTINCT tenant, subject FROM proj_holdings WHERE status = 'held'")


def subject_states(
    ledger: Ledger,
    tenant: str | None,
    skipped: Skipped,
    which: SQL = HELD_HOLDINGS,
    after: tuple[str, str] = ("", ""),
    *,
    inclusive: bool = False,
    page: int = PAGE,
) -> Iterator[SubjectState]:
    """Every projected subject that `which` selects, after `after` (from it, if `inclusive`), read in
    pages; those that cannot be read are noted in `skipped`."""
    compare = SQL(">=" if inclusive else ">")
    while True:
        with ledger.writer.datastore.transaction() as curs:
            curs.execute(
                which
                + SQL(
                    " AND (tenant, subject) {} (%s, %s) AND (%s::text IS NULL OR tenant = %s) "
                    "ORDER BY tenant, subject LIMIT %s"
                ).format(compare),
                (*after, tenant, tenant, page),
            )
            keys = [(row["tenant"], row["subject"]) for row in curs.fetchall()]
        if not keys:
            return
        states = _load(ledger, keys, skipped)
        yield from (states[key] for key in keys if key in states)
        after, compare = keys[-1], SQL(">")


def order_counts(ledger: Ledger, now: datetime, confirm_days: int) -> dict[str, int]:
    """Purge orders of every tenant: `open` (unconfirmed), `overdue` (unconfirmed `confirm_days` after
    they were sent, as of `now`) and `confirmed`."""
    with ledger.writer.datastore.transaction() as curs:
        return ledger.orders.counts(curs, now - timedelta(days=confirm_days))


def sweeps(ledger: Ledger, tenant: str | None = None) -> SweepSummary:
    """How many sweeps ran, the last one, and the last that ordered a purge (of `tenant`'s)."""
    with ledger.writer.datastore.transaction() as curs:
        return ledger.sweeps.summary(curs, tenant)


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
