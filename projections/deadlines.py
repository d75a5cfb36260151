"""Rights deadlines in SQL: `ledger.rights.clock`'s deadline worked out by PostgreSQL over the read
model, so a tenant's open requests are counted and ordered without reading one of them into Python.

Only the deadline and whether it has passed are computed here; the clocks a page shows are made by
`ledger.rights.clock` from the rows this returns. tests/test_deadlines.py holds the two to the same
answer over a mix of jurisdictions, extensions and instants.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import DictRow
from psycopg.sql import SQL

from ledger.retention import END_OF_TIME
from ledger.rights import RightsRules
from ledger.state import OPEN
from projections.tables import Cursor


def _due(received: str, period: str) -> str:
    """`ledger.rights.due` in SQL: midnight (UTC) after the last day of the period from receipt; past
    the calendar's end (year 9999) it is the end of time, as there."""
    return (
        f"least((date_trunc('day', ({received} AT TIME ZONE 'UTC') + {period}) + interval '1 day') "
        f"AT TIME ZONE 'UTC', %(end_of_time)s)"
    )


# Each open request with the rule of its jurisdiction (the request's own, else the one its subject's
# latest holding names, as ledger.state.jurisdiction_of picks it; then its country's, then the default)
# and its deadline: the extended one when the subject was told before the first deadline passed.
_CLOCKED = """
WITH rules AS (
  SELECT * FROM unnest(%(jurisdictions)s::text[], %(periods)s::interval[], %(extended)s::interval[])
    AS rule(jurisdiction, period, extended)
), governed AS MATERIALIZED (
  SELECT r.*, coalesce(nullif(r.jurisdiction, ''), (SELECT h.jurisdiction FROM proj_holdings h
      WHERE h.tenant = r.tenant AND h.subject = r.subject AND h.jurisdiction IS NOT NULL
      ORDER BY h.last_collected DESC, h.category COLLATE "C" DESC, h.system COLLATE "C" DESC LIMIT 1))
    AS governing
  FROM proj_rights_requests r WHERE r.tenant = %(tenant)s AND r.status = %(open)s
    AND r."right" IS NOT NULL AND r.requested_at IS NOT NULL
), ruled AS (
  SELECT g.*, coalesce(exact.period, country.period, %(default_period)s::interval) AS period,
    CASE WHEN exact.jurisdiction IS NOT NULL THEN exact.extended
      WHEN country.jurisdiction IS NOT NULL THEN country.extended
      ELSE %(default_extended)s::interval END AS extension
  FROM governed g LEFT JOIN rules exact ON exact.jurisdiction = g.governing
    LEFT JOIN rules country ON country.jurisdiction = split_part(g.governing, '-', 1)
), first AS (
  SELECT ruled.*, {first} AS first_deadline FROM ruled
), clocked AS (
  SELECT first.*, CASE WHEN extended_at < first_deadline AND extension IS NOT NULL
    THEN {extended} ELSE first_deadline END AS deadline FROM first
)
""".format(first=_due("requested_at", "period"), extended=_due("requested_at", "extension"))
_SOONEST = SQL(
    _CLOCKED
    + """SELECT clocked.*, count(*) OVER () AS requests_open,
  count(*) FILTER (WHERE %(now)s >= deadline AND deadline <> %(end_of_time)s) OVER () AS requests_overdue
FROM clocked ORDER BY deadline, subject COLLATE "C", request_id COLLATE "C" LIMIT %(shown)s"""
)


@dataclass(frozen=True)
class OpenRequests:
    """A tenant's open requests at an instant: how many, how many overdue, and the soonest due."""

    open: int
    overdue: int
    soonest: list[DictRow]  # their rows of proj_rights_requests (and deadline), soonest due first


def open_requests(curs: Cursor, tenant: str, now: datetime, table: RightsRules, shown: int) -> OpenRequests:
    """The tenant's open requests (those recorded: a follow-up fact alone is no request) counted, and
    the `shown` soonest due (ties by subject and request id, as Python orders them)."""
    curs.execute(_SOONEST, _parameters(table) | {"tenant": tenant, "now": now, "shown": shown})
    rows = curs.fetchall()
    if not rows:
        return OpenRequests(0, 0, [])
    return OpenRequests(rows[0]["requests_open"], rows[0]["requests_overdue"], rows)


def _parameters(table: RightsRules) -> dict[str, Any]:
    named = list(table.by_jurisdiction.items())
    return {
        "jurisdictions": [jurisdiction for jurisdiction, _ in named],
        "periods": [rule.period for _, rule in named],
        "extended": [rule.extended for _, rule in named],
        "default_period": table.default.period,
        "default_extended": table.default.extended,
        "end_of_time": END_OF_TIME,
        "open": OPEN,
    }
