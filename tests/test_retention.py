"""Retention policy as data: matching rules, triggers, calendar arithmetic, holds, and bad policies."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger.errors import ConfigError
from ledger.retention import (
    AWAITING_TRIGGER,
    END_OF_TIME,
    NO_RULE,
    SCHEDULED,
    SUSPENDED,
    add_duration,
    load_policy,
    parse_policy,
    policy_document,
    retention,
)
from ledger.state import SubjectState, apply_fact
from ledger.store import Ledger
from projections.projector import Projector
from projections.retention import expired
from tests.helpers import T0, cli, collected, consent, fact

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
    assert held.status == SUSPENDED and "h1" in held.note and held.expires_at == kept.expires_at


def test_calendar_durations() -> None:
    """Years and months follow the calendar; the 29th of February falls back to the 28th."""
    leap = datetime(2024, 2, 29, 12, tzinfo=UTC)
    assert add_duration(leap, "P1Y") == datetime(2025, 2, 28, 12, tzinfo=UTC)
    assert add_duration(leap, "P13M") == datetime(2025, 3, 29, 12, tzinfo=UTC)
    assert add_duration(leap, "P30D") == leap + timedelta(days=30)


@pytest.mark.parametrize("duration", ["P9999999999D", "P99999999999M", "P99999999999Y", "P7999Y"])
def test_a_duration_past_the_calendar_is_never_due(duration: str) -> None:
    """However many days, months or years a policy names, past year 9999 is the end of time (a day
    count beyond what a timedelta holds failed every subject holding that category)."""
    assert add_duration(datetime(2024, 2, 29, 12, tzinfo=UTC), duration) == END_OF_TIME


def test_bad_policies_are_config_errors() -> None:
    """A typo in a category, or a repeated id, is refused with the place named."""
    rule = {"id": "r", "category": "billling", "duration": "P1Y", "trigger": "collected"}
    with pytest.raises(ConfigError, match=r"rule\.0\.category"):
        parse_policy({"version": 1, "rule": [rule]}, "test")
    good = rule | {"category": "billing"}
    with pytest.raises(ConfigError, match="repeated: r"):
        parse_policy({"version": 1, "rule": [good, good]}, "test")


@pytest.mark.services
def test_dry_run_lists_expired_holdings_not_held_or_deleted(ledger: Ledger, env: dict[str, str]) -> None:
    """A year of retention in milliseconds: what expired, under which rule; holds and deletions excluded."""
    billing = _holding("billing", "contract")
    ledger.append(
        [
            fact("acme", "ann", "a1", "data.collected", data=billing),
            fact("acme", "ann", "a2", "account.closed", minutes=60),
            fact("acme", "bea", "b1", "data.collected", data=billing),
            fact("acme", "bea", "b2", "account.closed", minutes=60),
            fact(
                "acme", "bea", "b3", "legalhold.placed", minutes=61, data={"hold_id": "h", "reason": "audit"}
            ),
            fact("acme", "cal", "c1", "data.collected", data=billing),
            fact("acme", "cal", "c2", "account.closed", minutes=60),
            fact("acme", "cal", "c3", "deletion.completed", minutes=61, data={"system": "crm"}),
            fact("globex", "ann", "g1", "data.collected", data=billing),
            fact("globex", "ann", "g2", "account.closed", minutes=60),
        ]
    )
    Projector(ledger, page=100).run(until_idle=True)
    closed = T0 + timedelta(minutes=60)
    seven_years = closed.replace(year=closed.year + 7)
    assert expired(ledger, RULES, seven_years - timedelta(seconds=1)) == []
    due = expired(ledger, RULES, seven_years, tenant="acme")
    assert [(d.tenant, d.subject, d.category, d.system, d.rule, d.expires_at) for d in due] == [
        ("acme", "ann", "billing", "crm", "billing-records", seven_years)
    ]
    assert {d.tenant for d in expired(ledger, RULES, seven_years)} == {"acme", "globex"}
    listed = cli(env, "purge", "--dry-run", "--at", seven_years.isoformat(), "--tenant", "acme")
    assert listed.returncode == 0 and "acme/ann: billing in crm expired" in listed.stdout
    assert "1 holding(s) due for purge" in listed.stdout


@pytest.mark.services
def test_policy_adoptions_are_chained_events(ledger: Ledger, env: dict[str, str], tmp_path: Path) -> None:
    """Adopting records who, when and what changed; re-adopting the same policy records nothing; the
    policy in force at a past instant is answerable; verify covers the record."""
    first = cli(env, "adopt-policy", "--by", "dpo@acme", "--reason", "initial")
    assert first.returncode == 0 and "adopted retention policy" in first.stdout
    assert "already in force" in cli(env, "adopt-policy", "--by", "dpo@acme", "--reason", "again").stdout
    between = datetime.now(UTC)
    shorter = policy_document(None)
    shorter["rule"] = [r | {"duration": "P6M"} if r["id"] == "content" else r for r in shorter["rule"]]
    extra = {"id": "support-short", "category": "support", "duration": "P1Y", "trigger": "collected"}
    shorter["rule"].append(extra | {"legal_basis": "consent"})
    path = tmp_path / "policy.toml"
    path.write_text(_toml(shorter))
    assert (
        cli(env, "adopt-policy", "--file", str(path), "--by", "cto@acme", "--reason", "shorter").returncode
        == 0
    )

    rows = json.loads(cli(env, "policies", "--json").stdout)
    assert [(r["adopted_by"], r["reason"]) for r in rows] == [
        ("dpo@acme", "initial"),
        ("cto@acme", "shorter"),
    ]
    assert rows[1]["changes"] == {"added": ["support-short"], "removed": [], "changed": ["content"]}
    then = json.loads(cli(env, "policies", "--at", between.isoformat(), "--json").stdout)
    assert [r["reason"] for r in then] == ["initial"]
    assert ledger.policy().at(T0) is None
    assert cli(env, "checkpoint").returncode == 0
    assert cli(env, "verify").returncode == 0


def _toml(document: dict[str, object]) -> str:
    lines = [f"version = {document['version']}"]
    for rule in document["rule"]:  # type: ignore[attr-defined]
        lines.append("[[rule]]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in rule.items())
    return "\n".join(lines) + "\n"


@pytest.mark.services
def test_shortened_policy_changes_what_expires(ledger: Ledger, env: dict[str, str], tmp_path: Path) -> None:
    """A policy adopted later that shortens a period makes holdings due sooner; before its adoption,
    the earlier policy still answers."""
    sixty_days_ago = int((datetime.now(UTC) - timedelta(days=60) - T0).total_seconds() // 60)
    content = _holding("content", "contract")
    ledger.append([fact("acme", "tia", "t1", "data.collected", minutes=sixty_days_ago, data=content)])
    Projector(ledger, page=100).run(until_idle=True)
    assert cli(env, "adopt-policy", "--by", "dpo", "--reason", "initial").returncode == 0
    before_change = datetime.now(UTC)
    shorter = policy_document(None)
    shorter["rule"] = [r | {"duration": "P1M"} if r["id"] == "content" else r for r in shorter["rule"]]
    path = tmp_path / "short.toml"
    path.write_text(_toml(shorter))
    assert (
        cli(env, "adopt-policy", "--file", str(path), "--by", "dpo", "--reason", "minimise").returncode == 0
    )
    now_due = json.loads(
        cli(env, "purge", "--dry-run", "--at", datetime.now(UTC).isoformat(), "--json").stdout
    )
    assert [(d["subject"], d["rule"]) for d in now_due] == [("tia", "content")]
    collected_at = T0 + timedelta(minutes=sixty_days_ago)
    assert now_due[0]["expires_at"] == add_duration(collected_at, "P1M").isoformat().replace("+00:00", "Z")
    shown = json.loads(cli(env, "subject", "acme", "tia", "--json").stdout)["holdings"][0]
    assert shown["retention_expires_at"] == now_due[0]["expires_at"]
    then = cli(env, "purge", "--dry-run", "--at", before_change.isoformat(), "--json")
    assert json.loads(then.stdout) == []  # under the year-long rule in force then, nothing was due


@pytest.mark.services
def test_overdue_lists_every_open_request_on_its_clock(ledger: Ledger, env: dict[str, str]) -> None:
    """Every open request is listed, soonest due first: past 30 days overdue, within the warning window
    due soon; completed ones are not."""
    day = 24 * 60
    crm = _holding("account_contact", "contract")
    ledger.append(
        [
            fact("acme", "old", "o0", "data.collected", data=crm),
            fact("acme", "old", "o1", "deletion.requested", data={"request_id": "r-old", "verified": True}),
            fact("acme", "near", "n0", "data.collected", data=crm),
            fact(
                "acme",
                "near",
                "n1",
                "deletion.requested",
                minutes=5 * day,
                data={"request_id": "r-near", "verified": True},
            ),
            fact("acme", "new", "w0", "data.collected", data=crm),
            fact(
                "acme",
                "new",
                "w1",
                "deletion.requested",
                minutes=30 * day,
                data={"request_id": "r-new", "verified": True},
            ),
            fact("acme", "done", "d1", "deletion.requested", data={"request_id": "r-done", "verified": True}),
        ]
    )
    Projector(ledger, page=100).run(until_idle=True)
    at = T0 + timedelta(days=31)
    shown = json.loads(cli(env, "overdue", "acme", "--at", at.isoformat(), "--json").stdout)
    assert [(c["request_id"], c["overdue"], c["due_soon"]) for c in shown["requests"]] == [
        ("r-old", True, False),
        ("r-near", False, True),
        ("r-new", False, False),
    ]
    assert shown["purge_orders"] == []
    assert "unknown tenant 'globex'" in cli(env, "overdue", "globex", "--at", at.isoformat()).stderr
