"""The consent check over HTTP, against the real server: single checks and bulk checks, beside the
ceiling of the SQL they run.

    python -m bench.api [--subjects 20000] [--seconds 5] [--workers 1 2]

Loads `--subjects` subjects of one tenant (a marketing-by-SMS consent each, a third withdrawn) through
the event store and the projector, starts `consent-ledger serve` with each number of uvicorn workers,
and drives it from this process with keep-alive HTTP/1.1 connections (asyncio, one request in flight
per connection): p50/p99 of single checks at concurrency 1, 8 and 32 (and the server's CPU time a
check), and subjects/s of bulk checks of 1,000 and 10,000 subjects. The ceilings are measured in the
same run on the same data, from one connection without HTTP: for the single check, the server's own
prepared statement (`queries.keyed_decision`: the API key by its hash, and the subject's decision, in
one statement) back to back; for the bulk check, the server's own statement too (`queries.keyed_bulk`:
the API key and the batch in one, planned for each batch as the server does; its row fetched, no
decision built). Bulk figures are over at least 10 batches, after one untimed batch on the connection
(server and ceiling alike). Never run by CI. On a 2-core machine the client and the server share the
cores, so figures at high concurrency understate what a server alone would do.
"""

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
from psycopg.rows import dict_row

from app.http import checks
from bench.common import fresh_database, run, services
from ledger.access import ApiKeys, digest
from ledger.crypto import MasterKey
from ledger.settings import Settings
from ledger.store import Ledger, RecordFact
from projections import queries
from projections.projector import Projector

TENANT = "bench"
START = datetime(2026, 1, 1, tzinfo=UTC)
PEER = "Fides consent API, current preferences (issue 11, same machine class): 62-80 requests/s, p99 19-25 ms"


def main() -> None:
    """Load the tenant, measure the ceilings, then the server with each number of workers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=5.0, help="per single-check measurement")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    settings, found = services()
    master = MasterKey.generate()
    with fresh_database(found.database_url) as url:
        ledger = Ledger(url, master)
        subjects = _load(ledger, args.subjects)
        with ledger.writer.datastore.transaction(commit=True) as curs:
            _, key = ledger.api_keys.create(curs, TENANT, "checker")
        ledger.close()
        print(f"{args.subjects} subjects of one tenant, a marketing/sms consent each (a third withdrawn)\n")
        single_ceiling = _single_ceiling(url, ledger.api_keys, key, subjects, args.seconds)
        bulk_ceilings = {
            size: _bulk_ceiling(url, ledger.api_keys, key, subjects, size) for size in (1000, 10_000)
        }
        print(f"ceiling: the check's prepared statement   {single_ceiling[0]:>9,.0f} checks/s  "
              f"p50 {single_ceiling[1]:.3f} ms  p99 {single_ceiling[2]:.3f} ms")  # fmt: skip
        for size, rate in bulk_ceilings.items():
            print(f"ceiling: the bulk statement, {size:>6} batch {rate:>9,.0f} subjects/s")
        print(f"peer:    {PEER}\n")
        for workers in args.workers:
            env = _env(settings, url, found.kafka_bootstrap, master)
            with _server(env, workers) as (port, server):
                print(f"consent-ledger serve --workers {workers}")
                for concurrency in (1, 8, 32):
                    spent = _cpu(server)
                    rate, p50, p99, count = asyncio.run(
                        _singles(port, key, subjects, concurrency, args.seconds)
                    )
                    cost = 1000 * (_cpu(server) - spent) / count
                    print(
                        f"  single check, concurrency {concurrency:>2}  {rate:>9,.0f} checks/s  "
                        f"p50 {p50:.2f} ms  p99 {p99:.2f} ms  ({rate / single_ceiling[0]:.2f}x the ceiling; "
                        f"server CPU {cost:.2f} ms a check)"
                    )
                for size, ceiling in bulk_ceilings.items():
                    rate, p50 = asyncio.run(_bulks(port, key, subjects, size))
                    print(
                        f"  bulk check of {size:>6}       {rate:>9,.0f} subjects/s  p50 {p50:.1f} ms a call  "
                        f"({rate / ceiling:.2f}x the ceiling; goal >= 0.5x)"
                    )
            print()


def _load(ledger: Ledger, count: int) -> list[str]:
    """Append and project a consent (withdrawn for every third subject) per subject."""
    subjects = [f"contact-{n:07d}" for n in range(count)]
    consent = {"purpose": "marketing", "channel": "sms", "method": "web_form"}
    facts = [
        RecordFact(TENANT, subject, f"g{n}", "consent.given", "urn:bench", START, 1, consent, {}, "bench")
        for n, subject in enumerate(subjects)
    ] + [
        RecordFact(
            TENANT,
            subject,
            f"w{n}",
            "consent.withdrawn",
            "urn:bench",
            START + timedelta(hours=1),
            1,
            consent,
            {},
            "bench",
        )
        for n, subject in enumerate(subjects)
        if n % 3 == 0
    ]
    for start in range(0, len(facts), 5000):
        ledger.append(facts[start : start + 5000])
    Projector(ledger, 5000).run(until_idle=True)
    with ledger.writer.datastore.get_connection() as conn:
        # Statistics now, as autovacuum would give them later: unanalyzed, the projection's tables
        # looked like 87 rows, and the plans changed whenever autovacuum came by during the run.
        conn.execute("VACUUM ANALYZE")
    return subjects


def _single_ceiling(
    url: str, keys: ApiKeys, key: str, subjects: list[str], seconds: float
) -> tuple[float, float, float]:
    """Checks/s, p50 and p99 (ms) of the server's single-check statement with this key, prepared, back
    to back on one connection."""
    statement = checks.keyed_statement(keys)
    asked = {
        "hash": digest(key),
        "roles": checks.ROLES_SEEING,
        "tenant": TENANT,
        "purpose": "marketing",
        "channel": "sms",
    }
    timings = []
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            subject = random.choice(subjects)
            began = time.perf_counter()
            row = conn.execute(statement, asked | {"subject": subject}, prepare=True).fetchone()
            timings.append(time.perf_counter() - began)
            assert row is not None and row["erased"] is not None  # the key and the subject were found
    return len(timings) / sum(timings), *_percentiles(timings)


def _bulk_ceiling(url: str, keys: ApiKeys, key: str, subjects: list[str], size: int) -> float:
    """Subjects/s of the server's bulk-check statement with this key over batches of `size`."""
    statement = checks.keyed_bulk_statement(keys)
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        batches = [
            queries.bulk_parameters(
                TENANT, random.sample(subjects, min(size, len(subjects))), "marketing", "sms"
            )
            | {"hash": digest(key), "roles": checks.ROLES_SEEING}
            for _ in range(1 + _batches(size))
        ]
        conn.execute(statement, batches.pop(), prepare=False, binary=True).fetchone()  # untimed, as served
        began = time.perf_counter()
        for batch in batches:
            row = conn.execute(statement, batch, prepare=False, binary=True).fetchone()
            assert row is not None and row["allowed"]  # the key was found and the batch checked
        return sum(len(batch["subjects"]) for batch in batches) / (time.perf_counter() - began)


def _batches(size: int) -> int:
    """How many bulk checks of `size` subjects to time."""
    return max(10, 30_000 // size)


def _env(settings: Settings, url: str, bootstrap: str, master: MasterKey) -> dict[str, str]:
    return {
        **os.environ,
        "LEDGER_HOME": str(settings.home),
        "LEDGER_DATABASE_URL": url,
        "LEDGER_KAFKA_BOOTSTRAP": bootstrap,
        "LEDGER_MASTER_KEY": master.text(),
        "LEDGER_LOG_LEVEL": "warning",
        "LEDGER_HTTP_RATE_LIMIT": "10000000",
    }


@contextmanager
def _server(env: dict[str, str], workers: int) -> Iterator[tuple[int, int]]:
    """`consent-ledger serve --workers N` on a free port (and its process), stopped afterwards."""
    port = free_port()
    command = [sys.executable, "-m", "app.cli", "serve", "--workers", str(workers)]
    server = subprocess.Popen(command, env={**env, "LEDGER_HTTP_PORT": str(port)}, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120  # a loaded machine starts two workers slowly
        while not answers(port):
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("bench: error: the server did not start")
            time.sleep(0.1)
        time.sleep(1 if workers > 1 else 0)  # let every worker finish starting
        yield port, server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)


def _cpu(pid: int) -> float:
    """Seconds of CPU the process and its children (uvicorn's workers) have used so far, from /proc: a
    figure other work on the machine slows less than it slows the wall clock."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") + sum(
        _cpu(int(c)) for c in children
    )


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answers(port: int) -> bool:
    """Whether a server on `port` answers /healthz."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")
            return conn.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


async def _singles(
    port: int, key: str, subjects: list[str], concurrency: int, seconds: float
) -> tuple[float, float, float, int]:
    """Checks/s, p50 and p99 (ms), and how many, over `concurrency` connections of one request at a time."""
    deadline = time.perf_counter() + seconds
    timings: list[float] = []

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            path = (
                f"/v1/tenants/{TENANT}/subjects/{random.choice(subjects)}/check?purpose=marketing&channel=sms"
            )
            began = time.perf_counter()
            await _exchange(
                reader,
                writer,
                f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n\r\n".encode(),
            )
            timings.append(time.perf_counter() - began)
        writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return len(timings) / (time.perf_counter() - began), *_percentiles(timings), len(timings)


async def _bulks(port: int, key: str, subjects: list[str], size: int) -> tuple[float, float]:
    """Subjects/s and p50 (ms per call) of bulk checks of `size` subjects, one at a time."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    timings = []
    for _ in range(1 + _batches(size)):
        body = orjson.dumps(
            {"purpose": "marketing", "channel": "sms", "subjects": random.sample(subjects, size)}
        )
        head = (f"POST /v1/tenants/{TENANT}/checks HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
        began = time.perf_counter()
        answer = await _exchange(reader, writer, head.encode() + body)
        timings.append(time.perf_counter() - began)
        decided = orjson.loads(answer)
        assert len(decided["allowed"]) + len(decided["denied"]) == size
    writer.close()
    timings.pop(0)  # the first call on the connection, untimed as for the ceiling
    return size * len(timings) / sum(timings), 1000 * statistics.median(timings)


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> bytes:
    """Send one request and read its response (status 200 expected) on a keep-alive connection."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"bench: error: the server answered {head.splitlines()[0].decode()}")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return await reader.readexactly(length)


def _percentiles(timings: list[float]) -> tuple[float, float]:
    ordered = sorted(timings)
    return 1000 * ordered[len(ordered) // 2], 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


if __name__ == "__main__":
    run(main)
