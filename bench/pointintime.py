"""Point-in-time answers for a subject with thousands of events, from the event store.

    python -m bench.pointintime [--events 5000]

Appends `--events` consent facts for one subject (alternating given and withdrawn), then times
`state_at` (subject --as-of) for instants across the history, with and without --known-at. Never run
by CI.
"""

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

from bench.common import START, consents, fresh_database, run, services
from ledger.crypto import MasterKey
from ledger.store import Ledger
from projections.timeline import state_at


def main() -> None:
    """Load one long history and time answers against it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    _, found = services()
    with fresh_database(found.database_url) as url:
        ledger = Ledger(url, MasterKey.generate())
        facts = consents(range(args.events), lambda _: "long", timedelta(hours=1))
        for start in range(0, len(facts), 5000):
            ledger.append(facts[start : start + 5000])
        known = datetime.now(UTC)
        for label, known_at in (("as of", None), ("as of, known at", known)):
            timings = []
            for hour in range(0, args.events, max(1, args.events // 20)):
                began = time.perf_counter()
                state_at(ledger, "acme", "long", START + timedelta(hours=hour, minutes=30), known_at)
                timings.append(time.perf_counter() - began)
            print(
                f"{args.events} events, {label:<16} median {1000 * statistics.median(timings):7.1f} ms, "
                f"max {1000 * max(timings):7.1f} ms over {len(timings)} instants"
            )
        ledger.close()


if __name__ == "__main__":
    run(main)
