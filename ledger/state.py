"""A subject's state as the ledger derives it from facts: pure data and a pure fold, no I/O.

The projections persist this state in tables; the aggregate and point-in-time queries fold the same
function over stored events, so "now" and "as of" can never disagree about what a fact means.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.times import rfc3339

HELD = "held"
DELETED = "deleted"
GRANTED = "granted"
WITHDRAWN = "withdrawn"
OPTED_OUT = "opted_out"
OPEN = "open"
COMPLETED = "completed"
SERVICE = "service"
PURPOSES = (
    "service", "support", "billing", "security", "marketing", "analytics",
    "product_improvement", "advertising", "legal_compliance",
)  # fmt: skip
CHANNELS = ("sms", "voice", "email", "web_chat", "push", "web")


@dataclass
class Holding:
    """One category of a subject's data held in one system."""

    category: str
    system: str
    legal_basis: str
    purposes: list[str]
    role: str | None
    jurisdiction: str | None
    first_collected: datetime
    last_collected: datetime
    status: str


@dataclass
class Interval:
    """A span during which one category of the subject's data was held in one system."""

    opened_by: str
    category: str
    system: str
    jurisdiction: str | None
    held_from: datetime
    held_until: datetime | None


@dataclass
class Consent:
    """The latest word on one purpose x channel, by event time."""

    purpose: str
    channel: str
    state: str
    since: datetime
    event_id: str


@dataclass
class Share:
    """One disclosure of a subject's data to a recipient."""

    recipient: str
    recipient_type: str
    categories: list[str]
    purpose: str
    legal_basis: str | None
    country: str | None
    transfer_mechanism: str | None
    time: datetime
    event_id: str


@dataclass
class DeletionRequest:
    """An erasure request; `categories` None means everything."""

    request_id: str
    categories: list[str] | None
    verified: bool
    requested_at: datetime
    status: str
    completed_at: datetime | None
    event_id: str


@dataclass
class LegalHold:
    """A hold that suspends expiry and erasure; `categories` None means everything."""

    hold_id: str
    reason: str
    categories: list[str] | None
    placed_at: datetime
    event_id: str


@dataclass
class Violation:
    """Data collected where the ledger says it must not be: after erasure or a completed deletion."""

    event_id: str
    category: str
    system: str
    time: datetime
    reason: str


@dataclass
class ConsentChange:
    """One word on a purpose x channel as it arrived: when it took effect, when the ledger recorded it,
    and its place in the subject's log (`version`), so contacts can be judged as known then and now."""

    event_id: str
    purpose: str
    channel: str
    state: str
    at: datetime
    recorded: datetime
    version: int


@dataclass
class Contact:
    """A message sent to the subject (`contact.made`): purpose, channel and ids, never content."""

    event_id: str
    purpose: str
    channel: str
    message_id: str
    campaign: str | None
    time: datetime
    recorded: datetime
    version: int


@dataclass
class SubjectState:
    """Everything the ledger currently knows about one subject of one tenant."""

    tenant: str
    subject: str
    first_seen: datetime | None = None
    last_event_at: datetime | None = None
    erased: bool = False
    erased_at: datetime | None = None
    account_closed_at: datetime | None = None
    holdings: dict[tuple[str, str], Holding] = field(default_factory=dict)
    consent: dict[tuple[str, str], Consent] = field(default_factory=dict)
    shares: dict[str, Share] = field(default_factory=dict)
    deletion_requests: dict[str, DeletionRequest] = field(default_factory=dict)
    legal_holds: dict[str, LegalHold] = field(default_factory=dict)
    violations: dict[str, Violation] = field(default_factory=dict)
    intervals: dict[str, Interval] = field(default_factory=dict)
    consent_log: dict[tuple[str, str], ConsentChange] = field(default_factory=dict)
    contacts: dict[str, Contact] = field(default_factory=dict)


def apply_fact(
    state: SubjectState,
    kind: str,
    event_id: str,
    at: datetime,
    data: dict[str, Any],
    *,
    recorded: datetime | None = None,
    version: int = 0,
) -> None:
    """Fold one fact (`kind` is its CloudEvents type) into `state`, in place; `recorded` (default
    `at`) is when the ledger stored it and `version` its place in the subject's log.

    Facts may arrive out of event-time order; each rule keeps the answer that the latest event
    time gives, so a late event never overrides a newer one.
    """
    state.first_seen = at if state.first_seen is None else min(state.first_seen, at)
    state.last_event_at = at if state.last_event_at is None else max(state.last_event_at, at)
    _RULES[kind](state, event_id, at, data)
    logged = _LOGGED.get(kind)
    if logged is not None:
        logged(state, Logged(event_id, at, at if recorded is None else recorded, version), data)


def apply_erasure(state: SubjectState, at: datetime) -> None:
    """The subject's data keys were destroyed at `at`."""
    state.erased = True
    state.erased_at = at


def erasure_due(state: SubjectState, *, await_recipients: bool) -> DeletionRequest | None:
    """The verified request for everything that makes erasure due now, if any.

    Due once every system holding data has confirmed deletion (the request is completed), and, when
    recipients are awaited, every recipient the data was shared with has too, and no legal hold
    stands; a request completed after an earlier erasure makes it due again (data collected since
    then lives under a new key).
    """
    if state.legal_holds:
        return None
    for request in state.deletion_requests.values():
        completed = request.completed_at
        if not request.verified or request.categories is not None or completed is None:
            continue
        if state.erased_at is None or completed > state.erased_at:
            return None if await_recipients and unconfirmed_recipients(state) else request
    return None


def unconfirmed_recipients(state: SubjectState, categories: list[str] | None = None) -> list[str]:
    """Recipients that were sent the subject's data of these categories (None: any) and have not
    confirmed deleting it (`deletion.completed` naming the recipient as its system)."""
    recipients = {share.recipient for share in state.shares.values()}
    return sorted(
        {
            interval.system
            for interval in state.intervals.values()
            if interval.held_until is None
            and interval.system in recipients
            and (categories is None or interval.category in categories)
        }
    )


def recipients_to_confirm(state: SubjectState) -> list[str]:
    """Recipients still holding data that one of the subject's deletion requests covers."""
    return sorted(
        {
            recipient
            for request in state.deletion_requests.values()
            for recipient in unconfirmed_recipients(state, request.categories)
        }
    )


def _collected(state: SubjectState, event_id: str, at: datetime, data: dict[str, Any]) -> None:
    _flag_violation(state, event_id, at, data)
    _open_interval(state, event_id, at, data)
    key = (data["category"], data["system"])
    holding = state.holdings.get(key)
    if holding is None:
        state.holdings[key] = Holding(
            category=data["category"],
            system=data["system"],
            legal_basis=data["legal_basis"],
            purposes=list(data["purposes"]),
            role=data.get("role"),
            jurisdiction=data.get("jurisdiction"),
            first_collected=at,
            last_collected=at,
            status=HELD,
        )
        return
    holding.first_collected = min(holding.first_collected, at)
    if at >= holding.last_collected:
        holding.last_collected = at
        holding.legal_basis = data["legal_basis"]
        holding.purposes = list(data["purposes"])
        holding.role = data.get("role", holding.role)
        holding.jurisdiction = data.get("jurisdiction", holding.jurisdiction)
        holding.status = HELD


def _open_interval(state: SubjectState, event_id: str, at: datetime, data: dict[str, Any]) -> None:
    """Start a holding interval unless one covering `at` is already open."""
    for interval in state.intervals.values():
        same = interval.category == data["category"] and interval.system == data["system"]
        if same and (interval.held_until is None or interval.held_from <= at <= interval.held_until):
            interval.held_from = min(interval.held_from, at)
            return
    state.intervals[event_id] = Interval(
        event_id, data["category"], data["system"], data.get("jurisdiction"), at, None
    )


def _jurisdiction(state: SubjectState, category: str) -> str | None:
    """The jurisdiction the subject's latest holding names, preferring holdings of `category`."""
    named = [h for h in state.holdings.values() if h.jurisdiction is not None]
    if not named:
        return None
    latest = max(named, key=lambda h: (h.category == category, h.last_collected))
    return latest.jurisdiction


def _flag_violation(state: SubjectState, event_id: str, at: datetime, data: dict[str, Any]) -> None:
    reason = None
    if state.erased_at is not None and at > state.erased_at:
        reason = f"collected after the subject was erased at {rfc3339(state.erased_at)}"
    for request in state.deletion_requests.values():
        covered = request.categories is None or data["category"] in request.categories
        if reason is None and covered and request.completed_at is not None and at > request.completed_at:
            reason = f"collected after deletion request {request.request_id} was completed"
    if reason is not None:
        state.violations[event_id] = Violation(event_id, data["category"], data["system"], at, reason)


def _set_consent(
    state: SubjectState, purpose: str, channel: str, *, verdict: str, event_id: str, at: datetime
) -> None:
    current = state.consent.get((purpose, channel))
    if current is None or at >= current.since:
        state.consent[(purpose, channel)] = Consent(purpose, channel, verdict, at, event_id)


def _given(state: SubjectState, event_id: str, at: datetime, data: dict[str, Any]) -> None:
    _set_consent(state, data["purpose"], data["channel"], verdict=GRANTED, event_id=event_id, at=at)


def _withdrawn(state: SubjectState, event_id: str, at: datetime, data: dict[str, Any]) -> None:
    _set_consent(state, data["purpose"], data["channel"], verdict=WITHDRAWN, event_id=event_id, at=at)


def opted_out_purposes(data: dict[str, Any]) -> list[str]:
    """The purposes an opt-out covers: those it names, else every purpose but transactional ones."""
    return list(data.get("purposes") or [p for p in PURPOSES if p != SERVICE])


def _opted_out(state: SubjectState, event_id: str, at: datetime, data: dict[str, Any]) -> None:
    for purpose in opted_out_purposes(data):
        _set_consent(state, purpose, data["channel"], verdict=OPTED_OUT, event_id=event_id, at=at)


def _shared(state: SubjectState, event_id: str, at: datetime, data: dict[str, Any]) -> None:
    # From the moment it is shared, the data is also held by the recipient, until the recipient's
    # system confirms deletion: an interval like any other, so a breach of the recipient finds it.
    for category in data["categories"]:
        held = {
            "category": category,
            "system": data["recipient"],
            "jurisdiction": _jurisdiction(state, category),
        }
        _open_interval(state, f"{event_id}/{category}", at, held)
    state.shares[event_id] = Share(
        recipient=data["recipient"],
        recipient_type=data["recipient_type"],
        categories=list(data["categories"]),
        purpose=data["purpose"],
        legal_basis=data.get("legal_basis"),
        country=data.get("country"),
        transfer_mechanism=data.get("transfer_mechanism"),
        time=at,
        event_id=event_id,
    )


def _deletion_requested(state: SubjectState, event_id: str, at: datetime, data: dict[str, Any]) -> None:
    state.deletion_requests[data["request_id"]] = DeletionRequest(
        request_id=data["request_id"],
        categories=data.get("categories"),
        verified=data["verified"],
        requested_at=at,
        status=OPEN,
        completed_at=None,
        event_id=event_id,
    )
    _complete_requests(state, at)


def _deletion_completed(state: SubjectState, event_id: str, at: datetime, data: dict[str, Any]) -> None:
    categories = data.get("categories")
    for holding in state.holdings.values():
        covered = categories is None or holding.category in categories
        if holding.system == data["system"] and covered and holding.last_collected <= at:
            holding.status = DELETED
    for interval in state.intervals.values():
        covered = categories is None or interval.category in categories
        open_then = interval.held_until is None and interval.held_from <= at
        if interval.system == data["system"] and covered and open_then:
            interval.held_until = at
    _complete_requests(state, at)


def _complete_requests(state: SubjectState, at: datetime) -> None:
    """Every open request whose categories no system holds any more is completed at `at`."""
    for request in state.deletion_requests.values():
        if request.status == OPEN and not _still_held(state, request.categories):
            request.status = COMPLETED
            request.completed_at = at


def _still_held(state: SubjectState, categories: list[str] | None) -> bool:
    return any(
        holding.status == HELD and (categories is None or holding.category in categories)
        for holding in state.holdings.values()
    )


def _account_closed(state: SubjectState, event_id: str, at: datetime, data: dict[str, Any]) -> None:
    state.account_closed_at = at


def _hold_placed(state: SubjectState, event_id: str, at: datetime, data: dict[str, Any]) -> None:
    state.legal_holds[data["hold_id"]] = LegalHold(
        hold_id=data["hold_id"],
        reason=data["reason"],
        categories=data.get("categories"),
        placed_at=at,
        event_id=event_id,
    )


def _hold_released(state: SubjectState, event_id: str, at: datetime, data: dict[str, Any]) -> None:
    state.legal_holds.pop(data["hold_id"], None)


@dataclass(frozen=True, slots=True)
class Logged:
    """A fact's ids and times, for the rules that keep its bitemporal record."""

    event_id: str
    at: datetime
    recorded: datetime
    version: int


def _log_given(state: SubjectState, fact: Logged, data: dict[str, Any]) -> None:
    _log_consent(state, fact, data["channel"], [data["purpose"]], GRANTED)


def _log_withdrawn(state: SubjectState, fact: Logged, data: dict[str, Any]) -> None:
    _log_consent(state, fact, data["channel"], [data["purpose"]], WITHDRAWN)


def _log_opted_out(state: SubjectState, fact: Logged, data: dict[str, Any]) -> None:
    _log_consent(state, fact, data["channel"], opted_out_purposes(data), OPTED_OUT)


def _log_consent(state: SubjectState, fact: Logged, channel: str, purposes: list[str], verdict: str) -> None:
    for purpose in purposes:
        state.consent_log[(fact.event_id, purpose)] = ConsentChange(
            fact.event_id, purpose, channel, verdict, fact.at, fact.recorded, fact.version
        )


def _contacted(state: SubjectState, fact: Logged, data: dict[str, Any]) -> None:
    state.contacts[fact.event_id] = Contact(
        event_id=fact.event_id,
        purpose=data["purpose"],
        channel=data["channel"],
        message_id=data["message_id"],
        campaign=data.get("campaign"),
        time=fact.at,
        recorded=fact.recorded,
        version=fact.version,
    )


def _no_change(state: SubjectState, event_id: str, at: datetime, data: dict[str, Any]) -> None:
    """A contact changes nothing the subject's current state says; it is only logged."""


_RULES = {
    "data.collected": _collected,
    "consent.given": _given,
    "consent.withdrawn": _withdrawn,
    "optout.received": _opted_out,
    "data.shared": _shared,
    "deletion.requested": _deletion_requested,
    "deletion.completed": _deletion_completed,
    "account.closed": _account_closed,
    "legalhold.placed": _hold_placed,
    "legalhold.released": _hold_released,
    "contact.made": _no_change,
}
_LOGGED = {
    "consent.given": _log_given,
    "consent.withdrawn": _log_withdrawn,
    "optout.received": _log_opted_out,
    "contact.made": _contacted,
}
