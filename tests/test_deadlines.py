"""Rights deadlines in SQL give what the Python clocks give: the overview's counts and its soonest
requests, over a seeded mix of jurisdictions, extensions, verification and holdings, at many instants."""

import random
from datetime import UTC, datetime, timedelta

from ledger.retention import END_OF_TIME
from ledger.rights import clock, deadline_rules
from ledger.state import CHILDREN, FULFILLED, HELD, OPEN, REFUSED, Holding, RightsRequest, SubjectState
from ledger.store import Ledger
from projections import tables
from projections.deadlines import open_requests as counted
from projections.overview import SHOWN, overview
from projections.rights import open_requests

TENANT = "acme"
T0 = datetime(2028, 1, 31, 23, 30, tzinfo=UTC)  # a month end in a leap year, half an hour from midnight
# The request's own jurisdiction: a member state, a country's state falling back to the country, a
# state with its own rule, none (the holdings decide), an unknown one (the default), an empty one.
JURISDICTIONS = [None, "", "DE", "DE-BY", "GB", "GB-SCT", "US-CA", "US-VA", "US-NY", "US", "CA", "BR", "JP"]
HELD_IN = [None, "DE", "GB", "US-CA", "US-TX", "US", "BR", "JP"]
CATEGORIES = ["account_contact", "billing", CHILDREN, "content"]


def _request(draw: random.Random, number: int, state: SubjectState) -> RightsRequest:
    """A request at a month end, near midnight or anywhere in two years, open or answered, verified or
    not, extended before, at or after its first deadline or never; a few only half recorded."""
    requested = draw.choice(
        [
            T0 + timedelta(days=draw.randrange(-400, 400), minutes=draw.randrange(1440)),
            T0 + timedelta(days=31 * draw.randrange(-12, 12)),
            datetime(2027, 8, 31, 23, 59, 59, 999_999, tzinfo=UTC),
            datetime(2028, 2, 29, 0, 0, tzinfo=UTC),
        ]
    )
    kept = RightsRequest(
        request_id=f"r{number:04d}",
        right=draw.choice(["access", "erasure", "portability", "objection"]),
        channel="web_form",
        jurisdiction=draw.choice(JURISDICTIONS),
        requested_at=requested,
        verified_at=draw.choice([None, requested + timedelta(days=draw.randrange(20))]),
        status=draw.choice([OPEN, OPEN, OPEN, FULFILLED, REFUSED]),
        event_id=f"e{number}",
    )
    first = clock(state, kept, T0, deadline_rules())
    assert first is not None
    just_in_time = first.deadline - timedelta(microseconds=1)
    extended = draw.choice([None, None, first.deadline, just_in_time, requested + timedelta(days=5)])
    kept.extended_at, kept.extension_reason = extended, None if extended is None else "complexity"
    if number % 23 == 0:
        kept.right, kept.requested_at = None, None  # a verification that arrived before its request
    if number % 29 == 0:
        kept.requested_at = None  # however it came to be, no clock runs without a receipt
    if kept.status != OPEN:
        kept.answered_at = requested + timedelta(days=draw.randrange(100))
    return kept


def _subject(draw: random.Random, number: int) -> SubjectState:
    state = SubjectState(TENANT, f"s{number:03d}", first_seen=T0, last_event_at=T0)
    collected = T0 - timedelta(days=draw.randrange(3))  # often the same instant: the key decides
    for category in draw.sample(CATEGORIES, draw.randrange(len(CATEGORIES))):
        system = draw.choice(["crm", "billing", "web"])
        state.holdings[(category, system)] = Holding(
            category, system, "contract", ["service"], None, draw.choice(HELD_IN), collected, collected, HELD
        )
    for _ in range(draw.randrange(4)):
        request = _request(draw, draw.randrange(10_000), state)
        state.rights_requests[request.request_id] = request
    return state


def test_sql_deadlines_equal_the_python_clocks(ledger: Ledger) -> None:
    """At instants on, just before and between deadlines, the overview's open and overdue counts and
    its soonest requests equal `open_requests`' clocks from whole states, and so does every open
    request's SQL deadline; another tenant's requests are not counted."""
    draw = random.Random(7)  # noqa: S311 - varied data, nothing secret
    states = [_subject(draw, n) for n in range(250)]
    end = SubjectState(TENANT, "s-end", first_seen=T0, last_event_at=T0)
    end.rights_requests["r-end"] = RightsRequest(
        "r-end", "access", "email", "DE", requested_at=datetime(9999, 12, 20, tzinfo=UTC), event_id="e-end"
    )
    other = SubjectState("other", "s000", first_seen=T0, last_event_at=T0)
    other.rights_requests["r-other"] = RightsRequest("r-other", "access", requested_at=T0, event_id="e-o")
    with ledger.writer.datastore.transaction(commit=True) as curs:
        tables.write(curs, [*states, end, other])
    deadlines = sorted({c.deadline for c in open_requests(ledger, TENANT, T0)})
    instants = [T0, deadlines[len(deadlines) // 2], *draw.sample(deadlines, 6), END_OF_TIME]
    instants += [moment - timedelta(microseconds=1) for moment in instants]
    overdue = set()
    for now in instants:
        expected = open_requests(ledger, TENANT, now)
        found = overview(ledger, TENANT, now, confirm_days=7)
        assert found.requests_open == len(expected) > 100
        assert found.requests_overdue == sum(c.overdue for c in expected)
        assert found.soonest_requests == expected[:SHOWN]
        overdue.add(found.requests_overdue)
    assert len(overdue) > len(instants) // 2  # the instants fall between different deadlines
    with ledger.writer.datastore.transaction() as curs:
        every = counted(curs, TENANT, T0, deadline_rules(), 10_000).soonest
    by_id = {(c.subject, c.request_id): c.deadline for c in open_requests(ledger, TENANT, T0)}
    assert {(row["subject"], row["request_id"]): row["deadline"] for row in every} == by_id
    assert by_id[("s-end", "r-end")] == END_OF_TIME
