"""The event store on real PostgreSQL: batched, ordered, idempotent by (tenant, event id)."""

from dataclasses import replace
from datetime import timedelta, timezone

import pytest
from psycopg.sql import SQL

from ledger.errors import UnknownSubject
from ledger.state import GRANTED, WITHDRAWN
from ledger.store import Ledger, fingerprint
from ledger.subject import subject_id
from projections.schema import migrate
from tests.helpers import collected, fact

pytestmark = pytest.mark.services


def test_repeated_ids_are_stored_once(ledger: Ledger) -> None:
    """The same event id, within a batch or across batches, is stored once."""
    first = ledger.append([fact("acme", "s1", "e1"), fact("acme", "s1", "e1"), fact("acme", "s1", "e2")])
    again = ledger.append([fact("acme", "s1", "e2"), fact("acme", "s1", "e3")])
    assert (first.stored, first.duplicates) == (2, 1)
    assert (again.stored, again.duplicates) == (1, 1)
    assert ledger.writer.counts() == {"acme": 3}


def test_a_reused_id_with_different_content_is_a_conflict_not_a_duplicate(ledger: Ledger) -> None:
    """Same tenant and id, first a data.collected then a consent.given: the second is reported as a
    conflict (by position), not counted as a duplicate; the same fact again is a duplicate."""
    collect = fact("acme", "s1", "e1", "data.collected", data=collected(), personal={"phone": "+1555"})
    ledger.append([collect])
    result = ledger.append([fact("acme", "s1", "e2"), fact("acme", "s1", "e1"), collect])
    assert (result.stored, result.duplicates, result.conflicts) == (1, 1, (1,))
    assert ledger.subject("acme", "s1").version == 3  # registered, collected, e2


def test_conflicts_within_one_batch_are_found_too(ledger: Ledger) -> None:
    """Within one batch the first of an id is stored; a later one differing from it is a conflict."""
    result = ledger.append(
        [
            fact("acme", "s1", "e1", minutes=1),
            fact("acme", "s1", "e1", minutes=2),
            fact("acme", "s1", "e1", minutes=1),
        ]
    )
    assert (result.stored, result.duplicates, result.conflicts) == (1, 1, (1,))


def test_what_counts_as_the_same_fact() -> None:
    """Time zones, the order of a set and personal values do not change a fact; its subject, time,
    source, data and the personal fields it carries do."""
    data = {**collected(), "purposes": ["service", "billing"]}
    base = fact("acme", "s1", "e1", "data.collected", data=data, personal={"phone": "+1555"})
    same = [
        replace(base, occurred_at=base.occurred_at.astimezone(timezone(timedelta(hours=5)))),
        replace(base, data={**data, "purposes": ["billing", "service"]}),
        replace(base, personal={"phone": "+1666"}),  # a hash of it would outlive its erasure
        replace(base, origin="elsewhere/1/7"),
    ]
    different = [
        replace(base, subject="s2"),
        replace(base, occurred_at=base.occurred_at + timedelta(seconds=1)),
        replace(base, source="urn:other"),
        replace(base, data={**data, "system": "billing"}),
        replace(base, personal={"email": "+1555"}),
        replace(base, type="consent.given"),
    ]
    assert {fingerprint(f) for f in same} == {fingerprint(base)}
    assert fingerprint(base) not in {fingerprint(f) for f in different}
    assert len({fingerprint(f) for f in different}) == len(different)


def test_receipts_from_before_fingerprints_stay_duplicates(ledger: Ledger) -> None:
    """A database created before fingerprints gains the column on migrate (idempotently); its old
    receipts cannot tell content apart, so a repeat of their ids stays a duplicate."""
    ledger.append([fact("acme", "s1", "e1")])
    with ledger.writer.datastore.transaction(commit=True) as curs:
        curs.execute(SQL("ALTER TABLE {} DROP COLUMN fingerprint").format(ledger.writer.receipts))
    migrate(ledger)
    migrate(ledger)
    result = ledger.append([fact("acme", "s1", "e1", "consent.withdrawn"), fact("acme", "s1", "e2")])
    assert (result.stored, result.duplicates, result.conflicts) == (1, 1, ())


def test_aggregate_replays_facts_in_order(ledger: Ledger) -> None:
    """A subject's aggregate is rebuilt from its events with contiguous versions across batches."""
    ledger.append([fact("acme", "s1", "e1", minutes=1)])
    ledger.append([fact("acme", "s1", "e2", "consent.withdrawn", minutes=2)])
    subject = ledger.subject("acme", "s1")
    assert subject.version == 3  # registered + two facts
    assert subject.state.consent[("marketing", "sms")].state == WITHDRAWN


def test_same_event_id_in_two_tenants_is_two_events(ledger: Ledger) -> None:
    """Idempotency keys are per tenant, and the same subject id in two tenants is two subjects."""
    ledger.append([fact("acme", "s1", "e1"), fact("globex", "s1", "e1", "consent.withdrawn")])
    assert ledger.subject("acme", "s1").state.consent[("marketing", "sms")].state == GRANTED
    assert ledger.subject("globex", "s1").state.consent[("marketing", "sms")].state == WITHDRAWN
    assert subject_id("acme", "s1") != subject_id("globex", "s1")


def test_unknown_subject_is_an_error(ledger: Ledger) -> None:
    """Loading a subject the tenant does not have raises UnknownSubject."""
    ledger.append([fact("acme", "s1", "e1")])
    with pytest.raises(UnknownSubject):
        ledger.subject("globex", "s1")


def test_events_are_readable_by_the_library_in_total_order(ledger: Ledger) -> None:
    """Rows written by COPY are the library's own notifications, ids ascending."""
    ledger.append([fact("acme", f"s{i}", f"e{i}") for i in range(50)])
    notifications = ledger.recorder.select_notifications(start=None, limit=1000)
    assert len(notifications) == 100  # a registration and a fact per subject
    ids = [n.id for n in notifications]
    assert ids == sorted(ids)
