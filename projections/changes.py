"""Stored events as the fold needs them, read straight from their JSON, and the fold over them.

The projector and a rebuild decode every stored fact. The library's decoder walks each document
with a Python object hook and builds the whole event; the fold needs five fields, so these are read
with orjson (once inflated, ledger/compression.py) and the one datetime parsed by hand, about five
times faster. An event stored by an older
version of its class than the current one (an upcast is due) goes through the library's mapper, which
runs the class's `upcast_v<N>_v<N+1>` methods. The library writes `class_version` only above 1, so a
missing one means version 1.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic

from ledger.compression import inflate
from ledger.state import SubjectState, apply_erasure, apply_fact
from ledger.subject import FACT_CLASSES, Subject

_KINDS = {get_topic(cls): cls.wire_type for cls in FACT_CLASSES.values()}
_ERASED = get_topic(Subject.Erased)
_CLASSES: dict[str, type] = {get_topic(cls): cls for cls in FACT_CLASSES.values()} | {_ERASED: Subject.Erased}
# Only these change a subject's state; filtering in PostgreSQL spares reading the rest.
TOPICS = [*_KINDS, _ERASED]
PROJECTED = frozenset(TOPICS)


@dataclass(frozen=True, slots=True)
class Change:
    """One fact (its CloudEvents type as `kind`) or, with `kind` None, an erasure."""

    tenant: str
    subject: str
    kind: str | None
    event_id: str
    at: datetime  # when it happened (for an erasure, when it was recorded)
    recorded: datetime
    data: dict[str, Any]
    version: int = 0  # its place in the subject's log


def decode(mapper: Mapper[UUID], originator_id: UUID | str, version: int, topic: str, state: bytes) -> Change:
    """The change one stored event of a projected topic makes."""
    fields = orjson.loads(inflate(state))
    # Read the class's version at call time: it is what the mapper will compare with, too.
    if fields.get("class_version", 1) < getattr(_CLASSES[topic], "class_version", 1):
        return _upcast(mapper, StoredEvent(originator_id, version, topic, state))
    tenant, subject, recorded = fields["tenant"], fields["subject"], _moment(fields["timestamp"])
    if topic == _ERASED:
        return Change(tenant, subject, None, "", recorded, recorded, {})
    moment = _moment(fields["occurred_at"])
    kind = _KINDS[topic]
    return Change(tenant, subject, kind, fields["event_id"], moment, recorded, fields["data"], version)


def fold(states: dict[tuple[str, str], SubjectState], changes: Iterable[Change]) -> None:
    """Apply `changes` in order to the states they concern, creating those not yet in `states`."""
    for change in changes:
        key = (change.tenant, change.subject)
        state = states.get(key)
        if state is None:
            state = states[key] = SubjectState(tenant=change.tenant, subject=change.subject)
        if change.kind is None:
            apply_erasure(state, change.at)
        else:
            apply_fact(
                state,
                change.kind,
                change.event_id,
                change.at,
                change.data,
                recorded=change.recorded,
                version=change.version,
            )


def decode_all(mapper: Mapper[UUID], events: Iterable[StoredEvent]) -> Iterator[Change]:
    """`decode` over stored events (the library's notifications are stored events)."""
    for event in events:
        yield decode(mapper, event.originator_id, event.originator_version, event.topic, event.state)


def _moment(value: dict[str, str]) -> datetime:
    """A datetime as the library's transcoder stores it: `{"_type_": "datetime_iso", "_data_": ...}`."""
    return datetime.fromisoformat(value["_data_"])


def _upcast(mapper: Mapper[UUID], stored: StoredEvent) -> Change:
    event = mapper.to_domain_event(stored)
    if isinstance(event, Subject.Erased):
        return Change(event.tenant, event.subject, None, "", event.timestamp, event.timestamp, {})
    assert isinstance(event, Subject.FactRecorded)
    kind, moment = event.wire_type, event.occurred_at
    return Change(
        event.tenant,
        event.subject,
        kind,
        event.event_id,
        moment,
        event.timestamp,
        event.data,
        event.originator_version,
    )
