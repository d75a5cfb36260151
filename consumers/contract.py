"""The wire contract: turn raw message bytes into a validated CloudEvent, or say in one line why not.

Reasons never quote a value from the message: a rejected event may carry personal data (or anything
an attacker chose), and the reason travels in clear to the dead-letter topic and the logs. A reason
names the field by its path, with every property name the schemas do not define replaced by its
position (`<property 2>`), and the rule broken.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jsonschema_rs
import orjson

import schemas
from consumers import bounds
from ledger import times
from ledger.keywords import KeywordTable

SCHEMA_URN = "urn:consent-ledger:schema:{type}:v{version}"
PATH_SHOWN = 8  # a reason is one line: deeper paths are cut
STAND_IN_CHANNEL = "sms"


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

    def __init__(
        self,
        max_message_bytes: int,
        extra_channels: frozenset[tuple[str, str]] = frozenset(),
        keywords: KeywordTable | None = None,
    ) -> None:
        self.max_message_bytes = max_message_bytes
        self.extra_channels = extra_channels  # (tenant or "*", channel): LEDGER_EXTRA_CHANNELS
        self.keywords = keywords or KeywordTable()
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
        self.names = schemas.property_names()
        # Types whose `channel` is the vocabulary's: a tenant's extra channels are accepted there.
        self.channel_types = {
            key
            for key in self.validators
            if schemas.load(*key)["properties"].get("channel", {}).get("$ref", "").endswith("/$defs/channel")
        }

    def parse(self, raw: bytes | None) -> CloudEvent:
        """Decode and validate one message value; anything but a CloudEvent is `Rejected`."""
        if raw is None:
            raise Rejected("empty message: the value must be a CloudEvents JSON object")
        if len(raw) > self.max_message_bytes:
            raise Rejected(f"message of {len(raw)} bytes exceeds the limit of {self.max_message_bytes} bytes")
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            # orjson's messages are fixed texts with a position, never the offending input.
            raise Rejected(
                f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
            ) from None
        return self.check(document)

    def check(self, document: object) -> CloudEvent:
        """Validate an already decoded event object; anything but a CloudEvent is `Rejected`."""
        try:
            return self._check(document)
        except Rejected:
            raise
        except Exception as error:
            # A verdict for every message: a bug here refuses one message instead of halting ingest.
            raise Rejected(internal(error)) from None

    def _check(self, document: object) -> CloudEvent:
        if not isinstance(document, dict):
            raise Rejected("not a JSON object: a CloudEvent is an object with specversion, id, ...")
        if broken := bounds.violation(document):
            path, rule = broken
            raise Rejected(f"bound exceeded at {self._path('envelope', document, path)}: {rule}")
        self._validate(self.envelope, document, "envelope", document)
        event_type = document["type"]
        versions = self.versions.get(event_type)
        if versions is None:
            raise Rejected(f"unknown event type at envelope.type: known types are {', '.join(self.versions)}")
        version = self._version(event_type, document.get("dataschema"), versions)
        data = document["data"]
        checked = data
        if (event_type, version) in self.channel_types and self._extra(document["tenant"], data):
            # The schema's only rule for a channel is the closed list: a stand-in from it checks the rest.
            checked = data | {"channel": STAND_IN_CHANNEL}
        self._validate(
            self.validators[(event_type, version)], checked, f"{event_type} v{version}: data", data
        )
        personal_fields = self.personal_fields[(event_type, version)]
        plain = {key: value for key, value in data.items() if key not in personal_fields}
        if event_type == "keyword.received":
            # A tenant's own keyword is stored with the meaning it has now (ledger/keywords.py).
            effect = self.keywords.effect(document["tenant"], data["keyword"])
            plain |= {} if effect is None else {"effect": effect}
        return CloudEvent(
            id=document["id"],
            tenant=document["tenant"],
            subject=document["subject"],
            type=event_type,
            source=document["source"],
            time=parse_time(document["time"]),
            data=plain,
            personal={key: value for key, value in data.items() if key in personal_fields},
            schema_version=version,
        )

    def _extra(self, tenant: str, data: object) -> bool:
        """Whether `data` names a channel the tenant added to the vocabulary's."""
        channel = data.get("channel") if isinstance(data, dict) else None
        return isinstance(channel, str) and (
            ("*", channel) in self.extra_channels or (tenant, channel) in self.extra_channels
        )

    def _version(self, event_type: str, dataschema: object, versions: list[int]) -> int:
        if dataschema is None:
            return versions[-1]
        for version in versions:
            if dataschema == SCHEMA_URN.format(type=event_type, version=version):
                return version
        known = ", ".join(SCHEMA_URN.format(type=event_type, version=v) for v in versions)
        raise Rejected(f"unknown dataschema for {event_type}: use one of {known} or leave it out")

    def _validate(
        self, validator: jsonschema_rs.Validator, instance: object, where: str, root: object
    ) -> None:
        error = next(iter(validator.iter_errors(instance)), None)
        if error is None:
            return
        place = self._path(where, root, tuple(error.instance_path))
        raise Rejected(f"schema violation at {place}: {self._describe(error, root)}")

    def _describe(self, error: jsonschema_rs.ValidationError, root: object) -> str:
        """Say which rule broke, naming only what the schemas define, never a value."""
        kind = error.kind
        rule = ".".join(str(part) for part in error.schema_path)
        if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
            return f"required property {kind.property!r} is missing"
        if isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties):
            parent = tuple(error.instance_path)
            unexpected = ", ".join(self._name(root, parent, str(name)) for name in kind.unexpected)
            return f"property not allowed here: {unexpected} ({rule})"
        if isinstance(kind, jsonschema_rs.ValidationErrorKind.PropertyNames):
            return f"a property name breaks the naming rule ({rule})"
        if isinstance(kind, jsonschema_rs.ValidationErrorKind.Enum):
            return "value is not in the closed vocabulary (see schemas/vocabulary.v1.json)"
        name = type(kind).__name__
        if name in ("Type", "Constant"):
            return f"wrong {name.lower()} ({rule})"
        return f"breaks rule {name} ({rule})"

    def _path(self, where: str, root: object, path: bounds.Path) -> str:
        """`where` and the path into `root`, each undefined property name replaced by its position."""
        parts = [where]
        for depth, part in enumerate(path[:PATH_SHOWN]):
            parts.append(str(part) if isinstance(part, int) else self._name(root, path[:depth], part))
        if len(path) > PATH_SHOWN:
            parts.append(f"(... {len(path) - PATH_SHOWN} levels more)")
        return ".".join(parts)

    def _name(self, root: object, parent: bounds.Path, name: str) -> str:
        if name in self.names:
            return name
        holder = _find(root, parent)
        position = list(holder).index(name) + 1 if isinstance(holder, dict) and name in holder else 0
        return f"<property {position}>"


def _find(root: object, path: bounds.Path) -> object:
    """The value at `path` in `root` (None if the path leads nowhere)."""
    found = root
    for part in path:
        if isinstance(found, dict) and isinstance(part, str):
            found = found.get(part)
        elif isinstance(found, list) and isinstance(part, int) and 0 <= part < len(found):
            found = found[part]
        else:
            return None
    return found


def internal(error: Exception) -> str:
    """The reason for a message whose handling failed unexpectedly: the exception's class, never its
    message, which may quote the input."""
    return f"internal: {type(error).__name__}"


def parse_time(text: str) -> datetime:
    """An RFC 3339 timestamp within the ledger's range (ledger/times.py), in UTC; else `Rejected`."""
    try:
        return times.parse(text)
    except ValueError as error:
        raise Rejected(f"time {error}") from None
