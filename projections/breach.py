"""Breach impact: whose data of which categories was held in the breached systems during a window.

Holdings are intervals, from collection to confirmed deletion; data shared with a recipient is held
by the recipient from the moment of sharing (the fold opens an interval in the recipient's system), so
it counts as exposed when the recipient is breached after it was shared. Notification deadlines come from
`breach_rules.json` (data, not code), counted from discovery.

A jurisdiction belongs to the person, not to each datum: a subject is counted once in every
jurisdiction its exposed holdings name, with all of its exposed categories; one whose exposed holdings
name none takes its latest holding's.
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

from psycopg.sql import SQL, Composed, Identifier, Literal

import schemas
from ledger.errors import UsageError
from ledger.store import Ledger
from projections.tables import Cursor

UNKNOWN = "unknown"

_HELD_IN_WINDOW = """
    tenant = %(tenant)s AND (%(categories)s::text[] IS NULL OR category = ANY(%(categories)s))
    AND held_from <= %(to)s AND (held_until IS NULL OR held_until >= %(from)s)
"""
# One row per exposed subject: its first and last jurisdiction and its categories as a bit set over the
# vocabulary. Each system's rows are read from the (tenant, system, subject) index in subject order and
# aggregated as they stream by; several systems' streams are merged by full joins on the subject, so
# no step hashes or sorts a million subjects.
_PER_SYSTEM = (
    "SELECT subject, min(jurisdiction) AS first, max(jurisdiction) AS last, "
    "bit_or(1::bigint << (array_position(%(vocabulary)s::text[], category) - 1)) AS mask "
    "FROM proj_intervals WHERE system = (%(named)s::text[])[{}] AND " + _HELD_IN_WINDOW + " GROUP BY subject"
)
_PER_SUBJECT = """
    WITH {}, per_subject AS (
        SELECT subject, least({}) AS first, greatest({}) AS last, {} AS mask FROM {}
    )
"""
_UNRESOLVED = "first IS NULL OR first <> last"  # several jurisdictions, or none named
_COUNTS = f"""
    SELECT first, mask, count(*) AS subjects, array_agg(subject) FILTER (WHERE {_UNRESOLVED}) AS unresolved
    FROM per_subject GROUP BY first, last, mask
"""
_SUBJECTS = "SELECT subject, first, last, mask FROM per_subject ORDER BY subject"
_JURISDICTIONS = SQL(
    f"""
    SELECT u.subject, coalesce(
        (SELECT array_agg(DISTINCT jurisdiction ORDER BY jurisdiction) FROM proj_intervals
         WHERE subject = u.subject AND system = ANY(%(systems)s) AND jurisdiction IS NOT NULL
         AND {_HELD_IN_WINDOW}),
        (SELECT ARRAY[h.jurisdiction] FROM proj_holdings h
         WHERE h.tenant = %(tenant)s AND h.subject = u.subject AND h.jurisdiction IS NOT NULL
         ORDER BY h.last_collected DESC LIMIT 1),
        ARRAY[%(unknown)s]) AS jurisdictions
    FROM unnest(%(unresolved)s::text[]) AS u(subject)
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
        "named": list(dict.fromkeys(systems)),
        "categories": categories,
        "from": window[0],
        "to": window[1],
        "vocabulary": category_vocabulary(),
        "unknown": UNKNOWN,
    }
    impact = BreachImpact(tenant, systems, categories, window[0], window[1], discovered_at)
    with ledger.writer.datastore.transaction() as curs:
        # Merging three or more systems hashes their streams: the default 4MB would spill it to disk.
        curs.execute("SET LOCAL work_mem = '256MB'")
        # The per-subject rows come in subject order from the index; the planner cannot estimate how
        # few groups the final count has, and would sort every exposed subject to count them.
        curs.execute("SET LOCAL enable_sort = off")
        per_subject = _per_subject(systems)
        curs.execute(per_subject + SQL(_COUNTS), parameters)
        groups = curs.fetchall()
        resolved = _resolve(curs, parameters, [s for group in groups for s in group["unresolved"] or ()])
        for group in groups:
            names = _categories(group["mask"])
            others = group["unresolved"] or []
            _tally(impact, [group["first"]], names, group["subjects"] - len(others))
            for subject in others:
                _tally(impact, resolved[subject], names, 1)
        if list_subjects:
            curs.execute(per_subject + SQL(_SUBJECTS), parameters)
            impact.affected = [
                Affected(row["subject"], _categories(row["mask"]), _jurisdictions(row, resolved))
                for row in curs.fetchall()
            ]
    impact.deadlines = [
        _deadline(jurisdiction, discovered_at, entry["subjects"])
        for jurisdiction, entry in sorted(impact.by_jurisdiction.items())
    ]
    return impact


def _per_subject(systems: list[str]) -> Composed:
    """The per_subject query over each named system once (a system named twice is breached once)."""
    named = list(dict.fromkeys(systems))
    if not named:
        raise UsageError("name at least one breached system")
    streams = [Identifier(f"system_{n}") for n in range(len(named))]
    ctes = SQL(", ").join(
        # The name travels as a parameter: a literal holding `%` would read as a placeholder.
        SQL("{} AS ({})").format(stream, SQL(_PER_SYSTEM).format(Literal(position)))
        for position, stream in enumerate(streams, start=1)
    )
    joined = SQL(" FULL JOIN ").join(
        [streams[0], *(SQL("{} USING (subject)").format(stream) for stream in streams[1:])]
    )
    return SQL(_PER_SUBJECT).format(
        ctes,
        SQL(", ").join(SQL("{}.first").format(s) for s in streams),
        SQL(", ").join(SQL("{}.last").format(s) for s in streams),
        SQL(" | ").join(SQL("coalesce({}.mask, 0)").format(s) for s in streams),
        joined,
    )


def _resolve(curs: Cursor, parameters: dict[str, Any], subjects: list[str]) -> dict[str, list[str]]:
    """The jurisdictions of subjects the per-subject row could not name exactly (few, as a rule)."""
    if not subjects:
        return {}
    curs.execute(_JURISDICTIONS, parameters | {"unresolved": subjects})
    return {row["subject"]: row["jurisdictions"] for row in curs.fetchall()}


@cache
def category_vocabulary() -> list[str]:
    """Every data category, in the order that gives each its bit in the breach query's bit sets."""
    names: list[str] = schemas.load(schemas.VOCABULARY)["$defs"]["category"]["enum"]
    return names


def _tally(impact: BreachImpact, jurisdictions: Sequence[str], categories: list[str], subjects: int) -> None:
    """Count `subjects` subjects, each exposed in every one of `jurisdictions` with all of `categories`."""
    if not subjects:
        return
    impact.subjects += subjects
    _add(impact.by_category, categories, subjects)
    for jurisdiction in jurisdictions:
        entry = impact.by_jurisdiction.setdefault(jurisdiction, {"subjects": 0, "categories": {}})
        entry["subjects"] += subjects
        _add(entry["categories"], categories, subjects)


def _add(counts: dict[str, int], keys: Iterable[str], amount: int) -> None:
    for key in keys:
        counts[key] = counts.get(key, 0) + amount


@cache
def _categories(mask: int) -> list[str]:
    """The category names a bit set holds, sorted."""
    return sorted(name for bit, name in enumerate(category_vocabulary()) if mask >> bit & 1)


def _jurisdictions(row: dict[str, Any], resolved: dict[str, list[str]]) -> list[str]:
    found: list[str] = resolved.get(row["subject"]) or [row["first"]]
    return found


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
