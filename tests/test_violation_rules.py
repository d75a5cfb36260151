"""The pure rules of the violations report: how a contact is judged, and business days."""

from datetime import UTC, datetime, timedelta

from ledger import violations as kinds
from ledger.contact import Restriction
from ledger.violations import Word, business_days, judge_contact
from tests.helpers import T0

MINUTE = timedelta(minutes=1)


def test_judge_contact_rules() -> None:
    """Service needs nothing; erasure and a missing or withdrawn word refuse; a late word only counts now."""
    granted = Word("g", "granted", T0, T0)
    stopped = Word("s", "opted_out", T0, T0 + MINUTE)
    at = T0 + MINUTE
    assert judge_contact("service", "sms", at, erased_at=T0, then=None, now=None) is None
    erased = judge_contact("marketing", "sms", at, erased_at=T0, then=granted, now=granted)
    assert erased is not None and erased.kind == kinds.CONTACT_NOT_ALLOWED
    assert judge_contact("marketing", "sms", at, erased_at=None, then=granted, now=granted) is None
    late = judge_contact("marketing", "sms", at, erased_at=None, then=granted, now=stopped)
    assert late is not None and late.kind == kinds.CONTACT_LATE_OPT_OUT and late.event_ids == ["g", "s"]
    refused = judge_contact("marketing", "sms", at, erased_at=None, then=stopped, now=stopped)
    assert refused is not None and refused.kind == kinds.CONTACT_NOT_ALLOWED


def test_business_days_skip_weekends() -> None:
    """Friday to the next Monday is one business day; two weeks are ten; the same day is none."""
    friday = datetime(2026, 1, 2, 17, tzinfo=UTC)
    assert business_days(friday, friday + timedelta(days=3)) == 1
    assert business_days(friday, friday + timedelta(days=14)) == 10
    assert business_days(friday, friday + timedelta(hours=2)) == 0
    assert business_days(friday, friday - timedelta(days=3)) == 0


def test_a_restriction_refuses_all_but_storage_bound_purposes() -> None:
    """While processing is restricted, a marketing contact is not allowed whatever the consent said;
    a legal-compliance one still is."""
    granted = Word("g", "granted", T0, T0)
    restricted = Restriction("r1", T0, "q1")
    at = T0 + MINUTE
    refused = judge_contact(
        "marketing", "sms", at, erased_at=None, then=granted, now=granted, restricted_then=restricted
    )
    assert refused is not None and refused.kind == kinds.CONTACT_NOT_ALLOWED and refused.event_ids == ["q1"]
    kept = judge_contact(
        "legal_compliance", "sms", at, erased_at=None, then=granted, now=granted, restricted_then=restricted
    )
    assert kept is None


def test_a_restriction_learned_after_the_contact_is_a_late_one() -> None:
    """A contact allowed as known when sent, made while a restriction stood that the ledger learned of
    only later, is 'allowed then, not as known now', naming the grant and the restriction."""
    granted = Word("g", "granted", T0, T0)
    late = judge_contact(
        "marketing",
        "sms",
        T0 + MINUTE,
        erased_at=None,
        then=granted,
        now=granted,
        restricted_now=Restriction("r1", T0, "q1"),
    )
    assert late is not None and late.kind == kinds.CONTACT_LATE_OPT_OUT and late.event_ids == ["g", "q1"]
    assert "reached the ledger only after the contact" in late.reason


def test_an_objection_is_named_as_the_word_that_refused_the_contact() -> None:
    """An objection in force when the contact was sent refuses it with the objection's request named."""
    objected = Word("o", "opted_out", T0, T0, objection="r-obj")
    refused = judge_contact("marketing", "email", T0 + MINUTE, erased_at=None, then=objected, now=objected)
    assert refused is not None and refused.kind == kinds.CONTACT_NOT_ALLOWED
    assert refused.reason.startswith("objected to by request r-obj since")
