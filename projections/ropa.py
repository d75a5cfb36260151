"""The Art. 30 record of processing, derived from what the ledger observed in a period, with counts.

Per purpose: the categories of data and of data subjects, legal bases, systems, recipients with
their countries and transfer mechanisms, retention rules and messages sent. Each part is one
aggregate query over the read model, so the record of a big tenant is computed by PostgreSQL.
Terms carry their Fides and W3C DPV equivalents (ledger/vocabularies.py); `fides` gives the same
record as a Fides manifest of systems and privacy declarations, which fideslang loads.
"""

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.sql import SQL

from ledger import vocabularies as words
from ledger.retention import Rule
from ledger.state import PURPOSES
from ledger.store import Ledger
from projections.queries import plain

_HELD_IN_PERIOD = (
    "h.tenant = %(tenant)s AND h.first_collected < %(end)s "
    "AND (h.status = 'held' OR h.last_collected >= %(start)s)"
)
# One scan, every breakdown: distinct subjects are counted per grouping set, never summed.
# The data subjects a holding implies: the platform's account holders where it is the controller,
# the tenant's contacts where it processes for the tenant (or the event does not say).
_KIND = " ".join(
    [
        "CASE h.role",
        *(f"WHEN '{role}' THEN '{kind}'" for role, kind in words.SUBJECTS_BY_ROLE.items()),
        "ELSE 'contact' END",
    ]
)
_HOLDINGS = SQL(
    "SELECT h.purpose, h.category, h.system, h.legal_basis, h.kind, "
    "GROUPING(h.category, h.system, h.legal_basis, h.kind) AS unused, "
    "count(*) AS holdings, count(DISTINCT h.subject) AS subjects "
    "FROM (SELECT p.purpose, h.category, h.system, h.legal_basis, h.subject, " + _KIND + " AS kind "
    "FROM proj_holdings h CROSS JOIN LATERAL unnest(h.purposes) AS p(purpose) WHERE "
    + _HELD_IN_PERIOD
    + ") h "
    "GROUP BY GROUPING SETS ((h.purpose), (h.purpose, h.category), (h.purpose, h.system), "
    "(h.purpose, h.legal_basis), (h.purpose, h.kind), "
    "(h.purpose, h.system, h.legal_basis, h.kind, h.category))"
)
_SHARES = SQL(
    "SELECT s.purpose, s.recipient, s.recipient_type, s.country, s.transfer_mechanism, "
    "count(DISTINCT s.event_id) AS shares, count(DISTINCT s.subject) AS subjects, "
    "array_agg(DISTINCT c.category ORDER BY c.category) AS categories, "
    "coalesce(array_agg(DISTINCT s.legal_basis) FILTER (WHERE s.legal_basis IS NOT NULL), '{}') "
    "AS legal_bases "
    "FROM proj_shares s CROSS JOIN LATERAL unnest(s.categories) AS c(category) "
    "WHERE s.tenant = %(tenant)s AND s.time >= %(start)s AND s.time < %(end)s "
    "GROUP BY s.purpose, s.recipient, s.recipient_type, s.country, s.transfer_mechanism"
)
_CONTACTS = SQL(
    "SELECT purpose, channel, count(*) AS contacts, count(DISTINCT subject) AS subjects FROM proj_contacts "
    "WHERE tenant = %(tenant)s AND time >= %(start)s AND time < %(end)s GROUP BY purpose, channel"
)
# GROUPING(category, system, legal_basis, kind): a bit set for each column the row is not grouped by.
_FINEST, _PURPOSE, _CATEGORY, _SYSTEM, _BASIS, _KINDS = 0b0000, 0b1111, 0b0111, 0b1011, 0b1101, 0b1110


CSV_COLUMNS = [
    "purpose", "category", "subjects", "holdings", "data_subjects", "legal_bases", "systems", "recipients",
    "retention", "contacts",
]  # fmt: skip


@dataclass(frozen=True)
class Record:
    """The derived record of processing of one tenant over [start, end)."""

    tenant: str
    start: datetime
    end: datetime
    controller: str | None
    purposes: list[dict[str, Any]]
    detail: list[dict[str, Any]]  # (purpose, system, legal basis, kind of subjects, category), counted

    def as_json(self) -> dict[str, Any]:
        """The `ropa --json` document."""
        return {
            "tenant": self.tenant,
            "from": plain(self.start),
            "to": plain(self.end),
            "controller": self.controller,
            "vocabularies": {"dpv": words.DPV_PREFIXES, "fides": "fideslang default taxonomy"},
            "purposes": plain(self.purposes),
        }

    def as_csv(self) -> str:
        """One row per purpose and category, the purpose's other parts joined in its cells."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for entry in self.purposes:
            shared = [
                f"{r['recipient']} ({r['country'] or 'country unknown'}, {r['transfer_mechanism'] or 'none'})"
                for r in entry["recipients"]
            ]
            common = [
                counted(entry["data_subjects"], "kind"),
                counted(entry["legal_bases"], "legal_basis"),
                counted(entry["systems"], "system"),
                "; ".join(shared),
                "; ".join(
                    f"{r['category']}: {r['duration']} from {r['trigger']}" for r in entry["retention"]
                ),
                sum(c["contacts"] for c in entry["contacts"]),
            ]
            for category in entry["categories"] or [{"category": "", "subjects": 0, "holdings": 0}]:
                row = [entry["purpose"], category["category"], category["subjects"], category["holdings"]]
                writer.writerow(row + common)
        return out.getvalue()

    def as_fides(self) -> dict[str, Any]:
        """A Fides manifest: one system per system of the ledger, a privacy declaration per purpose
        and legal basis observed there, with the recipients the purpose's data was shared with."""
        by_system: dict[str, dict[tuple[str, str], dict[str, set[str]]]] = defaultdict(
            lambda: defaultdict(lambda: {"categories": set(), "subjects": set()})
        )
        for row in self.detail:
            declared = by_system[row["system"]][(row["purpose"], row["legal_basis"])]
            declared["categories"].update(words.FIDES_CATEGORIES[row["category"]])
            declared["subjects"].add(words.FIDES_SUBJECTS[row["kind"]])
        purposes = {entry["purpose"]: entry for entry in self.purposes}
        systems = []
        for system, declarations in sorted(by_system.items()):
            privacy = []
            for (purpose, basis), found in sorted(declarations.items()):
                recipients = purposes[purpose]["recipients"]
                shared = sorted(
                    {c for r in recipients for cat in r["categories"] for c in words.FIDES_CATEGORIES[cat]}
                )
                privacy.append(
                    {
                        "name": f"{purpose} ({basis})",
                        "data_use": words.FIDES_USES[purpose],
                        "data_categories": sorted(found["categories"]),
                        "data_subjects": sorted(found["subjects"]),
                        "legal_basis_for_processing": words.FIDES_LEGAL_BASES[basis],
                        "retention_period": _retention_text(purposes[purpose]["retention"]),
                        "data_shared_with_third_parties": bool(recipients),
                        "third_parties": ", ".join(r["recipient"] for r in recipients) or None,
                        "shared_categories": shared,
                    }
                )
            systems.append(
                {
                    "fides_key": _fides_key(f"{self.tenant}.{system}"),
                    "name": system,
                    "description": f"{system} of tenant {self.tenant}, as observed by consent-ledger "
                    f"from {plain(self.start)} to {plain(self.end)}",
                    "system_type": "Service",
                    "privacy_declarations": privacy,
                }
            )
        return {"system": systems}


def record_of_processing(
    ledger: Ledger, tenant: str, start: datetime, end: datetime, rules: list[Rule]
) -> Record:
    """The tenant's record of processing as observed in [start, end); `rules` are the retention
    rules in force (each purpose lists those for its categories)."""
    params = {"tenant": tenant, "start": start, "end": end}
    with ledger.writer.datastore.transaction() as curs:
        curs.execute(_HOLDINGS, params)
        holdings = curs.fetchall()
        curs.execute(_SHARES, params)
        shares = curs.fetchall()
        curs.execute(_CONTACTS, params)
        contacts = curs.fetchall()
    purposes: dict[str, dict[str, Any]] = {}

    def entry(purpose: str) -> dict[str, Any]:
        if purpose not in purposes:
            purposes[purpose] = {
                "purpose": purpose,
                "dpv": words.DPV_PURPOSES[purpose],
                "fides_data_use": words.FIDES_USES[purpose],
                "subjects": 0,
                "holdings": 0,
                "categories": [],
                "data_subjects": [],
                "legal_bases": [],
                "systems": [],
                "recipients": [],
                "retention": [],
                "contacts": [],
            }
        return purposes[purpose]

    detail = []
    for row in holdings:
        part, counts = entry(row["purpose"]), {"subjects": row["subjects"], "holdings": row["holdings"]}
        grouped = row["unused"]
        if grouped == _FINEST:
            detail.append(dict(row))
        elif grouped == _PURPOSE:
            part |= counts
        elif grouped == _CATEGORY:
            part["categories"].append(_category(row["category"]) | counts)
        elif grouped == _SYSTEM:
            part["systems"].append({"system": row["system"]} | counts)
        elif grouped == _BASIS:
            part["legal_bases"].append(_basis(row["legal_basis"]) | counts)
        elif grouped == _KINDS:
            part["data_subjects"].append(_subjects(row["kind"]) | counts)
    for row in shares:
        entry(row["purpose"])["recipients"].append(_recipient(row))
    for row in contacts:
        entry(row["purpose"])["contacts"].append(
            {"channel": row["channel"], "contacts": row["contacts"], "subjects": row["subjects"]}
        )
    for part in purposes.values():
        held = {category["category"] for category in part["categories"]}
        part["retention"] = [
            _rule(rule) for rule in rules if rule.category in held and rule.purpose in (None, part["purpose"])
        ]
        for key in ("categories", "legal_bases", "systems", "data_subjects"):
            part[key].sort(key=lambda item: (-item["subjects"], str(next(iter(item.values())))))
    declared = ledger.declarations(tenant).declarations
    controller = declared[-1].document.get("controller") if declared else None
    ordered = sorted(purposes.values(), key=lambda part: PURPOSES.index(part["purpose"]))
    return Record(tenant, start, end, controller, ordered, detail)


def counted(items: list[dict[str, Any]], name: str) -> str:
    """Items of a record's breakdown as `name (subjects)`, joined."""
    return "; ".join(f"{item[name]} ({item['subjects']})" for item in items)


def _category(category: str) -> dict[str, Any]:
    return {
        "category": category,
        "dpv": words.DPV_CATEGORIES[category],
        "fides": words.FIDES_CATEGORIES[category],
    }


def _basis(basis: str) -> dict[str, Any]:
    return {
        "legal_basis": basis,
        "dpv": words.DPV_LEGAL_BASES[basis],
        "fides": words.FIDES_LEGAL_BASES[basis],
    }


def _subjects(kind: str) -> dict[str, Any]:
    return {"kind": kind, "dpv": words.DPV_SUBJECTS[kind], "fides": words.FIDES_SUBJECTS[kind]}


def _recipient(row: dict[str, Any]) -> dict[str, Any]:
    mechanism = row["transfer_mechanism"]
    return {
        "recipient": row["recipient"],
        "type": row["recipient_type"],
        "dpv": words.DPV_RECIPIENTS[row["recipient_type"]],
        "country": row["country"],
        "transfer_mechanism": mechanism,
        "transfer_dpv": None if mechanism is None else words.DPV_TRANSFERS[mechanism],
        "categories": list(row["categories"]),
        "legal_bases": sorted(row["legal_bases"]),
        "shares": row["shares"],
        "subjects": row["subjects"],
    }


def _rule(rule: Rule) -> dict[str, Any]:
    return {
        "rule": rule.id,
        "category": rule.category,
        "duration": rule.duration,
        "trigger": rule.trigger,
        "legal_basis": rule.legal_basis,
        "jurisdiction": rule.jurisdiction,
        "description": rule.description,
    }


def _retention_text(rules: list[dict[str, Any]]) -> str | None:
    """Fides keeps one text per declaration: every rule, as `category duration from trigger`."""
    return "; ".join(f"{r['category']} {r['duration']} from {r['trigger']}" for r in rules) or None


def _fides_key(text: str) -> str:
    """A Fides key (letters, digits, `_.<>-`) from a tenant and system name."""
    return "".join(char if char.isascii() and (char.isalnum() or char in "_.-") else "_" for char in text)
