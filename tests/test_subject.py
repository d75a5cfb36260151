"""Stored events: every class round-trips through the ledger's encoder in the library's own format."""

from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, Mapper, UUIDAsHex
from eventsourcing.utils import get_topic

from ledger.subject import FACT_CLASSES, Subject, subject_id
from ledger.transcoder import OrjsonTranscoder


def _mapper(transcoder: JSONTranscoder) -> Mapper[UUID]:
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return Mapper(transcoder=transcoder)


def _events() -> list[DomainEvent]:
    oid = uuid4()
    now = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    registered = Subject.Registered(
        originator_id=oid,
        originator_version=1,
        timestamp=now,
        originator_topic=get_topic(Subject),
        tenant="acme",
        subject="s-1",
    )
    facts: list[DomainEvent] = [
        cls(
            originator_id=oid,
            originator_version=2,
            timestamp=now,
            tenant="acme",
            subject="s-1",
            event_id="e-1",
            source="urn:service:test",
            occurred_at=now,
            schema_version=1,
            data={"purposes": ["service"], "verified": True, "nested": {"n": 1.5, "none": None}},
            sealed="c2VhbGVk",
            key_id="6b7c8a52-49a5-4bde-9d3a-111111111111",
            origin="ledger.events/0/7",
            previous_hash="ab" * 32,
        )
        for cls in FACT_CLASSES.values()
    ]
    erased = Subject.Erased(
        originator_id=oid,
        originator_version=3,
        timestamp=now,
        tenant="acme",
        subject="s-1",
        reason="deletion request r-1 completed",
        destroyed_keys=["6b7c8a52-49a5-4bde-9d3a-111111111111"],
        previous_hash="cd" * 32,
    )
    return [registered, *facts, erased]


@pytest.mark.parametrize("event", _events(), ids=lambda e: type(e).__qualname__)
def test_round_trip_and_library_compatibility(event: DomainEvent) -> None:
    """orjson-encoded events decode to equal events with either transcoder, and so do the library's."""
    stored = _mapper(OrjsonTranscoder()).to_stored_event(event)
    assert _mapper(OrjsonTranscoder()).to_domain_event(stored) == event
    assert _mapper(JSONTranscoder()).to_domain_event(stored) == event
    by_library = _mapper(JSONTranscoder()).to_stored_event(event)
    assert _mapper(OrjsonTranscoder()).to_domain_event(by_library) == event
    assert stored.topic.startswith("ledger.subject:Subject.")


def test_subject_ids_are_deterministic_and_tenant_scoped() -> None:
    """The aggregate id depends on tenant and subject, and on nothing else."""
    assert subject_id("acme", "s-1") == subject_id("acme", "s-1")
    assert subject_id("acme", "s-1") != subject_id("acme", "s-2")
    assert subject_id("acme", "s-1") != subject_id("globex", "s-1")
