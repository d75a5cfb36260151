"""Replay a projection from the event store into fresh tables, prove it equals the live one, swap it in.

A rebuild holds the projection's position for its whole run, so live projectors wait and the live
tables stay readable, and exactly at that position, until the rebuilt ones replace them in the same
transaction; a failure drops the half-filled tables and leaves the live ones as they were. Events are
read once, a partition of the subject id space at a time (each small enough to fold in memory), so
each subject's rows are written once by COPY instead of being loaded, deleted and rewritten page
after page; partitions are independent, so worker processes replay them side by side.
"""

import math
import multiprocessing
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from uuid import UUID

from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from ledger.bulk import without_cycle_collection
from ledger.state import SubjectState
from ledger.store import Ledger
from projections import tables
from projections.changes import TOPICS, decode, fold

Progress = Callable[[int, int, float], None]  # (events applied, events to apply, seconds so far)
PARTITION_EVENTS = 50_000  # events folded in memory at once: tens of MB of subject state
_FETCH = 5000
Partition = tuple[UUID, UUID | None]


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


def rebuild(ledger: Ledger, progress: Progress, *, processes: int = 1) -> RebuildReport:
    """Replay every projected event up to the live position into shadow tables, compare, swap in."""
    report = RebuildReport()
    started = time.perf_counter()
    with ledger.writer.datastore.transaction(commit=True) as curs:
        # This transaction holds the position, keeping projectors and other rebuilds out, and idles
        # while the replays work on other connections: far longer than the library's timeout allows.
        curs.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
        curs.execute(
            SQL("SELECT position FROM {} WHERE name = %s FOR UPDATE").format(tables.POSITIONS),
            (tables.PROJECTION,),
        )
        row = curs.fetchone()
        assert row is not None  # ensure() inserted it
        report.position = int(row["position"])
        _apart(ledger, tables.create_shadow)  # committed, so that the replays' connections can fill them
        try:
            total = _count(curs, ledger, report.position)
            for events in _replay_all(ledger, report.position, _partitions(total, processes), processes):
                report.events += events
                progress(report.events, total, time.perf_counter() - started)
            report.seconds = time.perf_counter() - started
            report.differences = {name: _differences(curs, name) for name in tables.table_names()}
            tables.swap_in_shadow(curs)
        except BaseException:
            _apart(ledger, tables.drop_shadow)  # while the position is still held: these are ours
            raise
    return report


def _apart(ledger: Ledger, change: Callable[[tables.Cursor], None]) -> None:
    """Run `change` in a transaction of its own, committed at once."""
    with ledger.writer.datastore.transaction(commit=True) as curs:
        change(curs)


def _replay_all(ledger: Ledger, position: int, partitions: list[Partition], processes: int) -> Iterator[int]:
    """Events replayed per partition, as each finishes: here, or in up to `processes` workers."""
    workers = min(processes, len(partitions))
    if workers <= 1:
        for partition in partitions:
            yield _replay(ledger, position, partition)
        return
    jobs = [(ledger.database_url, position, partition) for partition in partitions]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap_unordered(_replay_in_worker, jobs)


def _replay_in_worker(job: tuple[str, int, Partition]) -> int:
    database_url, position, partition = job
    return _replay(_worker_ledger(database_url), position, partition)


@cache
def _worker_ledger(database_url: str) -> Ledger:
    """One ledger (mapper and connection pool) per worker process, not one per partition."""
    return Ledger(database_url, None)


def _replay(ledger: Ledger, position: int, partition: Partition) -> int:
    """Fold one partition's events in memory and write its subjects into the shadow tables."""
    low, high = partition
    upper = SQL("") if high is None else SQL("AND originator_id < %(high)s")
    # Subject by subject, each in version order: the primary key's order, so no sort is needed.
    statement = SQL(
        "SELECT originator_id, originator_version, topic, state FROM {} "
        "WHERE notification_id <= %(position)s AND topic = ANY(%(topics)s) "
        "AND originator_id >= %(low)s {} ORDER BY originator_id, originator_version"
    ).format(ledger.writer.events, upper)
    states: dict[tuple[str, str], SubjectState] = {}
    events = 0
    with without_cycle_collection(), ledger.writer.datastore.transaction(commit=True) as curs:
        with curs.connection.cursor(name="replay", row_factory=tuple_row, binary=True) as reader:
            reader.execute(statement, {"position": position, "topics": TOPICS, "low": low, "high": high})
            while batch := reader.fetchmany(_FETCH):
                fold(states, (decode(ledger.mapper, *row) for row in batch))
                events += len(batch)
        tables.write(curs, list(states.values()), tables.SHADOW)
    return events


def _count(curs: tables.Cursor, ledger: Ledger, position: int) -> int:
    curs.execute(
        SQL("SELECT count(*) AS n FROM {} WHERE notification_id <= %s AND topic = ANY(%s)").format(
            ledger.writer.events
        ),
        (position, TOPICS),
    )
    row = curs.fetchone()
    return int(row["n"]) if row else 0


def _partitions(events: int, processes: int) -> list[Partition]:
    """Equal ranges of the subject (aggregate) id space, ids being UUIDv5 and so evenly spread: small
    enough to fold in memory, and as many for each worker, so that none idles while another works."""
    count = math.ceil(events / PARTITION_EVENTS)
    if count > 1:
        count = math.ceil(count / processes) * processes
    bounds = [UUID(int=(n << 128) // count) for n in range(count)]
    return [(low, bounds[n + 1] if n + 1 < count else None) for n, low in enumerate(bounds)]


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
