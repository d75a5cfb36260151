"""Opt-out propagation: from a STOP published to Kafka until `check` over HTTP says denied.

    python -m bench.propagation [--stops 25] [--rate 2000]

Starts `consent-ledger run` (consume, project, sweep) and `consent-ledger serve` on a fresh database
and topics, gives `--stops` subjects a marketing-by-SMS consent, then for each publishes an
`optout.received` (keyword STOP) and polls the HTTP check every 2 ms until it is denied: first with
nothing else flowing, then while a background publisher keeps `--rate` other events a second on the
topic. Prints p50 and the worst. Never run by CI.
"""

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from itertools import count

import httpx

from bench.api import answers, free_port
from bench.common import fresh_database, run, services
from consumers.publisher import Publisher
from ledger.crypto import MasterKey
from ledger.settings import Settings
from ledger.signing import SigningKey
from ledger.store import Ledger

TENANT = "bench"
ids = count()


def main() -> None:
    """Measure idle, then under load."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stops", type=int, default=25)
    parser.add_argument("--rate", type=int, default=2000, help="background events a second")
    args = parser.parse_args()
    _, found = services()
    master = MasterKey.generate()
    with fresh_database(found.database_url) as url:
        tag = uuid.uuid4().hex[:8]
        env = {
            **os.environ,
            "LEDGER_DATABASE_URL": url,
            "LEDGER_KAFKA_BOOTSTRAP": found.kafka_bootstrap,
            "LEDGER_MASTER_KEY": master.text(),
            "LEDGER_SIGNING_KEY": SigningKey.generate().text(),
            "LEDGER_EVENTS_TOPIC": f"events-{tag}",
            "LEDGER_DEADLETTER_TOPIC": f"deadletter-{tag}",
            "LEDGER_PURGE_TOPIC": f"purges-{tag}",
            "LEDGER_CHECKPOINT_TOPIC": f"checkpoints-{tag}",
            "LEDGER_CONSUMER_GROUP": f"group-{tag}",
            "LEDGER_LOG_LEVEL": "warning",
            "LEDGER_HTTP_RATE_LIMIT": "10000000",
        }
        settings = Settings.from_env(env)
        ledger = Ledger(url, master)
        with ledger.writer.datastore.transaction(commit=True) as curs:
            _, key = ledger.api_keys.create(curs, TENANT, "checker")
        ledger.close()
        port = free_port()
        with (
            Publisher(found.kafka_bootstrap, settings) as publisher,
            _process(env, "run", "--no-http"),  # the API is timed in a `serve` of its own
            _process(env | {"LEDGER_HTTP_PORT": str(port)}, "serve"),
            httpx.Client(
                base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}
            ) as http,
        ):
            _wait(lambda: answers(port), "the server to start")
            for label, rate in (("idle", 0), (f"under {args.rate} events/s", args.rate)):
                subjects = [f"stop-{label[:4]}-{n}" for n in range(args.stops)]
                for subject in subjects:
                    publisher.publish(
                        _event(
                            subject,
                            "consent.given",
                            {"purpose": "marketing", "channel": "sms", "method": "web_form"},
                        )
                    )
                publisher.producer.flush()
                _wait(partial(_all_allowed, http, subjects), "the consents to be projected")
                with _background(publisher, rate):
                    timings = [_propagation(publisher, http, subject) for subject in subjects]
                print(
                    f"STOP to denied over HTTP, {label:<22} p50 {1000 * statistics.median(timings):6.0f} ms, "
                    f"worst of {len(timings)} {1000 * max(timings):6.0f} ms"
                )


def _event(subject: str, kind: str, data: dict[str, object]) -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": f"p-{next(ids)}",
        "source": "urn:bench",
        "type": kind,
        "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "subject": subject,
        "tenant": TENANT,
        "data": data,
    }


def _propagation(publisher: Publisher, http: httpx.Client, subject: str) -> float:
    """Seconds from a STOP leaving the producer to the first denied check."""
    publisher.publish(_event(subject, "optout.received", {"channel": "sms", "keyword": "STOP"}))
    publisher.producer.flush()
    began = time.perf_counter()
    while _allowed(http, subject):
        time.sleep(0.002)
    return time.perf_counter() - began


def _all_allowed(http: httpx.Client, subjects: list[str]) -> bool:
    return all(_allowed(http, subject) for subject in subjects)


def _allowed(http: httpx.Client, subject: str) -> bool:
    answer = http.get(
        f"/v1/tenants/{TENANT}/subjects/{subject}/check", params={"purpose": "marketing", "channel": "sms"}
    )
    return answer.status_code == 200 and bool(answer.json()["allowed"])


@contextmanager
def _background(publisher: Publisher, rate: int) -> Iterator[None]:
    """Other subjects' consents at `rate` events a second while the block runs."""
    stop = threading.Event()

    def flow() -> None:
        sent, began = 0, time.perf_counter()
        while not stop.is_set():
            publisher.publish(
                _event(
                    f"load-{sent % 50_000}",
                    "consent.given",
                    {"purpose": "analytics", "channel": "email", "method": "web_form"},
                )
            )
            sent += 1
            ahead = sent / rate - (time.perf_counter() - began)
            if ahead > 0:
                time.sleep(ahead)

    worker = threading.Thread(target=flow, daemon=True)
    if rate:
        worker.start()
        time.sleep(2)  # the flow is steady before the first STOP
    try:
        yield
    finally:
        stop.set()
        if rate:
            worker.join()


@contextmanager
def _process(env: dict[str, str], *command: str) -> Iterator[None]:
    argv = [sys.executable, "-m", "app.cli", *command]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=60)


def _wait(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: error: timed out waiting for {what}")
        time.sleep(0.05)


if __name__ == "__main__":
    run(main)
