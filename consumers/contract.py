"""The wire contract: turn raw message bytes into a validated CloudEvent, or say in one line why not.

Reasons never quote a value from the message: a rejected event may carry personal data, and the reason
travels in clear to the dead-letter topic and the logs.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jsonschema_rs
import orjson

import schemas

SCHEMA_URN = "urn:consent-ledger:schema:{type}:v{version}"


class Rejected(Exception):
    """A message that breaks the contract; `reason` is one line naming what is wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CloudEvent:
    """A validated event: envelope attributes plus its schema-checked `data`."""

    id: str
    tenant: str
    subject: str
    type: str
    source: str
    time: datetime
    data: dict[str, Any]
    personal: dict[str, Any]
    schema_version: int

    @property
    def key(self) -> bytes:
        """The Kafka message key: one subject's events share a partition and so stay ordered."""
        return f"{self.tenant}/{self.subject}".encode()


class Contract:
    """Validators for the envelope and every released version of every event type."""

    def __init__(self, max_message_bytes: int) -> None:
        self.max_message_bytes = max_message_bytes
        registry = jsonschema_rs.Registry(
            [(schemas.load(schemas.VOCABULARY)["$id"], schemas.load(schemas.VOCABULARY))]
        )
        self.envelope = jsonschema_rs.validator_for(schemas.load(schemas.ENVELOPE))
        self.versions = schemas.event_types()
        self.validators = {
            (name, version): jsonschema_rs.validator_for(schemas.load(name, version), registry=registry)
            for name, versions in self.versions.items()
            for version in versions
        }
        # Fields a schema marks `"x-personal": true` travel sealed; everything else is plain fact.
        self.personal_fields = {
            key: frozenset(
                field
                for field, rule in schemas.load(*key)["properties"].items()
                if rule.get("x-personal") is True
            )
            for key in self.validators
        }

    def parse(self, raw: bytes | None) -> CloudEvent:
        """Decode and validate one message value."""
        if raw is None:
            raise Rejected("empty message: the value must be a CloudEvents JSON object")
        if len(raw) > self.max_message_bytes:
            raise Rejected(f"message of {len(raw)} bytes exceeds the limit of {self.max_message_bytes} bytes")
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            # orjson's message names the position only, never the offending text.
            raise Rejected(f"not valid JSON: {error.args[0]}") from None
        return self.check(document)

    def check(self, document: object) -> CloudEvent:
        """Validate an already decoded event object."""
        if not isinstance(document, dict):
            raise Rejected("not a JSON object: a CloudEvent is an object with specversion, id, ...")
        _validate(self.envelope, document, "envelope")
        event_type = document["type"]
        versions = self.versions.get(event_type)
        if versions is None:
            raise Rejected(f"unknown event type {event_type!r}: known types are {', '.join(self.versions)}")
        version = self._version(event_type, document.get("dataschema"), versions)
        data = document["data"]
        _validate(self.validators[(event_type, version)], data, f"{event_type} v{version}: data")
        personal_fields = self.personal_fields[(event_type, version)]
        return CloudEvent(
            id=document["id"],
            tenant=document["tenant"],
            subject=document["subject"],
            type=event_type,
            source=document["source"],
            time=_parse_time(document["time"]),
            data={key: value for key, value in data.items() if key not in personal_fields},
            personal={key: value for key, value in data.items() if key in personal_fields},
            schema_version=version,
        )

    def _version(self, event_type: str, dataschema: object, versions: list[int]) -> int:
        if dataschema is None:
            return versions[-1]
        for version in versions:
            if dataschema == SCHEMA_URN.format(type=event_type, version=version):
                return version
        known = ", ".join(SCHEMA_URN.format(type=event_type, version=v) for v in versions)
        raise Rejected(f"unknown dataschema for {event_type}: use one of {known} or leave it out")


def _validate(validator: jsonschema_rs.Validator, instance: object, where: str) -> None:
    error = next(iter(validator.iter_errors(instance)), None)
    if error is None:
        return
    path = ".".join(str(part) for part in error.instance_path)
    place = f"{where}.{path}" if path else where
    raise Rejected(f"schema violation at {place}: {_describe(error)}")


def _describe(error: jsonschema_rs.ValidationError) -> str:
    """Say which rule broke; quote property names (part of the contract) but never values."""
    kind = type(error.kind).__name__
    if kind in ("Required", "AdditionalProperties", "PropertyNames"):
        return str(error.message)[:200]
    if kind == "Enum":
        return "value is not in the closed vocabulary (see schemas/vocabulary.v1.json)"
    if kind in ("Type", "Constant"):
        return f"wrong {kind.lower()} ({'.'.join(str(p) for p in error.schema_path)})"
    return f"breaks rule {kind} ({'.'.join(str(p) for p in error.schema_path)})"


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Rejected("time is not an RFC 3339 timestamp such as 2026-01-31T09:30:00Z") from None
    if moment.tzinfo is None:
        raise Rejected("time has no UTC offset: write it as RFC 3339, e.g. 2026-01-31T09:30:00Z")
    return moment.astimezone(UTC)
