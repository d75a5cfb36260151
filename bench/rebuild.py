"""Rebuilding the read model from the event store, against reading the same events back.

    python -m bench.rebuild [--events 1000000]

Appends a realistic workload straight into a fresh event store (no Kafka) and projects it, then
measures: the time to read every stored event back from PostgreSQL through the library, in the
projector's pages (the ceiling the target names), the time to fetch just the rows a rebuild reads
with a raw binary cursor (the floor), and the time `rebuild` takes to replay them into shadow tables
(one worker process per core; then it compares them with the live ones and swaps them in).
Target: rebuild <= 2x the read-back time.
Never run by CI.
"""

import argparse
import itertools
import os
import time

import orjson
from psycopg.sql import SQL

from bench.common import Message, fresh_database, run, services
from consumers.contract import Contract
from consumers.ingest import triage
from consumers.workload import generate
from ledger.crypto import MasterKey
from ledger.store import Ledger
from projections.changes import TOPICS
from projections.projector import Projector
from projections.rebuild import rebuild


def main() -> None:
    """Load, read back, rebuild, and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    settings, found = services()
    with fresh_database(found.database_url) as url:
        ledger = Ledger(url, MasterKey.generate())
        loaded = _load(ledger, args.events)
        page = settings.projection_page
        Projector(ledger, page).run(until_idle=True)  # the live tables a rebuild must reproduce
        started = time.perf_counter()
        after, read = 0, 0
        while notifications := ledger.recorder.select_notifications(
            start=after, limit=page, inclusive_of_start=False
        ):
            read += len(notifications)
            after = notifications[-1].id
        read_back = time.perf_counter() - started
        raw, fetched = _fetch_raw(ledger)
        started = time.perf_counter()
        report = rebuild(ledger, lambda *_: None, processes=os.cpu_count() or 1)
        whole = time.perf_counter() - started
        ledger.close()
    print(f"{loaded} facts appended, {read} stored events (with registrations and erasures)")
    library = f"read back, library pages of {page}"
    print(f"{library:<36} {read_back:8.1f} s  {read / read_back:>10,.0f} events/s")
    print(f"{'fetch projected rows, raw cursor':<36} {raw:8.1f} s  {fetched / raw:>10,.0f} events/s")
    replay = report.events / report.seconds
    print(f"{'rebuild (replay into shadow tables)':<36} {report.seconds:8.1f} s  {replay:>10,.0f} events/s")
    print(f"{'  with comparison and swap':<36} {whole:8.1f} s")
    print(
        f"rebuild / read back: {report.seconds / read_back:.2f}x (target <= 2x); "
        f"/ raw fetch: {report.seconds / raw:.2f}x; identical: {report.identical}"
    )


def _fetch_raw(ledger: Ledger) -> tuple[float, int]:
    """The floor: the rows a rebuild reads, fetched by a binary server-side cursor and dropped."""
    started, fetched = time.perf_counter(), 0
    statement = SQL("SELECT originator_id, originator_version, topic, state FROM {} WHERE topic = ANY(%s)")
    with (
        ledger.writer.datastore.transaction() as curs,
        curs.connection.cursor(name="raw", binary=True) as raw,
    ):
        raw.execute(statement.format(ledger.writer.events), (TOPICS,))
        while batch := raw.fetchmany(5000):
            fetched += len(batch)
    return time.perf_counter() - started, fetched


def _load(ledger: Ledger, count: int) -> int:
    contract = Contract(256 * 1024)
    events = generate(tenants=4, subjects=count)
    loaded = 0
    while batch := list(itertools.islice(events, min(5000, count - loaded))):
        messages = [Message(loaded + n, orjson.dumps(item)) for n, item in enumerate(batch)]
        ledger.append(triage(messages, contract).facts)
        loaded += len(batch)
    return loaded


if __name__ == "__main__":
    run(main)
