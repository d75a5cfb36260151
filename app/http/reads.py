"""The auditor's questions: the CLI's queries, answered with the same JSON as its `--json`.

Reads that open a subject's personal data (history, export) are recorded in the access log before
they are answered, so no such read goes unrecorded.
"""

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request

from app.http import examples
from app.http.auth import Key, gate
from app.http.examples import answer
from app.http.json import Json
from app.http.params import EventPath, Moment, SubjectPath, System, TenantPath, Text
from app.http.problems import Problem
from ledger.access import ADMIN, AUDITOR, ApiKey
from ledger.audit import verify
from ledger.store import Ledger
from projections import names, queries
from projections.breach import breach_impact
from projections.export import export
from projections.history import history
from projections.policies import adoptions
from projections.receipts import receipt
from projections.retention import due_for_purge, sweeps
from projections.rights import overdue
from projections.timeline import subject_document

tenant_router = APIRouter(prefix="/v1/tenants/{tenant}", tags=["reads"])
router = APIRouter(prefix="/v1", tags=["reads"])
When = Annotated[Moment | None, Query(description="as if it were this instant (RFC 3339; default now)")]


@tenant_router.get(
    "/subjects/{subject}",
    summary="what the ledger knows about a subject (`subject --json`)",
    responses=answer(examples.SUBJECT),
)
def subject_state(
    request: Request,
    *,
    tenant: TenantPath,
    subject: SubjectPath,
    as_of: Annotated[Moment | None, Query(description="the state at this event time")] = None,
    known_at: Annotated[Moment | None, Query(description="counting only what was recorded by then")] = None,
    credentials: Key,
) -> Json:
    """Holdings with retention, consent per purpose and channel, shares, requests, holds, violations."""
    gate(request, credentials, tenant, AUDITOR)
    services = request.app.state.services
    document, _ = subject_document(
        services.ledger,
        tenant,
        subject,
        rules=services.rules(),
        confirm_days=services.settings.purge_confirm_days,
        topic_retention=services.settings.topic_retention,
        as_of=as_of,
        known_at=known_at,
    )
    return Json(document)


@tenant_router.get(
    "/subjects/{subject}/history",
    summary="every event of a subject, personal values opened (logged)",
    responses=answer(examples.HISTORY),
)
def subject_history(request: Request, *, tenant: TenantPath, subject: SubjectPath, credentials: Key) -> Json:
    """The `history --json` list; this read is recorded in the access log."""
    key = gate(request, credentials, tenant, AUDITOR)
    ledger = _recorded(request, key, tenant, subject, "history")
    return Json([queries.plain(asdict(entry)) for entry in history(ledger, tenant, subject)])


@tenant_router.get(
    "/subjects/{subject}/export",
    summary="GDPR Art. 15/20 export of a subject (logged)",
    responses=answer(examples.EXPORT),
)
def subject_export(request: Request, *, tenant: TenantPath, subject: SubjectPath, credentials: Key) -> Json:
    """The `export` document; 410 once the subject is erased; this read is recorded in the access log."""
    key = gate(request, credentials, tenant, AUDITOR)
    ledger = _recorded(request, key, tenant, subject, "export")
    return Json(queries.plain(export(ledger, tenant, subject, request.app.state.services.rules())))


def _recorded(
    request: Request, key: ApiKey, tenant: TenantPath, subject: SubjectPath, endpoint: str
) -> Ledger:
    ledger: Ledger = request.app.state.services.ledger
    ledger.record_access(key, tenant, subject, endpoint)
    return ledger


@tenant_router.get(
    "/receipts/{event_id}", summary="a consent receipt (`receipt --json`)", responses=answer(examples.RECEIPT)
)
def consent_receipt(request: Request, *, tenant: TenantPath, event_id: EventPath, credentials: Key) -> Json:
    """The receipt of a consent.given or consent.withdrawn, linked to the hash chain."""
    gate(request, credentials, tenant, AUDITOR)
    return Json(queries.plain(asdict(receipt(request.app.state.services.ledger, tenant, event_id))))


@tenant_router.get(
    "/breach",
    summary="whose data was exposed in a breach of these systems (`breach --json`)",
    responses=answer(examples.BREACH),
)
def breach(
    request: Request,
    *,
    tenant: TenantPath,
    system: Annotated[
        list[System], Query(min_length=1, description="a breached system (repeat for several)")
    ],
    window_from: Annotated[Moment, Query(alias="from")],
    window_to: Annotated[Moment, Query(alias="to")],
    category: Annotated[list[Text] | None, Query(description="only these categories")] = None,
    discovered_at: When = None,
    subjects: bool = False,
    credentials: Key,
) -> Json:
    """Subjects affected, counts per jurisdiction and category, notification deadlines."""
    gate(request, credentials, tenant, AUDITOR)
    if window_from > window_to:
        raise Problem(400, "`from` is after `to`: give the window in order")
    ledger = request.app.state.services.ledger
    # A typo gets "did you mean" among the tenant's own systems, not 0 subjects. (Never
    # names.require_tenant here: its answer lists other tenants.)
    names.require_systems(ledger, tenant, system)
    names.require_vocabulary("category", category or ())
    impact = breach_impact(
        ledger,
        tenant,
        system,
        (window_from, window_to),
        discovered_at=discovered_at or datetime.now(UTC),
        categories=category,
        list_subjects=subjects,
    )
    return Json(queries.plain(asdict(impact)))


@tenant_router.get(
    "/overdue",
    summary="open rights requests on their clocks, children's data to erase, unconfirmed purge orders",
    responses=answer(examples.OVERDUE),
)
def overdue_requests(
    request: Request,
    *,
    tenant: TenantPath,
    within: Annotated[int, Query(ge=0, le=3650, description="flag requests due within this many days")] = 7,
    at: When = None,
    credentials: Key,
) -> Json:
    """The `overdue --json` document."""
    gate(request, credentials, tenant, AUDITOR)
    services = request.app.state.services
    now = at or datetime.now(UTC)
    found = overdue(
        services.ledger,
        tenant,
        now,
        warn=timedelta(days=within),
        confirm_days=services.settings.purge_confirm_days,
        child_within=services.settings.child_erasure_within(tenant),
    )
    return Json(found.as_json())


@tenant_router.get(
    "/purges",
    summary="what the retention sweep would order purged (`purge --dry-run --json`)",
    responses=answer(examples.PURGES),
)
def purge_dry_run(request: Request, *, tenant: TenantPath, at: When = None, credentials: Key) -> Json:
    """Every holding of the tenant still held whose retention has run out, with its rule."""
    gate(request, credentials, tenant, AUDITOR)
    services = request.app.state.services
    now = at or datetime.now(UTC)
    confirm_days = services.settings.purge_confirm_days
    due = due_for_purge(services.ledger, services.rules(now), now, confirm_days, tenant=tenant)
    return Json([item.as_json() for item in due])


@tenant_router.get(
    "/stats",
    summary="events stored and subjects projected for the tenant",
    responses=answer(examples.TENANT_STATS),
)
def tenant_stats(request: Request, *, tenant: TenantPath, credentials: Key) -> Json:
    """`stats --json` for one tenant: its counts, and the sweeps with this tenant's orders alone
    (dead letters are not per tenant: see /metrics)."""
    gate(request, credentials, tenant, AUDITOR)
    ledger = request.app.state.services.ledger
    counts = queries.counts(ledger)
    return Json(
        {
            "tenants": {tenant: counts.get(tenant, {"events": 0, "subjects": 0})},
            **sweeps(ledger, tenant).as_json(tenant),
        }
    )


@tenant_router.get(
    "/access-log",
    summary="who read which subject's personal data, when",
    responses=answer(examples.ACCESS_LOG),
)
def access_log(
    request: Request, *, tenant: TenantPath, subject: Text | None = None, credentials: Key
) -> Json:
    """The tenant's access log (or one subject's), oldest first."""
    gate(request, credentials, tenant, AUDITOR)
    entries = request.app.state.services.ledger.accesses(tenant, subject)
    return Json([queries.plain(asdict(entry)) for entry in entries])


@router.get(
    "/policies", summary="adopted retention policies (`policies --json`)", responses=answer(examples.POLICIES)
)
def policies(request: Request, *, at: When = None, credentials: Key) -> Json:
    """Who adopted which policy, when, why, and what changed; with `at`, the one in force then."""
    gate(request, credentials, None, AUDITOR)
    return Json(adoptions(request.app.state.services.ledger, at))


@router.get("/stats", summary="events and subjects of every tenant (admin)", responses=answer(examples.STATS))
def stats(request: Request, *, credentials: Key) -> Json:
    """`stats --json` without the dead-letter count and the lags (see /metrics)."""
    gate(request, credentials, None, ADMIN)
    ledger = request.app.state.services.ledger
    return Json({"tenants": queries.counts(ledger), **sweeps(ledger).as_json()})


@router.get(
    "/verify",
    summary="recompute every hash chain and checkpoint (admin; `verify --json`)",
    responses=answer(examples.VERIFY),
)
def verify_log(request: Request, *, credentials: Key) -> Json:
    """`ok` and every break found; reads the whole log, so it takes as long as the CLI's verify."""
    gate(request, credentials, None, ADMIN)
    services = request.app.state.services
    report = verify(services.ledger, services.public_keys)
    return Json(queries.plain({**asdict(report), "ok": report.ok}))
