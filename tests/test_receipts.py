"""Receipts carry an inclusion proof that anyone checks offline with the published key alone."""

import json
from pathlib import Path

import psycopg
import pytest

from ledger.checkpoints import Checkpointer
from ledger.settings import Settings
from ledger.signing import SigningKey, signing_key
from ledger.store import Ledger
from tests.helpers import Outcome, cli, fact

pytestmark = pytest.mark.services


def _offline(tmp_path: Path) -> dict[str, str]:
    """Settings with no reachable database and no signing key: only files can be used."""
    return {
        "LEDGER_HOME": str(tmp_path / "elsewhere"),
        "LEDGER_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
    }


@pytest.fixture
def issued(env: dict[str, str], ledger: Ledger, tmp_path: Path) -> tuple[Path, Path]:
    """A consent and an SMS STOP among others' events; the STOP's receipt and the public key, as files."""
    ledger.append(
        [fact("acme", f"other{n}", f"o{n}", minutes=n) for n in range(5)]
        + [
            fact("acme", "ann", "g1", minutes=10),
            fact(
                "acme",
                "ann",
                "stop1",
                "optout.received",
                minutes=11,
                data={"channel": "sms", "keyword": "STOP"},
            ),
        ]
    )
    assert "newer than the last signed tree head" in cli(env, "receipt", "acme", "stop1").stderr
    assert cli(env, "checkpoint").returncode == 0
    shown_text = cli(env, "receipt", "acme", "stop1").stdout
    assert "None" not in shown_text and "collection_method  STOP" in shown_text
    shown = cli(env, "receipt", "acme", "stop1", "--json")
    assert shown.returncode == 0, shown.stderr
    receipt, public = tmp_path / "stop1.json", tmp_path / "signing.pub"
    receipt.write_text(shown.stdout)
    public.write_text(cli(env, "signing-key", "--public").stdout)
    return receipt, public


def test_an_opt_out_receipt_verifies_offline(issued: tuple[Path, Path], tmp_path: Path) -> None:
    """An SMS STOP gets a receipt, in DPV terms too, whose proof checks against the public key with no
    database at all."""
    receipt, public = issued
    document = json.loads(receipt.read_text())
    assert (document["event_type"], document["state"], document["collection_method"]) == (
        "optout.received", "opted_out", "STOP",
    )  # fmt: skip
    assert document["proof"]["tree_size"] == 13 and len(document["proof"]["inclusion_path"]) == 2
    assert document["dpv"]["status"] == "dpv:ConsentWithdrawn"  # W3C DPV: the subject withdrew
    assert "dpv:DirectMarketing" in document["dpv"]["purposes"]
    result = cli(_offline(tmp_path), "verify-receipt", str(receipt), "--public-key", str(public))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: record stop1 is leaf 12 of the log's tree of 13 events" in result.stdout


def test_a_tampered_receipt_is_rejected(issued: tuple[Path, Path], tmp_path: Path) -> None:
    """Altering a hash of the inclusion path, or what the receipt claims, fails the offline check (exit 1)."""
    receipt, public = issued
    original = json.loads(receipt.read_text())
    path = original["proof"]["inclusion_path"]
    forged_path = {
        **original,
        "proof": {**original["proof"], "inclusion_path": [path[0][:-1] + "0", *path[1:]]},
    }
    if forged_path == original:
        forged_path["proof"]["inclusion_path"][0] = path[0][:-1] + "1"
    for forged, problem in (
        (forged_path, "the inclusion proof does not lead from the record hash to the signed root"),
        ({**original, "purposes": ["service"]}, "the receipt's purposes differ from the record it proves"),
        ({**original, "subject_id": "bob"}, "the receipt's subject_id differ from the record it proves"),
        (
            {**original, "dpv": {**original["dpv"], "status": "dpv:ConsentGiven"}},
            "the receipt's dpv differ from the record it proves",
        ),
    ):
        receipt.write_text(json.dumps(forged))
        result = cli(_offline(tmp_path), "verify-receipt", str(receipt), "--public-key", str(public))
        assert result.returncode == 1, result.stderr
        assert problem in result.stdout


def test_a_receipt_needs_the_right_public_key(
    issued: tuple[Path, Path], env: dict[str, str], tmp_path: Path
) -> None:
    """Without the key that signed its tree head the check says which key is needed (exit 2), in one
    line, even where the ledger's own signing key is configured: a given key is the only one used."""
    receipt, _ = issued
    result = cli(_offline(tmp_path), "verify-receipt", str(receipt))
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "no signing key" in result.stderr
    stranger = tmp_path / "stranger.pub"
    stranger.write_text(
        cli({**env, "LEDGER_SIGNING_KEY": SigningKey.generate().text()}, "signing-key", "--public").stdout
    )
    result = cli(env, "verify-receipt", str(receipt), "--public-key", str(stranger))
    assert result.returncode == 2, result.stdout
    assert len(result.stderr.splitlines()) == 1 and "but the key given is" in result.stderr


def test_a_later_tree_head_extends_the_receipts_and_a_fork_does_not(
    issued: tuple[Path, Path], env: dict[str, str], settings: Settings, ledger: Ledger, tmp_path: Path
) -> None:
    """A later head with a consistency proof from the receipt's head verifies; one signed over a
    rewritten log (even with the real key) is rejected as a fork."""
    receipt, public = issued
    ledger.append([fact("acme", "cat", f"c{n}", minutes=20 + n) for n in range(6)])
    later = tmp_path / "later.json"

    def check_against_later_head() -> Outcome:
        assert cli(env, "tree-head", "--from-size", "13", "--out", str(later)).returncode == 0
        offline = _offline(tmp_path)
        return cli(
            offline, "verify-receipt", str(receipt), "--tree-head", str(later), "--public-key", str(public)
        )

    assert cli(env, "checkpoint").returncode == 0
    result = check_against_later_head()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "extends the receipt's tree head" in result.stdout

    with psycopg.connect(settings.database_url or "") as conn:
        conn.execute("UPDATE ledger_events SET state = set_byte(state, 40, 88) WHERE notification_id = 2")
        conn.execute("DELETE FROM ledger_events_merkle")
        conn.execute("DELETE FROM ledger_events_tree_heads")
    Checkpointer(ledger, signing_key(settings, create=False), every=1000).step(force=True)
    result = check_against_later_head()
    assert result.returncode == 1
    assert "is not consistent with the receipt's tree head 1" in result.stdout and "a fork" in result.stdout


def test_tree_head_out_dash_prints(issued: tuple[Path, Path], env: dict[str, str]) -> None:
    """`tree-head --out -` prints the head, as `export --out -` does, instead of writing a file named `-`."""
    result = cli(env, "tree-head", "--out", "-")
    assert result.returncode == 0 and json.loads(result.stdout)["tree_head"]["tree_size"] == 13
    assert not Path("-").exists()


def test_signing_key_json_names_the_key_published(issued: tuple[Path, Path], env: dict[str, str]) -> None:
    """`signing-key --json` gives the key id and the same public key `--public` prints to publish."""
    _, public = issued
    shown = cli(env, "signing-key", "--json")
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert document["public_key"] == public.read_text().strip() and len(document["key_id"]) == 16
