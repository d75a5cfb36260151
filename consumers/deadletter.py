"""The dead-letter sink: a refused message, byte for byte, with where it came from and why."""

import structlog
from kafka import KafkaProducer

from consumers.kafka import Record

log = structlog.get_logger()


class DeadLetters:
    """Sends refused records to the dead-letter topic; `flush` before committing their offsets."""

    def __init__(self, producer: KafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    def send(self, record: Record, reason: str) -> None:
        """Queue one refused record: its original key and value, and headers saying why."""
        headers = [
            ("reason", reason.encode()),
            ("source.topic", record.topic.encode()),
            ("source.partition", str(record.partition).encode()),
            ("source.offset", str(record.offset).encode()),
        ]
        self.producer.send(self.topic, key=record.key, value=record.value or b"", headers=headers)
        log.warning(
            "ingest.deadlettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
        )

    def flush(self) -> None:
        """Block until the broker has acknowledged every queued dead letter."""
        self.producer.flush()
