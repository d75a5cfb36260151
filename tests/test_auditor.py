"""Consent receipts linked to the chain, and the access/portability export."""

import json
from pathlib import Path

import pytest

from ledger.checkpoints import Checkpointer
from ledger.errors import SubjectErased, UnknownEvent, UsageError
from ledger.retention import load_policy
from ledger.settings import Settings
from ledger.signing import signing_key
from ledger.store import Ledger
from projections.export import export
from projections.history import history
from projections.receipts import receipt
from tests.helpers import cli, collected, fact

pytestmark = pytest.mark.services


def _story(ledger: Ledger) -> None:
    given = {
        "purpose": "marketing",
        "channel": "email",
        "method": "double_opt_in",
        "notice_version": "2026-01",
        "jurisdiction": "EU",
    }
    data = collected()
    personal = data.pop("personal_data")
    ledger.append(
        [
            fact(
                "acme",
                "eve",
                "c1",
                "data.collected",
                minutes=1,
                data=data,
                personal={"personal_data": personal},
            ),
            fact(
                "acme", "eve", "g1", minutes=2, data=given, personal={"evidence": "ticked box, ip 192.0.2.7"}
            ),
            fact(
                "acme",
                "eve",
                "w1",
                "consent.withdrawn",
                minutes=3,
                data={"purpose": "marketing", "channel": "email"},
            ),
            fact(
                "acme",
                "eve",
                "s1",
                "data.shared",
                minutes=4,
                data={
                    "recipient": "stripe-payments",
                    "recipient_type": "subprocessor",
                    "categories": ["billing"],
                    "purpose": "billing",
                },
            ),
        ]
    )


def test_receipt_carries_the_consent_and_its_link_in_the_chain(
    ledger: Ledger, env: dict[str, str], settings: Settings
) -> None:
    """A receipt names purpose, channel, notice, method and state, and its record hash is the one the
    next event of the subject chains to."""
    _story(ledger)
    Checkpointer(ledger, signing_key(settings, create=False), every=1000).step(force=True)
    given = receipt(ledger, "acme", "g1")
    assert (given.purposes, given.channel, given.state, given.notice_version) == (
        ["marketing"],
        "email",
        "granted",
        "2026-01",
    )
    assert (given.collection_method, given.jurisdiction, given.controller, given.subject_id) == (
        "double_opt_in", "EU", "acme", "eve",
    )  # fmt: skip
    withdrawn = receipt(ledger, "acme", "w1")
    assert withdrawn.state == "withdrawn"
    assert withdrawn.previous_hash == given.record_hash
    assert withdrawn.position > given.position
    with pytest.raises(UsageError, match="receipts are for consent events and opt-outs"):
        receipt(ledger, "acme", "c1")
    with pytest.raises(UnknownEvent):
        receipt(ledger, "globex", "g1")
    shown = json.loads(cli(env, "receipt", "acme", "g1", "--json").stdout)
    assert shown["record_hash"] == given.record_hash


def test_export_has_data_bases_recipients_consents_and_requests(
    ledger: Ledger, env: dict[str, str], tmp_path: Path
) -> None:
    """The export is machine-readable JSON with everything Art. 15 asks for, personal values opened."""
    _story(ledger)
    document = export(ledger, "acme", "eve", load_policy(None))
    assert document["holdings"][0]["legal_basis"] == "contract"
    assert document["holdings"][0]["retention"]["rule"] == "account-data"
    assert document["personal_data"][0]["values"] == {"personal_data": {"phone": "+15550001111"}}
    assert [r["recipient"] for r in document["recipients"]] == ["stripe-payments"]
    assert [c["type"] for c in document["consent_history"]] == ["consent.given", "consent.withdrawn"]
    assert document["consent_history"][0]["evidence"] == "ticked box, ip 192.0.2.7"
    out = tmp_path / "eve.json"
    assert cli(env, "export", "acme", "eve", "--out", str(out)).returncode == 0
    assert json.loads(out.read_text())["subject"] == "eve"


def test_export_refuses_an_erased_subject(ledger: Ledger, env: dict[str, str], tmp_path: Path) -> None:
    """After erasure there is nothing personal left to export, and the CLI says so in one line."""
    _story(ledger)
    ledger.erase("acme", "eve", "test")
    with pytest.raises(SubjectErased):
        export(ledger, "acme", "eve", load_policy(None))
    result = cli(env, "export", "acme", "eve", "--out", str(tmp_path / "x.json"))
    assert result.returncode == 2 and "was erased at" in result.stderr
    assert all(entry.personal in (None, "erased") for entry in history(ledger, "acme", "eve"))
