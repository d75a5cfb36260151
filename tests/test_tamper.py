"""`verify` names each kind of tampering done directly in PostgreSQL."""

import psycopg
import pytest

from ledger.audit import Report, verify
from ledger.checkpoints import Checkpointer
from ledger.crypto import master_key
from ledger.settings import Settings
from ledger.store import Ledger
from ledger.subject import subject_id
from tests.helpers import fact

pytestmark = pytest.mark.services


@pytest.fixture
def signed(settings: Settings, ledger: Ledger) -> bytes:
    """Three subjects with four facts each, and a checkpoint over all of it; returns the checkpoint key."""
    facts = [
        fact("acme", f"s{n}", f"e{n}-{k}", "consent.given" if k % 2 == 0 else "consent.withdrawn", minutes=k)
        for k in range(4)
        for n in range(3)
    ]
    ledger.append(facts)
    key = master_key(settings, create=False)[0].derive("checkpoint")
    Checkpointer(ledger, key, every=5).step(force=True)
    assert verify(ledger, key).ok
    return key


def _tamper(settings: Settings, *statements: str) -> None:
    with psycopg.connect(settings.database_url or "") as conn:
        for statement in statements:
            conn.execute(statement)


def _lines(report: Report) -> list[str]:
    return [found.line() for found in report.breaks]


def _row(version: int) -> str:
    return f"originator_id = '{subject_id('acme', 's1')}' AND originator_version = {version}"


def test_one_edited_byte_is_named(settings: Settings, ledger: Ledger, signed: bytes) -> None:
    """Changing one byte of a stored event breaks its successor's link and the checkpoint."""
    _tamper(settings, f"UPDATE ledger_events SET state = set_byte(state, 40, 88) WHERE {_row(3)}")
    report = verify(ledger, signed)
    assert not report.ok
    lines = _lines(report)
    assert any("acme/s1 version 4" in line and "previous_hash" in line for line in lines), lines
    assert any("log differs from checkpoint" in line for line in lines), lines


def test_one_deleted_row_is_named(settings: Settings, ledger: Ledger, signed: bytes) -> None:
    """Deleting an event leaves a gap in its subject's versions."""
    _tamper(settings, f"DELETE FROM ledger_events WHERE {_row(2)}")
    lines = _lines(verify(ledger, signed))
    assert any("acme/s1 version 3" in line and "version(s) 2..2 missing" in line for line in lines), lines


def test_two_reordered_rows_are_named(settings: Settings, ledger: Ledger, signed: bytes) -> None:
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


def test_forged_checkpoint_is_named(settings: Settings, ledger: Ledger, signed: bytes) -> None:
    """A checkpoint rewritten without the key fails its signature."""
    _tamper(settings, "UPDATE ledger_events_checkpoints SET events = events + 1")
    lines = _lines(verify(ledger, signed))
    assert any("checkpoint signature is not valid" in line for line in lines), lines
