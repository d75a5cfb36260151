"""Fixtures: one real embedded PostgreSQL and Tansu broker per test session; a database per test."""

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from app import stack
from ledger.crypto import MasterKey, master_key
from ledger.settings import Settings
from ledger.signing import SigningKey
from ledger.store import Ledger
from projections.schema import migrate

ROOT = Path(__file__).resolve().parent.parent
# pgserver opens read permission on its data directory's parents when run as root: keep it in .ledger/.
TEST_HOME = ROOT / ".ledger" / "test"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def services() -> Iterator[stack.Endpoints]:
    """The embedded stack, started for this session and stopped after it."""
    settings = Settings.from_env({"LEDGER_HOME": str(TEST_HOME), "LEDGER_BROKER_PORT": str(_free_port())})
    endpoints = stack.up(settings)
    yield endpoints
    stack.down(settings)


@contextmanager
def fresh_database(services: stack.Endpoints) -> Iterator[dict[str, str]]:
    """`LEDGER_*` variables for a database and topics of the caller's own, dropped afterwards."""
    name = f"test_{uuid4().hex[:12]}"
    admin = make_conninfo(services.database_url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    tag = uuid4().hex[:8]
    yield {
        "LEDGER_HOME": str(TEST_HOME),
        "LEDGER_DATABASE_URL": make_conninfo(services.database_url, dbname=name),
        "LEDGER_KAFKA_BOOTSTRAP": services.kafka_bootstrap,
        "LEDGER_EVENTS_TOPIC": f"events-{tag}",
        "LEDGER_DEADLETTER_TOPIC": f"deadletter-{tag}",
        "LEDGER_PURGE_TOPIC": f"purges-{tag}",
        "LEDGER_PURGE_DEADLETTER_TOPIC": f"purge-deadletter-{tag}",
        "LEDGER_CONSUMER_GROUP": f"group-{tag}",
        "LEDGER_BATCH_SIZE": "500",
        "LEDGER_PROJECTION_PAGE": "300",
        "LEDGER_MASTER_KEY": MasterKey.generate().text(),
        "LEDGER_SIGNING_KEY": SigningKey.generate().text(),
        "LEDGER_CHECKPOINT_TOPIC": f"checkpoints-{tag}",
    }
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def env(services: stack.Endpoints) -> Iterator[dict[str, str]]:
    """`LEDGER_*` variables for a fresh database and topics of this test's own."""
    with fresh_database(services) as variables:
        yield variables


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    """Settings for this test's database and topics."""
    return Settings.from_env(env)


@pytest.fixture
def ledger(settings: Settings) -> Iterator[Ledger]:
    """The event store application on this test's database, every table created."""
    assert settings.database_url is not None
    app = Ledger(settings.database_url, master_key(settings, create=False)[0])
    migrate(app)
    yield app
    app.close()
