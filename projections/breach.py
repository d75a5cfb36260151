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

_EXPOSED = SQL(
    """
    WITH exposed AS (
        SELECT subject, category, coalesce(jurisdiction, %(unknown)s) AS jurisdiction
        FROM proj_intervals
        WHERE tenant = %(tenant)s AND system = ANY(%(systems)s)
          AND (%(categories)s::text[] IS NULL OR category = ANY(%(categories)s))
          AND held_from <= %(to)s AND (held_until IS NULL OR held_until >= %(from)s)
      UNION
        SELECT s.subject, c.category, coalesce(
            (SELECT h.jurisdiction FROM proj_holdings h WHERE h.tenant = s.tenant AND h.subject = s.subject
             AND h.jurisdiction IS NOT NULL ORDER BY h.last_collected DESC LIMIT 1), %(unknown)s)
        FROM proj_shares s CROSS JOIN LATERAL unnest(s.categories) AS c(category)
        WHERE s.tenant = %(tenant)s AND s.recipient = ANY(%(systems)s) AND s.time <= %(to)s
          AND (%(categories)s::text[] IS NULL OR c.category = ANY(%(categories)s))
    )
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
    affected: list[Affected]
    by_jurisdiction: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_category: dict[str, int] = field(default_factory=dict)
    deadlines: list[Deadline] = field(default_factory=list)


def breach_impact(
    ledger: Ledger,
    tenant: str,
    systems: list[str],
    window: tuple[datetime, datetime],
    *,
    discovered_at: datetime,
    categories: list[str] | None = None,
) -> BreachImpact:
    """Every subject of `tenant` whose data in `systems` was exposed during `window`."""
    with ledger.writer.datastore.transaction() as curs:
        curs.execute(
            _EXPOSED,
            {
                "tenant": tenant,
                "systems": systems,
                "categories": categories,
                "from": window[0],
                "to": window[1],
                "unknown": UNKNOWN,
            },
        )
        affected = [
            Affected(row["subject"], row["categories"], row["jurisdictions"]) for row in curs.fetchall()
        ]
    impact = BreachImpact(tenant, systems, categories, window[0], window[1], discovered_at, affected)
    for person in affected:
        for category in person.categories:
            impact.by_category[category] = impact.by_category.get(category, 0) + 1
        for jurisdiction in person.jurisdictions:
            entry = impact.by_jurisdiction.setdefault(jurisdiction, {"subjects": 0, "categories": {}})
            entry["subjects"] += 1
            for category in person.categories:
                entry["categories"][category] = entry["categories"].get(category, 0) + 1
    impact.deadlines = [
        _deadline(jurisdiction, discovered_at, entry["subjects"])
        for jurisdiction, entry in sorted(impact.by_jurisdiction.items())
    ]
    return impact


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
