"""A tenant's declared processing (its privacy notice as data), recorded as events like policies.

Each tenant's declarations are an aggregate of their own in the event store, chained like a
subject's history, so `drift` can say what the facts show and the notice did not declare, and an
auditor can tell which declaration stood on any date.
"""

import tomllib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import jsonschema_rs
from eventsourcing.domain import Aggregate

import schemas
from ledger.errors import UsageError
from ledger.retention import Rule


def declaration_id(tenant: str) -> UUID:
    """The aggregate id of a tenant's declarations."""
    return uuid5(NAMESPACE_URL, f"urn:consent-ledger:declaration:{tenant}")


class Declarations(Aggregate):
    """Every declaration a tenant recorded, in order."""

    @dataclass(frozen=True)
    class Started(Aggregate.Created):
        """The ledger began keeping the tenant's declarations."""

    @dataclass(frozen=True)
    class Declared(Aggregate.Event):
        """From this moment, `document` is what the tenant declares."""

        tenant: str
        document: dict[str, Any]
        digest: str
        declared_by: str
        reason: str
        previous_hash: str

        def apply(self, aggregate: "Aggregate") -> None:
            assert isinstance(aggregate, Declarations)
            aggregate.declarations.append(self)

    def __init__(self) -> None:
        self.declarations: list[Declarations.Declared] = []

    def at(self, moment: datetime) -> "Declarations.Declared | None":
        """The declaration standing at `moment`, if any."""
        standing = [declared for declared in self.declarations if declared.timestamp <= moment]
        return standing[-1] if standing else None


@dataclass(frozen=True)
class Declaration:
    """A validated declaration, indexed for the questions `drift` and `violations` ask."""

    document: dict[str, Any]

    @property
    def purposes(self) -> dict[str, dict[str, Any]]:
        """Each declared purpose's entry, by purpose."""
        return {entry["purpose"]: entry for entry in self.document["purpose"]}

    @property
    def recipients(self) -> dict[str, dict[str, Any]]:
        """Each declared recipient's entry, by name."""
        return {entry["name"]: entry for entry in self.document.get("recipient", [])}

    @property
    def categories(self) -> set[str]:
        """Every category some purpose declares."""
        return {category for entry in self.document["purpose"] for category in entry["categories"]}

    def retention_rules(self) -> list[Rule]:
        """The declared retention periods, as rules the retention arithmetic applies."""
        return [Rule(**rule) for rule in self.document.get("retention", [])]


def parse_declaration(text: str, origin: str) -> dict[str, Any]:
    """A declaration file's TOML, validated against `schemas/declaration.v1.json`; else `UsageError`
    naming the place and the rule."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"declaration {origin} is not valid TOML: {error}") from None
    registry = jsonschema_rs.Registry(
        [
            (schemas.load(name)["$id"], schemas.load(name))
            for name in (schemas.VOCABULARY, schemas.RETENTION_POLICY)
        ]
    )
    validator = jsonschema_rs.validator_for(schemas.load(schemas.DECLARATION), registry=registry)
    broken = next(iter(validator.iter_errors(document)), None)
    if broken is not None:
        place = ".".join(str(part) for part in broken.instance_path) or "the document"
        raise UsageError(f"declaration {origin}: {place}: {broken.message} (see schemas/declaration.v1.json)")
    repeated = _repeated([entry["purpose"] for entry in document["purpose"]])
    repeated |= _repeated([entry["name"] for entry in document.get("recipient", [])])
    repeated |= _repeated([rule["id"] for rule in document.get("retention", [])])
    if repeated:
        raise UsageError(f"declaration {origin}: declared twice: {', '.join(sorted(repeated))}")
    return document


def _repeated(names: list[str]) -> set[str]:
    return {name for name in names if names.count(name) > 1}
