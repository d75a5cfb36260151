"""Retention policy changes as events: who adopted which policy, when, and what changed.

The policy's history is an aggregate of its own in the event store, chained like a subject's, so
an auditor can tell which rules applied on any date and `verify` proves the record was not altered.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, uuid5

import orjson
from eventsourcing.domain import Aggregate

POLICY_ID = uuid5(NAMESPACE_URL, "urn:consent-ledger:retention-policy")


def digest(document: dict[str, Any]) -> str:
    """SHA-256 of the policy's canonical JSON: equal digests, equal policies."""
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


class RetentionPolicy(Aggregate):
    """Every retention policy the ledger was told to apply, in order."""

    @dataclass(frozen=True)
    class Started(Aggregate.Created):
        """The ledger began keeping a policy history."""

    @dataclass(frozen=True)
    class Adopted(Aggregate.Event):
        """From this moment, `document` is the retention policy."""

        document: dict[str, Any]
        digest: str
        adopted_by: str
        reason: str
        previous_hash: str

        def apply(self, aggregate: "Aggregate") -> None:
            assert isinstance(aggregate, RetentionPolicy)
            aggregate.adoptions.append(self)

    def __init__(self) -> None:
        self.adoptions: list[RetentionPolicy.Adopted] = []

    def at(self, moment: datetime) -> "RetentionPolicy.Adopted | None":
        """The adoption in force at `moment`, if any."""
        in_force = [adoption for adoption in self.adoptions if adoption.timestamp <= moment]
        return in_force[-1] if in_force else None


def changes(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, list[str]]:
    """Rule ids added, removed and changed between two policy documents."""
    old = {rule["id"]: rule for rule in (before or {}).get("rule", [])}
    new = {rule["id"]: rule for rule in after["rule"]}
    return {
        "added": sorted(new.keys() - old.keys()),
        "removed": sorted(old.keys() - new.keys()),
        "changed": sorted(key for key in new.keys() & old.keys() if new[key] != old[key]),
    }
