"""Held past expiry in SQL gives what `purge --dry-run` gives: the violations report's entries equal
the dry-run's due holdings without an open order, over seeded subjects, two policies and many instants."""

import random
from datetime import UTC, datetime, timedelta

from psycopg.sql import SQL

from ledger.purges import orders_for
from ledger.retention import START_OF_TIME, Rule, load_policy
from ledger.state import (
    DELETED,
    GRANTED,
    HELD,
    OPTED_OUT,
    WITHDRAWN,
    Consent,
    Holding,
    Interval,
    LegalHold,
    Share,
    SubjectState,
)
from ledger.store import Ledger
from ledger.violations import HELD_PAST_EXPIRY
from projections import tables
from projections.retention import due_for_purge
from projections.violations import Period, violations

TENANT = "acme"
Listed = tuple[str, datetime, str, str, str, list[str]]  # subject, expiry, system, category, rule, opened by
T0 = datetime(2024, 1, 31, 23, 30, tzinfo=UTC)  # a month end in a leap year
CATEGORIES = ["account_contact", "billing", "content", "usage_metadata", "marketing_preferences", "health"]
SYSTEMS = ["crm", "billing", "web"]
RECIPIENTS = ["aws-storage", "mailer"]
PURPOSES = ["service", "marketing", "analytics"]
BASES = ["contract", "consent", "legal_obligation"]
# Specific rules beside general ones (ties go to the first), every trigger, a month from a month end,
# and durations that leave the calendar.
PROPOSED = [
    Rule("eu-content", "content", "P1M", "collected", jurisdiction="DE"),
    Rule("content-consent", "content", "P6M", "consent_withdrawn", legal_basis="consent"),
    Rule("content-marketing", "content", "P14D", "consent_withdrawn", purpose="marketing"),
    Rule("content", "content", "P1Y", "last_activity"),
    Rule("billing-legal", "billing", "P7Y", "account_closed", legal_basis="legal_obligation"),
    Rule("billing", "billing", "P2M10D", "collected"),
    Rule("usage-legal", "usage_metadata", "P1Y", "account_closed", legal_basis="legal_obligation"),
    Rule("usage-service", "usage_metadata", "P3M", "collected", purpose="service"),
    Rule("usage-eu", "usage_metadata", "P3M", "collected", jurisdiction="DE"),
    Rule(
        "usage-forever",
        "usage_metadata",
        "P99999999Y",
        "collected",
        legal_basis="consent",
        purpose="analytics",
    ),
    Rule("account", "account_contact", "P30D", "last_activity"),
    Rule("marketing-days", "marketing_preferences", "P9999999999D", "collected"),
]


def _when(draw: random.Random) -> datetime:
    return T0 + timedelta(days=draw.randrange(-900, 300), seconds=draw.randrange(86_400))


def _subject(draw: random.Random, number: int) -> SubjectState:
    """Holdings held or deleted under each basis; consents granted or not on their purposes; legal
    holds on everything or some categories; copies at recipients, confirmed deleted or not."""
    closed = draw.choice([None, _when(draw)])
    state = SubjectState(
        TENANT,
        f"s{number:03d}",
        first_seen=T0,
        last_event_at=draw.choice([None, _when(draw)]),
        account_closed_at=closed,
    )
    for category in draw.sample(CATEGORIES, draw.randrange(1, 5)):
        for system in draw.sample(SYSTEMS, draw.randrange(1, 3)):
            first = _when(draw)
            purposes = draw.sample(PURPOSES, draw.randrange(1, 3))
            basis, status = draw.choice(BASES), draw.choice([HELD, HELD, HELD, DELETED])
            jurisdiction = draw.choice([None, "DE", "US-CA"])
            state.holdings[(category, system)] = Holding(
                category, system, basis, purposes, None, jurisdiction, first, first, status
            )
            opened = f"c-{number}-{category}-{system}"
            state.intervals[opened] = Interval(opened, category, system, jurisdiction, first, None)
    for purpose in PURPOSES:
        if draw.random() < 0.5:
            said = draw.choice([GRANTED, WITHDRAWN, OPTED_OUT])
            state.consent[(purpose, "email")] = Consent(
                purpose, "email", said, _when(draw), f"w-{number}-{purpose}"
            )
    if draw.random() < 0.15:
        held = draw.choice([None, draw.sample(CATEGORIES, 2)])
        state.legal_holds["h1"] = LegalHold("h1", "litigation", held, T0, f"h-{number}")
    for recipient in draw.sample(RECIPIENTS, draw.randrange(3)):
        shared = draw.sample(CATEGORIES, 2)
        state.shares[f"s-{number}-{recipient}"] = Share(
            recipient, "processor", shared, "service", None, None, None, T0, f"s-{number}-{recipient}"
        )
        for category in shared:
            opened = f"x-{number}-{recipient}-{category}"
            until = draw.choice([None, None, T0])  # a recipient that confirmed deletion holds it no more
            state.intervals[opened] = Interval(opened, category, recipient, None, T0, until)
    return state


def _tie() -> SubjectState:
    """Two holdings of one category under different rules expiring at the same instant, both copied to
    a recipient: the copy is due under the later rule id, whatever order the holdings are read in."""
    state = SubjectState(TENANT, "s-tie", first_seen=T0, last_event_at=T0)
    for system, basis, purpose, jurisdiction in (
        ("crm", "contract", "analytics", "DE"),
        ("web", "consent", "service", None),
    ):
        state.holdings[("usage_metadata", system)] = Holding(
            "usage_metadata", system, basis, [purpose], None, jurisdiction, T0, T0, HELD
        )
    state.shares["s-tie"] = Share(
        "mailer", "processor", ["usage_metadata"], "service", None, None, None, T0, "s"
    )
    state.intervals["x-tie"] = Interval("x-tie", "usage_metadata", "mailer", None, T0, None)
    return state


def _expected(ledger: Ledger, rules: list[Rule], now: datetime) -> list[Listed]:
    """What the report lists from the dry-run, over all time: each due holding without an open order,
    with the events that opened what is still held there."""
    with ledger.writer.datastore.transaction() as curs:
        curs.execute("SELECT tenant, subject FROM proj_subjects")
        states = tables.load(curs, [(row["tenant"], row["subject"]) for row in curs.fetchall()])
    found = []
    for item in due_for_purge(ledger, rules, now, 7, tenant=TENANT):
        due = item.due
        if item.order is None:
            intervals = states[(TENANT, due.subject)].intervals.values()
            opened = sorted(
                i.opened_by
                for i in intervals
                if (i.system, i.category) == (due.system, due.category) and i.held_until is None
            )
            found.append((due.subject, due.expires_at, due.system, due.category, due.rule, opened))
    return sorted(found)


def test_held_past_expiry_equals_the_dry_run(ledger: Ledger) -> None:
    """Under the shipped policy and a proposed one with every trigger, at instants across three years
    and over windows (one starting and one ending at a due holding's expiry), the report's
    held-past-expiry entries are the dry-run's due holdings that no open order covers (a confirmed
    order covers nothing), with the events that opened them."""
    draw = random.Random(11)  # noqa: S311 - varied data, nothing secret
    states = [_subject(draw, n) for n in range(200)]
    with ledger.writer.datastore.transaction(commit=True) as curs:
        tables.write(curs, [*states, _tie()])
    shipped = load_policy(None)
    due = [item.due for item in due_for_purge(ledger, shipped, T0, 7, tenant=TENANT)]
    orders = orders_for(draw.sample(due, len(due) // 3))
    with ledger.writer.datastore.transaction(commit=True) as curs:
        ledger.orders.record(curs, orders, T0)
        for order in orders[::4]:  # confirmed: it covers nothing any more
            confirm = SQL("UPDATE {} SET confirmed_at = %s WHERE order_id = %s").format(ledger.orders.table)
            curs.execute(confirm, (T0, order.order_id))
    compared = 0
    for rules in (shipped, PROPOSED):
        for now in (T0 - timedelta(days=400), T0, T0 + timedelta(days=31), T0 + timedelta(days=200)):
            expected = _expected(ledger, rules, now)
            middle = expected[len(expected) // 2][1] if expected else now
            windows = [(START_OF_TIME, now), (middle, now), (START_OF_TIME, middle)]
            for start, end in [*windows, (now - timedelta(days=90), now - timedelta(days=30))]:
                report = violations(ledger, TENANT, Period(start, end, now), rules, confirm_days=7)
                found = sorted(
                    (
                        e.subject,
                        e.time,
                        e.details["system"],
                        e.details["category"],
                        e.details["rule"],
                        e.event_ids,
                    )
                    for e in report.entries
                    if e.kind == HELD_PAST_EXPIRY
                )
                assert found == [due for due in expected if start <= due[1] < end]
                compared += len(found)
    assert compared > 500
