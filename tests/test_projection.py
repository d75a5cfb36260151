"""The read model is derived from the event store alone: resumable, and the same when rebuilt."""

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
import pytest

from consumers.contract import Contract
from consumers.ingest import triage
from consumers.workload import generate
from ledger.checkpoints import Checkpointer, TreeHead, latest_head, load_heads
from ledger.retention import policy_document
from ledger.settings import Settings
from ledger.signing import SigningKey
from ledger.store import Ledger
from ledger.subject import Subject
from projections import queries, tables
from projections.changes import TOPICS, decode
from projections.projector import Projector
from projections.rebuild import rebuild
from projections.schema import migrate
from projections.timeline import state_at
from tests.helpers import T0, cli, collected, consent, fact

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
    """Projecting page by page from an empty read model, twice, produces identical rows in every table."""
    _load_workload(ledger)
    projector = Projector(ledger, page=97)
    projector.run(until_idle=True)
    before = _snapshot(ledger)
    assert len(before["proj_subjects"]) == 300
    with ledger.writer.datastore.transaction(commit=True) as curs:  # forget everything projected
        curs.execute(f"TRUNCATE {', '.join([*tables.table_names(), 'proj_positions'])}")
    assert _snapshot(ledger)["proj_subjects"] == []
    migrate(ledger)  # puts the position back at zero
    Projector(ledger, page=97).run(until_idle=True)
    assert _snapshot(ledger) == before


def test_restart_resumes_from_the_stored_position(settings: Settings, ledger: Ledger) -> None:
    """A new projector continues after the last committed page instead of starting over."""
    _load_workload(ledger)
    facts = ledger.recorder.select_notifications(start=None, limit=1_000_000, topics=TOPICS)
    first = Projector(ledger, page=100)
    assert first.step() == 100
    assert first.position() == facts[99].id
    second = Projector(ledger, page=100)
    progress = second.run(until_idle=True)
    # Erasures the run records as it goes are applied too: count the log as it stands after it.
    after = ledger.recorder.select_notifications(start=None, limit=1_000_000, topics=TOPICS)
    assert progress.applied == len(after) - 100
    assert progress.position == after[-1].id


def test_rebuild_command_reports_identical_tables(
    settings: Settings, ledger: Ledger, env: dict[str, str]
) -> None:
    """`rebuild` replays with progress and finds the rebuilt tables equal to the live ones."""
    _load_workload(ledger)
    Projector(ledger, page=500).run(until_idle=True)
    # The facts and the erasures the projector recorded; registrations change no state.
    count = len(ledger.recorder.select_notifications(start=None, limit=1_000_000, topics=TOPICS))
    result = cli(env, "rebuild")
    assert result.returncode == 0, result.stderr
    assert "identical to the tables it replaced" in result.stdout
    assert "rebuilding subjects [" in result.stderr
    assert f"from {count} events" in result.stdout


def test_rebuild_names_tables_that_differ(settings: Settings, ledger: Ledger) -> None:
    """A live table edited behind the projector's back is reported, with how many rows differ."""
    _load_workload(ledger)
    Projector(ledger, page=500).run(until_idle=True)
    with ledger.writer.datastore.transaction(commit=True) as curs:
        curs.execute("UPDATE proj_consents SET state = 'granted' WHERE state <> 'granted'")
        changed = curs.rowcount
    report = rebuild(ledger, lambda *_: None)
    assert not report.identical
    assert report.differences["proj_consents"] == 2 * changed
    assert report.differences["proj_holdings"] == 0


def test_fast_decoding_reads_what_the_library_reads(settings: Settings, ledger: Ledger) -> None:
    """Every projected event decodes to the fields the library's mapper gives."""
    _load_workload(ledger)
    ledger.erase("tenant-1", "contact-000001", "test")
    stored = ledger.recorder.select_notifications(start=None, limit=1_000_000, topics=TOPICS)
    for event in stored:
        expected = ledger.mapper.to_domain_event(event)
        assert isinstance(expected, Subject.FactRecorded | Subject.Erased)
        change = decode(
            ledger.mapper, event.originator_id, event.originator_version, event.topic, event.state
        )
        assert (change.tenant, change.subject) == (expected.tenant, expected.subject)
        assert change.recorded == expected.timestamp
        if isinstance(expected, Subject.Erased):
            assert (change.kind, change.at) == (None, expected.timestamp)
        else:
            assert isinstance(expected, Subject.FactRecorded)
            fields = (change.kind, change.event_id, change.at, change.data)
            assert fields == (expected.wire_type, expected.event_id, expected.occurred_at, expected.data)
    assert any(event.topic.endswith("Subject.Erased") for event in stored)


def _chat_is_web_chat(state: dict[str, Any]) -> None:
    """v2 of `consent.given` (in this test) calls the channel `web_chat` that v1 called `chat`."""
    if state["data"]["channel"] == "chat":
        state["data"] = {**state["data"], "channel": "web_chat"}


def test_events_of_an_older_class_version_are_upcast_everywhere(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once `Subject.ConsentGiven` is at version 2, the events v1 stored (with no `class_version`, as
    the library writes them) go through `upcast_v1_v2` in the projector, a rebuild and point in time."""
    ledger.append([fact("acme", "old", "c1", data=consent(channel="chat"))])
    monkeypatch.setattr(Subject.ConsentGiven, "class_version", 2, raising=False)
    monkeypatch.setattr(Subject.ConsentGiven, "upcast_v1_v2", staticmethod(_chat_is_web_chat), raising=False)
    ledger.append([fact("acme", "new", "c2", data=consent(channel="web_chat"))])  # stored as v2

    Projector(ledger, page=10).run(until_idle=True)
    for subject in ("old", "new"):
        assert list(queries.subject_state(ledger, "acme", subject).consent) == [("marketing", "web_chat")]
    assert rebuild(ledger, lambda *_: None).identical
    later = T0 + timedelta(days=1)
    assert list(state_at(ledger, "acme", "old", later).consent) == [("marketing", "web_chat")]


@pytest.fixture
def projected(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """The workload projected live, and rebuilds set to fold it in partitions of 100 events: the live
    tables, as a rebuild must reproduce them."""
    _load_workload(ledger)
    Projector(ledger, page=200).run(until_idle=True)
    monkeypatch.setattr("projections.rebuild.PARTITION_EVENTS", 100)
    return _snapshot(ledger)


def test_rebuild_in_partitions_gives_the_same_tables(ledger: Ledger, projected: dict[str, list[Any]]) -> None:
    """Folding the subject id space a partition at a time, in two worker processes, changes nothing."""
    progress: list[tuple[int, int]] = []
    report = rebuild(ledger, lambda done, total, _: progress.append((done, total)), processes=2)
    assert report.identical and _snapshot(ledger) == projected
    assert progress[-1][0] == progress[-1][1] == report.events


def test_a_failed_rebuild_leaves_the_live_tables_alone(
    ledger: Ledger, projected: dict[str, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild that dies half way rolls back: live tables as they were, no shadow tables left."""

    def fail(*_: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("projections.tables.write", fail)
    with pytest.raises(RuntimeError):
        rebuild(ledger, lambda *_: None)
    assert _snapshot(ledger) == projected
    with ledger.writer.datastore.transaction() as curs:
        curs.execute("SELECT count(*) AS n FROM pg_tables WHERE tablename LIKE 'rebuild_%'")
        row = curs.fetchone()
        assert row is not None and row["n"] == 0


def test_lag_counts_only_what_the_projection_applies(ledger: Ledger) -> None:
    """Events the projector never reads (a policy adoption) leave no lag behind; a new fact does."""
    ledger.append([fact("acme", "ann", "e1")])
    Projector(ledger, page=100).run(until_idle=True)
    assert ledger.adopt_policy(policy_document(None), "dpo", "first policy") is not None
    assert queries.progress(ledger).lag == 0
    ledger.append([fact("acme", "ann", "e2", minutes=1)])
    assert queries.progress(ledger).lag == 1


def test_a_page_rewrites_only_the_rows_its_events_change(ledger: Ledger) -> None:
    """A new consent rewrites that consent's row and the subject's, not the subject's other rows."""
    ledger.append(
        [
            fact("acme", "ann", "e1", "data.collected", data=collected()),
            fact("acme", "ann", "e2", minutes=1),
            fact("acme", "ann", "e3", minutes=2, data=consent(channel="email")),
        ]
    )
    Projector(ledger, page=100).run(until_idle=True)
    before = _row_versions(ledger)
    ledger.append([fact("acme", "ann", "e4", "consent.withdrawn", minutes=3)])
    Projector(ledger, page=100).run(until_idle=True)
    after = _row_versions(ledger)
    rewritten = {row for row in before if before[row] != after.get(row)}
    assert rewritten == {("proj_consents", "marketing/sms"), ("proj_subjects", "ann")}
    assert queries.may_contact(ledger, "acme", "ann", "marketing", "sms").allowed is False


def _row_versions(ledger: Ledger) -> dict[tuple[str, str], str]:
    """The transaction that wrote each of the subject's holding, consent, interval and subject rows."""
    statements = {
        "proj_subjects": "SELECT subject AS k, xmin::text AS v FROM proj_subjects",
        "proj_consents": "SELECT purpose || '/' || channel AS k, xmin::text AS v FROM proj_consents",
        "proj_holdings": "SELECT category || '/' || system AS k, xmin::text AS v FROM proj_holdings",
        "proj_intervals": "SELECT opened_by AS k, xmin::text AS v FROM proj_intervals",
    }
    with ledger.writer.datastore.transaction() as curs:
        versions = {}
        for table, statement in statements.items():
            curs.execute(statement)
            versions.update({(table, row["k"]): row["v"] for row in curs.fetchall()})
    return versions


def test_the_position_moves_past_events_the_projection_does_not_apply(ledger: Ledger) -> None:
    """A tail of events the projector does not apply (a policy adoption) is passed once, not re-read on
    every later step; events it applies after that tail are applied."""
    ledger.append([fact("acme", "ann", "e1")])
    projector = Projector(ledger, page=100)
    projector.run(until_idle=True)
    assert ledger.adopt_policy(policy_document(None), "dpo", "first policy") is not None
    newest = ledger.writer.max_notification_id()
    assert projector.position() < newest
    assert projector.step() == 0
    assert projector.position() == newest
    ledger.append([fact("acme", "ann", "e2", "consent.withdrawn", minutes=1)])
    assert projector.step() == 1
    assert not queries.may_contact(ledger, "acme", "ann", "marketing", "sms").allowed


def test_a_full_page_stops_at_its_last_event(ledger: Ledger) -> None:
    """A page as long as the page size moves the position to its own last event, not to the newest."""
    ledger.append([fact("acme", f"s{n}", f"e{n}") for n in range(5)])
    projector = Projector(ledger, page=3)
    assert projector.step() == 3
    assert projector.position() < (ledger.writer.max_notification_id() or 0)
    assert projector.step() == 2
    assert queries.progress(ledger).lag == 0


def _until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_stuck_checkpoint_holds_back_no_page(ledger: Ledger) -> None:
    """While the checkpointer is stuck handing a head to its witness, the projector goes on applying
    pages (an opt-out in them takes effect); released, the checkpointer signs heads over every
    committed event, none missing, and the run stops cleanly."""
    release, witnessed = threading.Event(), []

    def stuck_witness(head: TreeHead) -> None:
        witnessed.append(head)
        release.wait(60)

    def stored() -> int:
        return len(ledger.recorder.select_notifications(start=None, limit=1_000_000))

    checkpointer = Checkpointer(ledger, SigningKey.generate(), every=1, witnesses=[stuck_witness])
    projector = Projector(ledger, page=5, checkpointer=checkpointer)
    ledger.append([fact("acme", f"s{n}", f"e{n}") for n in range(8)])
    stop = threading.Event()
    running = threading.Thread(target=lambda: projector.run(until_idle=False, stop=stop))
    running.start()
    try:
        assert _until(lambda: bool(witnessed), 30)  # the checkpointer is stuck from here on
        ledger.append([fact("acme", "s1", "stop", "consent.withdrawn", minutes=1)])
        newest = ledger.writer.max_notification_id()
        assert _until(lambda: projector.position() == newest, 30)
        assert not queries.may_contact(ledger, "acme", "s1", "marketing", "sms").allowed
        assert (latest_head(ledger) or witnessed[0]).tree_size < stored()  # the opt-out is not in it yet
        release.set()
        assert _until(lambda: (latest_head(ledger) or witnessed[0]).tree_size == stored(), 30)
    finally:
        release.set()
        stop.set()
        running.join(60)
    assert not running.is_alive()
    assert [head.tree_size for head in load_heads(ledger)] == list(range(1, stored() + 1))
