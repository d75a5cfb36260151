"""Replay a projection from the event store into fresh tables, prove it equals the live one, swap it in.

The whole rebuild is one transaction holding the projection's position, so live projectors wait and
the live tables stay readable and exactly at that position until the rebuilt ones replace them; a
crash or a failure leaves the live tables as they were. Events are read once, in partitions of the
subject id space small enough to fold in memory, so each subject's rows are written once by COPY
instead of being loaded, deleted and rewritten page after page.
"""

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from uuid import UUID

from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composed, Identifier

from ledger.state import SubjectState
from ledger.store import Ledger
from projections import tables
from projections.changes import TOPICS, decode, fold

Progress = Callable[[int, int, float], None]  # (events applied, events to apply, seconds so far)
PARTITION_EVENTS = 500_000  # events folded in memory at once: a few hundred MB of subject state
_FETCH = 5000


@dataclass
class RebuildReport:
    """How much was replayed, how fast, and how many rows differ from the tables it replaced."""

    events: int = 0
    seconds: float = 0.0
    position: int = 0
    differences: dict[str, int] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        """True when every rebuilt table equals the live one, row for row."""
        return not any(self.differences.values())


def rebuild(ledger: Ledger, progress: Progress) -> RebuildReport:
    """Replay every projected event up to the live position into shadow tables, compare, swap in."""
    tables.ensure(ledger)
    report = RebuildReport()
    started = time.perf_counter()
    with ledger.writer.datastore.transaction(commit=True) as curs:
        curs.execute(
            SQL("SELECT position FROM {} WHERE name = %s FOR UPDATE").format(tables.POSITIONS),
            (tables.PROJECTION,),
        )
        row = curs.fetchone()
        assert row is not None  # ensure() inserted it
        report.position = int(row["position"])
        tables.create_shadow(curs)
        total = _count(curs, ledger, report.position)
        for partition in _partitions(total):
            states: dict[tuple[str, str], SubjectState] = {}
            for batch in _read(curs, ledger, report.position, partition):
                fold(states, (decode(ledger.mapper, *row) for row in batch))
                report.events += len(batch)
                progress(report.events, total, time.perf_counter() - started)
            tables.write(curs, list(states.values()), tables.SHADOW)
        report.seconds = time.perf_counter() - started
        report.differences = {name: _differences(curs, name) for name in tables.table_names()}
        tables.swap_in_shadow(curs)
    return report


def _count(curs: tables.Cursor, ledger: Ledger, position: int) -> int:
    curs.execute(
        SQL("SELECT count(*) AS n FROM {} WHERE notification_id <= %s AND topic = ANY(%s)").format(
            ledger.writer.events
        ),
        (position, TOPICS),
    )
    row = curs.fetchone()
    return int(row["n"]) if row else 0


def _partitions(events: int) -> list[tuple[UUID, UUID | None]]:
    """Equal ranges of the subject (aggregate) id space; ids are UUIDv5, so evenly spread."""
    count = max(1, math.ceil(events / PARTITION_EVENTS))
    bounds = [UUID(int=(n << 128) // count) for n in range(count)]
    return [(low, bounds[n + 1] if n + 1 < count else None) for n, low in enumerate(bounds)]


def _read(
    curs: tables.Cursor, ledger: Ledger, position: int, partition: tuple[UUID, UUID | None]
) -> Iterator[list[tuple[UUID, int, str, bytes]]]:
    """Every projected event of the partition's subjects up to `position`, in order, in batches."""
    low, high = partition
    upper = SQL("") if high is None else SQL("AND originator_id < %(high)s")
    statement: Composed = SQL(
        "SELECT originator_id, originator_version, topic, state FROM {} "
        "WHERE notification_id <= %(position)s AND topic = ANY(%(topics)s) "
        "AND originator_id >= %(low)s {} ORDER BY notification_id"
    ).format(ledger.writer.events, upper)
    # A server-side cursor in the rebuild's own transaction: rows stream in while the COPYs run.
    with curs.connection.cursor(name="rebuild", row_factory=tuple_row, binary=True) as reader:
        reader.execute(statement, {"position": position, "topics": TOPICS, "low": low, "high": high})
        while batch := reader.fetchmany(_FETCH):
            yield batch


def _differences(curs: tables.Cursor, name: str) -> int:
    """Rows in the live table and not the rebuilt one, both ways (duplicates counted)."""
    live, rebuilt = Identifier(name), Identifier(tables.SHADOW + name)
    curs.execute(
        SQL(
            "SELECT (SELECT count(*) FROM (TABLE {} EXCEPT ALL TABLE {}) a) "
            "+ (SELECT count(*) FROM (TABLE {} EXCEPT ALL TABLE {}) b) AS n"
        ).format(live, rebuilt, rebuilt, live)
    )
    row = curs.fetchone()
    return int(row["n"]) if row else 0
