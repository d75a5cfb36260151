"""Retention policy as data: matching rules, triggers, calendar arithmetic, holds, and bad policies."""

from datetime import UTC, datetime, timedelta

import pytest

from ledger.errors import ConfigError
from ledger.retention import (
    AWAITING_TRIGGER,
    HELD,
    NO_RULE,
    SCHEDULED,
    add_duration,
    load_policy,
    parse_policy,
    retention,
)
from ledger.state import SubjectState, apply_fact
from tests.helpers import T0, collected, consent

RULES = load_policy(None)


def _subject(*facts: tuple[str, int, dict[str, object]]) -> SubjectState:
    state = SubjectState(tenant="acme", subject="s")
    for number, (kind, days, data) in enumerate(facts):
        apply_fact(state, kind, f"e{number}", T0 + timedelta(days=days), data)
    return state


def _holding(category: str, basis: str, purposes: list[str] | None = None) -> dict[str, object]:
    data = collected(category, "crm") | {"legal_basis": basis}
    return data | {"purposes": purposes} if purposes else data


def test_contract_billing_expires_seven_years_after_closure_to_the_day() -> None:
    """Billing data under contract: account closed, expiry seven years later to the day."""
    state = _subject(("data.collected", 0, _holding("billing", "contract")), ("account.closed", 40, {}))
    kept = retention(state.holdings[("billing", "crm")], state, RULES)
    closed = T0 + timedelta(days=40)
    assert (kept.status, kept.rule) == (SCHEDULED, "billing-records")
    assert kept.expires_at == closed.replace(year=closed.year + 7)


def test_waiting_for_the_trigger_and_no_rule_are_reported() -> None:
    """Before closure the clock has not started; an uncovered category is reported, not kept silently."""
    state = _subject(
        ("data.collected", 0, _holding("billing", "contract")),
        ("data.collected", 0, _holding("special_category", "consent")),
    )
    assert retention(state.holdings[("billing", "crm")], state, RULES).status == AWAITING_TRIGGER
    uncovered = retention(state.holdings[("special_category", "crm")], state, RULES)
    assert (uncovered.status, uncovered.rule) == (NO_RULE, None)
    assert "special_category" in uncovered.note


def test_most_specific_rule_wins() -> None:
    """Telecom metadata under a legal obligation follows the seven-year rule, not the generic one."""
    state = _subject(
        ("data.collected", 0, _holding("usage_metadata", "legal_obligation")),
        ("account.closed", 10, {}),
    )
    assert retention(state.holdings[("usage_metadata", "crm")], state, RULES).rule == "telecom-records"
    generic = _subject(("data.collected", 0, _holding("usage_metadata", "legitimate_interest")))
    assert retention(generic.holdings[("usage_metadata", "crm")], generic, RULES).rule == "usage-metadata"


def test_consent_withdrawn_trigger_and_legal_hold() -> None:
    """Consent-based data expires 30 days after withdrawal; a hold suspends it."""
    state = _subject(
        ("data.collected", 0, _holding("marketing_preferences", "consent", ["marketing"])),
        ("consent.given", 1, consent("marketing", "email")),
        ("consent.withdrawn", 5, consent("marketing", "email")),
    )
    holding = state.holdings[("marketing_preferences", "crm")]
    kept = retention(holding, state, RULES)
    assert (kept.rule, kept.expires_at) == ("marketing-consent-withdrawn", T0 + timedelta(days=35))
    apply_fact(state, "legalhold.placed", "h", T0 + timedelta(days=6), {"hold_id": "h1", "reason": "audit"})
    held = retention(holding, state, RULES)
    assert held.status == HELD and "h1" in held.note and held.expires_at == kept.expires_at


def test_calendar_durations() -> None:
    """Years and months follow the calendar; the 29th of February falls back to the 28th."""
    leap = datetime(2024, 2, 29, 12, tzinfo=UTC)
    assert add_duration(leap, "P1Y") == datetime(2025, 2, 28, 12, tzinfo=UTC)
    assert add_duration(leap, "P13M") == datetime(2025, 3, 29, 12, tzinfo=UTC)
    assert add_duration(leap, "P30D") == leap + timedelta(days=30)


def test_bad_policies_are_config_errors() -> None:
    """A typo in a category, or a repeated id, is refused with the place named."""
    rule = {"id": "r", "category": "billling", "duration": "P1Y", "trigger": "collected"}
    with pytest.raises(ConfigError, match=r"rule\.0\.category"):
        parse_policy({"version": 1, "rule": [rule]}, "test")
    good = rule | {"category": "billing"}
    with pytest.raises(ConfigError, match="repeated: r"):
        parse_policy({"version": 1, "rule": [good, good]}, "test")
