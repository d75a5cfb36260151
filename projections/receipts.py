"""Consent receipts shaped after ISO/IEC TS 27560 and the Kantara Consent Receipt, linked to the chain.

A receipt carries the record hash of the stored event it describes and that event's position and
version, so whoever holds it can check it against `verify` (which recomputes the same hashes).
"""

from dataclasses import dataclass
from datetime import datetime
from uuid import NAMESPACE_URL, uuid5

from ledger.chain import notification_hash
from ledger.errors import UnknownEvent, UsageError
from ledger.state import GRANTED, WITHDRAWN
from ledger.store import Ledger
from ledger.subject import Subject

FORMAT = "urn:consent-ledger:receipt:v1"
CONSENT_TYPES = {"consent.given": GRANTED, "consent.withdrawn": WITHDRAWN}


@dataclass(frozen=True)
class ConsentReceipt:
    """What was consented to (or withdrawn), by whom, when, how, and where it sits in the log."""

    format: str
    receipt_id: str
    record_id: str
    controller: str
    subject_id: str
    event_time: datetime
    recorded_at: datetime
    purpose: str
    channel: str
    state: str
    notice_version: str | None
    collection_method: str | None
    jurisdiction: str | None
    source: str
    position: int
    version: int
    record_hash: str
    previous_hash: str


def receipt(ledger: Ledger, tenant: str, event_id: str) -> ConsentReceipt:
    """The receipt for the tenant's `consent.given` or `consent.withdrawn` event `event_id`."""
    for notification in ledger.writer.located(tenant, event_id):
        event = ledger.mapper.to_domain_event(notification)
        if not isinstance(event, Subject.FactRecorded) or event.event_id != event_id:
            continue
        if event.wire_type not in CONSENT_TYPES:
            raise UsageError(f"event {event_id!r} is a {event.wire_type}: receipts are for consent events")
        data = event.data
        return ConsentReceipt(
            format=FORMAT,
            receipt_id=str(uuid5(NAMESPACE_URL, f"{FORMAT}:{tenant}/{event_id}")),
            record_id=event_id,
            controller=tenant,
            subject_id=event.subject,
            event_time=event.occurred_at,
            recorded_at=event.timestamp,
            purpose=data["purpose"],
            channel=data["channel"],
            state=CONSENT_TYPES[event.wire_type],
            notice_version=data.get("notice_version"),
            collection_method=data.get("method"),
            jurisdiction=data.get("jurisdiction"),
            source=event.source,
            position=notification.id,
            version=event.originator_version,
            record_hash=notification_hash(notification),
            previous_hash=event.previous_hash,
        )
    raise UnknownEvent(f"tenant {tenant!r} has no event {event_id!r}: check both ids")
