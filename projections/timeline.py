"""Point-in-time state, bitemporal: as it was at T by event time, knowing only what was recorded by K.

Answered from the event store, not the current tables: the subject's events are folded in event-time
order, so a late event (recorded after others but with an earlier time) lands where it belongs.
"""

from datetime import datetime

from ledger.state import SubjectState, apply_erasure, apply_fact
from ledger.store import Ledger
from ledger.subject import Subject


def state_at(
    ledger: Ledger, tenant: str, subject: str, as_of: datetime, known_at: datetime | None = None
) -> SubjectState:
    """The subject's state at event time `as_of`, from events the ledger had recorded by `known_at`."""
    timeline: list[tuple[datetime, int, Subject.FactRecorded | Subject.Erased]] = []
    for event in ledger.subject_events(tenant, subject):
        if not isinstance(event, Subject.FactRecorded | Subject.Erased):
            continue
        if known_at is not None and event.timestamp > known_at:
            continue
        if isinstance(event, Subject.FactRecorded) and event.occurred_at <= as_of:
            timeline.append((event.occurred_at, event.originator_version, event))
        elif isinstance(event, Subject.Erased) and event.timestamp <= as_of:
            timeline.append((event.timestamp, event.originator_version, event))
    state = SubjectState(tenant=tenant, subject=subject)
    for _, _, event in sorted(timeline, key=lambda item: (item[0], item[1])):
        if isinstance(event, Subject.Erased):
            apply_erasure(state, event.timestamp)
        else:
            apply_fact(state, event.wire_type, event.event_id, event.occurred_at, event.data)
    return state
