"""Capacity: millions of events into one store, with the projector following, per million.

    python -m bench.capacity [--events 10000000] [--every 1000000] [--plot docs/capacity.png]

Feeds the workload's events (subjects' lives interleaved, 20,000 subjects live at a time) through
the consumer's own path without Kafka: `triage` (the wire contract) and `Ledger.append` in batches
of LEDGER_BATCH_SIZE, sealing and chaining on, while a second process runs the projector with its
checkpointer as `run` does. For every `--every` events it prints the append rate, the projection
lag (`stats`' figure) and the bytes on disk per event, beside the ceiling measured then: a binary
COPY of the same stored rows into a bare table. At the end: the time for the projector to catch
up, `check` and `breach` latency beside the SQL they run, where the bytes went, and what
PostgreSQL's storage options give on a sample of the stored rows. Runs in a fresh database on the
server LEDGER_DATABASE_URL names, else on an embedded PostgreSQL of its own under
`<LEDGER_HOME>/capacity` (started if needed, left running: `LEDGER_HOME=.ledger/capacity
consent-ledger down` stops it). The database is dropped at the end. SIGINT (Ctrl-C) or SIGTERM
ends the appending early; the final measurements still run on what was stored. Never run by CI.
"""

import argparse
import itertools
import multiprocessing
import os
import random
import signal
import statistics
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row

from app import stack
from bench.common import Message, fresh_database, run
from consumers.contract import Contract
from consumers.ingest import triage
from consumers.workload import generate
from ledger import logs
from ledger.checkpoints import Checkpointer
from ledger.compression import inflate
from ledger.crypto import MasterKey
from ledger.retry import Backoff
from ledger.settings import Settings
from ledger.signing import SigningKey
from ledger.store import Ledger
from projections import queries
from projections.breach import breach_impact
from projections.projector import Checkpoints, Projector

LIVE = 20_000  # subjects whose lives are under way at once, so their events spread over many batches
LAG_EVERY = 20  # batches between two samples of the projection lag
SAMPLE = 200_000  # stored rows copied for the ceiling, and for the storage variants


@dataclass
class Mark:
    """One `--every` stretch of the run."""

    events: int  # facts appended so far
    rate: float  # facts/s over the stretch (contract + append; generating the events excluded)
    rows_rate: float  # stored rows/s over the stretch (facts plus subjects' registrations)
    ceiling: float  # rows/s of a binary COPY of stored rows of the stretch into a bare table
    lag: int  # projection lag at the end of the stretch
    max_lag: int  # the highest lag sampled during the stretch
    bytes_per_event: float  # every table and index of the ledger (the read model as far as projected)


@dataclass
class Run:
    """Everything measured, for printing and plotting."""

    marks: list[Mark] = field(default_factory=list)
    events: int = 0  # facts appended
    lags: list[tuple[int, int]] = field(default_factory=list)  # (facts appended, lag)
    payload: float = 0.0  # average CloudEvent size in bytes, as published


def main() -> None:
    """Ingest, measure, print, plot; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--every", type=int, default=1_000_000, help="events per reported stretch")
    parser.add_argument("--plot", type=Path, help="write a PNG of rate, lag and bytes per stretch")
    args = parser.parse_args()
    # The library ends a transaction idle for 5 s; the append encodes and seals a batch inside its
    # transaction, which on a shared machine at nice 19 took longer than that. The projector in the
    # process started below inherits this.
    os.environ.setdefault("POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT", "60")
    base = replace(Settings.from_env(), log_level="warning")
    logs.configure(base)
    settings = replace(base, home=base.home / "capacity") if base.database_url is None else base
    # Kafka is not in this loop: naming an address keeps `up` from starting a broker for nothing.
    server = stack.up(replace(settings, kafka_bootstrap="unused:9092")).database_url
    print(f"{args.events:,} events, reported every {args.every:,}; PostgreSQL at {stack.masked(server)}")
    with fresh_database(server) as url:
        measured = _ingest(settings, url, args.events, args.every, args.plot)
        _report(measured)
        ledger = Ledger(url, None)
        _queries(ledger, url)
        _storage(ledger, url, measured)
        ledger.close()


def _ingest(settings: Settings, url: str, count: int, every: int, plot: Path | None) -> Run:
    """Append `count` events with the projector following; SIGINT (Ctrl-C) or SIGTERM ends the appending
    early and the run goes on to its final measurements with what was stored."""
    key = MasterKey.generate()
    ledger = Ledger(url, key)
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    follower = context.Process(
        target=_follow,
        args=(url, key, settings.projection_page, settings.checkpoint_every, stop),
        daemon=True,
    )
    follower.start()
    measured = Run()
    # A job started in the background of a script inherits SIGINT ignored: take both signals here.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(f"\n{'events':>12} {'events/s':>9} {'rows/s':>9} {'COPY rows/s':>12} {'ratio':>6} "
          f"{'lag':>9} {'max lag':>9} {'B/event':>8}")  # fmt: skip
    try:
        _append(settings, ledger, measured, url=url, count=count, every=every, plot=plot)
    except KeyboardInterrupt:
        print(f"interrupted: appending stopped after {measured.events:,} events", flush=True)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    started = time.perf_counter()
    while queries.progress(ledger).lag:
        time.sleep(0.5)
    caught_up = time.perf_counter() - started
    stop.set()
    follower.join()
    ledger.close()
    print(f"projector caught up {caught_up:.1f} s after the last append")
    return measured


def _append(
    settings: Settings, ledger: Ledger, measured: Run, *, url: str, count: int, every: int, plot: Path | None
) -> None:
    contract = Contract(settings.max_message_bytes)
    sizes, busy, rows_before, max_lag = 0, 0.0, 0, 0
    events = _interleaved(generate(4, count // 20 + 1), LIVE)
    for number, batch in enumerate(_batches(events, count, settings.batch_size)):
        messages = [Message(measured.events + n, orjson.dumps(event)) for n, event in enumerate(batch)]
        started = time.perf_counter()
        verdicts = triage(messages, contract)
        ledger.append(verdicts.facts)
        busy += time.perf_counter() - started
        if verdicts.refused:
            raise SystemExit(f"bench: the workload produced a refused event: {verdicts.refused[0][1]}")
        sizes += sum(len(message.value) for message in messages)
        measured.events += len(batch)
        measured.payload = sizes / measured.events
        done = measured.events
        if number % LAG_EVERY == 0:
            lag = queries.progress(ledger).lag
            measured.lags.append((done, lag))
            max_lag = max(max_lag, lag)
        if done % every and done != count:
            continue
        rows = ledger.writer.max_notification_id() or 0
        lag = queries.progress(ledger).lag
        measured.lags.append((done, lag))
        mark = Mark(
            events=done,
            rate=(done - (measured.marks[-1].events if measured.marks else 0)) / busy,
            rows_rate=(rows - rows_before) / busy,
            ceiling=_copy_ceiling(url, rows, min(SAMPLE, rows - rows_before)),
            lag=lag,
            max_lag=max(max_lag, lag),
            bytes_per_event=_database_bytes(url) / done,
        )
        measured.marks.append(mark)
        print(f"{mark.events:>12,} {mark.rate:>9,.0f} {mark.rows_rate:>9,.0f} {mark.ceiling:>12,.0f} "
              f"{mark.rows_rate / mark.ceiling:>6.3f} {mark.lag:>9,} {mark.max_lag:>9,} "
              f"{mark.bytes_per_event:>8,.0f}", flush=True)  # fmt: skip
        if plot:
            _plot(measured, plot)  # at every mark, so an interrupted run still has its picture
        busy, rows_before, max_lag = 0.0, rows, 0


def _follow(url: str, key: MasterKey, page: int, every: int, stop: Event) -> None:
    """The projector with its checkpointer, as `run` runs it (in its own process)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the appending; the parent stops this
    logs.configure(replace(Settings.from_env(), log_level="warning"))
    ledger = Ledger(url, key)
    checkpointer = Checkpointer(ledger, SigningKey.generate(), every)
    projector = Projector(ledger, page, checkpointer)
    checkpoints = Checkpoints(checkpointer, projector.committed, Backoff.default(bounded=False))
    while not stop.is_set():
        if not projector.step():
            stop.wait(0.2)
    checkpoints.close()
    ledger.close()


def _interleaved(events: Iterator[dict[str, Any]], live: int) -> Iterator[dict[str, Any]]:
    """The events with `live` subjects' lives under way at once, each subject's in its own order:
    the next event comes from a subject picked at random among them."""
    rng = random.Random(11)
    lives = (list(group) for _, group in itertools.groupby(events, lambda e: (e["tenant"], e["subject"])))
    pool = [iter(life) for life in itertools.islice(lives, live)]
    while pool:
        index = rng.randrange(len(pool))
        event = next(pool[index], None)
        if event is not None:
            yield event
            continue
        following = next(lives, None)
        if following is None:
            pool[index] = pool[-1]
            pool.pop()
        else:
            pool[index] = iter(following)


def _batches(events: Iterator[dict[str, Any]], count: int, size: int) -> Iterator[list[dict[str, Any]]]:
    limited = itertools.islice(events, count)
    while batch := list(itertools.islice(limited, size)):
        yield batch


def _copy_ceiling(url: str, rows: int, sample: int) -> float:
    """Rows/s of a binary COPY into a bare table of the last `sample` stored rows (read beforehand)."""
    with psycopg.connect(url) as conn:
        chunks = []
        with conn.cursor().copy(
            "COPY (SELECT originator_id, originator_version, topic, state FROM ledger_events "
            f"WHERE notification_id > {rows - sample} ORDER BY notification_id) TO STDOUT (FORMAT BINARY)"
        ) as copy:
            chunks = [bytes(chunk) for chunk in copy]
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_bare "
            "(originator_id uuid, originator_version bigint, topic text, state bytea)"
        )
        conn.execute("TRUNCATE bench_bare")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor().copy("COPY bench_bare FROM STDIN (FORMAT BINARY)") as copy:
            for chunk in chunks:
                copy.write(chunk)
        conn.commit()
        return sample / (time.perf_counter() - started)


GROUPS = (  # (label, how a table's name starts); the longest match wins
    ("event table", "ledger_events"),
    ("receipts (idempotency)", "ledger_events_receipts"),
    ("data keys", "ledger_events_keys"),
    ("Merkle tree, tree heads", "ledger_events_merkle"),
    ("read model", "proj_"),
)


def _tables(url: str) -> list[dict[str, Any]]:
    """Every table of the ledger with its heap (+TOAST) and index sizes, the benchmark's own excluded."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT relname AS name, pg_table_size(oid) AS heap, pg_indexes_size(oid) AS indexes "
            "FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace "
            "AND relname NOT LIKE 'bench_%' ORDER BY relname"
        ).fetchall()


def _database_bytes(url: str) -> int:
    return sum(table["heap"] + table["indexes"] for table in _tables(url))


def _group(name: str) -> str:
    """The label of the longest prefix the table's name starts with."""
    matching = [(len(prefix), label) for label, prefix in GROUPS if name.startswith(prefix)]
    return max(matching)[1] if matching else "other"


def _report(measured: Run) -> None:
    marks = measured.marks
    if not marks:
        return
    first, last = marks[0], marks[-1]
    rates = [mark.rate for mark in marks]
    ratios = [mark.rows_rate / mark.ceiling for mark in marks]
    print(
        f"\nappend rate: first stretch {first.rate:,.0f}/s, last {last.rate:,.0f}/s "
        f"({last.rate / first.rate:.2f}x); min {min(rates):,.0f}, max {max(rates):,.0f}"
    )
    print(
        f"rate / COPY ceiling: first {ratios[0]:.3f}, last {ratios[-1]:.3f} "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f})"
    )
    print(f"projection lag: highest sampled {max(lag for _, lag in measured.lags):,} events")


def _queries(ledger: Ledger, url: str) -> None:
    """`check` and `breach` on the full store, beside the SQL they run on a bare connection."""
    with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        picked = conn.execute(
            "SELECT tenant, subject FROM proj_subjects TABLESAMPLE SYSTEM (1) REPEATABLE (7) LIMIT 2000"
        ).fetchall()
        timings, raw = [], []
        for row in picked:
            started = time.perf_counter()
            queries.may_contact(ledger, row["tenant"], row["subject"], "marketing", "sms")
            timings.append(time.perf_counter() - started)
            started = time.perf_counter()
            conn.execute(
                queries.DECISIONS,
                ([row["subject"]], row["tenant"], row["tenant"], "marketing", "sms"),
                prepare=True,
            ).fetchall()
            raw.append(time.perf_counter() - started)
    print(f"\ncheck ({len(timings)} subjects at random)      {_ms(timings)}")
    print(f"  its SQL, prepared, bare connection     {_ms(raw)}")
    week = (datetime(2025, 7, 1, tzinfo=UTC), datetime(2025, 7, 8, tzinfo=UTC))
    took, counted = [], []
    for _ in range(3):
        started = time.perf_counter()
        impact = breach_impact(ledger, "tenant-1", ["crm"], week, discovered_at=week[1])
        took.append(time.perf_counter() - started)
        with psycopg.connect(url) as conn:
            started = time.perf_counter()
            conn.execute(
                "SELECT count(DISTINCT subject) FROM proj_intervals WHERE tenant = 'tenant-1' "
                "AND system = 'crm' AND held_from < %s AND (held_until IS NULL OR held_until > %s)",
                (week[1], week[0]),
            ).fetchall()
            counted.append(time.perf_counter() - started)
    affected = sum(entry["subjects"] for entry in impact.by_jurisdiction.values())
    print(f"breach of crm, one week, tenant-1       median {statistics.median(took) * 1000:7.1f} ms "
          f"({affected:,} subjects affected)")  # fmt: skip
    print(f"  count of the exposed, one index scan  median {statistics.median(counted) * 1000:7.1f} ms")


def _ms(timings: Sequence[float]) -> str:
    ordered = sorted(timings)
    p99 = ordered[int(0.99 * (len(ordered) - 1))]
    return f"p50 {statistics.median(ordered) * 1000:6.2f} ms  p99 {p99 * 1000:6.2f} ms"


def _storage(ledger: Ledger, url: str, measured: Run) -> None:
    """Where the bytes went, per event, and what storage options give on a sample of stored rows."""
    events = measured.events
    tables = _tables(url)
    total = sum(table["heap"] + table["indexes"] for table in tables)
    print(f"\nbytes on disk per event, {events:,} events, every table and index "
          f"(the event as published: {measured.payload:.0f} B)")  # fmt: skip
    grouped: dict[str, list[int]] = {}
    for table in tables:
        sizes = grouped.setdefault(_group(table["name"]), [0, 0])
        sizes[0] += table["heap"]
        sizes[1] += table["indexes"]
    for label, (heap, indexes) in sorted(grouped.items(), key=lambda item: -sum(item[1])):
        print(f"  {label:<26} {(heap + indexes) / events:7.0f} B  (table {heap / events:5.0f}, "
              f"indexes {indexes / events:5.0f})")  # fmt: skip
    print(f"  {'total':<26} {total / events:7.0f} B")
    with psycopg.connect(url, autocommit=True) as conn:
        rows = (ledger.writer.max_notification_id() or 0) / events
        print(f"stored rows per event {rows:.2f} (facts plus registrations and erasures)")
        bare = 0.0
        for label, options in VARIANTS:
            conn.execute("DROP TABLE IF EXISTS bench_variant")
            conn.execute(
                "CREATE TABLE bench_variant (originator_id uuid, originator_version bigint, topic text, "
                f"state bytea) {options[0]}"
            )
            try:
                for statement in options[1:]:
                    conn.execute(statement)
            except psycopg.errors.FeatureNotSupported as error:
                print(f"  event rows, {label:<44} not on this server ({error.diag.message_primary})")
                continue
            copied = conn.execute(
                "INSERT INTO bench_variant SELECT originator_id, originator_version, topic, state "
                "FROM ledger_events ORDER BY notification_id DESC LIMIT %s",
                (SAMPLE,),
            ).rowcount
            size = conn.execute("SELECT pg_total_relation_size('bench_variant')").fetchone()
            assert size is not None
            print(f"  event rows, {label:<44} {size[0] / copied * rows:6.0f} B per event")
            bare = size[0] / copied if not options[0] else bare
        states = [
            bytes(state)
            for (state,) in conn.execute(
                "SELECT state FROM ledger_events ORDER BY notification_id DESC LIMIT %s", (SAMPLE,)
            )
        ]
        documents = [inflate(state) for state in states]
        stored = sum(map(len, states)) / len(states)
        for label, average in (
            ("state as JSON, uncompressed (before)", sum(map(len, documents)) / len(documents)),
            (
                "state by zlib with no dictionary",
                sum(len(zlib.compress(d)) for d in documents) / len(documents),
            ),
        ):
            estimate = (bare - stored + average) * rows
            print(f"  event rows, {label:<44} {estimate:6.0f} B per event (estimated)")
        conn.execute("DROP TABLE IF EXISTS bench_variant")
        conn.execute("DROP TABLE IF EXISTS bench_bare")
        _compacted(conn, events)


def _compacted(conn: psycopg.Connection[Any], events: int) -> None:
    """The read model's live rows against its size on disk: VACUUM FULL rewrites it without the dead
    row versions that rewriting subjects' rows leaves until (auto)vacuum reuses their space."""
    statement = (
        "SELECT sum(pg_total_relation_size(oid))::bigint FROM pg_class "
        "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace AND relname LIKE 'proj\\_%'"
    )
    before = conn.execute(statement).fetchone()
    started = time.perf_counter()
    names = conn.execute(
        "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace "
        "AND relname LIKE 'proj\\_%'"
    ).fetchall()
    for (name,) in names:
        conn.execute(f"VACUUM FULL {name}")
    after = conn.execute(statement).fetchone()
    assert before is not None and after is not None
    print(
        f"read model {before[0] / events:.0f} B per event on disk, {after[0] / events:.0f} B after "
        f"VACUUM FULL ({time.perf_counter() - started:.0f} s): the rest was dead row versions"
    )


# PostgreSQL compresses a value only once its row passes TOAST_TUPLE_THRESHOLD (about 2 kB), whatever
# toast_tuple_target says; the ledger's rows are about 650 bytes, so these show whether that holds.
# The ledger deflates each state over a dictionary before it is stored (ledger/compression.py); what
# plain JSON and zlib without the dictionary would take instead is estimated below.
VARIANTS = (
    ("bare heap, no index (as stored)", ("",)),
    (
        "state compressed in line, pglz",
        (
            "WITH (toast_tuple_target = 128)",
            "ALTER TABLE bench_variant ALTER COLUMN state SET STORAGE MAIN",
            "ALTER TABLE bench_variant ALTER COLUMN state SET COMPRESSION pglz",
        ),
    ),
    (
        "state compressed in line, lz4",
        (
            "WITH (toast_tuple_target = 128)",
            "ALTER TABLE bench_variant ALTER COLUMN state SET STORAGE MAIN",
            "ALTER TABLE bench_variant ALTER COLUMN state SET COMPRESSION lz4",
        ),
    ),
)


def _plot(measured: Run, path: Path) -> None:
    import matplotlib  # noqa: PLC0415 - only the plot needs it, and it takes a second to import

    matplotlib.use("Agg")
    from matplotlib import pyplot  # noqa: PLC0415

    millions = [mark.events / 1e6 for mark in measured.marks]
    figure, (rate, lag, size) = pyplot.subplots(3, 1, sharex=True, figsize=(8, 9))
    rate.plot(millions, [mark.rate for mark in measured.marks], "o-", label="append, events/s")
    rate.plot(millions, [mark.rows_rate for mark in measured.marks], "s--", label="append, stored rows/s")
    rate.set_ylabel("per second")
    rate.set_ylim(bottom=0)
    ratio = rate.twinx()
    ratio.plot(
        millions, [m.rows_rate / m.ceiling for m in measured.marks], "^:", color="grey", label="rows/s ÷ COPY"
    )
    ratio.set_ylabel("÷ COPY ceiling")
    ratio.set_ylim(bottom=0)
    rate.legend(loc="lower left")
    ratio.legend(loc="lower right")
    rate.set_title("Append rate per stretch (contract + append, sealing and chaining on)")
    lag.plot([n / 1e6 for n, _ in measured.lags], [value for _, value in measured.lags], "-")
    lag.set_ylabel("events not yet projected")
    lag.set_title("Projection lag while ingesting (projector + checkpointer in a second process)")
    lag.set_ylim(bottom=0)
    size.plot(millions, [mark.bytes_per_event for mark in measured.marks], "o-")
    size.set_ylabel("bytes per event")
    size.set_xlabel("millions of events appended")
    size.set_ylim(bottom=0)
    size.set_title("Bytes on disk per event, every table and index")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


if __name__ == "__main__":
    run(main)
