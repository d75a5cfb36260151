"""The tenant's pages: the picker (admin), the overview, the subjects and one subject's story."""

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from app.console.render import PAGE, moment, page, share
from app.console.sessions import PATH, Posted, Seeing, Signed, not_found
from app.http.params import EventPath, SubjectPath, TenantPath
from ledger.errors import UnknownSubject
from ledger.horizon import Horizon, horizon
from ledger.retention import END_OF_TIME
from ledger.state import CHANNELS, PURPOSES
from ledger.store import Ledger
from projections import queries
from projections.history import Entry, entry, history
from projections.overview import overview, subjects_page
from projections.receipts import receipt
from projections.retention import open_orders
from projections.timeline import state_at

router = APIRouter()
Text = Annotated[str, Query(max_length=200, pattern=r"^[^\x00-\x1f]*$")]


def _services(request: Request) -> Any:
    return request.app.state.services


@router.get("/")
def home(request: Request, session: Signed) -> Response:
    """An auditor goes to its tenant; an admin picks one."""
    if session.key.tenant is not None:
        return RedirectResponse(f"{PATH}/t/{session.key.tenant}", 303)
    tenants = queries.counts(_services(request).ledger)
    return page(request, "tenants.html", {"tenants": tenants})


@router.get("/t/{tenant}")
def tenant_overview(request: Request, tenant: TenantPath, session: Seeing) -> Response:
    """Subjects, events, the rights-request and purge clocks, the last checkpoint and verification."""
    services = _services(request)
    found = overview(services.ledger, tenant, datetime.now(UTC), services.settings.purge_confirm_days)
    return page(request, "overview.html", {"tenant": tenant, "o": found})


@router.get("/t/{tenant}/subjects")
def subjects(request: Request, tenant: TenantPath, session: Seeing, start: Text = "") -> Response:
    """The tenant's subjects from id `start` on, a page at a time (keyset)."""
    rows = subjects_page(_services(request).ledger, tenant, start, PAGE + 1)
    following = rows[PAGE]["subject"] if len(rows) > PAGE else None
    return page(
        request, "subjects.html", {"tenant": tenant, "rows": rows[:PAGE], "start": start, "next": following}
    )


@dataclass(frozen=True)
class Replay:
    """The instants a subject is shown at: as of an event time, as known at a recording time."""

    as_of: datetime | None
    known_at: datetime | None

    @property
    def now(self) -> bool:
        """True when neither is given: the current state, from the read model."""
        return self.as_of is None and self.known_at is None


@router.get("/t/{tenant}/subjects/{subject}")
def subject(
    request: Request,
    *,
    tenant: TenantPath,
    subject: SubjectPath,
    session: Seeing,
    as_of: Text = "",
    known_at: Text = "",
    after: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """A subject: consent matrix, holdings and their retention, shares, requests, the timeline."""
    replay = Replay(moment(as_of, "state as of"), moment(known_at, "as known at"))
    return _subject_page(request, tenant, subject, replay, after, opened=False)


@router.post("/t/{tenant}/subjects/{subject}/open")
async def open_subject(
    request: Request, tenant: TenantPath, subject: SubjectPath, session: Posted
) -> Response:
    """The same page with the personal values of the timeline shown; the access log records it first."""
    if not session.key.sees(tenant):
        raise not_found(f"tenant {tenant!r}")
    form = await request.form()
    after = str(form.get("after") or "0")
    ledger: Ledger = _services(request).ledger
    queries.subject_state(ledger, tenant, subject)  # nobody opens, and no log names, a subject not there
    with ledger.writer.datastore.transaction(commit=True) as curs:
        ledger.access_log.record(curs, session.key, tenant, subject, "console.open")
    return _subject_page(
        request, tenant, subject, Replay(None, None), int(after) if after.isdigit() else 0, opened=True
    )


def _subject_page(
    request: Request, tenant: str, subject: str, replay: Replay, after: int, *, opened: bool
) -> Response:
    services = _services(request)
    ledger: Ledger = services.ledger
    now = datetime.now(UTC)
    if replay.now:
        state = queries.subject_state(ledger, tenant, subject)
        orders = open_orders(ledger, now, services.settings.purge_confirm_days, tenant, subject)
        rules = services.rules()
    else:
        state = state_at(ledger, tenant, subject, replay.as_of or now, replay.known_at)
        if state.first_seen is None:
            raise UnknownSubject(f"tenant {tenant!r} has no subject {subject!r} by then")
        orders, rules = None, services.rules(replay.as_of)
    document = queries.as_json(state, rules, orders, replay.as_of or now)
    entries = history(ledger, tenant, subject, after, PAGE + 2)  # the first page loses the registration
    found: Horizon | None = (
        None
        if state.erased_at is None
        else horizon(state.erased_at, services.settings.topic_retention, ledger.key_epochs())
    )
    return page(
        request,
        "subject.html",
        {
            "tenant": tenant,
            "subject": subject,
            "s": document,
            "state": state,
            "replay": replay,
            "matrix": _matrix(document["consent"]),
            "purposes": [p for p in PURPOSES if any(c["purpose"] == p for c in document["consent"])],
            "channels": [c for c in CHANNELS if any(x["channel"] == c for x in document["consent"])],
            "holdings": [_with_bar(h, now) for h in document["holdings"]],
            "entries": entries[:PAGE],
            "after": after,
            "next": entries[PAGE - 1].version if len(entries) > PAGE else None,
            "opened": opened,
            "horizon": found,
        },
    )


def _matrix(consents: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["purpose"], c["channel"]): c for c in consents}


def _with_bar(holding: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A holding with how much of its retention has passed (0 to 100, None: no expiry to count to)."""
    start, end = holding["first_collected"], holding.get("retention_expires_at")
    passed = None
    if end is not None:
        begun, ends = datetime.fromisoformat(start), datetime.fromisoformat(end)
        whole = (ends - begun).total_seconds()
        passed = 0.0 if ends == END_OF_TIME else share((now - begun).total_seconds(), whole)
    return holding | {"passed": passed}


@router.get("/t/{tenant}/subjects/{subject}/events/{event_id}")
def event(
    request: Request, tenant: TenantPath, subject: SubjectPath, event_id: EventPath, session: Seeing
) -> Response:
    """One event of the subject: its times, source, type and data (personal values never shown here)."""
    found: Entry = entry(_services(request).ledger, tenant, subject, event_id)
    return page(
        request,
        "event.html",
        {"tenant": tenant, "subject": subject, "e": found, "page_after": max(found.version - 1, 0)},
    )


@router.get("/t/{tenant}/access-log")
def access_log(
    request: Request, tenant: TenantPath, session: Seeing, before: Annotated[int | None, Query(ge=1)] = None
) -> Response:
    """Who opened which subject's personal data, through the console or the API, newest first."""
    ledger: Ledger = _services(request).ledger
    with ledger.writer.datastore.transaction() as curs:
        rows = ledger.access_log.latest(curs, tenant, before, PAGE + 1)
    following = rows[PAGE - 1][0] if len(rows) > PAGE else None
    return page(
        request,
        "access_log.html",
        {"tenant": tenant, "rows": rows[:PAGE], "before": before, "next": following},
    )


@router.get("/t/{tenant}/receipts/{event_id}.json")
def consent_receipt(request: Request, tenant: TenantPath, event_id: EventPath, session: Seeing) -> Response:
    """The receipt of a consent, withdrawal or opt-out, as `consent-ledger receipt --json` writes it:
    checkable with `verify-receipt` and the published key alone."""
    found = receipt(_services(request).ledger, tenant, event_id)
    return Response(
        orjson.dumps(queries.plain(asdict(found)), option=orjson.OPT_INDENT_2),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="receipt-{event_id}.json"'},
    )
