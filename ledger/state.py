"""A subject's state as the ledger derives it from facts: pure data and a pure fold, no I/O.

The projections persist this state in tables; the aggregate and point-in-time queries fold the same
function over stored events, so "now" and "as of" can never disagree about what a fact means.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger import keywords
from ledger.times import rfc3339

HELD = "held"
DELETED = "deleted"
GRANTED = "granted"
WITHDRAWN = "withdrawn"
OPTED_OUT = "opted_out"
OPEN = "open"
COMPLETED = "completed"
REFUSED = "refused"
FULFILLED = "fulfilled"
ERASURE = "erasure"
RESTRICTION = "restriction"
OBJECTION = "objection"
MARKETING = "marketing"
CHILDREN = "children"
DIRECT_MARKETING = ("marketing", "advertising")  # Art. 21(2)-(3): objected to, they stop at once
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
class RightsRequest:
    """A data subject's request to exercise a right, and what became of it.

    Follow-up facts may arrive before the request itself: each fact fills only its own fields, so the
    result is the same in any order (`right` and `requested_at` stay None until the request arrives).
    An erasure request (`deletion.requested` too) is answered when its deletion completes.
    """

    request_id: str
    right: str | None = None
    channel: str | None = None
    jurisdiction: str | None = None
    categories: list[str] | None = None
    purposes: list[str] | None = None
    requested_at: datetime | None = None
    verified_at: datetime | None = None
    verification: str | None = None
    extended_at: datetime | None = None
    extension_reason: str | None = None
    status: str = OPEN
    answered_at: datetime | None = None
    outcome: str | None = None
    exemption: str | None = None
    export_sha256: str | None = None
    lifted_at: datetime | None = None
    event_id: str | None = None


@dataclass
class RightsChange:
    """One fact on a rights request as it arrived (`step`: requested, fulfilled, refused or lifted;
    `right` and `purposes` on the request only), with its event time, recorded time and place in the
    subject's log, so contacts can be judged by restrictions and objections as known then and now."""

    event_id: str
    request_id: str
    step: str
    right: str | None
    purposes: list[str] | None
    at: datetime
    recorded: datetime
    version: int


@dataclass
class KeywordStop:
    """The latest keyword opt-out on one purpose x channel, and the latest explicit word on it (given,
    withdrawn, a signal), so that START can restore what the keyword withdrew (None: no word)."""

    purpose: str
    channel: str
    stopped_at: datetime
    event_id: str
    explicit_state: str | None
    explicit_since: datetime | None
    explicit_event_id: str | None


@dataclass
class Resubscribe:
    """The latest re-subscription keyword (START, UNSTOP, ...) on a channel."""

    channel: str
    at: datetime
    event_id: str


@dataclass
class ChildSignal:
    """A fact saying the subject may be a child: an age signal, or data of the category `children`."""

    event_id: str
    at: datetime
    age_band: str | None
    jurisdiction: str | None
    category: str | None


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
    rights_requests: dict[str, RightsRequest] = field(default_factory=dict)
    rights_log: dict[str, RightsChange] = field(default_factory=dict)
    keyword_stops: dict[tuple[str, str], KeywordStop] = field(default_factory=dict)
    resubscribes: dict[str, Resubscribe] = field(default_factory=dict)
    child_signals: dict[str, ChildSignal] = field(default_factory=dict)


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
    if data["category"] == CHILDREN:
        state.child_signals[event_id] = ChildSignal(event_id, at, None, data.get("jurisdiction"), CHILDREN)
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


def jurisdiction_of(state: SubjectState, category: str | None = None) -> str | None:
    """The jurisdiction the subject's latest holding names, preferring holdings of `category`."""
    named = [h for h in state.holdings.values() if h.jurisdiction is not None]
    if not named:
        return None
    # Holdings collected at the same instant are told apart by their key, not by the order they were
    # read in (the fold's, the read model's): projections.deadlines picks the same one in SQL.
    latest = max(named, key=lambda h: (h.category == category, h.last_collected, h.category, h.system))
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
    """An explicit word on one purpose x channel (not a keyword): the latest by event time wins."""
    stop = state.keyword_stops.get((purpose, channel))
    if stop is not None:
        if stop.explicit_since is None or at >= stop.explicit_since:
            stop.explicit_state, stop.explicit_since, stop.explicit_event_id = verdict, at, event_id
        _settle(state, stop)
        return
    current = state.consent.get((purpose, channel))
    if current is None or at >= current.since:
        state.consent[(purpose, channel)] = Consent(purpose, channel, verdict, at, event_id)


def _keyword_stop(state: SubjectState, purpose: str, channel: str, event_id: str, at: datetime) -> None:
    stop = state.keyword_stops.get((purpose, channel))
    if stop is None:
        # The pair's first keyword stop: until now every word on it was explicit.
        word = state.consent.get((purpose, channel))
        stop = state.keyword_stops[(purpose, channel)] = KeywordStop(
            purpose, channel, at, event_id, None, None, None
        )
        if word is not None:
            stop.explicit_state, stop.explicit_since = word.state, word.since
            stop.explicit_event_id = word.event_id
    elif at >= stop.stopped_at:
        stop.stopped_at, stop.event_id = at, event_id
    _settle(state, stop)


def _resubscribed(state: SubjectState, channel: str, event_id: str, at: datetime) -> None:
    current = state.resubscribes.get(channel)
    if current is None or at >= current.at:
        state.resubscribes[channel] = Resubscribe(channel, at, event_id)
    for stop in list(state.keyword_stops.values()):
        if stop.channel == channel:
            _settle(state, stop)


def _settle(state: SubjectState, stop: KeywordStop) -> None:
    """The word in force on a pair that has had a keyword stop: the latest of its explicit word, its
    latest stop and its channel's latest re-subscription, where a re-subscription restores the explicit
    word the stop overrode (nothing, if none came before it) and changes nothing after an explicit word.
    Computed from those three alone, so facts may arrive in any order."""
    key = (stop.purpose, stop.channel)
    again = state.resubscribes.get(stop.channel)
    explicit_at, explicit_state = stop.explicit_since, stop.explicit_state
    explicit = (
        None
        if explicit_at is None or explicit_state is None or stop.explicit_event_id is None
        else Consent(stop.purpose, stop.channel, explicit_state, explicit_at, stop.explicit_event_id)
    )
    if again is not None and again.at >= stop.stopped_at and (explicit is None or again.at > explicit.since):
        if explicit is None:
            state.consent.pop(key, None)
        elif explicit.since < stop.stopped_at:
            state.consent[key] = Consent(stop.purpose, stop.channel, explicit.state, again.at, again.event_id)
        else:
            state.consent[key] = explicit
    elif explicit is not None and explicit.since >= stop.stopped_at:
        state.consent[key] = explicit
    else:
        state.consent[key] = Consent(stop.purpose, stop.channel, OPTED_OUT, stop.stopped_at, stop.event_id)


def _given(state: SubjectState, event_id: str, at: datetime, data: dict[str, Any]) -> None:
    _set_consent(state, data["purpose"], data["channel"], verdict=GRANTED, event_id=event_id, at=at)


def _withdrawn(state: SubjectState, event_id: str, at: datetime, data: dict[str, Any]) -> None:
    _set_consent(state, data["purpose"], data["channel"], verdict=WITHDRAWN, event_id=event_id, at=at)


def opted_out_purposes(data: dict[str, Any]) -> list[str]:
    """The purposes an opt-out covers: those it names, else every purpose but transactional ones."""
    return list(data.get("purposes") or [p for p in PURPOSES if p != SERVICE])


def _opted_out(state: SubjectState, event_id: str, at: datetime, data: dict[str, Any]) -> None:
    for purpose in opted_out_purposes(data):
        if data.get("keyword") is not None:
            _keyword_stop(state, purpose, data["channel"], event_id, at)
        else:
            _set_consent(state, purpose, data["channel"], verdict=OPTED_OUT, event_id=event_id, at=at)


def _effect(data: dict[str, Any]) -> str:
    """What a `keyword.received` means: a tenant's own word carries the meaning it had on arrival; a
    built-in one is read here."""
    effect: str = data.get("effect") or keywords.built_in(data["keyword"])
    return effect


def _keyword(state: SubjectState, event_id: str, at: datetime, data: dict[str, Any]) -> None:
    effect = _effect(data)
    if effect == keywords.OPT_OUT:
        for purpose in PURPOSES:
            if purpose != SERVICE:
                _keyword_stop(state, purpose, data["channel"], event_id, at)
    elif effect == keywords.RESUBSCRIBE:
        _resubscribed(state, data["channel"], event_id, at)


def _shared(state: SubjectState, event_id: str, at: datetime, data: dict[str, Any]) -> None:
    # From the moment it is shared, the data is also held by the recipient, until the recipient's
    # system confirms deletion: an interval like any other, so a breach of the recipient finds it.
    for category in data["categories"]:
        held = {
            "category": category,
            "system": data["recipient"],
            "jurisdiction": jurisdiction_of(state, category),
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
    request = _request(state, data["request_id"])
    _received(state, request, event_id, at, {"right": ERASURE, "channel": None} | data)
    if data["verified"]:
        _verified(state, event_id, at, {"request_id": request.request_id, "method": None})
    _open_erasure(state, request, event_id)


def _open_erasure(state: SubjectState, request: RightsRequest, event_id: str) -> None:
    """The erasure an erasure request asks for, which systems' confirmations complete."""
    assert request.requested_at is not None
    state.deletion_requests[request.request_id] = DeletionRequest(
        request_id=request.request_id,
        categories=request.categories,
        verified=request.verified_at is not None,
        requested_at=request.requested_at,
        status=REFUSED if request.status == REFUSED else OPEN,
        completed_at=None,
        event_id=event_id,
    )
    _complete_requests(state, request.requested_at)


def _request(state: SubjectState, request_id: str) -> RightsRequest:
    """The rights request `request_id`, created empty if no fact about it has been folded yet."""
    request = state.rights_requests.get(request_id)
    if request is None:
        request = state.rights_requests[request_id] = RightsRequest(request_id)
    return request


def _received(
    state: SubjectState, request: RightsRequest, event_id: str, at: datetime, data: dict[str, Any]
) -> None:
    request.right, request.channel, request.event_id = data["right"], data["channel"], event_id
    request.categories, request.purposes = data.get("categories"), data.get("purposes")
    request.jurisdiction = data.get("jurisdiction") or jurisdiction_of(state)
    request.requested_at = at


def _rights_requested(state: SubjectState, event_id: str, at: datetime, data: dict[str, Any]) -> None:
    request = _request(state, data["request_id"])
    _received(state, request, event_id, at, data)
    if data.get("verified"):
        _verified(state, event_id, at, {"request_id": request.request_id, "method": None})
    if request.right == ERASURE:
        _open_erasure(state, request, event_id)
    elif request.right == OBJECTION:
        # Direct marketing must stop on objection (Art. 21(3)); other processing when it is upheld.
        _object(state, request, DIRECT_MARKETING, event_id, at)
        if request.status == FULFILLED and request.answered_at is not None:
            _object(state, request, PURPOSES, event_id, request.answered_at)


def _object(
    state: SubjectState, request: RightsRequest, among: tuple[str, ...], event_id: str, at: datetime
) -> None:
    """Opt the subject out, on every channel, of the purposes the objection names among `among`."""
    channels = {*CHANNELS, *(channel for _, channel in state.consent)}
    for purpose in request.purposes or ():
        if purpose in among and purpose != SERVICE:
            for channel in sorted(channels):
                _set_consent(state, purpose, channel, verdict=OPTED_OUT, event_id=event_id, at=at)


def _verified(state: SubjectState, event_id: str, at: datetime, data: dict[str, Any]) -> None:
    request = _request(state, data["request_id"])
    if request.verified_at is None or at < request.verified_at:
        request.verified_at, request.verification = at, data["method"]
    erasure = state.deletion_requests.get(request.request_id)
    if erasure is not None:
        erasure.verified = True


def _extended(state: SubjectState, event_id: str, at: datetime, data: dict[str, Any]) -> None:
    request = _request(state, data["request_id"])
    if request.extended_at is None or at < request.extended_at:  # the first notice is the extension
        request.extended_at, request.extension_reason = at, data["reason"]


def _answer(request: RightsRequest, status: str, at: datetime, **fields: str | None) -> bool:
    """Record an answer unless a later one is recorded already; True if this one stands."""
    if request.answered_at is not None and at < request.answered_at:
        return False
    request.status, request.answered_at = status, at
    request.outcome, request.exemption, request.export_sha256 = (
        fields.get("outcome"),
        fields.get("exemption"),
        fields.get("export_sha256"),
    )
    return True


def _fulfilled(state: SubjectState, event_id: str, at: datetime, data: dict[str, Any]) -> None:
    request = _request(state, data["request_id"])
    fields = {"outcome": data["outcome"], "export_sha256": data.get("export_sha256")}
    if _answer(request, FULFILLED, at, **fields) and request.right == OBJECTION:
        _object(state, request, PURPOSES, event_id, at)


def _refused(state: SubjectState, event_id: str, at: datetime, data: dict[str, Any]) -> None:
    request = _request(state, data["request_id"])
    if _answer(request, REFUSED, at, exemption=data["exemption"]):
        erasure = state.deletion_requests.get(request.request_id)
        if erasure is not None and erasure.status == OPEN:
            erasure.status = REFUSED


def _lifted(state: SubjectState, event_id: str, at: datetime, data: dict[str, Any]) -> None:
    request = _request(state, data["request_id"])
    if request.lifted_at is None or at > request.lifted_at:
        request.lifted_at = at


def restriction_in_effect(state: SubjectState) -> RightsRequest | None:
    """The earliest restriction of processing requested, not refused and not lifted, if any: it takes
    effect on receipt (Art. 18(1): while accuracy or grounds are checked) and lasts until lifted."""
    standing = [
        request
        for request in state.rights_requests.values()
        if request.right == RESTRICTION
        and request.requested_at is not None
        and request.status != REFUSED
        and request.lifted_at is None
    ]
    return min(standing, key=lambda r: (r.requested_at, r.request_id), default=None)


def _age_signalled(state: SubjectState, event_id: str, at: datetime, data: dict[str, Any]) -> None:
    state.child_signals[event_id] = ChildSignal(
        event_id, at, data["age_band"], data.get("jurisdiction") or jurisdiction_of(state), None
    )


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
    """Every open request whose categories no system holds any more is completed at `at`, which
    answers the erasure request it came from."""
    for request in state.deletion_requests.values():
        if request.status == OPEN and not _still_held(state, request.categories):
            request.status = COMPLETED
            request.completed_at = at
            asked = state.rights_requests.get(request.request_id)
            if asked is not None and asked.status == OPEN:
                _answer(asked, FULFILLED, at, outcome="erased")


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


def _log_keyword(state: SubjectState, fact: Logged, data: dict[str, Any]) -> None:
    """A keyword opt-out is a word on every purpose but `service`; a re-subscription one on each purpose
    it restored a grant to (as folded when it arrived)."""
    effect, channel = _effect(data), data["channel"]
    if effect == keywords.OPT_OUT:
        _log_consent(state, fact, channel, opted_out_purposes({}), OPTED_OUT)
    elif effect == keywords.RESUBSCRIBE:
        restored = [
            word.purpose
            for word in state.consent.values()
            if word.channel == channel and word.event_id == fact.event_id and word.state == GRANTED
        ]
        _log_consent(state, fact, channel, restored, GRANTED)


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


def _log_rights(step: str) -> Callable[[SubjectState, Logged, dict[str, Any]], None]:
    """The rule that logs a rights fact of this step."""

    def log(state: SubjectState, fact: Logged, data: dict[str, Any]) -> None:
        state.rights_log[fact.event_id] = RightsChange(
            fact.event_id,
            data["request_id"],
            step,
            data.get("right"),
            data.get("purposes"),
            fact.at,
            fact.recorded,
            fact.version,
        )

    return log


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
    "rights.requested": _rights_requested,
    "rights.verified": _verified,
    "rights.extended": _extended,
    "rights.fulfilled": _fulfilled,
    "rights.refused": _refused,
    "rights.lifted": _lifted,
    "keyword.received": _keyword,
    "age.signalled": _age_signalled,
}
_LOGGED = {
    "consent.given": _log_given,
    "consent.withdrawn": _log_withdrawn,
    "optout.received": _log_opted_out,
    "contact.made": _contacted,
    "keyword.received": _log_keyword,
    "rights.requested": _log_rights("requested"),
    "rights.fulfilled": _log_rights(FULFILLED),
    "rights.refused": _log_rights(REFUSED),
    "rights.lifted": _log_rights("lifted"),
}
