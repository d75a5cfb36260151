"""Drift: what the ledger's facts show that the tenant's declaration (its notice) does not say.

Recipients that are not declared, or shared with in another country or under another transfer
mechanism; purposes, categories and legal bases not declared; data kept past the declared period,
and categories held with no declared period. Each finding is counted from the read model.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.sql import SQL

from ledger.declaration import Declaration, Declarations
from ledger.errors import UsageError
from ledger.store import Ledger
from projections.queries import plain
from projections.retention import expired

UNDECLARED_RECIPIENT = "undeclared_recipient"
RECIPIENT_COUNTRY = "recipient_country"
TRANSFER_MECHANISM = "transfer_mechanism"
UNDECLARED_PURPOSE = "undeclared_purpose"
UNDECLARED_CATEGORY = "undeclared_category"
LEGAL_BASIS = "legal_basis"
KEPT_PAST_DECLARED = "kept_past_declared"
NO_DECLARED_RETENTION = "no_declared_retention"
KINDS = (
    UNDECLARED_RECIPIENT, RECIPIENT_COUNTRY, TRANSFER_MECHANISM, UNDECLARED_PURPOSE, UNDECLARED_CATEGORY,
    LEGAL_BASIS, KEPT_PAST_DECLARED, NO_DECLARED_RETENTION,
)  # fmt: skip

_SHARES = SQL(
    "SELECT recipient, recipient_type, country, transfer_mechanism, count(*) AS facts, "
    "count(DISTINCT subject) AS subjects, min(event_id) AS example FROM proj_shares WHERE tenant = %s "
    "GROUP BY recipient, recipient_type, country, transfer_mechanism ORDER BY recipient"
)
# Per purpose, each category held for it and each legal basis it is held under (the other NULL).
_HOLDINGS = SQL(
    "SELECT p.purpose, h.category, h.legal_basis, count(*) AS facts, count(DISTINCT h.subject) AS subjects "
    "FROM proj_holdings h CROSS JOIN LATERAL unnest(h.purposes) AS p(purpose) WHERE h.tenant = %s "
    "GROUP BY GROUPING SETS ((p.purpose, h.category), (p.purpose, h.legal_basis)) ORDER BY 1, 2, 3"
)
_CATEGORIES = SQL(
    "SELECT category, count(*) AS facts, count(DISTINCT subject) AS subjects FROM proj_holdings "
    "WHERE tenant = %s GROUP BY category ORDER BY category"
)
# Purposes the facts show beyond holdings: shares, consents given and messages sent.
_PURPOSES = SQL(
    "SELECT purpose, sum(facts)::bigint AS facts, min(example) AS example FROM ("
    "SELECT purpose, count(*) AS facts, min(event_id) AS example FROM proj_shares WHERE tenant = %(t)s "
    "GROUP BY purpose UNION ALL SELECT purpose, count(*), min(event_id) FROM proj_consent_log "
    "WHERE tenant = %(t)s AND state = 'granted' GROUP BY purpose UNION ALL "
    "SELECT purpose, count(*), min(event_id) FROM proj_contacts WHERE tenant = %(t)s GROUP BY purpose"
    ") seen GROUP BY purpose ORDER BY purpose"
)


@dataclass(frozen=True)
class Finding:
    """One thing the facts show and the declaration does not say."""

    kind: str
    what: str
    detail: str
    facts: int
    subjects: int | None
    example_event: str | None


@dataclass(frozen=True)
class Drift:
    """Every finding against the declaration standing now."""

    tenant: str
    declared: Declarations.Declared
    findings: list[Finding]

    def as_json(self) -> dict[str, Any]:
        """The `drift --json` document."""
        found = Counter(finding.kind for finding in self.findings)
        return {
            "tenant": self.tenant,
            "declared_at": plain(self.declared.timestamp),
            "declared_by": self.declared.declared_by,
            "digest": self.declared.digest,
            "counts": {kind: found[kind] for kind in KINDS},
            "drift": [plain(vars(finding)) for finding in self.findings],
        }


def drift(ledger: Ledger, tenant: str, now: datetime) -> Drift:
    """What the tenant's facts show that its current declaration does not; `UsageError` when it
    never declared."""
    history = ledger.declarations(tenant).declarations
    if not history:
        raise UsageError(
            f"tenant {tenant!r} has declared nothing: record its notice with `declare {tenant} FILE`"
        )
    declared = history[-1]
    declaration = Declaration(declared.document)
    with ledger.writer.datastore.transaction() as curs:
        curs.execute(_SHARES, (tenant,))
        shares = curs.fetchall()
        curs.execute(_HOLDINGS, (tenant,))
        holdings = curs.fetchall()
        curs.execute(_PURPOSES, {"t": tenant})
        purposes = curs.fetchall()
        curs.execute(_CATEGORIES, (tenant,))
        categories = curs.fetchall()
    findings = _recipients(declaration, shares)
    findings += _processing(declaration, holdings, purposes)
    findings += _retention(ledger, tenant, declaration, categories, now)
    return Drift(tenant, declared, findings)


def _recipients(declaration: Declaration, shares: list[dict[str, Any]]) -> list[Finding]:
    findings = []
    for row in shares:
        name, counts = row["recipient"], (row["facts"], row["subjects"], row["example"])
        entry = declaration.recipients.get(name)
        if entry is None:
            what = f"{name} ({row['recipient_type']}, {row['country'] or 'country not given'})"
            findings.append(
                Finding(UNDECLARED_RECIPIENT, what, "shared with, not a declared recipient", *counts)
            )
            continue
        if row["country"] is not None and row["country"] != entry["country"]:
            detail = f"shared with in {row['country']}, declared in {entry['country']}"
            findings.append(Finding(RECIPIENT_COUNTRY, name, detail, *counts))
        mechanism = row["transfer_mechanism"]
        if mechanism is not None and mechanism != entry.get("transfer_mechanism", mechanism):
            detail = f"transferred under {mechanism}, declared under {entry['transfer_mechanism']}"
            findings.append(Finding(TRANSFER_MECHANISM, name, detail, *counts))
    return findings


def _processing(
    declaration: Declaration, holdings: list[dict[str, Any]], purposes: list[dict[str, Any]]
) -> list[Finding]:
    declared = declaration.purposes
    findings = []
    seen: Counter[str] = Counter()
    for row in holdings:
        if row["category"] is not None:  # each holding once: its category's row, not its basis's too
            seen[row["purpose"]] += row["facts"]
        entry = declared.get(row["purpose"])
        counts = (row["facts"], row["subjects"], None)
        if entry is None:
            continue
        if row["category"] is not None and row["category"] not in entry["categories"]:
            what = f"{row['category']} for {row['purpose']}"
            findings.append(
                Finding(UNDECLARED_CATEGORY, what, "held, not declared for this purpose", *counts)
            )
        if row["legal_basis"] is not None and row["legal_basis"] not in entry["legal_bases"]:
            what = f"{row['legal_basis']} for {row['purpose']}"
            bases = ", ".join(entry["legal_bases"])
            findings.append(Finding(LEGAL_BASIS, what, f"the declaration gives {bases}", *counts))
    examples = {row["purpose"]: row["example"] for row in purposes}
    for row in purposes:
        seen[row["purpose"]] += row["facts"]
    for purpose, facts in sorted(seen.items()):
        if purpose not in declared:
            detail = "data held, shared, consented to or messages sent for it; not a declared purpose"
            findings.append(Finding(UNDECLARED_PURPOSE, purpose, detail, facts, None, examples.get(purpose)))
    return findings


def _retention(
    ledger: Ledger, tenant: str, declaration: Declaration, categories: list[dict[str, Any]], now: datetime
) -> list[Finding]:
    rules = declaration.retention_rules()
    covered = {rule.category for rule in rules}
    findings = [
        Finding(
            NO_DECLARED_RETENTION,
            row["category"],
            "held, with no declared retention period",
            row["facts"],
            row["subjects"],
            None,
        )
        for row in categories
        if row["category"] not in covered
    ]
    past: dict[tuple[str, str], list[str]] = {}
    for due in expired(ledger, rules, now, tenant):
        past.setdefault((due.category, due.rule), []).append(due.subject)
    for (category, rule), subjects in sorted(past.items()):
        detail = f"held past the declared period (declared rule {rule})"
        findings.append(
            Finding(KEPT_PAST_DECLARED, category, detail, len(subjects), len(set(subjects)), None)
        )
    return findings
