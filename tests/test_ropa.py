"""The derived record of processing and drift from a declaration, on real PostgreSQL."""

from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fideslang.default_taxonomy import DEFAULT_TAXONOMY
from fideslang.manifests import load_yaml_into_dict
from fideslang.models import LegalBasisForProcessingEnum
from fideslang.parse import load_manifests_into_taxonomy

from consumers.contract import Contract
from consumers.ingest import triage
from consumers.workload import generate
from ledger.declaration import parse_declaration
from ledger.retention import load_policy
from ledger.store import Ledger
from projections import drift as kinds
from projections.drift import drift
from projections.projector import Projector
from projections.ropa import record_of_processing
from tests.helpers import collected, fact

pytestmark = pytest.mark.services
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "declaration.toml"
START, END = datetime(1970, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)


class _Message:
    def __init__(self, offset: int, value: bytes) -> None:
        self.topic, self.partition, self.offset, self.key, self.value = "t", 0, offset, None, value


def _demo(ledger: Ledger) -> list[dict[str, Any]]:
    """The demo workload of one tenant, stored and projected; returns its events."""
    events = list(generate(tenants=2, subjects=120, seed=11))
    batch = triage([_Message(n, orjson.dumps(e)) for n, e in enumerate(events)], Contract(256 * 1024))
    assert not batch.refused
    ledger.append(batch.facts)
    Projector(ledger, page=500).run(until_idle=True)
    return [e for e in events if e["tenant"] == "tenant-1"]


def _expected_holdings(events: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    """Per purpose, the subjects holding each category: a holding (subject, category, system) serves
    the purposes of its latest collection by event time."""
    latest: dict[tuple[str, str, str], tuple[str, list[str]]] = {}
    for e in events:
        if e["type"] == "data.collected":
            key = (e["subject"], e["data"]["category"], e["data"]["system"])
            if key not in latest or e["time"] >= latest[key][0]:
                latest[key] = (e["time"], e["data"]["purposes"])
    subjects: dict[tuple[str, str], set[str]] = defaultdict(set)
    for (subject, category, _), (_, purposes) in latest.items():
        for purpose in purposes:
            subjects[(purpose, category)].add(subject)
    found: dict[str, Counter[str]] = defaultdict(Counter)
    for (purpose, category), who in subjects.items():
        found[purpose][category] = len(who)
    return found


def test_record_of_processing_for_the_demo_workload_matches_counts_from_the_events(ledger: Ledger) -> None:
    """Categories with their subjects per purpose, recipients with shares, countries and mechanisms,
    and messages per channel agree with the same counts taken straight from the published events;
    the other tenant's facts are not in it."""
    events = _demo(ledger)
    record = record_of_processing(ledger, "tenant-1", START, END, load_policy(None)).as_json()
    purposes = {entry["purpose"]: entry for entry in record["purposes"]}
    expected = _expected_holdings(events)
    for purpose, categories in expected.items():
        found = {c["category"]: c["subjects"] for c in purposes[purpose]["categories"]}
        assert found == dict(categories), purpose
    shares: dict[tuple[str, str], list[str]] = defaultdict(list)
    for e in events:
        if e["type"] == "data.shared":
            shares[(e["data"]["purpose"], e["data"]["recipient"])].append(e["subject"])
    found_shares = {
        (purpose, r["recipient"]): (r["shares"], r["subjects"], r["country"], r["transfer_mechanism"])
        for purpose, entry in purposes.items()
        for r in entry["recipients"]
    }
    assert found_shares == {key: (len(who), len(set(who)), "US", "scc") for key, who in shares.items()}
    contacts = Counter(
        (e["data"]["purpose"], e["data"]["channel"]) for e in events if e["type"] == "contact.made"
    )
    found_contacts = {
        (purpose, c["channel"]): c["contacts"]
        for purpose, entry in purposes.items()
        for c in entry["contacts"]
    }
    assert found_contacts == dict(contacts)
    service = purposes["service"]
    assert service["dpv"] == "dpv:ServiceProvision" and service["fides_data_use"] == "essential.service"
    assert {r["rule"] for r in service["retention"]} >= {"account-data"}
    assert service["data_subjects"][0]["kind"] == "contact"  # the workload's platform is a processor
    rows = record_of_processing(ledger, "tenant-1", START, END, load_policy(None)).as_csv().splitlines()
    assert rows[0].startswith("purpose,category,subjects,holdings")
    assert len(rows) - 1 == sum(max(1, len(entry["categories"])) for entry in record["purposes"])


def test_fides_manifest_loads_and_validates_in_fideslang(ledger: Ledger, tmp_path: Path) -> None:
    """`ropa --format fides` is a manifest fideslang parses into its models, every key in its default
    taxonomy, one system per system of the ledger and a declaration per purpose and legal basis seen."""
    _demo(ledger)
    record = record_of_processing(ledger, "tenant-1", START, END, load_policy(None))
    written = tmp_path / "tenant-1.yml"  # JSON is YAML: fideslang reads it as a manifest file
    written.write_bytes(orjson.dumps(record.as_fides(), option=orjson.OPT_INDENT_2))
    taxonomy = load_manifests_into_taxonomy(load_yaml_into_dict(str(written)))
    categories = {item.fides_key for item in DEFAULT_TAXONOMY.data_category}
    uses = {item.fides_key for item in DEFAULT_TAXONOMY.data_use}
    subjects = {item.fides_key for item in DEFAULT_TAXONOMY.data_subject}
    seen = {(row["system"], row["purpose"], row["legal_basis"]) for row in record.detail}
    assert sorted(str(system.name) for system in taxonomy.system) == sorted({system for system, _, _ in seen})
    declarations = [(system, d) for system in taxonomy.system for d in system.privacy_declarations]
    assert len(declarations) == len(seen)
    for _, declaration in declarations:
        assert set(declaration.data_categories) <= categories
        assert declaration.data_use in uses
        assert set(declaration.data_subjects) <= subjects
        assert isinstance(declaration.legal_basis_for_processing, LegalBasisForProcessingEnum)
    shared = [d for _, d in declarations if d.data_shared_with_third_parties]
    assert shared and all(d.third_parties for d in shared)


def test_drift_reports_a_subprocessor_the_declaration_omits(ledger: Ledger) -> None:
    """The example declaration names three of the workload's four sub-processors: the fourth is
    reported with its shares and subjects, and a purpose the notice does not declare is too."""
    events = _demo(ledger)
    ledger.declare("tenant-1", parse_declaration(EXAMPLE.read_text(), str(EXAMPLE)), "dpo", "2026 notice")
    report = drift(ledger, "tenant-1", datetime(2026, 6, 1, tzinfo=UTC)).as_json()
    undeclared = [f for f in report["drift"] if f["kind"] == kinds.UNDECLARED_RECIPIENT]
    mixpanel = [
        e for e in events if e["type"] == "data.shared" and e["data"]["recipient"] == "mixpanel-analytics"
    ]
    assert [f["what"].split(" ")[0] for f in undeclared] == ["mixpanel-analytics"]
    assert undeclared[0]["facts"] == len(mixpanel)
    assert undeclared[0]["subjects"] == len({e["subject"] for e in mixpanel})
    purposes = {f["what"] for f in report["drift"] if f["kind"] == kinds.UNDECLARED_PURPOSE}
    assert purposes == {"support"}  # held for support (signup), not a purpose the example declares
    assert report["counts"][kinds.UNDECLARED_RECIPIENT] == 1


def test_drift_needs_a_declaration(ledger: Ledger) -> None:
    """Asking for drift before anything was declared is refused in one line naming `declare`."""
    with pytest.raises(Exception, match="declare tenant-9 FILE"):
        drift(ledger, "tenant-9", datetime(2026, 6, 1, tzinfo=UTC))


def test_drift_names_each_departure_from_the_declaration(ledger: Ledger) -> None:
    """A declared recipient used in another country and under another mechanism, a legal basis and a
    category the purpose does not declare, data kept past the declared period and a category with no
    declared period are each reported once."""
    share = {
        "recipient": "aws",
        "recipient_type": "subprocessor",
        "categories": ["account_contact"],
        "purpose": "service",
        "country": "IN",
        "transfer_mechanism": "consent",
    }
    old = collected(category="content", system="messaging")
    ledger.append(
        [
            fact("acme", "ann", "e1", "data.collected", data=collected() | {"legal_basis": "consent"}),
            fact("acme", "ann", "e2", "data.collected", minutes=1, data=old),
            fact("acme", "ann", "e3", "data.shared", minutes=2, data=share),
        ]
    )
    Projector(ledger, page=100).run(until_idle=True)
    declaration = """
        version = 1
        [[purpose]]
        purpose = "service"
        legal_bases = ["contract"]
        categories = ["account_contact"]
        [[recipient]]
        name = "aws"
        type = "subprocessor"
        country = "US"
        transfer_mechanism = "scc"
        [[retention]]
        id = "content-90d"
        category = "content"
        duration = "P90D"
        trigger = "collected"
    """
    ledger.declare("acme", parse_declaration(declaration, "test"), "dpo", "test")
    report = drift(ledger, "acme", datetime(2026, 6, 1, tzinfo=UTC)).as_json()
    found = {(f["kind"], f["what"]) for f in report["drift"]}
    assert found == {
        (kinds.RECIPIENT_COUNTRY, "aws"),
        (kinds.TRANSFER_MECHANISM, "aws"),
        (kinds.LEGAL_BASIS, "consent for service"),
        (kinds.UNDECLARED_CATEGORY, "content for service"),
        (kinds.KEPT_PAST_DECLARED, "content"),
        (kinds.NO_DECLARED_RETENTION, "account_contact"),
    }
