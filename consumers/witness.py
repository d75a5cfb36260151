"""Witnesses: copies of every tree head kept outside PostgreSQL, and reading them back for `verify`.

Someone able to edit the event table can also delete or rewrite the tree heads beside it; they
cannot reach an append-only file on another volume or a Kafka topic as easily. A head is handed to
the witnesses only after its transaction commits, so a witness never holds a head the database
never had; a crash in between leaves the witness one head short, which the next head (chained to
it) makes up for.
"""

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import orjson
import structlog
from kafka import KafkaProducer
from kafka.errors import KafkaError

from consumers import kafka
from ledger.checkpoints import TreeHead
from ledger.errors import ServiceUnavailable, UsageError
from ledger.settings import Settings

log = structlog.get_logger()


class _Witness(ABC):
    """Hands heads on in order. A head it could not keep waits and goes first with the next one, so
    an outage of the witness leaves no hole once it is back (for as long as this process lives)."""

    name = ""
    errors: tuple[type[Exception], ...] = ()

    def __init__(self) -> None:
        self.pending: list[TreeHead] = []

    def __call__(self, head: TreeHead) -> None:
        """Keep `head` (and any still waiting); a failure is logged, never stops the checkpointer."""
        self.pending.append(head)
        while self.pending:
            try:
                self._keep(self.pending[0])
            except self.errors as error:
                log.error(
                    "checkpoint.unwitnessed",
                    witness=self.name,
                    sequence=self.pending[0].sequence,
                    waiting=len(self.pending),
                    error=str(error),
                )
                return
            self.pending.pop(0)

    @abstractmethod
    def _keep(self, head: TreeHead) -> None:
        """Keep one head, or raise one of `errors`."""


class FileWitness(_Witness):
    """Appends each head as one JSON line to a file and fsyncs it before returning."""

    errors = (OSError,)

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.name = str(path)

    def _keep(self, head: TreeHead) -> None:
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, orjson.dumps(head.document()) + b"\n")
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


class TopicWitness(_Witness):
    """Publishes each head to LEDGER_CHECKPOINT_TOPIC (key: its sequence number) and waits for the
    broker's ack."""

    errors = (KafkaError, ServiceUnavailable)

    def __init__(self, bootstrap: Callable[[], str], settings: Settings) -> None:
        super().__init__()
        self.bootstrap = bootstrap  # resolved at the first head, so a checkpointer starts without a broker
        self.settings = settings
        self.name = settings.checkpoint_topic
        self.producer: KafkaProducer | None = None

    def _keep(self, head: TreeHead) -> None:
        if self.producer is None:
            self.producer = kafka.open_producer(self.bootstrap(), self.settings, linger_ms=0)
        key, value = str(head.sequence).encode(), orjson.dumps(head.document())
        self.producer.send(self.name, key=key, value=value).get(timeout=10)

    def close(self) -> None:
        """Close the producer, if a head was ever handed on."""
        if self.producer is not None:
            producer, self.producer = self.producer, None
            producer.close()


def read_file(path: Path) -> list[TreeHead]:
    """Every head in a witness file; a line that is not a tree head is refused with its number."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError as error:
        raise UsageError(f"cannot read witness file {path}: {error.strerror}") from None
    return [_head(line, f"{path}:{number}") for number, line in enumerate(lines, start=1) if line.strip()]


def read_topic(bootstrap: str, topic: str, settings: Settings) -> list[TreeHead]:
    """Every head published on a witness topic."""
    records = kafka.read_all(bootstrap, topic, settings)
    return [_head(record.value or b"", f"{topic} offset {record.offset}") for record in records]


def _head(line: bytes, origin: str) -> TreeHead:
    try:
        return TreeHead.from_document(orjson.loads(line))
    except (orjson.JSONDecodeError, ValueError) as error:
        raise UsageError(
            f"{origin} is not a tree head ({error}): witness lines are written by the checkpointer"
        ) from None
