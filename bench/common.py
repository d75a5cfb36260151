"""What every benchmark needs: the running stack, a throw-away database, one-line errors."""

import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import psycopg
from psycopg.conninfo import make_conninfo

from ledger import logs, stack
from ledger.crypto import MasterKey
from ledger.errors import LedgerError
from ledger.settings import Settings
from ledger.store import Ledger
from projections.schema import migrate


def services() -> tuple[Settings, stack.Endpoints]:
    """Quiet settings, and the embedded stack (started if needed) or the external services LEDGER_* names."""
    settings = replace(Settings.from_env(), log_level="warning")
    logs.configure(settings)
    return settings, stack.up(settings)


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
