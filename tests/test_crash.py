"""Consumers and projectors killed with SIGKILL and restarted lose nothing and do nothing twice."""

import os
import signal
import subprocess
import sys

import orjson
import psycopg
import pytest

from consumers.publisher import Publisher
from ledger.settings import Settings
from ledger.store import Ledger
from projections import queries
from projections.history import ERASED, history
from projections.projector import Projector
from tests.helpers import collected, consent, event, fact, wait_for

pytestmark = pytest.mark.services
EVENTS = 20_000


def _stored(url: str) -> int:
    with psycopg.connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('ledger_events_receipts')").fetchone()
        if exists is None or exists[0] is None:
            return 0
        row = conn.execute("SELECT count(*) FROM ledger_events_receipts").fetchone()
        return int(row[0]) if row else 0


def test_sigkill_mid_stream_then_restart_stores_each_event_once(
    settings: Settings, env: dict[str, str]
) -> None:
    """Kill -9 while batches are committing; the restarted consumer completes the stream exactly."""
    assert settings.kafka_bootstrap is not None and settings.database_url is not None
    published = [
        event("acme", f"s{n % 500}", "consent.given", consent(), event_id=f"e{n}") for n in range(EVENTS)
    ]
    with Publisher(settings.kafka_bootstrap, settings) as publisher:
        for item in published:
            publisher.publish(item)
    command = [sys.executable, "-m", "app.cli", "consume", "--until-idle"]
    child_env = {**os.environ, **env, "LEDGER_BATCH_SIZE": "100", "LEDGER_LOG_LEVEL": "warning"}

    first = subprocess.Popen(command, env=child_env, stdout=subprocess.DEVNULL)
    wait_for(lambda: _stored(settings.database_url or "") >= 1000, 60, "the first batches to commit")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    at_kill = _stored(settings.database_url)
    assert at_kill < EVENTS, "the consumer finished before it could be killed; the test proves nothing"

    second = subprocess.run(command, env=child_env, capture_output=True, timeout=180, check=True)
    assert b"stored" in second.stdout

    with psycopg.connect(settings.database_url) as conn:
        ids = [row[0] for row in conn.execute("SELECT event_id FROM ledger_events_receipts")]
        facts = conn.execute("SELECT count(*) FROM ledger_events WHERE originator_version > 1").fetchone()
    assert sorted(ids) == sorted(item["id"] for item in published)
    assert facts is not None and facts[0] == EVENTS
    assert orjson.dumps(published[0])  # the stream was real CloudEvents JSON


def test_two_consumer_processes_split_the_stream_and_store_each_event_once(
    settings: Settings, env: dict[str, str]
) -> None:
    """`consume --processes 2` shares the partitions between two processes; nothing is lost or doubled."""
    assert settings.kafka_bootstrap is not None and settings.database_url is not None
    count = 3000
    with Publisher(settings.kafka_bootstrap, settings) as publisher:
        for n in range(count):
            publisher.publish(event("acme", f"s{n % 97}", "consent.given", consent(), event_id=f"p{n}"))
    command = [sys.executable, "-m", "app.cli", "consume", "--until-idle", "--processes", "2"]
    child_env = {**os.environ, **env, "LEDGER_LOG_LEVEL": "warning"}
    result = subprocess.run(command, env=child_env, capture_output=True, text=True, timeout=180, check=True)
    assert f"stored {count}, duplicates 0" in result.stdout
    assert _stored(settings.database_url) == count


def test_projector_killed_while_an_erasure_is_due_erases_on_restart(
    settings: Settings, ledger: Ledger, env: dict[str, str]
) -> None:
    """SIGKILL the projector while it destroys a due subject's key (held there by a lock on that key's
    row): the restarted projector still shreds the subject, because the decision, the key's
    destruction, the Erased event and the projection position commit together or not at all."""
    assert settings.database_url is not None
    deletion = {"request_id": "dsr-1", "verified": True}
    ledger.append(
        [
            fact("acme", "kim", "c1", "data.collected", data=collected(), personal={"phone": "+15550009999"}),
            fact("acme", "kim", "d1", "deletion.requested", minutes=1, data=deletion),
            fact("acme", "kim", "d2", "deletion.completed", minutes=2, data={"system": "crm"}),
        ]
    )
    with psycopg.connect(settings.database_url) as blocker:
        blocker.execute("SELECT * FROM ledger_events_keys WHERE subject = 'kim' FOR UPDATE")
        projector = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "project", "--until-idle"],
            env={**os.environ, **env, "LEDGER_LOG_LEVEL": "warning"},
            stdout=subprocess.DEVNULL,
        )
        wait_for(lambda: _destroying_key(settings.database_url or ""), 60, "the projector to destroy the key")
        os.kill(projector.pid, signal.SIGKILL)
        projector.wait()
        blocker.rollback()

    Projector(ledger, settings.projection_page).run(until_idle=True)
    assert queries.subject_state(ledger, "acme", "kim").erased
    assert history(ledger, "acme", "kim")[0].personal == ERASED


def _destroying_key(url: str) -> bool:
    """Whether some session waits for a lock to change a row of the data-key table."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE 'UPDATE%%ledger_events_keys%%' AND datname = current_database()"
        ).fetchone()
        return bool(row and row[0])


def test_an_erasure_lost_before_the_fix_is_made_on_the_next_start(
    settings: Settings, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read model that shows an erasure due but not made (what a crash did to the projector that
    recorded erasures after its page) gets it made when a projector next starts."""
    deletion = {"request_id": "dsr-1", "verified": True}
    ledger.append(
        [
            fact("acme", "lou", "c1", "data.collected", data=collected(), personal={"phone": "+15550008888"}),
            fact("acme", "lou", "d1", "deletion.requested", minutes=1, data=deletion),
            fact("acme", "lou", "d2", "deletion.completed", minutes=2, data={"system": "crm"}),
        ]
    )
    with monkeypatch.context() as crashed:
        crashed.setattr(Ledger, "erase_due", lambda *_: [])
        Projector(ledger, settings.projection_page).run(until_idle=True)
    assert not queries.subject_state(ledger, "acme", "lou").erased

    Projector(ledger, settings.projection_page).run(until_idle=True)
    assert queries.subject_state(ledger, "acme", "lou").erased
    assert history(ledger, "acme", "lou")[0].personal == ERASED
