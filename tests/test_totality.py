"""The consumer is total: whatever a message holds, it is stored or dead-lettered, and the batch goes on."""

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from psycopg.sql import SQL

from consumers import kafka
from consumers.ingest import Totals, consume
from consumers.kafka import read_all
from consumers.publisher import Publisher
from ledger.settings import Settings
from ledger.store import Ledger
from tests.canary import canary_event, leaks, refused_cases
from tests.helpers import collected, consent, event

pytestmark = pytest.mark.services


def _nested(document: dict[str, object], levels: int) -> bytes:
    """`document` with its "@nested@" string replaced by arrays nested `levels` deep."""
    return orjson.dumps(document).replace(b'"@nested@"', b"[" * levels + b"1" + b"]" * levels)


def _poison() -> list[bytes]:
    """The messages that halted ingest for good: deep nesting and times that overflow."""
    deep = collected()
    deep["personal_data"] = {"phone": "@nested@"}
    extension = {**event("acme", "mallory", "account.closed", {}), "traceparent": "@nested@"}
    return [
        _nested(event("acme", "mallory", "data.collected", deep), 300),
        _nested(event("acme", "mallory", "data.collected", deep), 1000),
        _nested(extension, 400),
        orjson.dumps({**event("acme", "mallory", "account.closed", {}), "time": "0001-01-01T00:00:00+01:00"}),
        orjson.dumps({**event("acme", "mallory", "account.closed", {}), "time": "9999-12-31T23:59:59-01:00"}),
    ]


def _consume(settings: Settings, ledger: Ledger) -> Totals:
    assert settings.kafka_bootstrap is not None
    return consume(settings, ledger, settings.kafka_bootstrap, until_idle=True)


def _reasons(settings: Settings) -> list[str]:
    assert settings.kafka_bootstrap is not None
    letters = read_all(settings.kafka_bootstrap, settings.deadletter_topic, settings)
    return [dict(letter.headers)["reason"].decode() for letter in letters]


def test_poison_messages_are_deadlettered_and_the_batch_is_stored(settings: Settings, ledger: Ledger) -> None:
    """Deeply nested data and overflowing times, amid other tenants' valid events, are dead-lettered;
    every valid event is stored and the offsets are committed (a restart receives nothing again)."""
    assert settings.kafka_bootstrap is not None
    poison = _poison()
    with Publisher(settings.kafka_bootstrap, settings) as publisher:
        for number, raw in enumerate(poison):
            publisher.publish(event("acme", "alice", "consent.given", consent(), event_id=f"a-{number}"))
            publisher.publish_unchecked(b"acme/mallory", raw)
            publisher.publish(event("globex", "bob", "consent.given", consent(), event_id=f"g-{number}"))
    totals = _consume(settings, ledger)

    assert (totals.stored, totals.deadlettered) == (2 * len(poison), len(poison))
    assert ledger.writer.counts() == {"acme": len(poison), "globex": len(poison)}
    reasons = _reasons(settings)
    assert sum("nested deeper than" in reason for reason in reasons) == 3
    assert sum("outside the accepted range" in reason for reason in reasons) == 2
    assert _consume(settings, ledger).received == 0


def test_a_fact_the_database_refuses_is_deadlettered_alone(settings: Settings, ledger: Ledger) -> None:
    """A fact whose append fails (here PostgreSQL raises for its id) goes to the dead-letter topic as
    `internal: <class>`; the valid events of its batch are stored."""
    assert settings.kafka_bootstrap is not None
    with ledger.writer.datastore.transaction(commit=True) as curs:
        curs.execute(
            "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.event_id = 'poison' THEN RAISE EXCEPTION 'refused for the test'; END IF; "
            "RETURN NEW; END $$"
        )
        curs.execute(
            SQL("CREATE TRIGGER refuse_poison BEFORE INSERT ON {} FOR EACH ROW EXECUTE FUNCTION {}").format(
                ledger.writer.receipts, SQL("refuse_poison()")
            )
        )
    with Publisher(settings.kafka_bootstrap, settings) as publisher:
        publisher.publish(event("acme", "alice", "consent.given", consent(), event_id="before"))
        publisher.publish(event("acme", "alice", "data.collected", collected(), event_id="poison"))
        publisher.publish(event("globex", "bob", "consent.given", consent(), event_id="after"))
    totals = _consume(settings, ledger)

    assert (totals.stored, totals.deadlettered) == (2, 1)
    assert ledger.writer.counts() == {"acme": 1, "globex": 1}
    assert _reasons(settings) == ["internal: ProgrammingError"]  # how the library reports RAISE
    assert _consume(settings, ledger).received == 0


def test_a_reused_id_with_different_content_is_deadlettered(settings: Settings, ledger: Ledger) -> None:
    """Same tenant and id, first a data.collected then a consent.given (in the batch and in a later
    one): each consent.given goes to the dead-letter topic as a conflicting duplicate; a redelivered
    identical event stays a silent duplicate."""
    assert settings.kafka_bootstrap is not None
    collect = event("acme", "alice", "data.collected", collected(), event_id="reused")
    give = event("acme", "alice", "consent.given", consent(), event_id="reused")
    with Publisher(settings.kafka_bootstrap, settings) as publisher:
        for document in (collect, give, collect):
            publisher.publish(document)
    first = _consume(settings, ledger)
    with Publisher(settings.kafka_bootstrap, settings) as publisher:
        publisher.publish(give)
    second = _consume(settings, ledger)

    assert (first.stored, first.duplicates, first.deadlettered) == (1, 1, 1)
    assert (second.stored, second.duplicates, second.deadlettered) == (0, 0, 1)
    assert [type(e).__name__ for e in ledger.subject_events("acme", "alice")] == [
        "Registered",
        "DataCollected",
    ]
    assert [reason.split(":")[0] for reason in _reasons(settings)] == ["conflicting duplicate"] * 2


def test_publish_file_reports_poison_lines_and_sends_the_rest(settings: Settings, tmp_path: Path) -> None:
    """`publish FILE` refuses deeply nested or overflowing lines, one line each, and sends the others."""
    assert settings.kafka_bootstrap is not None
    good = [orjson.dumps(event("acme", "alice", "consent.given", consent())) for _ in range(2)]
    lines = [good[0], *_poison(), good[1]]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with Publisher(settings.kafka_bootstrap, settings) as publisher:
        report = publisher.publish_file(path)

    assert report.published == 2
    assert [number for number, _ in report.refused] == list(range(2, 2 + len(_poison())))
    assert all(reason and "\n" not in reason for _, reason in report.refused)
    sent = read_all(settings.kafka_bootstrap, settings.events_topic, settings)
    assert sorted(record.value for record in sent) == sorted(good)


def test_no_reason_header_or_log_line_quotes_the_input(env: dict[str, str], settings: Settings) -> None:
    """Every refused case, full of a canary, and a conflicting duplicate are dead-lettered, and neither
    their headers nor the consumer's log lines (from a real `consume` process) quote any of it."""
    assert settings.kafka_bootstrap is not None
    cases = refused_cases()
    conflicting = [canary_event(), {**canary_event(), "time": "2026-06-01T00:00:00Z"}]
    with Publisher(settings.kafka_bootstrap, settings) as publisher:
        for raw in [*cases.values(), *map(orjson.dumps, conflicting)]:
            publisher.publish_unchecked(b"key", raw)
    run = subprocess.run(
        [sys.executable, "-m", "app.cli", "consume", "--until-idle"],
        env={**os.environ, **env, "LEDGER_LOG_LEVEL": "debug", "LEDGER_LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    letters = read_all(settings.kafka_bootstrap, settings.deadletter_topic, settings)
    assert len(letters) == len(cases) + 1  # and the conflicting duplicate
    headers = [f"{name}={value.decode()}" for letter in letters for name, value in letter.headers]
    assert [header for header in headers if leaks(header)] == []
    assert "ingest.deadlettered" in run.stderr
    assert [line for line in (run.stdout + run.stderr).splitlines() if leaks(line)] == []


def test_a_message_too_large_to_deadletter_whole_is_deadlettered_cut(
    settings: Settings, ledger: Ledger
) -> None:
    """A message larger than the dead-letter producer sends (17 MB; the broker took it) is dead-lettered
    as its first 64 KiB with its full length in a header, instead of stopping ingest; the valid events
    around it are stored."""
    assert settings.kafka_bootstrap is not None
    huge = b"x" * (17 * 1024 * 1024)
    with Publisher(settings.kafka_bootstrap, settings) as publisher:
        publisher.publish(event("acme", "alice", "consent.given", consent(), event_id="before"))
    producer = kafka.open_producer(settings.kafka_bootstrap, settings, max_request_size=32 * 1024 * 1024)
    producer.send(settings.events_topic, key=b"acme/alice", value=huge).get(timeout=60)
    producer.close()
    with Publisher(settings.kafka_bootstrap, settings) as publisher:
        publisher.publish(event("acme", "alice", "consent.given", consent(), event_id="after"))
    totals = _consume(settings, ledger)

    assert (totals.stored, totals.deadlettered) == (2, 1)
    [letter] = read_all(settings.kafka_bootstrap, settings.deadletter_topic, settings)
    headers = {name: value.decode() for name, value in letter.headers}
    assert (len(letter.value), headers["value.bytes"]) == (64 * 1024, str(len(huge)))
    assert "exceeds the limit" in headers["reason"]
