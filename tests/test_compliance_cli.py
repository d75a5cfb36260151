"""The compliance commands end to end through `main(argv)`: violations, ropa, declare, drift."""

import json
from pathlib import Path

import pytest

from ledger.store import Ledger
from projections.projector import Projector
from tests.helpers import cli, collected, consent, fact

pytestmark = pytest.mark.services
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "declaration.toml"


def _seed(ledger: Ledger) -> None:
    share = {
        "recipient": "mixpanel-analytics",
        "recipient_type": "subprocessor",
        "categories": ["account_contact"],
        "purpose": "service",
        "country": "US",
        "transfer_mechanism": "scc",
    }
    message = {"purpose": "marketing", "channel": "sms", "message_id": "m1"}
    ledger.append(
        [
            fact("acme", "ann", "c1", "data.collected", data=collected()),
            fact("acme", "ann", "c2", "consent.withdrawn", minutes=1, data=consent()),
            fact("acme", "ann", "c3", "contact.made", minutes=2, data=message),
            fact("acme", "ann", "c4", "data.shared", minutes=3, data=share),
        ]
    )
    Projector(ledger, page=100).run(until_idle=True)


def test_violations_text_and_json_with_exit_codes(ledger: Ledger, env: dict[str, str]) -> None:
    """A contact after a withdrawal is listed with its events; the command answers 1 when it finds any
    and 0 for a period without; an unknown tenant, and a period given backwards (to ropa too), are
    refused with exit 2."""
    _seed(ledger)
    found = cli(env, "violations", "acme")
    assert found.returncode == 1, found.stderr
    assert "contact_not_allowed ann: consent withdrawn since 2026-01-01T00:01:00Z" in found.stdout
    assert "(c3, c2)" in found.stdout and "1 violation(s)" in found.stdout
    document = json.loads(cli(env, "violations", "acme", "--json").stdout)
    assert document["counts"]["contact_not_allowed"] == 1
    quiet = cli(env, "violations", "acme", "--to", "2026-01-01T00:01:00Z")
    assert quiet.returncode == 0 and "0 violation(s)" in quiet.stdout
    assert cli(env, "violations", "nobody").returncode == 2
    for command in ("violations", "ropa"):
        backwards = cli(
            env, command, "acme", "--from", "2026-02-01T00:00:00Z", "--to", "2026-01-01T00:00:00Z"
        )
        assert backwards.returncode == 2 and "start (from) is after its end (to)" in backwards.stderr, (
            backwards.stderr
        )


def test_ropa_in_every_form(ledger: Ledger, env: dict[str, str], tmp_path: Path) -> None:
    """The record prints as text, JSON, CSV and a Fides manifest (to a file with --out)."""
    _seed(ledger)
    text = cli(env, "ropa", "acme")
    assert text.returncode == 0, text.stderr
    assert "service (dpv:ServiceProvision): 1 subjects" in text.stdout
    assert "mixpanel-analytics (subprocessor, US, scc): 1 shares, 1 subjects" in text.stdout
    assert json.loads(cli(env, "ropa", "acme", "--json").stdout)["purposes"][0]["purpose"] == "service"
    assert cli(env, "ropa", "acme", "--csv").stdout.startswith("purpose,category,")
    out = tmp_path / "fides.yml"
    assert cli(env, "ropa", "acme", "--format", "fides", "--out", str(out)).returncode == 0
    assert json.loads(out.read_text())["system"][0]["fides_key"] == "acme.crm"


def test_declare_then_drift(ledger: Ledger, env: dict[str, str], tmp_path: Path) -> None:
    """Before a declaration drift is refused naming `declare`; the example declaration is recorded once
    (again: nothing recorded), and drift then names the sub-processor it omits; a broken file is
    refused in one line naming the place."""
    _seed(ledger)
    before = cli(env, "drift", "acme")
    assert before.returncode == 2 and "declare acme FILE" in before.stderr
    recorded = cli(env, "declare", "acme", str(EXAMPLE), "--by", "dpo", "--reason", "notice 2026-01")
    assert recorded.returncode == 0 and "recorded declaration" in recorded.stdout
    again = cli(env, "declare", "acme", str(EXAMPLE), "--by", "dpo", "--reason", "again")
    assert "nothing recorded" in again.stdout
    found = cli(env, "drift", "acme")
    assert found.returncode == 1
    assert "undeclared_recipient mixpanel-analytics (subprocessor, US)" in found.stdout
    assert json.loads(cli(env, "drift", "acme", "--json").stdout)["counts"]["undeclared_recipient"] == 1
    broken = tmp_path / "broken.toml"
    broken.write_text(
        'version = 1\n[[purpose]]\npurpose = "spam"\nlegal_bases = ["consent"]\ncategories = ["billing"]\n'
    )
    refused = cli(env, "declare", "acme", str(broken), "--by", "dpo", "--reason", "typo")
    assert refused.returncode == 2 and "purpose.0.purpose" in refused.stderr
