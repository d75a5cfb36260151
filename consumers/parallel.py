"""Several ingest consumers, one process each, in the same consumer group.

The append path is CPU-bound Python, so threads would only share one core; processes split the
topic's partitions between them (Kafka does the splitting) and each commits its own offsets after its
own PostgreSQL transactions, so every guarantee of a single consumer holds for each of them.
"""

import multiprocessing
import queue
import signal
import threading
from dataclasses import dataclass
from multiprocessing.queues import Queue

from consumers.ingest import Totals, consume
from ledger import logs
from ledger.crypto import MasterKey
from ledger.errors import LedgerError, UsageError
from ledger.settings import Settings
from ledger.store import Ledger


def consume_in_processes(
    settings: Settings,
    database_url: str,
    bootstrap: str,
    key: MasterKey,
    *,
    processes: int,
    until_idle: bool,
    stop: threading.Event,
) -> Totals:
    """Run `processes` consumers until stopped (or idle); return their combined totals."""
    if not 1 <= processes <= settings.topic_partitions:
        raise UsageError(
            f"--processes must be between 1 and the topic's {settings.topic_partitions} partitions "
            "(LEDGER_TOPIC_PARTITIONS): a consumer without a partition would idle forever"
        )
    context = multiprocessing.get_context("spawn")
    results: Queue[Totals | str] = context.Queue()
    workers = [
        context.Process(
            target=_worker,
            args=(_Job(settings, database_url, bootstrap, key, until_idle), results),
            daemon=True,
        )
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    collected: list[Totals | str] = []
    while len(collected) < len(workers):
        if stop.is_set():
            for worker in workers:
                worker.terminate()  # SIGTERM: each finishes its batch, commits and reports
        try:
            collected.append(results.get(timeout=0.5))
        except queue.Empty:
            if not any(worker.is_alive() for worker in workers) and results.empty():
                break
    for worker in workers:
        worker.join()
    failures = [item for item in collected if isinstance(item, str)]
    if failures or len(collected) < len(workers):
        raise LedgerError(failures[0] if failures else "a consumer process died: see its log lines")
    return _combine([item for item in collected if isinstance(item, Totals)])


@dataclass(frozen=True)
class _Job:
    settings: Settings
    database_url: str
    bootstrap: str
    key: MasterKey
    until_idle: bool


def _worker(job: _Job, results: "Queue[Totals | str]") -> None:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    logs.configure(job.settings)
    try:
        ledger = Ledger(job.database_url, job.key)
        try:
            results.put(consume(job.settings, ledger, job.bootstrap, until_idle=job.until_idle, stop=stop))
        finally:
            ledger.close()
    except LedgerError as error:
        results.put(str(error))


def _combine(parts: list[Totals]) -> Totals:
    combined = Totals()
    for part in parts:
        combined.received += part.received
        combined.stored += part.stored
        combined.duplicates += part.duplicates
        combined.deadlettered += part.deadlettered
        for stage, seconds in part.seconds.items():
            combined.seconds[stage] += seconds
    starts = [p.first_record_at for p in parts if p.first_record_at is not None]
    ends = [p.last_commit_at for p in parts if p.last_commit_at is not None]
    combined.first_record_at = min(starts, default=None)
    combined.last_commit_at = max(ends, default=None)
    return combined
