"""The event store on real PostgreSQL: batched, ordered, idempotent by (tenant, event id)."""

import pytest

from ledger.errors import UnknownSubject
from ledger.state import GRANTED, WITHDRAWN
from ledger.store import Ledger
from ledger.subject import subject_id
from tests.helpers import fact

pytestmark = pytest.mark.services


def test_repeated_ids_are_stored_once(ledger: Ledger) -> None:
    """The same event id, within a batch or across batches, is stored once."""
    first = ledger.append([fact("acme", "s1", "e1"), fact("acme", "s1", "e1"), fact("acme", "s1", "e2")])
    again = ledger.append([fact("acme", "s1", "e2"), fact("acme", "s1", "e3")])
    assert (first.stored, first.duplicates) == (2, 1)
    assert (again.stored, again.duplicates) == (1, 1)
    assert ledger.writer.counts() == {"acme": 3}


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
