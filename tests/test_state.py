"""The pure fold from facts to a subject's state, and the contact decision."""

from datetime import timedelta
from typing import Any

from ledger.contact import decide
from ledger.state import (
    DELETED,
    GRANTED,
    HELD,
    OPTED_OUT,
    WITHDRAWN,
    SubjectState,
    apply_erasure,
    apply_fact,
    erasure_due,
    recipients_to_confirm,
)
from tests.helpers import T0, collected, consent


def _fold(*facts: tuple[str, int, dict[str, Any]]) -> SubjectState:
    state = SubjectState(tenant="acme", subject="s-1")
    for number, (kind, minutes, data) in enumerate(facts):
        apply_fact(state, kind, f"e{number}", T0 + timedelta(minutes=minutes), data)
    return state


def test_withdrawal_after_grant_wins() -> None:
    """Consent given then withdrawn reads withdrawn, naming the withdrawing event."""
    state = _fold(("consent.given", 1, consent()), ("consent.withdrawn", 2, consent()))
    record = state.consent[("marketing", "sms")]
    assert (record.state, record.event_id) == (WITHDRAWN, "e1")


def test_late_event_does_not_override_a_newer_one() -> None:
    """A withdrawal that happened earlier but arrives later leaves the newer grant in force."""
    state = _fold(("consent.given", 10, consent()), ("consent.withdrawn", 5, consent()))
    assert state.consent[("marketing", "sms")].state == GRANTED
    assert state.first_seen == T0 + timedelta(minutes=5)


def test_optout_defaults_to_every_purpose_but_service() -> None:
    """STOP on SMS opts out of every non-service purpose on SMS only."""
    state = _fold(
        ("consent.given", 1, consent("marketing", "sms")),
        ("consent.given", 1, consent("marketing", "email")),
        ("optout.received", 2, {"channel": "sms", "keyword": "STOP"}),
    )
    assert state.consent[("marketing", "sms")].state == OPTED_OUT
    assert state.consent[("marketing", "email")].state == GRANTED
    assert ("service", "sms") not in state.consent


def test_deletion_completes_request_when_nothing_is_held() -> None:
    """A request completes once every system holding its categories has confirmed deletion."""
    state = _fold(
        ("data.collected", 1, collected(system="crm")),
        ("data.collected", 1, collected(system="billing")),
        ("deletion.requested", 2, {"request_id": "r1", "verified": True}),
        ("deletion.completed", 3, {"system": "crm", "request_id": "r1"}),
    )
    assert state.deletion_requests["r1"].status == "open"
    assert state.holdings[("account_contact", "crm")].status == DELETED
    apply_fact(state, "deletion.completed", "e9", T0 + timedelta(minutes=4), {"system": "billing"})
    assert state.deletion_requests["r1"].status == "completed"


def test_collection_after_deletion_holds_again() -> None:
    """Data collected again after a deletion is held again, with its first collection kept."""
    state = _fold(
        ("data.collected", 1, collected()),
        ("deletion.completed", 2, {"system": "crm"}),
        ("data.collected", 3, collected()),
    )
    holding = state.holdings[("account_contact", "crm")]
    assert (holding.status, holding.first_collected) == (HELD, T0 + timedelta(minutes=1))


def test_legal_hold_placed_and_released() -> None:
    """A released hold no longer appears."""
    state = _fold(
        ("legalhold.placed", 1, {"hold_id": "h1", "reason": "litigation"}),
        ("legalhold.placed", 1, {"hold_id": "h2", "reason": "audit", "categories": ["billing"]}),
        ("legalhold.released", 2, {"hold_id": "h1"}),
    )
    assert list(state.legal_holds) == ["h2"]


def test_contact_rules() -> None:
    """Service needs no consent unless erased; other purposes need a live grant."""
    granted = _fold(("consent.given", 1, consent())).consent[("marketing", "sms")]
    withdrawn = _fold(("consent.withdrawn", 1, consent())).consent[("marketing", "sms")]
    assert decide(False, "service", "sms", None).allowed
    assert not decide(True, "service", "sms", None).allowed
    assert not decide(False, "marketing", "sms", None).allowed
    assert decide(False, "marketing", "sms", granted).allowed
    denied = decide(False, "marketing", "sms", withdrawn)
    assert not denied.allowed and "withdrawn" in denied.reason and denied.event_id == "e0"


def test_erasure_due_only_for_a_completed_verified_request_for_everything() -> None:
    """A partial or unverified request never makes erasure due; a hold suspends it."""
    partial = _fold(
        ("data.collected", 1, collected()),
        ("deletion.requested", 2, {"request_id": "r", "verified": True, "categories": ["account_contact"]}),
        ("deletion.completed", 3, {"system": "crm"}),
    )
    assert erasure_due(partial, await_recipients=True) is None
    unverified = _fold(("deletion.requested", 2, {"request_id": "r", "verified": False}))
    assert erasure_due(unverified, await_recipients=True) is None
    held = _fold(
        ("legalhold.placed", 1, {"hold_id": "h", "reason": "audit"}),
        ("deletion.requested", 2, {"request_id": "r", "verified": True}),
    )
    assert erasure_due(held, await_recipients=True) is None
    apply_fact(held, "legalhold.released", "e9", T0 + timedelta(minutes=3), {"hold_id": "h"})
    due = erasure_due(held, await_recipients=True)
    assert due is not None and due.request_id == "r"


def test_erasure_waits_for_recipients_unless_they_are_only_informed() -> None:
    """Data shared with a recipient keeps erasure pending until the recipient confirms deletion too,
    unless recipients are not awaited; either way the recipient is listed until it confirms."""
    shared = {"recipient": "aws-storage", "recipient_type": "subprocessor", "purpose": "service"}
    state = _fold(
        ("data.collected", 1, collected()),
        ("data.shared", 2, shared | {"categories": ["account_contact"]}),
        ("deletion.requested", 3, {"request_id": "r", "verified": True}),
        ("deletion.completed", 4, {"system": "crm"}),
    )
    assert erasure_due(state, await_recipients=True) is None
    assert erasure_due(state, await_recipients=False) is not None
    assert recipients_to_confirm(state) == ["aws-storage"]
    apply_fact(state, "deletion.completed", "e9", T0 + timedelta(minutes=5), {"system": "aws-storage"})
    assert erasure_due(state, await_recipients=True) is not None
    assert recipients_to_confirm(state) == []


def test_request_with_nothing_held_completes_at_once() -> None:
    """A subject the ledger knows no holdings of has nothing to wait for."""
    state = _fold(
        ("consent.given", 1, consent()), ("deletion.requested", 2, {"request_id": "r", "verified": True})
    )
    assert state.deletion_requests["r"].status == "completed"


def test_collection_after_erasure_or_completed_deletion_is_a_violation() -> None:
    """Facts are stored, and data collected where the ledger says it must not be is flagged."""
    state = _fold(
        ("data.collected", 1, collected(category="billing", system="billing")),
        ("deletion.requested", 2, {"request_id": "r", "verified": True, "categories": ["billing"]}),
        ("deletion.completed", 3, {"system": "billing"}),
        ("data.collected", 4, collected(category="billing", system="billing")),
    )
    assert [(v.event_id, v.category) for v in state.violations.values()] == [("e3", "billing")]
    apply_erasure(state, T0 + timedelta(minutes=5))
    apply_fact(state, "data.collected", "e9", T0 + timedelta(minutes=6), collected())
    assert "erased" in state.violations["e9"].reason


def test_shared_data_is_held_by_the_recipient_until_it_confirms_deletion() -> None:
    """A share opens an interval per category in the recipient's system, named for the subject's
    jurisdiction; the recipient's deletion.completed closes it."""
    share = {
        "recipient": "vendor",
        "recipient_type": "subprocessor",
        "categories": ["billing"],
        "purpose": "billing",
    }
    state = _fold(
        ("data.collected", 1, collected("billing", "erp") | {"jurisdiction": "FR"}),
        ("data.shared", 2, share),
        ("deletion.completed", 9, {"system": "vendor"}),
    )
    interval = state.intervals["e1/billing"]
    assert (interval.system, interval.category, interval.jurisdiction) == ("vendor", "billing", "FR")
    assert (interval.held_from, interval.held_until) == (T0 + timedelta(minutes=2), T0 + timedelta(minutes=9))
    assert state.intervals["e0"].held_until is None  # the controller's own copy is untouched
