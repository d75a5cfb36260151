"""PostgreSQL stopped and started under a running consumer or projector: both wait it out, and
nothing is lost or stored twice.

Each test stops its own PostgreSQL (a second embedded cluster under the test home, started and
stopped with pg_ctl as `consent-ledger up`/`down` do), never the session's shared one.
"""

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import InternalError
from structlog.testing import capture_logs

from app import stack
from consumers import ingest
from consumers.publisher import Publisher
from ledger.crypto import MasterKey
from ledger.retry import Backoff, GaveUp, transient
from ledger.settings import Settings
from ledger.store import Ledger
from projections.projector import Projector
from projections.schema import migrate
from tests.conftest import TEST_HOME
from tests.helpers import consent, event, fact, wait_for

pytestmark = pytest.mark.services
FAST_RETRY = {"LEDGER_RETRY_INITIAL_MS": "100", "LEDGER_RETRY_MAX_MS": "1000"}


@dataclass
class OwnPostgres:
    """A PostgreSQL cluster of this test's own, to stop and start at will."""

    settings: Settings
    url: str

    def stop(self) -> None:
        """Stop the server (pg_ctl stop: sessions are terminated)."""
        assert stack.down(self.settings) == ["postgresql"]

    def start(self) -> None:
        """Start it again, at the same address."""
        assert stack.up(self.settings).database_url == self.url


@pytest.fixture
def own_postgres(services: stack.Endpoints) -> Iterator[OwnPostgres]:
    """A dedicated embedded PostgreSQL in a directory of its own under the test home."""
    home = TEST_HOME / f"faults-{uuid4().hex[:8]}"
    settings = Settings.from_env(
        {"LEDGER_HOME": str(home), "LEDGER_KAFKA_BOOTSTRAP": services.kafka_bootstrap}
    )
    server = OwnPostgres(settings, stack.up(settings).database_url)
    yield server
    stack.down(settings)
    shutil.rmtree(home, ignore_errors=True)


class Running:
    """A component running in a thread, whose exit (and its reason) the test can see."""

    def __init__(self, target: Callable[[], Any]) -> None:
        self.error: BaseException | None = None
        self.result: Any = None

        def body() -> None:
            try:
                self.result = target()
            except BaseException as error:  # the test reports whatever ended the component
                self.error = error

        self.thread = threading.Thread(target=body, daemon=True)
        self.thread.start()

    def assert_alive(self) -> None:
        """Fail, saying why, if the component has exited."""
        assert self.thread.is_alive(), f"the component exited: {self.error!r}"


def _migrated(server: OwnPostgres, env: dict[str, str]) -> Ledger:
    ledger = Ledger(server.url, MasterKey.parse(env["LEDGER_MASTER_KEY"], "test"))
    migrate(ledger)
    return ledger


def _count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
        return int(row[0]) if row else 0


def _stored_ids(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return sorted(row[0] for row in conn.execute("SELECT event_id FROM ledger_events_receipts"))


def _answers(url: str) -> Callable[[], int]:
    def stored() -> int:
        try:
            return _count(url, "SELECT count(*) FROM ledger_events_receipts")
        except psycopg.OperationalError:
            return -1

    return stored


def test_consumer_waits_out_postgresql_stopped_mid_ingest_and_restarted_while_idle(
    own_postgres: OwnPostgres, env: dict[str, str]
) -> None:
    """PostgreSQL stops mid-stream, and later restarts while the consumer idles: it never exits, and
    every event is stored exactly once."""
    settings = Settings.from_env(
        {**env, **FAST_RETRY, "LEDGER_DATABASE_URL": own_postgres.url, "LEDGER_BATCH_SIZE": "100"}
    )
    assert settings.kafka_bootstrap is not None
    ledger = _migrated(own_postgres, env)
    stored = _answers(own_postgres.url)
    first = [
        event("acme", f"s{n % 500}", "consent.given", consent(), event_id=f"a{n}") for n in range(20_000)
    ]
    later = [event("globex", f"s{n % 50}", "consent.given", consent(), event_id=f"b{n}") for n in range(300)]
    with Publisher(settings.kafka_bootstrap, settings) as publisher:
        for item in first:
            publisher.publish(item)
    stop = threading.Event()
    with capture_logs() as logs:
        consumer = Running(
            lambda: ingest.consume(
                settings, ledger, settings.kafka_bootstrap or "", until_idle=False, stop=stop
            )
        )
        try:
            wait_for(lambda: stored() >= 500, 60, "the first batches to be stored")
            at_stop = stored()
            own_postgres.stop()
            assert at_stop < len(first), "the stream was stored before PostgreSQL stopped: nothing proved"
            time.sleep(2)  # batches keep arriving while PostgreSQL is away
            consumer.assert_alive()
            own_postgres.start()
            wait_for(lambda: stored() == len(first), 90, "the rest of the stream after the restart")

            own_postgres.stop()  # the consumer is idle now: its connections go stale without its knowing
            own_postgres.start()
            with Publisher(settings.kafka_bootstrap, settings) as publisher:
                for item in later:
                    publisher.publish(item)
            wait_for(
                lambda: stored() == len(first) + len(later), 90, "the events published after the restart"
            )
            consumer.assert_alive()
        finally:
            stop.set()
            consumer.thread.join(30)
            ledger.close()
    assert consumer.error is None
    assert _stored_ids(own_postgres.url) == sorted(item["id"] for item in first + later)
    assert _count(own_postgres.url, "SELECT count(*) FROM ledger_events WHERE originator_version > 1") == len(
        first
    ) + len(later)
    waits = [entry for entry in logs if entry["event"] == "retry.waiting"]
    assert waits and {entry["component"] for entry in waits} == {"consumer"}


def test_consumer_until_idle_gives_up_with_one_line_when_postgresql_stays_down(
    own_postgres: OwnPostgres, env: dict[str, str]
) -> None:
    """`consume --until-idle` does not hang on an outage: after LEDGER_RETRY_GIVE_UP_S it says so."""
    settings = Settings.from_env(
        {**env, **FAST_RETRY, "LEDGER_DATABASE_URL": own_postgres.url, "LEDGER_RETRY_GIVE_UP_S": "3"}
    )
    assert settings.kafka_bootstrap is not None
    ledger = _migrated(own_postgres, env)
    with Publisher(settings.kafka_bootstrap, settings) as publisher:
        publisher.publish(event("acme", "s1", "consent.given", consent()))
    own_postgres.stop()
    try:
        started = time.monotonic()
        with pytest.raises(GaveUp, match=r"consumer gave up after .* check that PostgreSQL"):
            ingest.consume(settings, ledger, settings.kafka_bootstrap, until_idle=True)
        assert time.monotonic() - started < 60
    finally:
        own_postgres.start()
        ledger.close()


def test_projector_waits_out_postgresql_stopped_and_started(
    own_postgres: OwnPostgres, env: dict[str, str]
) -> None:
    """The projector's run loop survives a PostgreSQL restart and projects what was stored after it."""
    settings = Settings.from_env({**env, **FAST_RETRY, "LEDGER_DATABASE_URL": own_postgres.url})
    ledger = _migrated(own_postgres, env)
    projector = Projector(ledger, page=50)
    ledger.append([fact("acme", f"s{n}", f"a{n}") for n in range(200)])
    stop = threading.Event()
    backoff = Backoff.from_settings(settings, bounded=False)
    with capture_logs() as logs:
        running = Running(lambda: projector.run(until_idle=False, stop=stop, backoff=backoff))
        try:
            projected = _projected(own_postgres.url)
            wait_for(lambda: projected() == 200, 60, "the first events to be projected")
            own_postgres.stop()
            time.sleep(2)  # the projector polls a PostgreSQL that is gone
            running.assert_alive()
            own_postgres.start()
            ledger.append([fact("globex", f"s{n}", f"b{n}") for n in range(100)])
            wait_for(lambda: projected() == 300, 90, "the events stored after the restart to be projected")
            running.assert_alive()
        finally:
            stop.set()
            running.thread.join(30)
            ledger.close()
    assert running.error is None
    assert {entry["component"] for entry in logs if entry["event"] == "retry.waiting"} == {"projector"}


def _projected(url: str) -> Callable[[], int]:
    def subjects() -> int:
        try:
            return _count(url, "SELECT count(*) FROM proj_subjects")
        except psycopg.OperationalError:
            return -1

    return subjects


def test_a_transaction_ended_for_idling_is_waited_out_not_blamed_on_its_data(ledger: Ledger) -> None:
    """When PostgreSQL ends a transaction whose client paused too long between statements (a starved
    machine encoding a large batch), the failure is transient, so the consumer stores the batch again
    instead of dead-lettering its messages one by one."""
    with pytest.raises(InternalError) as ended, ledger.writer.datastore.transaction(commit=True) as curs:
        curs.execute("SET LOCAL idle_in_transaction_session_timeout = '50ms'")
        time.sleep(0.3)
        curs.execute("SELECT 1")
    assert isinstance(ended.value.__cause__, psycopg.errors.IdleInTransactionSessionTimeout)
    assert transient(ended.value)
