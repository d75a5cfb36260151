"""The auditor console's pages on a large tenant: 1M subjects, 2M holdings, 5M stored events' receipts.

    python -m bench.console [--subjects 1000000]

Fills the read model (subjects, two holdings each, an open erasure request for one in a hundred) and
the receipts table by INSERT ... SELECT (synthetic rows; the table sizes the pages read), appends and
projects the real events of a few subjects, serves the app with uvicorn, signs in with an auditor key
and times each page over HTTP (median and worst of 5): overview, the first page of subjects and one
deep into the tenant, a subject, the sweep preview, the access log. Target: every page under a second.
Breach impact on a tenant this size is bench/breach.py's. Never run by CI.
"""

import argparse
import re
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta

import httpx
import psycopg
import uvicorn

from app import stack
from app.bootstrap import Services
from app.http.api import create_app
from bench.common import START, consents, fresh_database, run, services
from ledger.crypto import MasterKey
from ledger.signing import SigningKey

TENANT = "acme"  # bench.common.consents writes its facts for this tenant
REPEATS = 5
CEILING = 1.0  # seconds: the target for every page


def main() -> None:
    """Load, serve, time the pages, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=1_000_000)
    args = parser.parse_args()
    settings, found = services()
    with fresh_database(found.database_url) as url:
        settings = replace(
            settings,
            database_url=url,
            master_key=MasterKey.generate().text(),
            signing_key=SigningKey.generate().text(),
            http_rate_limit=1_000_000,
        )
        built = Services(settings, stack.Endpoints(url, found.kafka_bootstrap))
        started = time.perf_counter()
        _load(url, args.subjects)
        built.ledger.append(consents(range(40), lambda n: f"real-{n % 4}", timedelta(hours=1)))
        built.projector.run(until_idle=True)
        print(f"loaded {args.subjects} subjects in {time.perf_counter() - started:.0f} s")
        with built.ledger.writer.datastore.transaction(commit=True) as curs:
            key = built.ledger.api_keys.create(curs, TENANT, "auditor")[1]
        with _served(built) as base, httpx.Client(base_url=base, timeout=120) as client:
            _sign_in(client, key)
            deep = f"s{args.subjects * 9 // 10:09d}"
            pages = {
                "overview": f"/console/t/{TENANT}",
                "subjects, first page": f"/console/t/{TENANT}/subjects",
                "subjects, 90 % in": f"/console/t/{TENANT}/subjects?start={deep}",
                "subject (40 events)": f"/console/t/{TENANT}/subjects/real-1",
                "sweep preview": f"/console/t/{TENANT}/retention",
                "access log": f"/console/t/{TENANT}/access-log",
            }
            worst_of_all = 0.0
            for label, path in pages.items():
                took = []
                for _ in range(REPEATS):
                    begun = time.perf_counter()
                    answer = client.get(path)
                    took.append(time.perf_counter() - begun)
                    assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
                worst_of_all = max(worst_of_all, *took)
                print(
                    f"{label:<22} median {statistics.median(took) * 1000:7.1f} ms, "
                    f"worst {max(took) * 1000:7.1f} ms"
                )
        print(f"slowest page {worst_of_all * 1000:.0f} ms = {worst_of_all / CEILING:.2f}x the 1 s target")
        built.close()


def _load(url: str, subjects: int) -> None:
    """Synthetic rows straight into the tables, as the projector would leave them (then vacuumed)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO proj_subjects (tenant, subject, first_seen, last_event_at, erased, erased_at, "
            "account_closed_at) SELECT %s, 's' || lpad(n::text, 9, '0'), "
            "%s::timestamptz + n * interval '1 second', %s::timestamptz + n * interval '2 seconds', "
            "false, NULL, NULL FROM generate_series(1, %s) AS n",
            (TENANT, START, START, subjects),
        )
        conn.execute(
            "INSERT INTO proj_holdings (tenant, subject, category, system, legal_basis, purposes, role, "
            "jurisdiction, first_collected, last_collected, status) "
            "SELECT %s, 's' || lpad(n::text, 9, '0'), category, system, "
            "'contract', ARRAY['service'], NULL, 'DE', %s::timestamptz - interval '3 years', "
            "%s::timestamptz - interval '3 years', 'held' FROM generate_series(1, %s) AS n, "
            "(VALUES ('account_contact', 'crm'), ('billing', 'billing')) AS h(category, system)",
            (TENANT, START, START, subjects),
        )
        conn.execute(
            'INSERT INTO proj_rights_requests (tenant, subject, request_id, "right", requested_at, '
            "verified_at, status, event_id) SELECT %s, 's' || lpad(n::text, 9, '0'), 'r' || n, "
            "'erasure', %s::timestamptz + n * interval '1 minute', NULL, 'open', 'd' || n "
            "FROM generate_series(1, %s, 100) AS n",
            (TENANT, START, subjects),
        )
        conn.execute(
            "INSERT INTO ledger_events_receipts (tenant, event_id, originator_id) "
            "SELECT %s, 'synthetic-' || n, gen_random_uuid() FROM generate_series(1, %s) AS n",
            (TENANT, subjects * 5),
        )
        for table in ("proj_subjects", "proj_holdings", "proj_rights_requests", "ledger_events_receipts"):
            conn.execute(f"VACUUM ANALYZE {table}")


@contextmanager
def _served(built: Services) -> Iterator[str]:
    """The app on a free port, in a thread of this process."""
    config = uvicorn.Config(create_app(built), host="127.0.0.1", port=0, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()


def _sign_in(client: httpx.Client, key: str) -> None:
    form = client.get("/console/sign-in")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    signed = client.post("/console/sign-in", data={"key": key, "csrf": token.group(1)})
    assert signed.status_code == 303, signed.text[:300]


if __name__ == "__main__":
    run(main)
