"""Rights on the clock, their effects on the contact decision, SMS keywords and children: the pure fold
and the pure clocks, on an injected clock."""

import itertools
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from consumers.contract import Contract, Rejected
from ledger.contact import decide, restriction_of
from ledger.errors import ConfigError
from ledger.keywords import OPT_OUT, RESUBSCRIBE, KeywordTable, built_in
from ledger.rights import RightsClock, child_clock, clocks, deadline_rules, due
from ledger.state import FULFILLED, GRANTED, OPEN, OPTED_OUT, REFUSED, WITHDRAWN, SubjectState, apply_fact
from tests.helpers import collected, consent, event

RECEIVED = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
Fact = tuple[str, datetime, dict[str, Any]]


def _fold(*facts: Fact, state: SubjectState | None = None) -> SubjectState:
    state = state or SubjectState(tenant="acme", subject="s-1")
    for number, (kind, at, data) in enumerate(facts):
        apply_fact(state, kind, f"e{number}", at, data)
    return state


def _day(day: float, hour: int = 12, start: datetime = RECEIVED) -> datetime:
    """Noon (or `hour`) of the day `day` days after `start` (day 0; default: when requests arrive)."""
    return start.replace(hour=hour) + timedelta(days=day)


APRIL = datetime(2026, 4, 1, 10, tzinfo=UTC)  # April has 30 days: a month from 1 April is day 30


def _asked(right: str, jurisdiction: str | None = "EU", **extra: Any) -> dict[str, Any]:
    data = {"request_id": "r1", "right": right, "channel": "web_form", **extra}
    return data | ({"jurisdiction": jurisdiction} if jurisdiction else {})


def _clock(state: SubjectState, now: datetime) -> RightsClock:
    (found,) = clocks(state, now, deadline_rules())
    return found


def test_thirty_days_end_with_day_thirty() -> None:
    """Under the 30-day default, a request of 1 January is in time all of day 30 and overdue on day 31."""
    state = _fold(("rights.requested", RECEIVED, _asked("access", jurisdiction=None)))
    assert not _clock(state, _day(30, hour=23)).overdue
    assert _clock(state, _day(31, hour=0)).overdue
    assert _clock(state, _day(30, hour=23)).seconds_left == 3600


@pytest.mark.parametrize(
    ("received", "last_day"),
    [
        (datetime(2027, 1, 31, 9, tzinfo=UTC), datetime(2027, 2, 28, tzinfo=UTC)),
        (datetime(2028, 1, 31, 9, tzinfo=UTC), datetime(2028, 2, 29, tzinfo=UTC)),
        (datetime(2026, 3, 2, 9, tzinfo=UTC), datetime(2026, 4, 2, tzinfo=UTC)),
        (datetime(2026, 8, 31, 23, tzinfo=UTC), datetime(2026, 9, 30, tzinfo=UTC)),
    ],
)
def test_a_gdpr_month_is_a_calendar_month(received: datetime, last_day: datetime) -> None:
    """One month from 31 January ends with the last day of February (28th, or 29th in a leap year)."""
    assert due(received, "P1M") == last_day + timedelta(days=1)


@pytest.mark.parametrize(
    "right", ["access", "portability", "rectification", "erasure", "restriction", "objection"]
)
def test_each_right_through_request_verification_extension_answer(right: str) -> None:
    """Each right (GDPR, received 1 April): in time on day 30, overdue on day 31 without an extension,
    in time with one notified in the first month (three months from receipt), and answered in time."""
    extra: dict[str, Any] = {"purposes": ["marketing"]} if right == "objection" else {}
    state = _fold(
        ("data.collected", APRIL - timedelta(days=9), collected()),
        ("rights.requested", APRIL, _asked(right, **extra)),
        ("rights.verified", _day(2, start=APRIL), {"request_id": "r1", "method": "email_link"}),
    )
    on_day_30 = _clock(state, _day(30, hour=23, start=APRIL))
    assert on_day_30.status == OPEN and not on_day_30.overdue and on_day_30.regime == "GDPR Art. 12(3)"
    assert _clock(state, _day(31, hour=0, start=APRIL)).overdue

    _fold(
        ("rights.extended", _day(25, start=APRIL), {"request_id": "r1", "reason": "complexity"}), state=state
    )
    extended = _clock(state, _day(31, start=APRIL))
    assert extended.extended and not extended.overdue and extended.extension_reason == "complexity"
    assert extended.deadline == datetime(2026, 7, 2, tzinfo=UTC)  # 1 April + 3 months, end of day
    assert _clock(state, datetime(2026, 7, 2, tzinfo=UTC)).overdue

    answer = {"request_id": "r1", "right": right, "outcome": "copy_provided", "export_sha256": "ab" * 32}
    _fold(("rights.fulfilled", _day(80, start=APRIL), answer), state=state)
    answered = _clock(state, _day(200, start=APRIL))
    assert (answered.status, answered.overdue, answered.late, answered.seconds_left) == (
        FULFILLED,
        False,
        False,
        None,
    )


def test_ccpa_is_45_days_then_90() -> None:
    """A Californian request is due after 45 days, and after 90 once extended in time."""
    state = _fold(("rights.requested", RECEIVED, _asked("access", jurisdiction="US-CA")))
    assert not _clock(state, _day(45)).overdue and _clock(state, _day(46)).overdue
    _fold(("rights.extended", _day(44), {"request_id": "r1", "reason": "number_of_requests"}), state=state)
    assert not _clock(state, _day(90)).overdue and _clock(state, _day(91)).overdue


def test_a_state_without_its_own_rule_falls_back_to_its_country() -> None:
    """A New York subject gets the US rule (30 days, no extension), not the default."""
    state = _fold(("rights.requested", RECEIVED, _asked("access", jurisdiction="US-NY")))
    assert _clock(state, _day(1)).regime.startswith("US without")


def test_an_extension_notified_late_does_not_count() -> None:
    """An extension told to the subject after the first deadline leaves the request overdue, saying why."""
    state = _fold(
        ("rights.requested", RECEIVED, _asked("access")),
        ("rights.extended", _day(40), {"request_id": "r1", "reason": "complexity"}),
    )
    late = _clock(state, _day(41))
    assert late.overdue and not late.extended
    assert late.extension_note is not None and "after the first deadline" in late.extension_note


def test_answer_after_the_deadline_is_late() -> None:
    """A request fulfilled on day 31 is counted as answered late, whatever the clock now says."""
    state = _fold(
        ("rights.requested", RECEIVED, _asked("rectification", jurisdiction=None)),
        (
            "rights.fulfilled",
            _day(31),
            {"request_id": "r1", "right": "rectification", "outcome": "rectified"},
        ),
    )
    assert _clock(state, _day(400)).late


def test_follow_ups_before_the_request_give_the_same_request() -> None:
    """Verification, extension and answer folded before the request itself end in the same state."""
    facts: list[Fact] = [
        ("rights.requested", RECEIVED, _asked("access")),
        ("rights.verified", _day(1), {"request_id": "r1", "method": "account_login"}),
        ("rights.extended", _day(3), {"request_id": "r1", "reason": "complexity"}),
        ("rights.refused", _day(5), {"request_id": "r1", "exemption": "excessive"}),
    ]
    # Event ids follow the position in _fold, so they are left out of the comparison.
    states = [
        replace(_fold(*order).rights_requests["r1"], event_id=None) for order in itertools.permutations(facts)
    ]
    assert all(found == states[0] for found in states)
    assert (states[0].status, states[0].exemption, states[0].right) == (REFUSED, "excessive", "access")


def test_a_refusal_needs_an_exemption() -> None:
    """The contract refuses a rights.refused without its exemption, and an access answer without its hash."""
    contract = Contract(256 * 1024)
    with pytest.raises(Rejected, match="'exemption' is missing"):
        contract.parse(orjson.dumps(event("acme", "s-1", "rights.refused", {"request_id": "r1"})))
    unhashed = {"request_id": "r1", "right": "access", "outcome": "copy_provided"}
    with pytest.raises(Rejected, match="'export_sha256' is missing"):
        contract.parse(orjson.dumps(event("acme", "s-1", "rights.fulfilled", unhashed)))
    refused = {"request_id": "r1", "exemption": "legal_obligation"}
    assert contract.parse(orjson.dumps(event("acme", "s-1", "rights.refused", refused))).data == refused


def test_deletion_requested_is_an_erasure_request_answered_by_completion() -> None:
    """`deletion.requested` is on the erasure clock, and the systems' confirmations answer it."""
    state = _fold(
        ("data.collected", RECEIVED - timedelta(days=1), collected(system="crm")),
        ("deletion.requested", RECEIVED, {"request_id": "d1", "verified": True}),
    )
    assert _clock(state, _day(31)).overdue and _clock(state, _day(31)).right == "erasure"
    _fold(("deletion.completed", _day(10), {"system": "crm"}), state=state)
    assert (_clock(state, _day(31)).status, _clock(state, _day(31)).answered_at) == (FULFILLED, _day(10))


def test_refused_erasure_never_completes() -> None:
    """An erasure refused under an exemption is not completed by later deletions, so nothing is shredded."""
    state = _fold(
        ("data.collected", RECEIVED - timedelta(days=1), collected(system="crm")),
        ("rights.requested", RECEIVED, _asked("erasure", verified=True)),
        ("rights.refused", _day(3), {"request_id": "r1", "exemption": "legal_obligation"}),
        ("deletion.completed", _day(10), {"system": "crm"}),
    )
    assert state.deletion_requests["r1"].status == REFUSED
    assert state.deletion_requests["r1"].completed_at is None


def test_restriction_denies_all_but_storage_bound_purposes_until_lifted() -> None:
    """While restricted, even granted marketing and transactional messages are denied, naming the
    restriction; legal compliance is decided as before; once lifted, the grant counts again."""
    state = _fold(
        ("consent.given", RECEIVED - timedelta(days=1), consent()),
        ("rights.requested", RECEIVED, _asked("restriction")),
    )
    granted = state.consent[("marketing", "sms")]
    for purpose in ("marketing", "service"):
        denied = decide(False, purpose, "sms", granted, restriction_of(state))
        assert not denied.allowed and "restricted" in denied.reason and "r1" in denied.reason
    assert "restricted" not in decide(False, "legal_compliance", "sms", None, restriction_of(state)).reason
    _fold(("rights.lifted", _day(5), {"request_id": "r1"}), state=state)
    assert decide(False, "marketing", "sms", granted, restriction_of(state)).allowed


def test_a_refused_restriction_does_not_restrict() -> None:
    """A restriction refused under an exemption has no effect on the decision."""
    state = _fold(
        ("rights.requested", RECEIVED, _asked("restriction")),
        ("rights.refused", _day(2), {"request_id": "r1", "exemption": "manifestly_unfounded"}),
    )
    assert restriction_of(state) is None


def test_objection_to_direct_marketing_opts_out_on_every_channel() -> None:
    """An objection to marketing opts out of marketing on every channel at once; a later consent wins."""
    state = _fold(
        ("consent.given", RECEIVED - timedelta(days=1), consent("marketing", "email")),
        ("consent.given", RECEIVED - timedelta(days=1), consent("analytics", "email")),
        ("rights.requested", RECEIVED, _asked("objection", purposes=["marketing", "analytics"])),
    )
    for channel in ("sms", "email", "voice", "web_chat", "push", "web"):
        assert state.consent[("marketing", channel)].state == OPTED_OUT
    assert state.consent[("analytics", "email")].state == GRANTED  # only once the objection is upheld
    upheld = {"request_id": "r1", "right": "objection", "outcome": "objection_upheld"}
    _fold(("rights.fulfilled", _day(9), upheld), state=state)
    assert state.consent[("analytics", "email")].state == OPTED_OUT
    _fold(("consent.given", _day(20), consent("marketing", "email")), state=state)
    assert state.consent[("marketing", "email")].state == GRANTED


def _keyword(word: str, channel: str = "sms") -> dict[str, Any]:
    return {"channel": channel, "keyword": word}


def test_start_after_stop_regrants_what_the_stop_withdrew() -> None:
    """START restores the grant STOP withdrew on that channel, and nothing that was never granted."""
    state = _fold(
        ("consent.given", _day(0), consent("marketing", "sms")),
        ("consent.given", _day(0), consent("marketing", "email")),
        ("keyword.received", _day(1), _keyword("stop")),
        ("keyword.received", _day(2), _keyword("Start")),
    )
    assert state.consent[("marketing", "sms")].state == GRANTED
    assert state.consent[("marketing", "sms")].event_id == "e3"
    assert ("analytics", "sms") not in state.consent  # never granted: START grants nothing new
    assert state.consent[("marketing", "email")].event_id == "e1"


def test_help_changes_nothing() -> None:
    """HELP (and an unknown word) is recorded but leaves consent as it was."""
    state = _fold(("consent.given", _day(0), consent()), ("keyword.received", _day(1), _keyword("HELP")))
    before = dict(state.consent)
    _fold(("keyword.received", _day(2), _keyword("pizza")), state=state)
    assert state.consent == before and state.consent[("marketing", "sms")].state == GRANTED


def test_a_withdrawal_after_start_wins_by_event_time() -> None:
    """A withdrawal later than START wins; one between STOP and START stays withdrawn after START."""
    stop, start = (
        ("keyword.received", _day(1), _keyword("STOP")),
        ("keyword.received", _day(3), _keyword("UNSTOP")),
    )
    given = ("consent.given", _day(0), consent())
    after = _fold(given, stop, start, ("consent.withdrawn", _day(4), consent()))
    assert after.consent[("marketing", "sms")].state == WITHDRAWN
    between = _fold(given, stop, start, ("consent.withdrawn", _day(2), consent()))
    assert between.consent[("marketing", "sms")].state == WITHDRAWN


STORY: list[Fact] = [
    ("consent.given", _day(0), consent()),
    ("optout.received", _day(1), {"channel": "sms", "keyword": "STOP"}),
    ("keyword.received", _day(2), _keyword("START")),
    ("keyword.received", _day(3), _keyword("quit")),
    ("consent.withdrawn", _day(4), consent()),
    ("consent.given", _day(5), consent()),
    ("keyword.received", _day(6), _keyword("revoke")),
    ("keyword.received", _day(7), _keyword("unstop")),
]


@pytest.mark.parametrize("prefix", range(1, len(STORY) + 1))
def test_keywords_fold_the_same_in_any_order(prefix: int) -> None:
    """Any arrival order of a STOP/START story gives the state of its event-time order."""
    facts = STORY[:prefix]
    expected = _fold(*facts).consent[("marketing", "sms")]
    rng = random.Random(prefix)  # noqa: S311 - shuffles arrival orders, nothing secret
    for _ in range(300):
        order = rng.sample(facts, len(facts))
        found = _fold(*order).consent.get(("marketing", "sms"))
        assert found is not None and (found.state, found.since) == (expected.state, expected.since)


def test_keywords_are_case_insensitive_and_fcc_complete() -> None:
    """Every FCC opt-out word in any case opts out; START and UNSTOP re-subscribe."""
    for word in ("STOP", "unsubscribe", "Cancel", "end", "QUIT", "stopall", "Revoke", "opt-out", "OPTOUT"):
        assert built_in(word) == OPT_OUT, word
    assert built_in("start") == built_in("UNSTOP") == RESUBSCRIBE


def test_tenant_keywords_come_from_settings_and_are_stored_with_their_meaning() -> None:
    """A tenant's own words take effect for that tenant only, carried in the stored fact."""
    table = KeywordTable.parse(["acme:ARRET", "HALT"], ["acme:REPRISE"])
    assert table.effect("acme", "arret") == OPT_OUT and table.effect("globex", "ARRET") is None
    assert table.effect("globex", "halt") == OPT_OUT and table.effect("acme", "STOP") is None
    contract = Contract(256 * 1024, keywords=table)
    parsed = contract.parse(orjson.dumps(event("acme", "s-1", "keyword.received", _keyword("reprise"))))
    assert parsed.data["effect"] == RESUBSCRIBE
    state = _fold(
        ("consent.given", _day(0), consent()),
        ("keyword.received", _day(1), {**_keyword("arret"), "effect": OPT_OUT}),
    )
    assert state.consent[("marketing", "sms")].state == OPTED_OUT


def test_a_built_in_keyword_cannot_be_redefined() -> None:
    """Configuring START as an opt-out is refused in one line naming the setting."""
    with pytest.raises(ConfigError, match="LEDGER_OPTOUT_KEYWORDS: START already means resubscribe"):
        KeywordTable.parse(["START"], [])


def test_a_child_data_is_on_a_short_clock_until_erased() -> None:
    """An under-13 signal puts all of the subject's data on a 72-hour clock, overdue after it, done
    once every system has deleted it."""
    state = _fold(
        ("data.collected", RECEIVED - timedelta(days=5), collected(system="crm")),
        ("age.signalled", RECEIVED, {"age_band": "under_13"}),
    )
    within = timedelta(hours=72)
    found = child_clock(state, within, RECEIVED + timedelta(hours=71), deadline_rules())
    assert found is not None and not found.overdue and found.systems == ["crm"]
    past = child_clock(state, within, RECEIVED + timedelta(hours=72), deadline_rules())
    assert past is not None and past.overdue
    _fold(("deletion.completed", RECEIVED + timedelta(hours=80), {"system": "crm"}), state=state)
    assert child_clock(state, within, RECEIVED + timedelta(hours=90), deadline_rules()) is None


def test_childhood_depends_on_where_the_subject_lives() -> None:
    """A 14-year-old is a child under the GDPR's 16 but not under COPPA's 13; children's data always is."""
    eu = _fold(
        ("data.collected", RECEIVED, collected()),
        ("age.signalled", RECEIVED, {"age_band": "13_to_15", "jurisdiction": "DE"}),
    )
    us = _fold(
        ("data.collected", RECEIVED, collected()),
        ("age.signalled", RECEIVED, {"age_band": "13_to_15", "jurisdiction": "US-CA"}),
    )
    assert child_clock(eu, timedelta(hours=72), RECEIVED, deadline_rules()) is not None
    assert child_clock(us, timedelta(hours=72), RECEIVED, deadline_rules()) is None
    category = _fold(
        ("data.collected", RECEIVED, collected(category="children")),
        ("data.collected", RECEIVED, collected()),
    )
    found = child_clock(category, timedelta(hours=72), RECEIVED, deadline_rules())
    assert found is not None and found.categories == ["children"]
