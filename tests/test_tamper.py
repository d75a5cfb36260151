"""`verify` names each kind of tampering done directly in PostgreSQL, with and without witnesses."""

from pathlib import Path

import psycopg
import pytest

from consumers.witness import FileWitness, read_file
from ledger.audit import Report, verify
from ledger.checkpoints import Checkpointer
from ledger.compression import deflate, inflate
from ledger.crypto import MasterKey
from ledger.settings import Settings
from ledger.signing import PublicKey, SigningKey, signing_key
from ledger.store import Ledger, RecordFact
from ledger.subject import subject_id
from tests.helpers import cli, fact

pytestmark = pytest.mark.services


def _facts(first: int, count: int) -> list[RecordFact]:
    return [
        fact("acme", f"s{n}", f"e{n}-{k}", "consent.given" if k % 2 == 0 else "consent.withdrawn", minutes=k)
        for k in range(first, first + count)
        for n in range(3)
    ]


@pytest.fixture
def signed(settings: Settings, ledger: Ledger) -> list[PublicKey]:
    """Three subjects with four facts each, and checkpoints over all of it; returns the public key."""
    ledger.append(_facts(0, 4))
    key = signing_key(settings, create=False)
    Checkpointer(ledger, key, every=5).step(force=True)
    assert verify(ledger, [key.public]).ok
    return [key.public]


def _tamper(settings: Settings, *statements: str) -> None:
    with psycopg.connect(settings.database_url or "") as conn:
        for statement in statements:
            conn.execute(statement)


def _lines(report: Report) -> list[str]:
    return [found.line() for found in report.breaks]


def _row(version: int) -> str:
    return f"originator_id = '{subject_id('acme', 's1')}' AND originator_version = {version}"


def test_one_edited_byte_is_named(settings: Settings, ledger: Ledger, signed: list[PublicKey]) -> None:
    """Changing one byte of a stored event breaks its successor's link and the checkpoint."""
    _tamper(settings, f"UPDATE ledger_events SET state = set_byte(state, 40, 88) WHERE {_row(3)}")
    report = verify(ledger, signed)
    assert not report.ok
    lines = _lines(report)
    assert any("acme/s1 version 4" in line and "previous_hash" in line for line in lines), lines
    assert any("log differs from checkpoint" in line for line in lines), lines


def test_one_deleted_row_is_named(settings: Settings, ledger: Ledger, signed: list[PublicKey]) -> None:
    """Deleting an event leaves a gap in its subject's versions."""
    _tamper(settings, f"DELETE FROM ledger_events WHERE {_row(2)}")
    lines = _lines(verify(ledger, signed))
    assert any("acme/s1 version 3" in line and "version(s) 2..2 missing" in line for line in lines), lines


def test_two_reordered_rows_are_named(settings: Settings, ledger: Ledger, signed: list[PublicKey]) -> None:
    """Swapping the log positions of two events of a subject is reported as a reordering."""
    with psycopg.connect(settings.database_url or "") as conn:
        rows = conn.execute(
            f"SELECT notification_id FROM ledger_events WHERE {_row(2)} OR {_row(3)} "
            "ORDER BY originator_version"
        ).fetchall()
    (first,), (second,) = rows
    _tamper(
        settings,
        f"UPDATE ledger_events SET notification_id = -1 WHERE notification_id = {first}",
        f"UPDATE ledger_events SET notification_id = {first} WHERE notification_id = {second}",
        f"UPDATE ledger_events SET notification_id = {second} WHERE notification_id = -1",
    )
    lines = _lines(verify(ledger, signed))
    assert any("acme/s1 version 2" in line and "events reordered" in line for line in lines), lines
    assert any("log differs from checkpoint" in line for line in lines), lines


def test_forged_checkpoint_is_named(settings: Settings, ledger: Ledger, signed: list[PublicKey]) -> None:
    """A checkpoint rewritten without the key fails its signature."""
    _tamper(settings, "UPDATE ledger_events_tree_heads SET tree_size = tree_size + 1 WHERE sequence = 2")
    lines = _lines(verify(ledger, signed))
    assert any("signature is not valid" in line for line in lines), lines


def test_a_gap_in_the_chain_of_checkpoints_is_named(
    settings: Settings, ledger: Ledger, signed: list[PublicKey]
) -> None:
    """Deleting a checkpoint between two others breaks the chain that each one signs."""
    ledger.append(_facts(4, 2))
    Checkpointer(ledger, signing_key(settings, create=False), every=5).step(force=True)
    _tamper(settings, "DELETE FROM ledger_events_tree_heads WHERE sequence = 2")
    lines = _lines(verify(ledger, signed))
    assert any("checkpoint(s) 2..2 missing before checkpoint 3" in line for line in lines), lines


def _edit_last_event_and_drop_checkpoints(settings: Settings, condition: str) -> None:
    """Rewrite s1's last event as a well-formed document that says something else (deflated again,
    as stored), and delete tree heads: nothing left in the database contradicts it."""
    with psycopg.connect(settings.database_url or "") as conn:
        row = conn.execute(f"SELECT state FROM ledger_events WHERE {_row(5)}").fetchone()
        assert row is not None
        stored = inflate(bytes(row[0]))
        edited = stored.replace(b'"channel":"sms"', b'"channel":"web"')
        assert edited != stored
        conn.execute(f"UPDATE ledger_events SET state = %s WHERE {_row(5)}", (deflate(edited),))
    _tamper(settings, f"DELETE FROM ledger_events_tree_heads WHERE {condition}")


@pytest.mark.parametrize(
    "dropped", ["sequence = (SELECT max(sequence) FROM ledger_events_tree_heads)", "true"]
)
def test_a_witness_file_catches_deleted_checkpoints(
    env: dict[str, str], settings: Settings, ledger: Ledger, tmp_path: Path, dropped: str
) -> None:
    """Editing a subject's last event and deleting the checkpoints after it (or all of them) passes
    `verify` alone, but not `verify --witness FILE`."""
    witness = tmp_path / "heads.jsonl"
    env = {**env, "LEDGER_WITNESS_FILE": str(witness)}
    for first in (0, 2):
        ledger.append(_facts(first, 2))
        assert cli(env, "checkpoint").returncode == 0
    assert len(witness.read_text().splitlines()) == 2
    _edit_last_event_and_drop_checkpoints(settings, dropped)
    assert cli(env, "verify").returncode == 0  # nothing in the database is left to contradict it
    result = cli(env, "verify", "--witness", str(witness))
    assert result.returncode == 1, result.stderr
    assert (
        "checkpoint 2 (tree size 15" in result.stdout
        and "witnessed but missing from the database" in result.stdout
    )
    assert "log differs from checkpoint 2" in result.stdout


def test_the_witness_topic_catches_deleted_checkpoints(
    env: dict[str, str], settings: Settings, ledger: Ledger
) -> None:
    """Every checkpoint also goes to the Kafka topic, and `verify --witness-topic` reads it back."""
    ledger.append(_facts(0, 4))
    assert cli(env, "checkpoint").returncode == 0
    assert "1 witnessed checkpoint(s) matched" in cli(env, "verify", "--witness-topic").stdout
    _edit_last_event_and_drop_checkpoints(settings, "true")
    result = cli(env, "verify", "--witness-topic")
    assert result.returncode == 1, result.stderr
    assert "checkpoint 1 (tree size 15" in result.stdout and "missing from the database" in result.stdout


def test_a_rewritten_checkpoint_disagrees_with_the_witness(
    env: dict[str, str], settings: Settings, ledger: Ledger, tmp_path: Path
) -> None:
    """A checkpoint re-signed over a tampered log (with the key) still differs from what was witnessed."""
    witness = tmp_path / "heads.jsonl"
    ledger.append(_facts(0, 4))
    Checkpointer(
        ledger, signing_key(settings, create=False), every=100, witnesses=[FileWitness(witness)]
    ).step(force=True)
    _edit_last_event_and_drop_checkpoints(settings, "true")
    _tamper(settings, "DELETE FROM ledger_events_merkle")
    Checkpointer(ledger, signing_key(settings, create=False), every=100).step(force=True)
    lines = _lines(verify(ledger, [signing_key(settings, create=False).public], read_file(witness)))
    assert any("differs from the witnessed one" in line for line in lines), lines


def test_rotating_the_master_key_keeps_checkpoints_valid(
    env: dict[str, str], ledger: Ledger, tmp_path: Path
) -> None:
    """Checkpoints have their own signing key: `verify` passes after `rotate-key`, under the new key."""
    ledger.append(_facts(0, 4))
    assert cli(env, "checkpoint").returncode == 0
    new = MasterKey.generate()
    key_file = tmp_path / "new.key"
    key_file.write_text(new.text())
    rotated = cli(env, "rotate-key", "--new-key-file", str(key_file))
    assert rotated.returncode == 0, rotated.stderr
    result = cli({**env, "LEDGER_MASTER_KEY": new.text()}, "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "last checkpoint 1 (tree size 15)" in result.stdout


def test_a_wrong_signing_key_is_reported_as_such(env: dict[str, str], ledger: Ledger, tmp_path: Path) -> None:
    """Verifying with another signing key says which key signed the checkpoints (exit 2), not "tampered";
    the right public key alone verifies, without the master key or the signing key."""
    ledger.append(_facts(0, 4))
    assert cli(env, "checkpoint").returncode == 0
    public = tmp_path / "signing.pub"
    public.write_text(cli(env, "signing-key", "--public").stdout)
    wrong = {**env, "LEDGER_SIGNING_KEY": SigningKey.generate().text()}
    result = cli(wrong, "verify")
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "checkpoints are signed by key" in result.stderr
    assert cli(wrong, "verify", "--public-key", str(public)).returncode == 0
    auditor = {
        **env,
        "LEDGER_HOME": str(tmp_path / "auditor"),
        "LEDGER_MASTER_KEY": "",
        "LEDGER_SIGNING_KEY": "",
    }
    assert cli(auditor, "verify", "--public-key", str(public)).returncode == 0
