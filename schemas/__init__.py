"""The wire contract: JSON Schemas (draft 2020-12) for the CloudEvents envelope and each event type.

A released schema file never changes; a new version of a type is a new file (`<type>.v2.json`).
"""

import json
from functools import cache
from importlib import resources
from typing import Any

ENVELOPE = "cloudevent"
VOCABULARY = "vocabulary"
RETENTION_POLICY = "retention-policy"
DECLARATION = "declaration"  # a tenant's privacy notice as data (`declare`)
PURGE_ORDER = "purge.ordered"  # what the ledger publishes, not what it ingests
NOT_EVENTS = (ENVELOPE, VOCABULARY, RETENTION_POLICY, DECLARATION, PURGE_ORDER)


@cache
def load(name: str, version: int = 1) -> dict[str, Any]:
    """The schema document `<name>.v<version>.json` shipped in this package."""
    text = resources.files(__name__).joinpath(f"{name}.v{version}.json").read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def event_types() -> dict[str, list[int]]:
    """Every event type that has a data schema, with its released versions, oldest first."""
    found: dict[str, list[int]] = {}
    for entry in resources.files(__name__).iterdir():
        stem, _, suffix = entry.name.rpartition(".v")
        if not suffix.endswith(".json") or stem in NOT_EVENTS:
            continue
        found.setdefault(stem, []).append(int(suffix.removesuffix(".json")))
    return {name: sorted(versions) for name, versions in sorted(found.items())}


@cache
def property_names() -> frozenset[str]:
    """Every property name some schema defines: reasons may name these, never other (input) names."""
    names: set[str] = set()
    pending: list[object] = [load(name) for name in (ENVELOPE, VOCABULARY)]
    pending += [load(name, version) for name, versions in event_types().items() for version in versions]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            names.update(node.get("properties", {}))
            names.update(node.get("required", []))
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return frozenset(names)
