"""Breach impact on a large tenant: 1M subjects, 5M holding intervals, 100k shares.

    python -m bench.breach [--subjects 1000000]

Loads the read model's intervals directly by COPY (synthetic rows, 5 systems per subject, holdings
collected through 2025, 30 % later deleted, every tenth subject's billing data shared with crm) and
vacuums them as autovacuum would, then times `breach_impact` (median and worst of 5 runs) for a
one-day and a one-week window on one system, for the whole year (every holder of that system
affected), and for a day on two systems.
Target: under
a second for the tenant. Never run by CI.
"""

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

import psycopg

from bench.common import fresh_database, run, services
from ledger.crypto import MasterKey
from ledger.store import Ledger
from projections.breach import breach_impact

SYSTEMS = {
    "crm": "account_contact",
    "messaging": "content",
    "billing": "billing",
    "analytics": "usage_metadata",
    "backups": "account_contact",
}
JURISDICTIONS = ("DE", "FR", "GB", "US-CA", "US-NY", "EU")
YEAR = datetime(2025, 1, 1, tzinfo=UTC)
REPEATS = 5


def main() -> None:
    """Load, time the queries, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=1_000_000)
    args = parser.parse_args()
    _, found = services()
    with fresh_database(found.database_url) as url:
        ledger = Ledger(url, MasterKey.generate())
        started = time.perf_counter()
        intervals = _load(url, args.subjects)
        print(
            f"loaded {args.subjects} subjects, {intervals} intervals in {time.perf_counter() - started:.0f} s"
        )
        for systems, label, start, days in (
            (["crm"], "1 day", 180, 1),
            (["crm"], "1 week", 180, 7),
            (["crm"], "whole year", 0, 366),
            (["crm", "billing"], "1 day", 180, 1),
        ):
            window = (YEAR + timedelta(days=start), YEAR + timedelta(days=start + days))
            took = []
            for _ in range(REPEATS):
                began = time.perf_counter()
                impact = breach_impact(ledger, "big", systems, window, discovered_at=window[1])
                took.append(time.perf_counter() - began)
            where, median = " + ".join(systems), statistics.median(took)
            print(
                f"breach of {where:<13} {label:<10} median {median:6.3f} s, max {max(took):6.3f} s"
                f"  {impact.subjects:>9} subjects affected"
            )
        ledger.close()


def _load(url: str, subjects: int) -> int:
    rng = random.Random(11)
    count = 0
    with psycopg.connect(url) as conn, conn.cursor() as curs:
        columns = "tenant, subject, opened_by, category, system, jurisdiction, held_from, held_until"
        with curs.copy(f"COPY proj_intervals ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "text", "text", "text", "text", "text", "timestamptz", "timestamptz"])
            for n in range(subjects):
                subject = f"s{n:07d}"
                jurisdiction = rng.choice(JURISDICTIONS)
                for system, category in SYSTEMS.items():
                    held_from = YEAR + timedelta(minutes=rng.randrange(525_600))
                    until = held_from + timedelta(days=rng.randrange(1, 200)) if rng.random() < 0.3 else None
                    copy.write_row(
                        ("big", subject, f"e{count}", category, system, jurisdiction, held_from, until)
                    )
                    count += 1
                if n % 10 == 0:  # billing data shared with crm: held there from the moment of sharing
                    shared = YEAR + timedelta(minutes=rng.randrange(525_600))
                    copy.write_row(
                        ("big", subject, f"x{n}/billing", "billing", "crm", jurisdiction, shared, None)
                    )
                    count += 1
        conn.commit()
        conn.autocommit = True
        curs.execute("VACUUM ANALYZE proj_intervals")
    return count


if __name__ == "__main__":
    run(main)
