"""Breach impact: whose data of which categories was held in the breached systems during a window.

Holdings are intervals, from collection to confirmed deletion; data shared with a breached recipient
at or before the window's end counts as exposed. Notification deadlines come from
`breach_rules.json` (data, not code), counted from discovery.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

from psycopg.sql import SQL

from ledger.store import Ledger

UNKNOWN = "unknown"

_EXPOSED = """
    WITH exposed AS (
        SELECT subject, category, coalesce(jurisdiction, %(unknown)s) AS jurisdiction
        FROM proj_intervals
        WHERE tenant = %(tenant)s AND system = ANY(%(systems)s)
          AND (%(categories)s::text[] IS NULL OR category = ANY(%(categories)s))
          AND held_from <= %(to)s AND (held_until IS NULL OR held_until >= %(from)s)
      UNION ALL  -- duplicates are harmless: everything downstream counts or aggregates DISTINCT
        SELECT s.subject, c.category, coalesce(
            (SELECT h.jurisdiction FROM proj_holdings h WHERE h.tenant = s.tenant AND h.subject = s.subject
             AND h.jurisdiction IS NOT NULL ORDER BY h.last_collected DESC LIMIT 1), %(unknown)s)
        FROM proj_shares s CROSS JOIN LATERAL unnest(s.categories) AS c(category)
        WHERE s.tenant = %(tenant)s AND s.recipient = ANY(%(systems)s) AND s.time <= %(to)s
          AND (%(categories)s::text[] IS NULL OR c.category = ANY(%(categories)s))
    )
"""
# Distinct subjects per (jurisdiction, category), per jurisdiction, per category and in all: one pass.
_COUNTS = SQL(
    _EXPOSED
    + """
    SELECT jurisdiction, category, count(DISTINCT subject) AS subjects FROM exposed
    GROUP BY GROUPING SETS ((jurisdiction, category), (jurisdiction), (category), ())
    """
)
_SUBJECTS = SQL(
    _EXPOSED
    + """
    SELECT subject, array_agg(DISTINCT category ORDER BY category) AS categories,
           array_agg(DISTINCT jurisdiction ORDER BY jurisdiction) AS jurisdictions
    FROM exposed GROUP BY subject ORDER BY subject
    """
)


@dataclass(frozen=True)
class Affected:
    """One exposed subject."""

    subject: str
    categories: list[str]
    jurisdictions: list[str]


@dataclass(frozen=True)
class Deadline:
    """Who must be told, under which regime, by when (None: no fixed clock; act without delay)."""

    jurisdiction: str
    regime: str
    notify: str
    deadline: datetime | None
    subjects: int


@dataclass
class BreachImpact:
    """What GDPR Art. 33(3) asks the notice to state: who, which categories, how many, by when."""

    tenant: str
    systems: list[str]
    categories: list[str] | None
    window_from: datetime
    window_to: datetime
    discovered_at: datetime
    subjects: int = 0
    by_jurisdiction: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_category: dict[str, int] = field(default_factory=dict)
    deadlines: list[Deadline] = field(default_factory=list)
    affected: list[Affected] | None = None  # each subject, when asked for (Art. 34 notices)


def breach_impact(
    ledger: Ledger,
    tenant: str,
    systems: list[str],
    window: tuple[datetime, datetime],
    *,
    discovered_at: datetime,
    categories: list[str] | None = None,
    list_subjects: bool = False,
) -> BreachImpact:
    """Every subject of `tenant` whose data in `systems` was exposed during `window`: counted always,
    listed one by one with `list_subjects`."""
    parameters = {
        "tenant": tenant,
        "systems": systems,
        "categories": categories,
        "from": window[0],
        "to": window[1],
        "unknown": UNKNOWN,
    }
    impact = BreachImpact(tenant, systems, categories, window[0], window[1], discovered_at)
    with ledger.writer.datastore.transaction() as curs:
        curs.execute(_COUNTS, parameters)
        for row in curs.fetchall():
            _count(impact, row["jurisdiction"], row["category"], row["subjects"])
        if list_subjects:
            curs.execute(_SUBJECTS, parameters)
            impact.affected = [
                Affected(row["subject"], row["categories"], row["jurisdictions"]) for row in curs.fetchall()
            ]
    impact.deadlines = [
        _deadline(jurisdiction, discovered_at, entry["subjects"])
        for jurisdiction, entry in sorted(impact.by_jurisdiction.items())
    ]
    return impact


def _count(impact: BreachImpact, jurisdiction: str | None, category: str | None, subjects: int) -> None:
    """Place one row of the grouping sets: a None marks the dimension it was summed over."""
    if jurisdiction is None and category is None:
        impact.subjects = subjects
    elif jurisdiction is None:
        impact.by_category[str(category)] = subjects
    else:
        entry = impact.by_jurisdiction.setdefault(jurisdiction, {"subjects": 0, "categories": {}})
        if category is None:
            entry["subjects"] = subjects
        else:
            entry["categories"][category] = subjects


def _deadline(jurisdiction: str, discovered_at: datetime, subjects: int) -> Deadline:
    rule = _rules().get(jurisdiction) or _rules().get(jurisdiction.partition("-")[0]) or _default()
    hours = rule["hours"]
    deadline = None if hours is None else discovered_at + timedelta(hours=hours)
    return Deadline(jurisdiction, rule["regime"], rule["notify"], deadline, subjects)


@cache
def _table() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("breach_rules.json").read_text("utf-8")
    table: dict[str, Any] = json.loads(text)
    return table


@cache
def _rules() -> dict[str, dict[str, Any]]:
    return {code: rule for rule in _table()["rules"] for code in rule["jurisdictions"]}


def _default() -> dict[str, Any]:
    default: dict[str, Any] = _table()["default"]
    return default
