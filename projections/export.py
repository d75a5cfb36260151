"""Access and portability export (GDPR Art. 15 and 20): everything the ledger knows about a subject."""

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from ledger.errors import SubjectErased
from ledger.retention import Rule, retention
from ledger.state import recipients_to_confirm
from ledger.store import Ledger
from projections.history import history
from projections.queries import plain

FORMAT = "urn:consent-ledger:export:v1"
CONSENT_TYPES = ("consent.given", "consent.withdrawn", "optout.received")


def export(ledger: Ledger, tenant: str, subject: str, rules: list[Rule]) -> dict[str, Any]:
    """A structured, machine-readable document of the subject's data, bases, recipients and rights."""
    state = ledger.subject(tenant, subject).state
    if state.erased:
        raise SubjectErased(
            f"subject {subject!r} of tenant {tenant!r} was erased at {plain(state.erased_at)}: "
            "there is no personal data left to export"
        )
    entries = history(ledger, tenant, subject)
    document = {
        "format": FORMAT,
        "generated_at": datetime.now(UTC),
        "controller": tenant,
        "subject": subject,
        "holdings": [
            asdict(holding) | {"retention": asdict(retention(holding, state, rules))}
            for holding in state.holdings.values()
        ],
        "personal_data": [
            {
                "category": entry.data["category"],
                "system": entry.data["system"],
                "collected_at": entry.occurred_at,
                "source": entry.data.get("source"),
                "values": entry.personal,
            }
            for entry in entries
            if entry.type == "data.collected" and isinstance(entry.personal, dict)
        ],
        "recipients": [asdict(share) for share in state.shares.values()],
        "recipients_unconfirmed": recipients_to_confirm(state),
        "consent_history": [
            {
                "event_id": entry.event_id,
                "type": entry.type,
                "time": entry.occurred_at,
                "source": entry.source,
            }
            | entry.data
            | (entry.personal if isinstance(entry.personal, dict) else {})
            for entry in entries
            if entry.type in CONSENT_TYPES
        ],
        "current_consent": [asdict(record) for record in state.consent.values()],
        "rights_requests": [asdict(request) for request in state.deletion_requests.values()],
        "legal_holds": [asdict(hold) for hold in state.legal_holds.values()],
    }
    exported: dict[str, Any] = plain(document)
    return exported


def export_text(ledger: Ledger, tenant: str, subject: str, rules: list[Rule]) -> str:
    """The export as a file holds it and the HTTP answer sends it: the text whose SHA-256 an answer to
    an access or portability request records."""
    return json.dumps(export(ledger, tenant, subject, rules), indent=2) + "\n"
