"""A subject's full history, in order, with personal values opened where the key still exists."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from ledger.crypto import Unreadable, unseal
from ledger.errors import UnknownEvent
from ledger.store import Ledger, seal_context
from ledger.subject import Subject

ERASED = "erased"


@dataclass(frozen=True)
class Entry:
    """One recorded event, both times, and its personal values (or why they cannot be shown)."""

    version: int
    type: str
    event_id: str | None
    occurred_at: datetime | None
    recorded_at: datetime
    source: str | None
    data: dict[str, Any]
    personal: dict[str, Any] | str | None  # the values, "erased", or None when there were none
    origin: str | None


def history(
    ledger: Ledger, tenant: str, subject: str, after: int = 0, limit: int | None = None
) -> list[Entry]:
    """Every event of the subject (after its registration), oldest first; or a page of it: the events
    after version `after`, at most `limit` of them (fewer: registrations are left out)."""
    if ledger.keys is None:
        keys: dict[UUID, bytes] = {}
    else:
        with ledger.writer.datastore.transaction() as curs:
            keys = ledger.keys.for_subject(curs, tenant, subject)
    entries = []
    for event in ledger.subject_events(tenant, subject, after, limit):
        if isinstance(event, Subject.FactRecorded):
            entries.append(_fact(event, keys))
        elif isinstance(event, Subject.RetentionExpired):
            entries.append(
                Entry(
                    version=event.originator_version,
                    type="retention.expired",
                    event_id=event.order_id,
                    occurred_at=event.expired_at,
                    recorded_at=event.timestamp,
                    source="urn:consent-ledger:scheduler",
                    data={"system": event.system, "categories": event.categories, "rule": event.rule},
                    personal=None,
                    origin=None,
                )
            )
        elif isinstance(event, Subject.Erased):
            entries.append(
                Entry(
                    version=event.originator_version,
                    type="subject.erased",
                    event_id=None,
                    occurred_at=None,
                    recorded_at=event.timestamp,
                    source=None,
                    data={"reason": event.reason, "destroyed_keys": event.destroyed_keys},
                    personal=None,
                    origin=None,
                )
            )
    return entries


def _fact(event: Subject.FactRecorded, keys: dict[UUID, bytes]) -> Entry:
    return Entry(
        version=event.originator_version,
        type=event.wire_type,
        event_id=event.event_id,
        occurred_at=event.occurred_at,
        recorded_at=event.timestamp,
        source=event.source,
        data=event.data,
        personal=_open(event, keys),
        origin=event.origin,
    )


def _open(event: Subject.FactRecorded, keys: dict[UUID, bytes]) -> dict[str, Any] | str | None:
    if event.sealed is None or event.key_id is None:
        return None
    secret = keys.get(UUID(event.key_id))
    if secret is None:  # destroyed
        return ERASED
    try:
        return unseal(secret, event.sealed, seal_context(event.tenant, event.subject, event.event_id))
    except Unreadable:
        return ERASED


def entry(ledger: Ledger, tenant: str, subject: str, event_id: str) -> Entry:
    """The subject's event `event_id`, personal values opened where the key still exists."""
    found = next((item for item in history(ledger, tenant, subject) if item.event_id == event_id), None)
    if found is None:
        raise UnknownEvent(f"subject {subject!r} of tenant {tenant!r} has no event {event_id!r}")
    return found
