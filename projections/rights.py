"""Rights requests across a tenant: what is open and when it is due, what was answered late, which
children's data is on its short clock, and `export` recording the answer to an access request."""

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from psycopg.sql import SQL

from ledger.errors import UsageError
from ledger.retry import Skipped
from ledger.rights import ChildClock, RightsClock, child_clock, clocks, deadline_rules
from ledger.state import OPEN, RightsRequest
from ledger.store import Ledger, RecordFact
from ledger.times import rfc3339
from projections.queries import plain
from projections.retention import subject_states, unconfirmed_orders

OPEN_REQUESTS = SQL("SELECT DISTINCT tenant, subject FROM proj_rights_requests WHERE status = 'open'")
CHILD_SIGNALS = SQL("SELECT DISTINCT tenant, subject FROM proj_child_signals WHERE true")
REQUESTED = SQL("SELECT DISTINCT tenant, subject FROM proj_rights_requests WHERE requested_at IS NOT NULL")
EXPORTED = ("access", "portability")  # the rights an export answers
EXPORT_SOURCE = "urn:consent-ledger:export"


def open_requests(ledger: Ledger, tenant: str, now: datetime) -> list[RightsClock]:
    """Every open rights request of the tenant on its clock, the soonest due first."""
    found = [
        found
        for state in subject_states(ledger, tenant, Skipped(), OPEN_REQUESTS)
        for found in clocks(state, now, deadline_rules())
        if found.status == OPEN
    ]
    return sorted(found, key=lambda c: (c.deadline, c.subject, c.request_id))


def late_requests(
    ledger: Ledger, tenant: str, now: datetime, start: datetime | None = None, end: datetime | None = None
) -> list[RightsClock]:
    """The tenant's requests whose deadline passed before they were answered (answered late, or still
    open at `now`), with the deadline in [start, end) when given, by deadline: what the violations
    report lists, and `overdue` counts."""
    late = [
        found
        for state in subject_states(ledger, tenant, Skipped(), REQUESTED)
        for found in clocks(state, now, deadline_rules())
        if (found.late or found.overdue)
        and (start is None or found.deadline >= start)
        and (end is None or found.deadline < end)
    ]
    return sorted(late, key=lambda c: (c.deadline, c.subject, c.request_id))


def children_due(ledger: Ledger, tenant: str, now: datetime, within: timedelta) -> list[ChildClock]:
    """The tenant's subjects whose data says they are children and is still held, each on a clock of
    `within` from the first such signal, the soonest due first."""
    found = [
        found
        for state in subject_states(ledger, tenant, Skipped(), CHILD_SIGNALS)
        if (found := child_clock(state, within, now, deadline_rules())) is not None
    ]
    return sorted(found, key=lambda c: (c.deadline, c.subject))


@dataclass(frozen=True)
class Overdue:
    """What `overdue` reports for a tenant at an instant."""

    requests: list[RightsClock]
    children: list[ChildClock]
    purge_orders: list[dict[str, object]]
    answered_late: int
    due_soon: set[str] = field(default_factory=set)  # request ids due within the warning window

    def as_json(self) -> dict[str, Any]:
        """The `overdue --json` document."""
        return {
            "requests": [
                plain(asdict(c)) | {"due_soon": c.request_id in self.due_soon} for c in self.requests
            ],
            "children": [plain(asdict(c)) for c in self.children],
            "purge_orders": plain(self.purge_orders),
            "answered_late": self.answered_late,
        }


def overdue(
    ledger: Ledger,
    tenant: str,
    now: datetime,
    *,
    warn: timedelta,
    confirm_days: int,
    child_within: timedelta | None,
) -> Overdue:
    """Every open rights request with its deadline and time left (flagged overdue, or due within
    `warn`), children's data on its clock (`child_within`; None where the tenant may hold it), purge
    orders unconfirmed after `confirm_days`, and how many requests were answered late."""
    requests = open_requests(ledger, tenant, now)
    return Overdue(
        requests=requests,
        children=[] if child_within is None else children_due(ledger, tenant, now, child_within),
        purge_orders=unconfirmed_orders(ledger, tenant, now, confirm_days),
        answered_late=sum(clock.late for clock in late_requests(ledger, tenant, now)),
        due_soon={c.request_id for c in requests if not c.overdue and c.deadline - now <= warn},
    )


def left(seconds: int) -> str:
    """Time left as a person reads it: `3 d 4 h left`, `overdue by 2 h`."""
    days, rest = divmod(abs(seconds), 86_400)
    text = f"{days} d {rest // 3600} h" if days else f"{rest // 3600} h {rest % 3600 // 60} min"
    return f"{text} left" if seconds > 0 else f"overdue by {text}"


def export_digest(text: str) -> str:
    """The SHA-256 an access answer records: of the export exactly as written."""
    return hashlib.sha256(text.encode()).hexdigest()


def answerable(ledger: Ledger, tenant: str, subject: str, request_id: str) -> RightsRequest:
    """The subject's open, verified access or portability request `request_id`, which an export may
    answer; else UsageError saying why not."""
    request = ledger.subject(tenant, subject).state.rights_requests.get(request_id)
    if request is None or request.right is None:
        raise UsageError(f"subject {subject!r} of tenant {tenant!r} has no rights request {request_id!r}")
    if request.right not in EXPORTED:
        raise UsageError(
            f"request {request_id} asks for {request.right}: an export answers access or portability"
        )
    if request.status != OPEN:
        raise UsageError(f"request {request_id} was answered ({request.status}) already")
    if request.verified_at is None:
        raise UsageError(
            f"request {request_id} is not verified: an export discloses personal data only to a verified "
            "requester (publish rights.verified first)"
        )
    return request


def record_export(
    ledger: Ledger, tenant: str, subject: str, request_id: str, *, digest: str, at: datetime
) -> str:
    """Record that the export with SHA-256 `digest` answered the subject's request `request_id` (a
    `rights.fulfilled`, stored like any fact and projected like one); return its event id. Refused
    (UsageError) unless `answerable`."""
    request = answerable(ledger, tenant, subject, request_id)
    event_id = f"export-{request_id}-{digest[:16]}"
    outcome = "copy_provided" if request.right == "access" else "export_provided"
    data = {"request_id": request_id, "right": request.right, "outcome": outcome, "export_sha256": digest}
    fact = RecordFact(
        tenant=tenant,
        subject=subject,
        event_id=event_id,
        type="rights.fulfilled",
        source=EXPORT_SOURCE,
        occurred_at=at,
        schema_version=1,
        data=data,
        personal={},
        origin=f"export {rfc3339(at)}",
    )
    ledger.append([fact])
    return event_id
