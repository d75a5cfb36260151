"""Drop and replay a projection from the event store, then prove the replay equals what it replaced."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from psycopg.sql import SQL, Identifier

from ledger.store import Ledger
from projections import tables
from projections.projector import Projector

Progress = Callable[[int, int, float], None]  # (events applied, events in the store, seconds so far)


@dataclass
class RebuildReport:
    """How much was replayed, how fast, and how many rows differ from the tables it replaced."""

    events: int = 0
    seconds: float = 0.0
    differences: dict[str, int] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        """True when every rebuilt table equals the live one, row for row."""
        return not any(self.differences.values())


def rebuild(ledger: Ledger, page: int, progress: Progress) -> RebuildReport:
    """Snapshot the live tables, replay every event in pages, and compare the result with the snapshot."""
    names = tables.table_names()
    projector = Projector(ledger, page)
    _snapshot(ledger, names)
    try:
        total = ledger.recorder.max_notification_id() or 0
        projector.reset()
        report = RebuildReport()
        started = time.perf_counter()
        while applied := projector.step():
            report.events += applied
            progress(projector.position(), total, time.perf_counter() - started)
        report.seconds = time.perf_counter() - started
        report.differences = {name: _differences(ledger, name) for name in names}
    finally:
        _drop_snapshot(ledger, names)
    return report


def _snapshot(ledger: Ledger, names: list[str]) -> None:
    with ledger.writer.datastore.transaction(commit=True) as curs:
        for name in names:
            curs.execute(SQL("DROP TABLE IF EXISTS {}").format(Identifier(f"before_{name}")))
            curs.execute(
                SQL("CREATE TABLE {} AS TABLE {}").format(Identifier(f"before_{name}"), Identifier(name))
            )


def _differences(ledger: Ledger, name: str) -> int:
    """Rows in one table and not the other, both ways (duplicates counted)."""
    before, after = Identifier(f"before_{name}"), Identifier(name)
    with ledger.writer.datastore.transaction() as curs:
        curs.execute(
            SQL(
                "SELECT (SELECT count(*) FROM (TABLE {} EXCEPT ALL TABLE {}) a) "
                "+ (SELECT count(*) FROM (TABLE {} EXCEPT ALL TABLE {}) b) AS n"
            ).format(before, after, after, before)
        )
        row = curs.fetchone()
        return int(row["n"]) if row else 0


def _drop_snapshot(ledger: Ledger, names: list[str]) -> None:
    with ledger.writer.datastore.transaction(commit=True) as curs:
        for name in names:
            curs.execute(SQL("DROP TABLE IF EXISTS {}").format(Identifier(f"before_{name}")))
