"""Holdings past their retention expiry, worked out by PostgreSQL over the read model: what
`purge --dry-run` lists (`ledger.retention.due_purges` over every subject), without reading a subject
into Python, for the violations report over a whole tenant.

tests/test_expiry.py holds the two to the same answer over varied subjects, policies and instants.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.sql import SQL, Composed, Identifier

from ledger.retention import END_OF_TIME, Rule, duration_parts
from ledger.state import GRANTED, HELD
from projections.tables import Cursor

# Each held holding with the rule that governs it (the most specific match, ties to the first in the
# policy), unless a legal hold covers it; its expiry from the rule's trigger, in the session's time zone
# as psycopg hands Python its times (the calendar arithmetic of ledger.retention.add_duration). Then
# the holding's own system and every recipient it was shared with that still holds that category,
# each due at the latest expiry among the holdings that put it there (ties: the later rule id).
_DUE = """
WITH rules AS (
  SELECT * FROM unnest(%(ids)s::text[], %(categories)s::text[], %(years)s::int[], %(months)s::int[],
    %(days)s::int[], %(triggers)s::text[], %(bases)s::text[], %(purposes)s::text[],
    %(jurisdictions)s::text[], %(specificity)s::int[]) WITH ORDINALITY
    AS rule(id, category, years, months, days, trigger, legal_basis, purpose, jurisdiction, specificity,
      position)
), anchored AS (
  SELECT h.tenant, h.subject, h.category, h.system, rule.id AS rule,
    make_interval(years => rule.years, months => rule.months, days => rule.days) AS duration,
    CASE rule.trigger WHEN 'collected' THEN h.first_collected WHEN 'last_activity' THEN s.last_event_at
      WHEN 'account_closed' THEN s.account_closed_at
      ELSE (SELECT CASE WHEN bool_or(c.state = %(granted)s) THEN NULL ELSE max(c.since) END
        FROM proj_consents c WHERE c.tenant = h.tenant AND c.subject = h.subject
        AND c.purpose = ANY(h.purposes)) END AS anchor
  FROM proj_holdings h JOIN proj_subjects s ON s.tenant = h.tenant AND s.subject = h.subject
  CROSS JOIN LATERAL (SELECT * FROM rules WHERE rules.category = h.category
      AND (rules.legal_basis IS NULL OR rules.legal_basis = h.legal_basis)
      AND (rules.purpose IS NULL OR rules.purpose = ANY(h.purposes))
      AND (rules.jurisdiction IS NULL OR rules.jurisdiction = h.jurisdiction)
      ORDER BY rules.specificity DESC, rules.position LIMIT 1) rule
  WHERE h.tenant = %(tenant)s AND h.status = %(held)s
    AND NOT EXISTS (SELECT FROM proj_legal_holds l WHERE l.tenant = h.tenant AND l.subject = h.subject
      AND (l.categories IS NULL OR h.category = ANY(l.categories)))
), expired AS (
  SELECT anchored.*, least(anchor + duration, %(end_of_time)s) AS expires_at FROM anchored
  WHERE least(anchor + duration, %(end_of_time)s) <= %(now)s
), due AS (
  SELECT DISTINCT ON (e.subject, held_in.system, e.category) e.tenant, e.subject, held_in.system,
    e.category, e.rule, e.expires_at
  FROM expired e CROSS JOIN LATERAL (SELECT e.system UNION
    SELECT i.system FROM proj_intervals i WHERE i.tenant = e.tenant AND i.subject = e.subject
      AND i.category = e.category AND i.held_until IS NULL
      AND EXISTS (SELECT FROM proj_shares sh WHERE sh.tenant = i.tenant AND sh.subject = i.subject
        AND sh.recipient = i.system)) held_in
  ORDER BY e.subject, held_in.system, e.category, e.expires_at DESC, e.rule COLLATE "C" DESC
)
SELECT due.subject, due.system, due.category, due.rule, due.expires_at,
  ARRAY(SELECT i.opened_by FROM proj_intervals i WHERE i.tenant = due.tenant AND i.subject = due.subject
    AND i.system = due.system AND i.category = due.category AND i.held_until IS NULL
    ORDER BY i.opened_by COLLATE "C") AS opened_by
FROM due WHERE due.expires_at >= %(start)s AND due.expires_at < %(end)s
  AND NOT EXISTS (SELECT FROM {orders} o WHERE o.tenant = due.tenant AND o.subject = due.subject
    AND o.system = due.system AND due.category = ANY(o.categories) AND o.confirmed_at IS NULL)
ORDER BY due.expires_at, due.subject COLLATE "C", due.system COLLATE "C", due.category COLLATE "C"
"""


@dataclass(frozen=True)
class HeldPastExpiry:
    """A holding (or a recipient's copy of it) due for purge, with no open order for it."""

    subject: str
    system: str
    category: str
    rule: str
    expires_at: datetime
    opened_by: list[str]  # the events that opened what is still held there, sorted


def held_past_expiry(
    curs: Cursor,
    orders: Identifier,
    tenant: str,
    rules: list[Rule],
    *,
    now: datetime,
    within: tuple[datetime, datetime],
) -> list[HeldPastExpiry]:
    """The tenant's holdings that `purge --dry-run` lists as due at `now` under `rules` and no open
    order in the table `orders` covers, that expired within [start, end), by expiry."""
    start, end = within
    curs.execute(
        _statement(orders), _parameters(rules) | {"tenant": tenant, "now": now, "start": start, "end": end}
    )
    return [HeldPastExpiry(**row) for row in curs.fetchall()]


def _statement(orders: Identifier) -> Composed:
    return SQL(_DUE).format(orders=orders)


def _parameters(rules: list[Rule]) -> dict[str, Any]:
    parts = [duration_parts(rule.duration) for rule in rules]
    return {
        "ids": [rule.id for rule in rules],
        "categories": [rule.category for rule in rules],
        "years": [part[0] for part in parts],
        "months": [part[1] for part in parts],
        "days": [part[2] for part in parts],
        "triggers": [rule.trigger for rule in rules],
        "bases": [rule.legal_basis for rule in rules],
        "purposes": [rule.purpose for rule in rules],
        "jurisdictions": [rule.jurisdiction for rule in rules],
        "specificity": [rule.specificity for rule in rules],
        "end_of_time": END_OF_TIME,
        "granted": GRANTED,
        "held": HELD,
    }
