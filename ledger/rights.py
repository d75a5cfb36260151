"""Rights on the clock: when each request of a subject is due, and when a child's data must be gone.

Deadlines come from `rights_rules.json` (data, not code) by jurisdiction. Everything but loading the
table is pure, with `now` passed in, so the edges (day 30, day 31, after an extension) are tested on
an injected clock.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

from ledger.retention import END_OF_TIME, add_duration, shifted
from ledger.state import (
    CHILDREN,
    HELD,
    OPEN,
    ChildSignal,
    RightsRequest,
    SubjectState,
    jurisdiction_of,
)

AGE_BAND_OLDEST = {"under_13": 12, "13_to_15": 15, "16_to_17": 17}  # "adult": never a child
DAY = timedelta(days=1)


@dataclass(frozen=True)
class DeadlineRule:
    """How long requests under one regime may take."""

    regime: str
    period: str
    extended: str | None
    child_under: int


@dataclass(frozen=True)
class RightsRules:
    """The rule table: rules by jurisdiction, and the one for everywhere else."""

    by_jurisdiction: dict[str, DeadlineRule]
    default: DeadlineRule

    def rule(self, jurisdiction: str | None) -> DeadlineRule:
        """The rule of `jurisdiction`, else of its country (US-NY: US), else the default."""
        if jurisdiction is None:
            return self.default
        found = self.by_jurisdiction.get(jurisdiction) or self.by_jurisdiction.get(jurisdiction.split("-")[0])
        return found or self.default


@cache
def deadline_rules() -> RightsRules:
    """The table shipped with the ledger (`ledger/rights_rules.json`)."""
    document = json.loads(resources.files("ledger").joinpath("rights_rules.json").read_text("utf-8"))
    return parse_rules(document)


def parse_rules(document: dict[str, Any]) -> RightsRules:
    """A decoded rule table."""

    def rule(entry: dict[str, Any]) -> DeadlineRule:
        return DeadlineRule(entry["regime"], entry["period"], entry["extended"], entry["child_under"])

    by_jurisdiction = {
        jurisdiction: rule(entry) for entry in document["rules"] for jurisdiction in entry["jurisdictions"]
    }
    return RightsRules(by_jurisdiction, rule(document["default"]))


def due(received: datetime, period: str) -> datetime:
    """The first instant past a period counted from `received`: midnight (UTC) after its last day, so a
    request received on 1 January under 30 days may be answered until the end of 31 January, and one
    of 31 January under a calendar month until the end of 28 (or 29) February."""
    last_day = add_duration(received.astimezone(UTC), period)
    return shifted(datetime(last_day.year, last_day.month, last_day.day, tzinfo=UTC), DAY)


@dataclass(frozen=True)
class RightsClock:
    """One request against its deadline: `deadline` is the first instant it is late."""

    tenant: str
    subject: str
    request_id: str
    right: str
    channel: str | None
    jurisdiction: str | None
    regime: str
    requested_at: datetime
    verified_at: datetime | None
    deadline: datetime
    extended: bool
    extension_reason: str | None
    extension_note: str | None  # why a recorded extension does not count
    status: str
    answered_at: datetime | None
    overdue: bool  # open, and now past its deadline
    late: bool  # answered at or after its deadline
    seconds_left: int | None  # open: until the deadline (negative once overdue)
    event_id: str | None  # the request's event


def clock(
    state: SubjectState, request: RightsRequest, now: datetime, table: RightsRules
) -> RightsClock | None:
    """The clock of one request (None until the request itself has been recorded)."""
    if request.right is None or request.requested_at is None:
        return None
    jurisdiction = request.jurisdiction or jurisdiction_of(state)
    rule = table.rule(jurisdiction)
    deadline = due(request.requested_at, rule.period)
    note = None
    if request.extended_at is not None:
        if rule.extended is None:
            note = f"{rule.regime} allows no extension"
        elif request.extended_at >= deadline:
            note = "the subject was told after the first deadline: the extension does not count"
        else:
            deadline = due(request.requested_at, rule.extended)
    extended = request.extended_at is not None and note is None
    answered = request.answered_at
    return RightsClock(
        tenant=state.tenant,
        subject=state.subject,
        request_id=request.request_id,
        right=request.right,
        channel=request.channel,
        jurisdiction=jurisdiction,
        regime=rule.regime,
        requested_at=request.requested_at,
        verified_at=request.verified_at,
        deadline=deadline,
        extended=extended,
        extension_reason=request.extension_reason,
        extension_note=note,
        status=request.status,
        answered_at=answered,
        overdue=request.status == OPEN and now >= deadline != END_OF_TIME,  # the end of time: never due
        late=answered is not None and answered >= deadline,
        seconds_left=None if request.status != OPEN else int((deadline - now).total_seconds()),
        event_id=request.event_id,
    )


def clocks(state: SubjectState, now: datetime, table: RightsRules) -> list[RightsClock]:
    """Every recorded request of the subject on its clock, oldest first."""
    found = [clock(state, request, now, table) for request in state.rights_requests.values()]
    return sorted((c for c in found if c is not None), key=lambda c: (c.requested_at, c.request_id))


@dataclass(frozen=True)
class ChildClock:
    """A child's data the tenant may not hold, on the short clock until it is gone."""

    tenant: str
    subject: str
    signalled_at: datetime
    signals: list[str]  # the event ids that said so
    categories: list[str] | None  # None: everything the subject's data holds
    systems: list[str]  # where it is still held
    deadline: datetime
    overdue: bool
    seconds_left: int


def is_child(signal: ChildSignal, table: RightsRules) -> bool:
    """Whether a signal says the subject is a child where it lives: data of the category `children`
    always, an age band when its oldest age is under the jurisdiction's age of digital consent."""
    if signal.category == CHILDREN:
        return True
    oldest = AGE_BAND_OLDEST.get(signal.age_band or "")
    return oldest is not None and oldest < table.rule(signal.jurisdiction).child_under


def child_clock(
    state: SubjectState, within: timedelta, now: datetime, table: RightsRules
) -> ChildClock | None:
    """The clock on a child's data, from the first signal: None when there is none or nothing it covers
    is held any more (an age signal covers all of the subject's data, a `children` category itself)."""
    signals = sorted((s for s in state.child_signals.values() if is_child(s, table)), key=lambda s: s.at)
    if not signals or state.erased:
        return None
    everything = any(signal.category is None for signal in signals)
    held = [
        holding
        for holding in state.holdings.values()
        if holding.status == HELD and (everything or holding.category == CHILDREN)
    ]
    if not held:
        return None
    deadline = shifted(signals[0].at, within)
    return ChildClock(
        tenant=state.tenant,
        subject=state.subject,
        signalled_at=signals[0].at,
        signals=[signal.event_id for signal in signals],
        categories=None if everything else [CHILDREN],
        systems=sorted({holding.system for holding in held}),
        deadline=deadline,
        overdue=now >= deadline,
        seconds_left=int((deadline - now).total_seconds()),
    )
