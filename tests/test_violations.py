"""The violations report on real PostgreSQL: contacts judged as known then and now, and every kind."""

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from ledger import violations as kinds
from ledger.declaration import parse_declaration
from ledger.purges import PurgeOrder
from ledger.retention import load_policy
from ledger.store import Ledger
from projections.projector import Projector
from projections.violations import Period, violations
from tests.helpers import T0, collected, consent, fact

pytestmark = pytest.mark.services
T0_ORDER = UUID("00000000-0000-0000-0000-00000000f00d")
DAY = 24 * 60


def _message(message_id: str, purpose: str = "marketing", channel: str = "sms") -> dict[str, Any]:
    return {"purpose": purpose, "channel": channel, "message_id": message_id, "campaign": "spring"}


def _store(ledger: Ledger, tenant: str, subject: str, *steps: tuple[str, int, dict[str, Any]]) -> None:
    """Store each (type, minutes after T0, data) in its own transaction, in the order given: the
    order the ledger learns of them."""
    for number, (kind, minutes, data) in enumerate(steps):
        ledger.append([fact(tenant, subject, f"{subject}-{number}", kind, minutes=minutes, data=data)])


def _report(ledger: Ledger, tenant: str, now: datetime, **period: datetime) -> dict[str, Any]:
    Projector(ledger, page=100).run(until_idle=True)
    window = Period(period.get("start", T0 - timedelta(days=1)), period.get("end", now), now)
    return violations(ledger, tenant, window, load_policy(None), confirm_days=7).as_json()


def _only(report: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [entry for entry in report["violations"] if entry["kind"] == kind]


def test_contacts_are_judged_as_known_when_sent_and_as_known_now(ledger: Ledger) -> None:
    """A contact made before a STOP that reached the ledger after it is 'allowed then, not as known
    now' with both times of the STOP; one made after the STOP was recorded is 'not allowed'; a
    transactional message is never flagged."""
    _store(
        ledger,
        "acme",
        "ann",
        ("consent.given", 0, consent()),
        ("contact.made", 60, _message("m-before-stop-known")),
        ("optout.received", 30, {"channel": "sms", "keyword": "STOP"}),  # happened before m1, came after
        ("contact.made", 90, _message("m-after-stop-known")),
        ("contact.made", 95, _message("m-receipt", purpose="service")),
        ("contact.made", 96, _message("m-email", channel="email")),
    )
    report = _report(ledger, "acme", T0 + timedelta(days=1))
    late = _only(report, kinds.CONTACT_LATE_OPT_OUT)
    assert [entry["message_id"] for entry in late] == ["m-before-stop-known"]
    assert late[0]["event_ids"] == ["ann-1", "ann-0", "ann-2"]  # the contact, the grant then, the STOP
    assert late[0]["opted_out_at"] == "2026-01-01T00:30:00Z"
    assert late[0]["opt_out_recorded"] >= late[0]["recorded"]  # the STOP was stored after the contact
    refused = _only(report, kinds.CONTACT_NOT_ALLOWED)
    assert [entry["message_id"] for entry in refused] == ["m-after-stop-known", "m-email"]
    assert "opted_out since 2026-01-01T00:30:00Z" in refused[0]["reason"]
    assert "no consent recorded for marketing on email" in refused[1]["reason"]
    assert refused[0]["event_ids"] == ["ann-3", "ann-2"]
    [stop] = report["opt_outs_followed_by_contacts"]
    assert (stop["event_id"], stop["contacts"], stop["within_fcc"]) == ("ann-2", 2, True)
    assert report["counts"][kinds.OPT_OUT_OBEYED_LATE] == 0


def test_every_kind_of_violation_is_reported_with_its_events(ledger: Ledger) -> None:
    """Each kind the ledger can see shows up once, counted, and linked to the events that show it."""
    _store(  # contacts went on for three weeks after a withdrawal: past the FCC's 10 business days
        ledger,
        "globex",
        "bob",
        ("consent.given", 0, consent()),
        ("consent.withdrawn", DAY, consent()),
        ("contact.made", 2 * DAY, _message("m1")),
        ("contact.made", 22 * DAY, _message("m2")),
    )
    _store(  # collected again after its deletion was completed
        ledger,
        "globex",
        "cy",
        ("data.collected", 0, collected()),
        ("deletion.requested", 10, {"request_id": "r-cy", "verified": True}),
        ("deletion.completed", 20, {"system": "crm", "request_id": "r-cy"}),
        ("data.collected", 30, collected(category="billing", system="billing")),
    )
    _store(
        ledger,
        "globex",
        "dee",
        ("data.collected", 0, collected()),
        ("deletion.requested", 10, {"request_id": "r-dee", "verified": True}),
    )
    _store(ledger, "globex", "eve", ("data.collected", 0, collected(category="content", system="messaging")))
    _store(ledger, "globex", "fay", ("data.collected", 0, collected()))
    order = PurgeOrder(T0_ORDER, "globex", "fay", "crm", ["account_contact"], "account-data", T0)
    ledger.order_purges([order], T0)
    with ledger.writer.datastore.transaction(commit=True) as curs:
        ledger.orders.mark_sent(curs, [order], T0 + timedelta(days=1))
    share = {
        "recipient": "mixpanel-analytics",
        "recipient_type": "subprocessor",
        "categories": ["usage_metadata"],
        "purpose": "analytics",
    }
    _store(
        ledger, "globex", "gus", ("data.shared", 0, share), ("data.shared", 1, share | {"recipient": "aws"})
    )
    declaration = """
        version = 1
        [[purpose]]
        purpose = "service"
        legal_bases = ["contract"]
        categories = ["account_contact"]
        [[recipient]]
        name = "aws"
        type = "subprocessor"
        country = "US"
    """
    ledger.declare("globex", parse_declaration(declaration, "test"), "dpo", "notice of 2026")
    report = _report(ledger, "globex", T0 + timedelta(days=400))
    assert report["counts"] == {
        kinds.CONTACT_NOT_ALLOWED: 2,
        kinds.CONTACT_LATE_OPT_OUT: 0,
        kinds.OPT_OUT_OBEYED_LATE: 1,
        kinds.COLLECTED_AFTER_ERASURE: 1,
        kinds.PURGE_UNCONFIRMED: 1,
        kinds.HELD_PAST_EXPIRY: 1,
        kinds.REQUEST_ANSWERED_LATE: 1,
        kinds.UNDECLARED_RECIPIENT: 1,
    }
    shown = {entry["kind"]: (entry["subject"], entry["event_ids"]) for entry in report["violations"]}
    assert shown[kinds.OPT_OUT_OBEYED_LATE] == ("bob", ["bob-1", "bob-2", "bob-3"])
    assert shown[kinds.COLLECTED_AFTER_ERASURE] == ("cy", ["cy-3"])
    assert shown[kinds.REQUEST_ANSWERED_LATE] == ("dee", ["dee-1"])
    assert shown[kinds.HELD_PAST_EXPIRY] == ("eve", ["eve-0"])
    assert shown[kinds.PURGE_UNCONFIRMED] == ("fay", [str(T0_ORDER)])
    assert shown[kinds.UNDECLARED_RECIPIENT] == ("gus", ["gus-0"])
    [obeyed] = _only(report, kinds.OPT_OUT_OBEYED_LATE)
    assert "the last 15 business days later" in obeyed["reason"]
    # The period bounds every kind by its own time: a window ending before the contacts has none.
    early = _report(ledger, "globex", T0 + timedelta(days=400), end=T0 + timedelta(days=1, minutes=1))
    assert early["counts"][kinds.CONTACT_NOT_ALLOWED] == 0
    assert early["counts"][kinds.COLLECTED_AFTER_ERASURE] == 1


def test_violations_never_cross_tenants(ledger: Ledger) -> None:
    """A contact without consent in one tenant is not reported for another."""
    _store(ledger, "acme", "ann", ("contact.made", 0, _message("m1")))
    assert _report(ledger, "globex", T0 + timedelta(days=1))["violations"] == []
    assert len(_report(ledger, "acme", T0 + timedelta(days=1))["violations"]) == 1
    assert len(_report(ledger, "acme", T0 + timedelta(days=1))["violations"]) == 1


def test_a_contact_while_processing_is_restricted_is_not_allowed(ledger: Ledger) -> None:
    """A marketing message sent while a restriction of processing stood is flagged with the restriction's
    request and event, whatever the consent said; one sent after it was lifted is not."""
    restriction = {"request_id": "r-hal", "right": "restriction", "channel": "email"}
    _store(
        ledger,
        "acme",
        "hal",
        ("consent.given", 0, consent()),
        ("rights.requested", 10, restriction),
        ("contact.made", 20, _message("m-restricted")),
        ("rights.lifted", 30, {"request_id": "r-hal"}),
        ("contact.made", 40, _message("m-after-lift")),
    )
    report = _report(ledger, "acme", T0 + timedelta(days=1))
    [entry] = report["violations"]
    assert (entry["kind"], entry["message_id"]) == (kinds.CONTACT_NOT_ALLOWED, "m-restricted")
    assert "restricted since 2026-01-01T00:10:00Z by request r-hal" in entry["reason"]
    assert entry["event_ids"] == ["hal-2", "hal-1"]


def test_a_restriction_is_judged_as_known_when_sent_and_as_known_now(ledger: Ledger) -> None:
    """A contact made after a restriction's event time but stored before the ledger learned of it is
    'allowed then, not as known now'; one made while a restriction stood as then known is 'not allowed'
    even if a lift back-dated before it arrived later."""
    _store(
        ledger,
        "acme",
        "ida",
        ("consent.given", 0, consent()),
        ("contact.made", 20, _message("m-before-known")),
        ("rights.requested", 10, {"request_id": "r-ida", "right": "restriction", "channel": "email"}),
        ("contact.made", 40, _message("m-while-known")),
        ("rights.lifted", 30, {"request_id": "r-ida"}),  # lifted before m-while-known, learned after
    )
    report = _report(ledger, "acme", T0 + timedelta(days=1))
    found = {entry["message_id"]: entry for entry in report["violations"]}
    assert found["m-before-known"]["kind"] == kinds.CONTACT_LATE_OPT_OUT
    assert found["m-before-known"]["event_ids"] == ["ida-1", "ida-0", "ida-2"]
    assert "opted_out_at" not in found["m-before-known"]
    assert found["m-while-known"]["kind"] == kinds.CONTACT_NOT_ALLOWED
    assert found["m-while-known"]["event_ids"] == ["ida-3", "ida-2"]
    assert len(report["violations"]) == 2


def test_an_objection_to_direct_marketing_covers_every_channel(ledger: Ledger) -> None:
    """After an objection to marketing, a marketing contact on any channel is not allowed until a later
    grant on that channel; one sent before the ledger learned of the objection is 'allowed then, not
    as known now'; an objected analytics purpose is not refused before the objection is upheld, and no
    FCC opt-out measure is made of an objection."""
    objection = {
        "request_id": "r-jo",
        "right": "objection",
        "channel": "email",
        "purposes": ["marketing", "analytics"],
    }
    _store(
        ledger,
        "acme",
        "jo",
        ("consent.given", 0, consent()),  # marketing on sms
        ("consent.given", 0, consent(channel="email")),
        ("consent.given", 0, consent(purpose="analytics")),
        ("contact.made", 20, _message("m-before-known")),
        ("rights.requested", 10, objection),
        ("contact.made", 30, _message("m-sms")),
        ("contact.made", 31, _message("m-email", channel="email")),
        ("contact.made", 32, _message("m-analytics", purpose="analytics")),
        ("consent.given", 40, consent(channel="email")),  # granted again on email after the objection
        ("contact.made", 50, _message("m-email-again", channel="email")),
        ("rights.fulfilled", 60, {"request_id": "r-jo", "outcome": "objection_upheld"}),
        ("contact.made", 70, _message("m-analytics-upheld", purpose="analytics")),
    )
    report = _report(ledger, "acme", T0 + timedelta(days=1))
    found = {entry["message_id"]: entry for entry in report["violations"]}
    assert sorted(found) == ["m-analytics-upheld", "m-before-known", "m-email", "m-sms"]
    assert found["m-before-known"]["kind"] == kinds.CONTACT_LATE_OPT_OUT
    assert "objection by request r-jo" in found["m-before-known"]["reason"]
    assert found["m-before-known"]["event_ids"] == ["jo-3", "jo-0", "jo-4"]
    for message in ("m-sms", "m-email"):
        assert found[message]["kind"] == kinds.CONTACT_NOT_ALLOWED
        assert found[message]["event_ids"][1:] == ["jo-4"]
        assert "objected to by request r-jo since 2026-01-01T00:10:00Z" in found[message]["reason"]
    assert found["m-analytics-upheld"]["event_ids"][1:] == ["jo-10"]
    assert report["opt_outs_followed_by_contacts"] == []
