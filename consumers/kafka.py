"""The one module that knows kafka-python: clients tuned for the ledger, and topic set-up."""

import contextlib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata

from ledger.errors import ServiceUnavailable
from ledger.horizon import segment_roll
from ledger.settings import KafkaSecurity, Settings

# Group joins wait half the session timeout on Tansu; 6000 ms is also real Kafka's minimum.
GROUP_TIMEOUTS = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}


class Record(Protocol):
    """What the ledger needs of a consumed message (kafka-python's ConsumerRecord fits)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


def topics(settings: Settings) -> dict[str, tuple[int, dict[str, str]]]:
    """The ledger's topics: partitions and configuration of each. Tree heads carry no personal data
    and are the evidence a witness exists for, so the checkpoint topic keeps them for ever."""
    expiring = topic_configs(settings)
    forever = {**_durability(settings), "retention.ms": "-1", "retention.bytes": "-1"}
    return {
        settings.events_topic: (settings.topic_partitions, expiring),
        settings.deadletter_topic: (1, expiring),
        settings.purge_topic: (1, expiring),
        settings.purge_deadletter_topic: (1, expiring),
        settings.checkpoint_topic: (1, forever),
    }


def client_config(security: KafkaSecurity) -> dict[str, Any]:
    """kafka-python's connection options for `security` (its SCRAM also reads sasl_plain_*)."""
    config: dict[str, Any] = {"security_protocol": security.protocol}
    if security.sasl:
        config |= {
            "sasl_mechanism": security.mechanism,
            "sasl_plain_username": security.username,
            "sasl_plain_password": security.password,
        }
    if security.tls:
        config |= {
            "ssl_check_hostname": True,
            "ssl_cafile": _text(security.ca_file),
            "ssl_certfile": _text(security.cert_file),
            "ssl_keyfile": _text(security.key_file),
        }
    return config


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)


def ensure_topics(bootstrap: str, settings: Settings) -> None:
    """Create the ledger's topics where missing (idempotent)."""
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=10_000, **client_config(settings.kafka_security)
        )
    except KafkaError as error:
        raise _unreachable(bootstrap, error) from None
    try:
        existing = set(admin.list_topics())
        for name, (partitions, configs) in topics(settings).items():
            if name in existing:
                continue
            # Another process may create it between our listing and our request.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(
                    [NewTopic(name, partitions, settings.topic_replication, topic_configs=configs)]
                )
    finally:
        admin.close()


def topic_configs(settings: Settings) -> dict[str, str]:
    """What every topic the ledger creates is configured with: messages carry personal data, so
    they are kept only for LEDGER_TOPIC_RETENTION (ledger/horizon.py says when they are gone)."""
    return {
        **_durability(settings),
        "retention.ms": str(_millis(settings.topic_retention)),
        "segment.ms": str(_millis(segment_roll(settings.topic_retention))),
    }


def _durability(settings: Settings) -> dict[str, str]:
    """min.insync.replicas when set: with the producers' acks=all, a write then needs that many copies."""
    if settings.topic_min_insync is None:
        return {}
    return {"min.insync.replicas": str(settings.topic_min_insync)}


def _millis(span: timedelta) -> int:
    return int(span.total_seconds() * 1000)


def open_consumer(
    bootstrap: str, settings: Settings, topic: str | None = None, **overrides: Any
) -> KafkaConsumer:
    """A group consumer of `topic` (default: the events topic) that never commits on its own."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "group_id": settings.consumer_group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": settings.batch_size,
        "fetch_max_bytes": 64 * 1024 * 1024,
        "max_partition_fetch_bytes": 16 * 1024 * 1024,
        "fetch_min_bytes": 1,
        "fetch_max_wait_ms": 100,
        "receive_buffer_bytes": 4 * 1024 * 1024,
        **GROUP_TIMEOUTS,
        **client_config(settings.kafka_security),
        **overrides,
    }
    try:
        consumer = KafkaConsumer(**config)
    except KafkaError as error:
        raise _unreachable(bootstrap, error) from None
    consumer.subscribe([topic or settings.events_topic])
    return consumer


def open_producer(bootstrap: str, settings: Settings, **overrides: Any) -> KafkaProducer:
    """A producer that waits until every in-sync replica has each record (acks=all)."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "linger_ms": 5,
        "batch_size": 512 * 1024,
        "max_request_size": 16 * 1024 * 1024,
        **client_config(settings.kafka_security),
        **overrides,
    }
    try:
        return KafkaProducer(**config)
    except KafkaError as error:
        raise _unreachable(bootstrap, error) from None


def commit(consumer: KafkaConsumer, records: list[Record]) -> None:
    """Commit, per partition, the offset after the last of `records`."""
    last: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        last[tp] = max(last.get(tp, -1), record.offset)
    consumer.commit({tp: OffsetAndMetadata(offset + 1, "", -1) for tp, offset in last.items()})


def caught_up(consumer: KafkaConsumer) -> bool:
    """True once the consumer has partitions and has read each of them to its end.

    Tansu can under-report a partition's end offset (see `read_all`), so callers also wait for
    polls that return nothing before trusting this.
    """
    assigned = consumer.assignment()
    if not assigned:
        return False
    ends: Mapping[TopicPartition, int] = consumer.end_offsets(list(assigned))
    return all(consumer.position(tp) >= ends[tp] for tp in assigned)


def consumer_lag(bootstrap: str, settings: Settings) -> int:
    """Messages on the events topic past what the consumer group has committed (all of a partition it
    never committed). Tansu can under-report a partition's end (see `read_all`): there it is a floor."""
    watch = Watch(bootstrap, settings)
    try:
        return sum(watch.lags().values())
    finally:
        watch.close()


class Watch:
    """A client kept open to read the consumer group's lag per partition of the events topic again and
    again (for /metrics)."""

    def __init__(self, bootstrap: str, settings: Settings) -> None:
        self.settings = settings
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=settings.consumer_group,  # only to look up its committed offsets; never joins
            enable_auto_commit=False,
            **client_config(settings.kafka_security),
        )

    def lags(self) -> dict[int, int]:
        """Per partition of the events topic: messages past the group's committed offset."""
        topic = self.settings.events_topic
        partitions = [TopicPartition(topic, p) for p in self.consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            return {}
        ends = self.consumer.end_offsets(partitions)
        starts = self.consumer.beginning_offsets(partitions)
        committed = {tp: self.consumer.committed(tp) for tp in partitions}
        return {tp.partition: max(0, ends[tp] - (committed[tp] or starts[tp])) for tp in partitions}

    def close(self) -> None:
        """Close the client."""
        self.consumer.close(autocommit=False)


def _unreachable(bootstrap: str, error: Exception) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"cannot reach Kafka at {bootstrap} ({type(error).__name__}): start it with "
        f"`consent-ledger up` or fix LEDGER_KAFKA_BOOTSTRAP"
    )


def read_all(bootstrap: str, topic: str, settings: Settings, quiet_ms: int = 1000) -> list[Any]:
    """Every record of `topic`, read from the beginning until the broker has nothing more to give.

    Not bounded by end offsets: Tansu reports a partition's end as the last batch's base offset + 1,
    which undercounts whenever that batch holds more than one record.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, **client_config(settings.kafka_security)
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            return []
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list[Any] = []
        while batches := consumer.poll(timeout_ms=quiet_ms):
            records.extend(record for batch in batches.values() for record in batch)
        return records
    finally:
        consumer.close()
