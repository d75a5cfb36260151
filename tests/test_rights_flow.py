"""Rights end to end on the real broker and database: publish -> ingest -> project -> check, overdue,
point in time, and an export recorded as the answer to an access request."""

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest

from ledger.settings import Settings
from ledger.store import Ledger
from projections import queries
from projections.projector import Projector
from projections.rights import children_due, export_digest, late_requests, open_requests, record_export
from projections.timeline import may_contact_at
from tests.helpers import T0, cli, collected, consent, event, ingest

pytestmark = pytest.mark.services


def _asked(request_id: str, right: str, **extra: object) -> dict[str, object]:
    return {"request_id": request_id, "right": right, "channel": "email", **extra}


def test_restriction_keywords_and_clocks_through_the_pipeline(env: dict[str, str], ledger: Ledger) -> None:
    """A restriction denies a granted marketing SMS from its receipt on (now and at a past instant);
    once lifted, the tenant's own opt-out word decides, and START re-grants; the open request is on
    the GDPR clock."""
    settings = Settings.from_env({**env, "LEDGER_OPTOUT_KEYWORDS": "acme:ARRET"})
    data = {**collected(), "jurisdiction": "FR"}
    ingest(
        settings,
        ledger,
        event("acme", "ann", "data.collected", data, minutes=1),
        event("acme", "ann", "consent.given", consent(), minutes=2),
        event("acme", "ann", "rights.requested", _asked("r-restrict", "restriction"), minutes=10),
        event("acme", "ann", "rights.requested", _asked("r-access", "access"), minutes=11),
    )
    denied = queries.may_contact(ledger, "acme", "ann", "marketing", "sms")
    assert not denied.allowed and "r-restrict" in denied.reason
    assert not queries.may_contact(ledger, "acme", "ann", "service", "sms").allowed
    assert may_contact_at(ledger, "acme", "ann", "marketing", "sms", at=T0 + timedelta(minutes=5)).allowed
    assert not may_contact_at(
        ledger, "acme", "ann", "marketing", "sms", at=T0 + timedelta(minutes=20)
    ).allowed

    clocks = open_requests(ledger, "acme", T0 + timedelta(days=31))
    assert [(c.request_id, c.regime, c.overdue) for c in clocks] == [
        ("r-access", "GDPR Art. 12(3)", False),
        ("r-restrict", "GDPR Art. 12(3)", False),
    ]  # received 1 January: due by the end of 1 February (same deadline: by request id)
    assert all(c.overdue for c in open_requests(ledger, "acme", T0 + timedelta(days=32)))

    ingest(
        settings,
        ledger,
        event("acme", "ann", "rights.lifted", {"request_id": "r-restrict"}, minutes=20),
        event("acme", "ann", "keyword.received", {"channel": "sms", "keyword": "arret"}, minutes=30),
    )
    stopped = queries.may_contact(ledger, "acme", "ann", "marketing", "sms")
    assert not stopped.allowed and "opted_out" in stopped.reason
    ingest(
        settings,
        ledger,
        event("acme", "ann", "keyword.received", {"channel": "sms", "keyword": "start"}, minutes=40),
    )
    assert queries.may_contact(ledger, "acme", "ann", "marketing", "sms").allowed


def test_export_answers_the_access_request_and_late_answers_are_counted(
    settings: Settings, ledger: Ledger
) -> None:
    """Recording an export fulfils the verified access request with the export's hash; an answer after
    the deadline is counted as late."""
    ingest(
        settings,
        ledger,
        event("acme", "bob", "data.collected", collected(), minutes=1),
        event("acme", "bob", "rights.requested", _asked("r1", "access"), minutes=2),
        event("acme", "bob", "rights.verified", {"request_id": "r1", "method": "email_link"}, minutes=3),
    )
    digest = export_digest('{"subject": "bob"}\n')
    record_export(ledger, "acme", "bob", "r1", digest=digest, at=T0 + timedelta(days=40))
    Projector(ledger, settings.projection_page).run(until_idle=True)

    (answered,) = queries.subject_state(ledger, "acme", "bob").rights_requests.values()
    assert (answered.status, answered.export_sha256, answered.outcome) == (
        "fulfilled",
        digest,
        "copy_provided",
    )
    now = T0 + timedelta(days=41)
    assert [(late.request_id, late.late) for late in late_requests(ledger, "acme", now)] == [("r1", True)]
    assert late_requests(ledger, "acme", now, end=T0 + timedelta(days=31)) == []  # due 1 February
    assert open_requests(ledger, "acme", T0 + timedelta(days=41)) == []


def test_a_child_is_overdue_until_its_data_is_deleted(settings: Settings, ledger: Ledger) -> None:
    """An under-13 signal puts the subject on the 72-hour clock: overdue after it, gone once deleted."""
    ingest(
        settings,
        ledger,
        event("acme", "kid", "data.collected", collected(system="crm"), minutes=1),
        event("acme", "kid", "age.signalled", {"age_band": "under_13", "method": "self_declared"}, minutes=2),
    )
    within = timedelta(hours=72)
    (found,) = children_due(ledger, "acme", T0 + timedelta(hours=73), within)
    assert found.subject == "kid" and found.overdue and found.systems == ["crm"]
    ingest(settings, ledger, event("acme", "kid", "deletion.completed", {"system": "crm"}, minutes=5000))
    assert children_due(ledger, "acme", T0 + timedelta(hours=100), within) == []


def test_overdue_and_export_answers_on_the_command_line(
    settings: Settings, ledger: Ledger, env: dict[str, str], tmp_path: Path
) -> None:
    """`overdue` shows each open request with its deadline, extension and time left, and a child's data
    on its clock; `export --answers` writes the file and records its SHA-256 as the access answer."""
    ingest(
        settings,
        ledger,
        event("acme", "cy", "data.collected", {**collected(), "jurisdiction": "US-CA"}, minutes=1),
        event("acme", "cy", "rights.requested", _asked("r-ca", "access"), minutes=2),
        event("acme", "cy", "rights.verified", {"request_id": "r-ca", "method": "email_link"}, minutes=3),
        event("acme", "cy", "rights.extended", {"request_id": "r-ca", "reason": "complexity"}, minutes=4),
        event("acme", "kid", "data.collected", collected(system="crm"), minutes=1),
        event("acme", "kid", "age.signalled", {"age_band": "under_13"}, minutes=2),
    )
    at = (T0 + timedelta(days=50)).isoformat()
    document = json.loads(cli(env, "overdue", "acme", "--at", at, "--json").stdout)
    (request,) = document["requests"]
    assert (request["request_id"], request["regime"], request["extended"], request["overdue"]) == (
        "r-ca",
        "CCPA, Cal. Civ. Code 1798.130(a)(2)",
        True,
        False,
    )
    assert request["deadline"] == "2026-04-02T00:00:00Z"  # 1 January + 90 days is 1 April, to its end
    assert [(c["subject"], c["overdue"]) for c in document["children"]] == [("kid", True)]
    text = cli(env, "overdue", "acme", "--at", at).stdout
    assert (
        "cy: access request r-ca (CCPA" in text and "extended (complexity)" in text and "d 0 h left" in text
    )
    assert "kid: a child's data (all data, held in crm)" in text and "overdue by" in text
    allowed = cli({**env, "LEDGER_CHILD_DATA_TENANTS": "acme"}, "overdue", "acme", "--at", at, "--json")
    assert json.loads(allowed.stdout)["children"] == []

    out = tmp_path / "cy.json"
    refused = cli(env, "export", "acme", "cy", "--out", str(out), "--answers", "r-nope")
    assert refused.returncode == 2 and "no rights request 'r-nope'" in refused.stderr and not out.exists()
    answered = cli(env, "export", "acme", "cy", "--out", str(out), "--answers", "r-ca")
    assert answered.returncode == 0, answered.stderr
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert digest in answered.stdout
    Projector(ledger, settings.projection_page).run(until_idle=True)
    shown = json.loads(cli(env, "subject", "acme", "cy", "--json").stdout)
    (clock,) = shown["rights_requests"]
    assert (clock["status"], clock["late"]) == ("fulfilled", True)  # answered now, long after April
    assert queries.subject_state(ledger, "acme", "cy").rights_requests["r-ca"].export_sha256 == digest
    again = cli(env, "export", "acme", "cy", "--out", str(out), "--answers", "r-ca")
    assert again.returncode == 2 and "answered (fulfilled) already" in again.stderr
