"""How fast a query starts: `consent-ledger check` as a whole process, beside its ceilings.

    python -m bench.cli [--runs 20]

Stores and projects one subject with a consent, then times `--runs` whole processes of each: the
interpreter doing nothing (`python -c pass`), the same question asked in raw SQL by a process that
imports only psycopg (the floor any Python query command stands on), and `consent-ledger check`.
Target: check under 300 ms. Never run by CI.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import fresh_database, run, services
from ledger.crypto import MasterKey
from ledger.store import Ledger, RecordFact
from projections.projector import Projector
from projections.schema import migrate
from tests.helpers import T0

TARGET_MS = 300.0
RAW_QUERY = """
import sys, psycopg
with psycopg.connect(sys.argv[1]) as conn:
    conn.execute("SELECT state, event_id FROM proj_consents WHERE tenant = 'acme' AND subject = 'ann' "
                 "AND purpose = 'marketing' AND channel = 'sms'").fetchone()
"""


def main() -> None:
    """Time each command over the same database and print the figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    _, found = services()
    key = MasterKey.generate()
    with fresh_database(found.database_url) as url:
        ledger = Ledger(url, key)
        migrate(ledger)
        ledger.append([_consent()])
        Projector(ledger, 100).run(until_idle=True)
        ledger.close()
        env = {**os.environ, "LEDGER_DATABASE_URL": url, "LEDGER_MASTER_KEY": key.text()}
        script = Path(sys.executable).with_name("consent-ledger")
        check = [str(script), "check", "acme", "ann", "--purpose", "marketing", "--channel", "sms"]
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "raw SQL, psycopg only": [sys.executable, "-c", RAW_QUERY, url],
            "consent-ledger check": check,
        }
        rows = list(_interleaved(commands, env, args.runs).items())
    print(f"{args.runs} whole processes each, median and worst:")
    for label, timings in rows:
        print(f"  {label:<24} median {_ms(statistics.median(timings))}, max {_ms(max(timings))}")
    check_ms = 1000 * statistics.median(rows[2][1])
    raw_ms = 1000 * statistics.median(rows[1][1])
    print(f"check / raw SQL process   {check_ms / raw_ms:5.2f}x")
    print(f"check median {check_ms:.0f} ms (target < {TARGET_MS:.0f} ms)")


def _consent() -> RecordFact:
    return RecordFact(
        tenant="acme",
        subject="ann",
        event_id="g1",
        type="consent.given",
        source="urn:service:bench",
        occurred_at=T0,
        schema_version=1,
        data={"purpose": "marketing", "channel": "sms", "method": "web_form"},
        personal={},
        origin="bench",
    )


def _interleaved(commands: dict[str, list[str]], env: dict[str, str], runs: int) -> dict[str, list[float]]:
    """Seconds each run of each command took, one of each per round, so that a busy moment of the
    machine weighs on all of them alike; a first, unmeasured round warms the caches."""
    timings: dict[str, list[float]] = {label: [] for label in commands}
    for round_ in range(runs + 1):
        for label, command in commands.items():
            began = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if done.returncode not in (0, 1):
                sys.exit(f"bench: error: {label} exited {done.returncode}: {done.stderr.strip()}")
            if round_:
                timings[label].append(time.perf_counter() - began)
    return timings


def _ms(seconds: float) -> str:
    return f"{1000 * seconds:6.1f} ms"


if __name__ == "__main__":
    run(main)
