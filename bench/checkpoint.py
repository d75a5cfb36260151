"""The Merkle tree over the log: building it, extending it, proving an event, verifying everything.

    python -m bench.checkpoint [--facts 200000]

Appends `--facts` consent facts over 20k subjects, then times: reading the log back and hashing each
record (the least any checkpointer must do: the ceiling), the checkpointer building the tree and
signing its heads from nothing, one step after a thousand more events, a receipt's inclusion proof,
and `verify`. Never run by CI.
"""

import argparse
import time
from datetime import timedelta

import psycopg

from bench.common import consents, fresh_database, run, services
from ledger import chain
from ledger.audit import verify
from ledger.checkpoints import Checkpointer, notifications
from ledger.crypto import MasterKey
from ledger.signing import SigningKey
from ledger.store import Ledger, RecordFact
from projections.receipts import receipt


def _facts(first: int, count: int) -> list[RecordFact]:
    return consents(range(first, first + count), lambda n: f"s{n % 20_000}", timedelta(minutes=1))


def _timed(what: str, events: int, began: float) -> float:
    seconds = time.perf_counter() - began
    print(f"{what:<44} {seconds:7.2f} s  {events / seconds:>10,.0f} events/s")
    return seconds


def main() -> None:
    """Load a log, then time the tree's work over it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=200_000)
    args = parser.parse_args()
    _, found = services()
    with fresh_database(found.database_url) as url:
        ledger = Ledger(url, MasterKey.generate())
        for first in range(0, args.facts, 5000):
            ledger.append(_facts(first, min(5000, args.facts - first)))
        key = SigningKey.generate()
        began = time.perf_counter()
        events = sum(1 for notification in notifications(ledger, 0) if chain.notification_hash(notification))
        ceiling = _timed("read back and hash every record (ceiling)", events, began)
        began = time.perf_counter()
        heads = Checkpointer(ledger, key, every=10_000).step(force=True)
        build = _timed(f"build the tree, sign {len(heads)} heads", events, began)
        ledger.append(_facts(args.facts, 1000))
        began = time.perf_counter()
        Checkpointer(ledger, key, every=10_000).step(force=True)
        print(f"{'one step after 1000 more facts':<44} {1000 * (time.perf_counter() - began):7.0f} ms")
        began = time.perf_counter()
        proof = receipt(ledger, "acme", f"e{args.facts // 3}").proof
        print(
            f"{'a receipt with its inclusion proof':<44} {1000 * (time.perf_counter() - began):7.0f} ms"
            f"  ({len(proof.inclusion_path)} hashes, tree of {proof.tree_size})"
        )
        began = time.perf_counter()
        report = verify(ledger, [key.public])
        _timed(f"verify (ok: {report.ok})", report.events, began)
        with psycopg.connect(url) as conn:
            sizes = conn.execute(
                "SELECT pg_total_relation_size('ledger_events_merkle'), "
                "pg_total_relation_size('ledger_events')"
            ).fetchone()
        assert sizes is not None
        print(f"\nbuild / ceiling: {build / ceiling:.2f}x")
        print(
            f"tree storage: {sizes[0] / events:.0f} bytes per event "
            f"({sizes[0] / sizes[1]:.2f}x the event table)"
        )
        ledger.close()


if __name__ == "__main__":
    run(main)
