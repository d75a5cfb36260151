"""Kafka -> event store ingest throughput, against ceilings measured in the same run.

    python -m bench.ingest [--events 100000]

Runs on the embedded stack (`consent-ledger up`, started if needed) or on the external services
named by LEDGER_DATABASE_URL / LEDGER_KAFKA_BOOTSTRAP, in a fresh database and fresh topics. Prints:
the ledger's end-to-end ingest rate with one consumer and where its time went, with two
consumer processes, and with one consumer that neither seals personal data nor chains hashes (the
cost of crypto-shredding and tamper evidence); the eventsourcing library's own batched
`Application.save` rate (500 aggregates a call) for the same facts; a raw binary COPY of the same
stored rows into a plain table (the PostgreSQL ceiling); and the raw consume rates of kafka-python
and confluent-kafka on the same topic (the client ceiling). Never run by CI.
"""

import argparse
import itertools
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson
import psycopg
from confluent_kafka import Consumer
from eventsourcing.application import Application
from kafka import KafkaConsumer

from bench.common import fresh_database, run, services
from consumers.ingest import consume
from consumers.parallel import consume_in_processes
from consumers.publisher import Publisher
from consumers.workload import generate
from ledger.crypto import MasterKey
from ledger.settings import Settings
from ledger.store import Ledger, RecordFact, postgres_env
from ledger.subject import FACT_CLASSES, Subject


def main() -> None:
    """Measure and print; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    base, found = services()
    tag = uuid.uuid4().hex[:8]
    settings = replace(
        base,
        kafka_bootstrap=found.kafka_bootstrap,
        events_topic=f"bench-events-{tag}",
        deadletter_topic=f"bench-dead-{tag}",
        consumer_group=f"bench-{tag}",
    )
    _run(settings, found.kafka_bootstrap, found.database_url, args.events)


def _run(settings: Settings, bootstrap: str, server_url: str, count: int) -> None:
    events = list(itertools.islice(generate(tenants=4, subjects=count), count))
    size = sum(len(orjson.dumps(e)) for e in events) / len(events)
    print(f"{len(events)} events, {size:.0f} bytes each on average, {settings.topic_partitions} partitions")

    started = time.perf_counter()
    with Publisher(bootstrap, settings) as publisher:
        for item in events:
            publisher.publish(item)
    produce = len(events) / (time.perf_counter() - started)

    raw_kafka_python = _kafka_python_rate(bootstrap, settings.events_topic, len(events))
    raw_confluent = _confluent_rate(bootstrap, settings.events_topic, len(events))
    key = MasterKey.generate()

    with fresh_database(server_url) as url:
        ledger = Ledger(url, key)
        totals = consume(
            replace(settings, consumer_group=f"{settings.consumer_group}-1"),
            ledger,
            bootstrap,
            until_idle=True,
        )
        ingest = totals.stored / totals.active_seconds
        save = _library_save_rate(url, events)
        copy = _copy_rate(url)
        ledger.close()
    with fresh_database(server_url) as url:
        bare = consume(
            replace(settings, consumer_group=f"{settings.consumer_group}-0"),
            Ledger(url, None),
            bootstrap,
            until_idle=True,
        )
        unprotected = bare.stored / bare.active_seconds
    with fresh_database(server_url) as url:
        group = replace(settings, consumer_group=f"{settings.consumer_group}-2")
        two = consume_in_processes(
            group, url, bootstrap, key, processes=2, until_idle=True, stop=threading.Event()
        )
        parallel = two.stored / two.active_seconds

    print()
    print(f"{'publish (kafka-python producer, validated)':<50} {produce:>10,.0f} events/s")
    print(f"{'raw consume, kafka-python (tuned)':<50} {raw_kafka_python:>10,.0f} msg/s")
    print(f"{'raw consume, confluent-kafka (librdkafka)':<50} {raw_confluent:>10,.0f} msg/s")
    print(f"{'ledger ingest, 1 consumer':<50} {ingest:>10,.0f} events/s")
    print(f"{'ledger ingest, 2 consumer processes':<50} {parallel:>10,.0f} events/s")
    print(f"{'ledger ingest, 1 consumer, no sealing or chaining':<50} {unprotected:>10,.0f} events/s")
    print(f"{'eventsourcing Application.save, 500 aggregates':<50} {save:>10,.0f} events/s")
    print(f"{'PostgreSQL binary COPY of the same rows':<50} {copy:>10,.0f} rows/s")
    print()
    print(f"ingest / library save          {ingest / save:6.2f}x  (target >= 2x)")
    print(f"2 processes / library save     {parallel / save:6.2f}x")
    print(f"ingest / COPY ceiling          {ingest / copy:6.2f}x  (on the way to 0.5x)")
    print(
        f"ingest / raw kafka-python      {ingest / raw_kafka_python:6.2f}x  (1.0x = the client caps ingest)"
    )
    print(f"cost of sealing + chaining     {100 * (1 - ingest / unprotected):5.1f} %  (target < 25 %)")
    print()
    active = totals.active_seconds
    print(f"where ingest time went, 1 consumer ({active:.2f} s from first record to last commit):")
    for stage, seconds in totals.seconds.items():
        print(f"  {stage:<9} {seconds:7.2f} s  {100 * seconds / active:5.1f} %")
    print(totals.summary())


def _timed(count: int, action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return count / (time.perf_counter() - started)


def _kafka_python_rate(bootstrap: str, topic: str, count: int) -> float:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=5000,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    consumer.poll(timeout_ms=5000, max_records=1)  # join and fetch metadata before timing
    consumer.seek_to_beginning()

    def drain() -> None:
        seen = 0
        while seen < count:
            seen += sum(len(batch) for batch in consumer.poll(timeout_ms=1000).values())

    try:
        return _timed(count, drain)
    finally:
        consumer.close()


def _confluent_rate(bootstrap: str, topic: str, count: int) -> float:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"raw-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
        }
    )
    consumer.subscribe([topic])
    first = None
    while first is None:  # wait out the group join before timing
        first = consumer.poll(1.0)

    def drain() -> None:
        seen = 1
        while seen < count:
            seen += len([m for m in consumer.consume(num_messages=10_000, timeout=1.0) if not m.error()])

    try:
        return _timed(count, drain)
    finally:
        consumer.close()


class _LibrarySave(Application[uuid.UUID]):
    name = "LibrarySave"


def _library_save_rate(url: str, events: list[dict[str, Any]]) -> float:
    """The same facts recorded through the library's aggregate API and `save`, 500 aggregates a call."""
    ours = ("APPLICATION_RECORDER_TOPIC", "CREATE_TABLE")  # the library's recorder, creating its table
    env = {k: v for k, v in postgres_env(url).items() if k not in ours}
    # The library's pipelined insert stalls (client and server both waiting) on batches this large
    # with psycopg here; its stored-function insert is the library's other batched path.
    env["POSTGRES_ENABLE_DB_FUNCTIONS"] = "y"
    app = _LibrarySave(env=env)
    facts = [_fact(item) for item in events]
    by_subject: dict[tuple[str, str], list[RecordFact]] = {}
    for fact in facts:
        by_subject.setdefault((fact.tenant, fact.subject), []).append(fact)
    started = time.perf_counter()
    pending: list[Subject] = []
    for (tenant, subject), own in by_subject.items():
        aggregate = Subject(tenant, subject)
        for fact in own:
            aggregate.trigger_event(
                FACT_CLASSES[fact.type],
                tenant=fact.tenant,
                subject=fact.subject,
                event_id=fact.event_id,
                source=fact.source,
                occurred_at=fact.occurred_at,
                schema_version=1,
                data=fact.data,
                sealed=None,
                key_id=None,
                origin=fact.origin,
                previous_hash="",
            )
        pending.append(aggregate)
        if len(pending) == 500:
            app.save(*pending)
            pending.clear()
    if pending:
        app.save(*pending)
    rate = len(facts) / (time.perf_counter() - started)
    app.close()
    return rate


def _fact(item: dict[str, Any]) -> RecordFact:
    from datetime import datetime  # noqa: PLC0415 - only the library path needs parsing here

    return RecordFact(
        tenant=item["tenant"],
        subject=item["subject"],
        event_id=item["id"],
        type=item["type"],
        source=item["source"],
        occurred_at=datetime.fromisoformat(item["time"]),
        schema_version=1,
        data=item["data"],
        personal={},
        origin="bench",
    )


def _copy_rate(url: str) -> float:
    """Binary COPY of the ledger's stored rows into a plain table without indexes."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT originator_id, originator_version, topic, state FROM ledger_events"
        ).fetchall()
        conn.execute(
            "CREATE TABLE bench_copy (originator_id uuid, originator_version bigint, topic text, state bytea)"
        )
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as curs, curs.copy("COPY bench_copy FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["uuid", "int8", "text", "bytea"])
            for row in rows:
                copy.write_row(row)
        conn.commit()
        return len(rows) / (time.perf_counter() - started)


if __name__ == "__main__":
    run(main)
