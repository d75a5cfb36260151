"""Breach impact: windows that start before, end inside and miss holdings; shares; tenants; deadlines."""

import json
from datetime import timedelta

import pytest

from ledger.store import Ledger
from projections.breach import Affected, breach_impact, category_vocabulary
from projections.projector import Projector
from tests.helpers import T0, cli, collected, fact

pytestmark = pytest.mark.services


def _collected(category: str, system: str, jurisdiction: str) -> dict[str, object]:
    data = collected(category, system)
    del data["personal_data"]
    return data | {"jurisdiction": jurisdiction}


@pytest.fixture
def story(ledger: Ledger) -> Ledger:
    """ann: crm from 10 to 50 (deleted); bob: crm from 60; cat: billing; dan: shared with crm-vendor at 6."""
    share = {
        "recipient": "crm-vendor",
        "recipient_type": "subprocessor",
        "categories": ["billing"],
        "purpose": "billing",
    }
    ledger.append(
        [
            fact(
                "acme",
                "ann",
                "a1",
                "data.collected",
                minutes=10,
                data=_collected("account_contact", "crm", "DE"),
            ),
            fact("acme", "ann", "a2", "deletion.completed", minutes=50, data={"system": "crm"}),
            fact(
                "acme",
                "bob",
                "b1",
                "data.collected",
                minutes=60,
                data=_collected("account_contact", "crm", "US-CA"),
            ),
            fact(
                "acme", "cat", "c1", "data.collected", minutes=10, data=_collected("billing", "billing", "GB")
            ),
            fact(
                "acme", "dan", "d1", "data.collected", minutes=5, data=_collected("billing", "billing", "GB")
            ),
            fact("acme", "dan", "d2", "data.shared", minutes=6, data=share),
            fact(
                "globex",
                "ann",
                "g1",
                "data.collected",
                minutes=10,
                data=_collected("account_contact", "crm", "DE"),
            ),
        ]
    )
    Projector(ledger, page=100).run(until_idle=True)
    return ledger


def _who(ledger: Ledger, start: int, end: int, systems: list[str] | None = None) -> list[str]:
    window = (T0 + timedelta(minutes=start), T0 + timedelta(minutes=end))
    impact = breach_impact(ledger, "acme", systems or ["crm"], window, discovered_at=T0, list_subjects=True)
    assert impact.affected is not None and impact.subjects == len(impact.affected)
    return [person.subject for person in impact.affected]


def test_windows_before_inside_and_missing(story: Ledger) -> None:
    """A window catches a holding it overlaps, and misses one deleted before or collected after it."""
    assert _who(story, 0, 20) == ["ann"]  # starts before ann's holding
    assert _who(story, 40, 70) == ["ann", "bob"]  # ends inside bob's, starts inside ann's
    assert _who(story, 51, 59) == []  # after ann's deletion, before bob's collection
    assert _who(story, 0, 4, ["billing"]) == []  # before any billing data
    assert _who(story, 0, 100, ["nowhere"]) == []
    assert _who(story, 0, 100, ["100%", "crm"]) == ["ann", "bob"]  # a `%` in a name is no placeholder


def test_data_shared_with_the_breached_system_counts(story: Ledger) -> None:
    """dan's billing data, shared with crm-vendor before the window, is exposed when crm-vendor is."""
    assert _who(story, 100, 200, ["crm-vendor"]) == ["dan"]
    assert _who(story, 0, 5, ["crm-vendor"]) == []  # shared after this window ended


def test_counts_categories_and_deadlines_per_jurisdiction(story: Ledger) -> None:
    """Counts per jurisdiction and category; 72 hours from discovery under GDPR, none fixed in California."""
    discovered = T0 + timedelta(days=3)
    impact = breach_impact(
        story, "acme", ["crm", "billing"], (T0, T0 + timedelta(minutes=70)), discovered_at=discovered
    )
    assert impact.subjects == 4 and impact.affected is None  # counted; listed only when asked
    assert impact.by_category == {"account_contact": 2, "billing": 2}
    assert impact.by_jurisdiction["GB"] == {"subjects": 2, "categories": {"billing": 2}}
    deadlines = {d.jurisdiction: d for d in impact.deadlines}
    assert deadlines["DE"].deadline == discovered + timedelta(hours=72)
    assert "GDPR" in deadlines["DE"].regime
    assert deadlines["US-CA"].deadline is None
    assert deadlines["GB"].deadline == discovered + timedelta(hours=72)


def test_tenants_are_isolated(story: Ledger) -> None:
    """globex's subject of the same id never appears in acme's breach, and vice versa."""
    window = (T0, T0 + timedelta(minutes=100))
    globex = breach_impact(story, "globex", ["crm"], window, discovered_at=T0, list_subjects=True)
    assert globex.affected == [Affected("ann", ["account_contact"], ["DE"])]
    assert globex.by_jurisdiction == {"DE": {"subjects": 1, "categories": {"account_contact": 1}}}
    assert _who(story, 55, 100) == ["bob"]


def test_breach_command(story: Ledger, env: dict[str, str]) -> None:
    """The CLI prints the counts and deadlines, lists subjects on request, and refuses a reversed window."""
    window = ["--from", T0.isoformat(), "--to", (T0 + timedelta(minutes=70)).isoformat()]
    shown = cli(
        env, "breach", "acme", "--system", "crm", *window, "--discovered-at", T0.isoformat(), "--subjects"
    )
    assert shown.returncode == 0, shown.stderr
    assert "2 subject(s) of tenant acme exposed in crm" in shown.stdout
    assert "GDPR" in shown.stdout and "  bob: account_contact (US-CA)" in shown.stdout
    as_json = json.loads(cli(env, "breach", "acme", "--system", "crm", *window, "--json").stdout)
    assert as_json["subjects"] == 2 and as_json["affected"] is None
    reversed_window = ["--from", window[3], "--to", window[1]]
    refused = cli(env, "breach", "acme", "--system", "crm", *reversed_window)
    assert refused.returncode == 2 and "--from is after --to" in refused.stderr


def test_a_subject_of_two_jurisdictions_is_counted_once_in_each(ledger: Ledger) -> None:
    """eve's crm data names DE and her billing data FR: one subject, in both, with both categories."""
    ledger.append(
        [
            fact(
                "acme",
                "eve",
                "e1",
                "data.collected",
                minutes=1,
                data=_collected("account_contact", "crm", "DE"),
            ),
            fact(
                "acme", "eve", "e2", "data.collected", minutes=2, data=_collected("billing", "billing", "FR")
            ),
            fact(
                "acme", "fay", "f1", "data.collected", minutes=3, data=_collected("billing", "billing", "FR")
            ),
        ]
    )
    Projector(ledger, page=100).run(until_idle=True)
    both = ["account_contact", "billing"]
    impact = breach_impact(
        ledger,
        "acme",
        ["crm", "billing"],
        (T0, T0 + timedelta(minutes=9)),
        discovered_at=T0,
        list_subjects=True,
    )
    assert impact.subjects == 2
    assert impact.by_category == {"account_contact": 1, "billing": 2}
    assert impact.by_jurisdiction == {
        "DE": {"subjects": 1, "categories": {"account_contact": 1, "billing": 1}},
        "FR": {"subjects": 2, "categories": {"account_contact": 1, "billing": 2}},
    }
    assert impact.affected == [Affected("eve", both, ["DE", "FR"]), Affected("fay", ["billing"], ["FR"])]


def test_shared_data_takes_the_subjects_jurisdiction(story: Ledger) -> None:
    """dan's data reached crm-vendor by a share, which names no jurisdiction: his holdings say GB."""
    impact = breach_impact(
        story, "acme", ["crm-vendor"], (T0, T0 + timedelta(minutes=100)), discovered_at=T0, list_subjects=True
    )
    assert impact.affected == [Affected("dan", ["billing"], ["GB"])]
    assert impact.by_jurisdiction == {"GB": {"subjects": 1, "categories": {"billing": 1}}}


def test_every_category_has_a_bit() -> None:
    """The breach query folds categories into a 64-bit set: the vocabulary must fit in one."""
    assert 0 < len(category_vocabulary()) <= 63
