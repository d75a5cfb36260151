"""The read model is derived from the event store alone: resumable, and the same when rebuilt."""

from typing import Any

import orjson
import pytest

from consumers.contract import Contract
from consumers.ingest import triage
from consumers.workload import generate
from ledger.settings import Settings
from ledger.store import Ledger
from projections import tables
from projections.projector import PROJECTED_TOPICS, Projector
from projections.rebuild import rebuild
from tests.helpers import cli

pytestmark = pytest.mark.services


class _Message:
    def __init__(self, offset: int, value: bytes) -> None:
        self.topic, self.partition, self.offset, self.key, self.value = "t", 0, offset, None, value


def _load_workload(ledger: Ledger) -> int:
    contract = Contract(256 * 1024)
    messages = [_Message(n, orjson.dumps(e)) for n, e in enumerate(generate(tenants=2, subjects=150))]
    batch = triage(messages, contract)
    assert not batch.refused
    ledger.append(batch.facts)
    return len(batch.facts)


def _snapshot(ledger: Ledger) -> dict[str, list[Any]]:
    with ledger.writer.datastore.transaction() as curs:
        found = {}
        for table in tables.table_names():
            curs.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4")
            found[table] = [tuple(row.values()) for row in curs.fetchall()]
        return found


def test_rebuild_from_zero_gives_the_same_tables(settings: Settings, ledger: Ledger) -> None:
    """Projecting, resetting and replaying produces identical rows in every table."""
    _load_workload(ledger)
    projector = Projector(ledger, page=97)
    projector.run(until_idle=True)
    before = _snapshot(ledger)
    assert len(before["proj_subjects"]) == 300
    projector.reset()
    assert _snapshot(ledger)["proj_subjects"] == []
    projector.run(until_idle=True)
    assert _snapshot(ledger) == before


def test_restart_resumes_from_the_stored_position(settings: Settings, ledger: Ledger) -> None:
    """A new projector continues after the last committed page instead of starting over."""
    _load_workload(ledger)
    facts = ledger.recorder.select_notifications(start=None, limit=1_000_000, topics=PROJECTED_TOPICS)
    first = Projector(ledger, page=100)
    assert first.step() == 100
    assert first.position() == facts[99].id
    second = Projector(ledger, page=100)
    progress = second.run(until_idle=True)
    assert progress.applied == len(facts) - 100
    assert progress.position == facts[-1].id


def test_rebuild_command_reports_identical_tables(
    settings: Settings, ledger: Ledger, env: dict[str, str]
) -> None:
    """`rebuild` replays with progress and finds the rebuilt tables equal to the live ones."""
    count = _load_workload(ledger)
    Projector(ledger, page=500).run(until_idle=True)
    result = cli(env, "rebuild")
    assert result.returncode == 0, result.stderr
    assert "identical to the tables it replaced" in result.stdout
    assert "rebuilding subjects [" in result.stderr
    assert f"from {count} events" in result.stdout  # the facts; registrations change no state


def test_rebuild_names_tables_that_differ(settings: Settings, ledger: Ledger) -> None:
    """A live table edited behind the projector's back is reported, with how many rows differ."""
    _load_workload(ledger)
    Projector(ledger, page=500).run(until_idle=True)
    with ledger.writer.datastore.transaction(commit=True) as curs:
        curs.execute("UPDATE proj_consents SET state = 'granted' WHERE state <> 'granted'")
        changed = curs.rowcount
    report = rebuild(ledger, 500, lambda *_: None)
    assert not report.identical
    assert report.differences["proj_consents"] == 2 * changed
    assert report.differences["proj_holdings"] == 0
