"""What every benchmark needs: the running stack, a throw-away database, one-line errors."""

import sys
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.conninfo import make_conninfo

from app import stack
from ledger import logs
from ledger.crypto import MasterKey
from ledger.errors import LedgerError
from ledger.settings import Settings
from ledger.store import Ledger, RecordFact
from projections.schema import migrate

START = datetime(2025, 1, 1, tzinfo=UTC)  # the first benchmark fact


def services() -> tuple[Settings, stack.Endpoints]:
    """Quiet settings, and the embedded stack (started if needed) or the external services LEDGER_* names."""
    settings = replace(Settings.from_env(), log_level="warning")
    logs.configure(settings)
    return settings, stack.up(settings)


class Message:
    """A consumed message as the consumer's `triage` reads it, without a broker."""

    def __init__(self, offset: int, value: bytes) -> None:
        self.topic, self.partition, self.offset, self.key, self.value = "bench", 0, offset, None, value


@contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """A new database on the same server with every table of the ledger, empty; dropped afterwards."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        fresh = make_conninfo(url, dbname=name)
        ledger = Ledger(fresh, MasterKey.generate())  # any key: migrating writes no data
        migrate(ledger)
        ledger.close()
        yield fresh
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def run(main: Callable[[], None]) -> None:
    """Run a benchmark, turning the ledger's errors into one line."""
    try:
        main()
    except LedgerError as error:
        sys.exit(f"bench: error: {error}")


def consents(numbers: Iterable[int], subject: Callable[[int], str], step: timedelta) -> list[RecordFact]:
    """Marketing-by-SMS consents given (even n) and withdrawn (odd n), fact n at START + n steps."""
    return [
        RecordFact(
            tenant="acme",
            subject=subject(n),
            event_id=f"e{n}",
            type="consent.given" if n % 2 == 0 else "consent.withdrawn",
            source="urn:service:bench",
            occurred_at=START + n * step,
            schema_version=1,
            data={"purpose": "marketing", "channel": "sms", "method": "web_form"},
            personal={},
            origin="bench",
        )
        for n in numbers
    ]
