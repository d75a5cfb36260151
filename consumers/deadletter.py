"""The dead-letter sink: a refused message, byte for byte, with where it came from and why.

A message too large for the dead-letter topic (or for the producer) goes there cut to its first part,
with the header `value.bytes` giving its full length, rather than not at all. A dead letter the broker
did not acknowledge for any other reason makes `flush` raise, so the batch's offsets are not committed
and the message comes round again.
"""

import re
from dataclasses import dataclass
from functools import cache

import orjson
import structlog
from kafka import KafkaProducer
from kafka.errors import MessageSizeTooLargeError, RecordListTooLargeError
from kafka.future import Future

import schemas
from consumers.kafka import Record
from ledger.deadletters import Refusal

log = structlog.get_logger()

TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError)
KEPT = 64 * 1024  # what is kept of a message too large to dead-letter whole


@dataclass
class _Letter:
    record: Record
    reason: str
    sent: Future
    cut: bool = False


class DeadLetters:
    """Sends refused records to the dead-letter topic; `flush` before committing their offsets. Each
    is logged as `event` (`ingest.deadlettered`, `purge_agent.deadlettered`: whose letter it is)."""

    def __init__(self, producer: KafkaProducer, topic: str, event: str) -> None:
        self.producer = producer
        self.topic = topic
        self.event = event
        self.keep = min(KEPT, producer.config["max_request_size"] // 2)
        self.pending: list[_Letter] = []

    def send(self, record: Record, reason: str) -> None:
        """Queue one refused record: its original key and value, and headers saying why."""
        letter = _Letter(record, reason, self._send(record, reason, cut=False))
        self.pending.append(letter if letter.sent.exception is None else self._cut(letter))
        log.warning(
            self.event,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
        )

    def flush(self) -> None:
        """Block until the broker has acknowledged every queued dead letter; raise if it refused one."""
        self.producer.flush()
        pending, self.pending = self.pending, []
        again = [self._cut(letter) for letter in pending if _too_large(letter)]
        if again:
            self.producer.flush()
        settled = [letter for letter in pending if not _too_large(letter)] + again
        failure = next((letter.sent.exception for letter in settled if letter.sent.failed()), None)
        if failure is not None:
            raise failure

    def _cut(self, letter: _Letter) -> _Letter:
        return _Letter(
            letter.record, letter.reason, self._send(letter.record, letter.reason, cut=True), cut=True
        )

    def _send(self, record: Record, reason: str, *, cut: bool) -> Future:
        value = record.value or b""
        headers = [
            ("reason", reason.encode()),
            ("source.topic", record.topic.encode()),
            ("source.partition", str(record.partition).encode()),
            ("source.offset", str(record.offset).encode()),
        ]
        key = record.key
        if cut:
            headers.append(("value.bytes", str(len(value)).encode()))
            key, value = key and key[: self.keep], value[: self.keep]
        try:
            future: Future = self.producer.send(self.topic, key=key, value=value, headers=headers)
        except TOO_LARGE as error:  # larger than this producer sends at all: fail as the broker would
            future = Future().failure(error)
        return future


def _too_large(letter: _Letter) -> bool:
    """Whether the letter was refused for its size, and can still be sent cut."""
    return not letter.cut and isinstance(letter.sent.exception, TOO_LARGE)


def refusal(record: Record, reason: str, max_bytes: int) -> Refusal:
    """A refused record as the ledger keeps it, with its tenant and subject when the envelope names
    valid ones (a message larger than the contract takes is not parsed for them)."""
    legible = record.value is not None and len(record.value) <= max_bytes
    tenant, subject = _envelope(record.value) if legible and record.value else (None, None)
    return Refusal(
        record.topic, record.partition, record.offset, record.key, record.value, tenant, reason, subject
    )


def _envelope(value: bytes) -> tuple[str | None, str | None]:
    """The tenant and subject the message names, each only if it matches the envelope's pattern."""
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(document, dict):
        return None, None
    tenant, subject = (_valid(document.get(name), name) for name in ("tenant", "subject"))
    return tenant, subject


def _valid(value: object, name: str) -> str | None:
    return value if isinstance(value, str) and _pattern(name).fullmatch(value) else None


@cache
def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(schemas.load(schemas.ENVELOPE)["properties"][name]["pattern"])
