"""The publisher an upstream service imports: validate, then put the event on `ledger.events`."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from kafka.errors import MessageSizeTooLargeError

from consumers import bounds, kafka
from consumers.contract import Contract, Rejected
from ledger.errors import UsageError
from ledger.settings import Settings


@dataclass
class PublishReport:
    """What a file publish did: how many went out, and each refused line with its reason."""

    published: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)


class Publisher:
    """`Publisher(bootstrap, settings).publish(event)`; call `close()` (or use `with`) to flush."""

    def __init__(self, bootstrap: str, settings: Settings) -> None:
        self.topic = settings.events_topic
        self.contract = Contract(settings.max_message_bytes, settings.extra_channels)
        kafka.ensure_topics(bootstrap, settings)
        self.producer = kafka.open_producer(bootstrap, settings)

    def publish(self, event: Mapping[str, Any]) -> None:
        """Validate one event against the contract and send it, keyed `tenant/subject`."""
        try:
            value = orjson.dumps(event)
        except orjson.JSONEncodeError:
            raise Rejected(
                f"not encodable as JSON: nested deeper than {bounds.MAX_DEPTH} or holding a type JSON lacks"
            ) from None
        checked = self.contract.parse(value)
        self.producer.send(self.topic, key=checked.key, value=value)

    def publish_unchecked(self, key: bytes | None, value: bytes) -> None:
        """Send bytes as a misbehaving upstream would, to exercise dead-lettering."""
        self.producer.send(self.topic, key=key, value=value)

    def publish_file(self, path: Path, *, check: bool = True) -> PublishReport:
        """Publish a JSON-lines file; with `check`, refuse (and report) lines that break the contract."""
        report = PublishReport()
        try:
            lines = path.read_bytes().splitlines()
        except OSError as error:
            raise UsageError(f"cannot read {path}: {error.strerror}") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                key = self.contract.parse(line).key if check else None
                self.producer.send(self.topic, key=key, value=line)
            except Rejected as rejected:
                report.refused.append((number, rejected.reason))
            except MessageSizeTooLargeError:
                report.refused.append((number, f"{len(line)} bytes are more than the producer sends at once"))
            else:
                report.published += 1
        return report

    def close(self) -> None:
        """Flush what is queued and disconnect."""
        self.producer.flush()
        self.producer.close()

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
