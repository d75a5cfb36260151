"""Producers that are not ours: librdkafka (confluent-kafka) with the settings real deployments use."""

from collections.abc import Iterator

import orjson
import pytest
from confluent_kafka import KafkaError, Message, Producer

from consumers import kafka
from consumers.ingest import consume
from ledger.settings import Settings
from ledger.store import Ledger
from tests.helpers import collected, consent, event

pytestmark = pytest.mark.services

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
PER_CODEC = 120


def _events(codec: str) -> Iterator[dict[str, object]]:
    for number in range(PER_CODEC):
        tenant, subject = f"tenant-{number % 3}", f"{codec}-{number % 17}"
        data = collected() if number % 2 else consent()
        kind = "data.collected" if number % 2 else "consent.given"
        yield event(tenant, subject, kind, data, minutes=number, event_id=f"{codec}-{number}")


def _produce(settings: Settings, codec: str) -> list[str]:
    """Publish as an upstream service on librdkafka would; return the delivery errors."""
    assert settings.kafka_bootstrap is not None
    errors: list[str] = []

    def delivered(error: KafkaError | None, _: Message) -> None:
        if error is not None:
            errors.append(str(error))

    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": codec,
            "linger.ms": 20,
            "batch.num.messages": 50,  # several batches per partition
            "message.max.bytes": 1_000_000,
        }
    )
    for document in _events(codec):
        producer.produce(
            settings.events_topic,
            key=f"{document['tenant']}/{document['subject']}".encode(),
            value=orjson.dumps(document),
            headers=[("ce_specversion", b"1.0"), ("traceparent", b"00-4bf92f3577b34da6-00f067aa0ba902b7-01")],
            on_delivery=delivered,
        )
    assert producer.flush(30) == 0
    return errors


def test_librdkafka_producers_with_every_codec_are_ingested_once(settings: Settings, ledger: Ledger) -> None:
    """acks=all, idempotence, linger, batching, headers and each compression codec (gzip, snappy, lz4,
    zstd: kafka-python needs a library for the last three) reach the real consumer; every event is
    stored once."""
    assert settings.kafka_bootstrap is not None
    kafka.ensure_topics(settings.kafka_bootstrap, settings)
    for codec in CODECS:
        assert _produce(settings, codec) == [], codec
    totals = consume(settings, ledger, settings.kafka_bootstrap, until_idle=True)

    total = PER_CODEC * len(CODECS)
    assert (totals.received, totals.stored, totals.duplicates, totals.deadlettered) == (total, total, 0, 0)
    assert sum(ledger.writer.counts().values()) == total
