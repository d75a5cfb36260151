"""The compliance reports over HTTP: violations, the derived record of processing, and drift, with
the same JSON as the CLI's `--json` (and the record also as CSV or a Fides manifest)."""

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from app.http import examples
from app.http.auth import Key, gate
from app.http.examples import answer
from app.http.json import Json
from app.http.params import Moment, TenantPath
from ledger.access import AUDITOR
from ledger.times import period
from projections.drift import drift
from projections.ropa import record_of_processing
from projections.violations import Period, violations

router = APIRouter(prefix="/v1/tenants/{tenant}", tags=["compliance"])
From = Annotated[
    Moment | None, Query(alias="from", description="start of the period (default: the beginning)")
]
To = Annotated[Moment | None, Query(description="end of the period, excluded (default: now)")]


@router.get(
    "/violations",
    summary="every violation the facts show (`violations --json`)",
    responses=answer(examples.VIOLATIONS),
)
def tenant_violations(
    request: Request, *, tenant: TenantPath, start: From = None, to: To = None, credentials: Key
) -> Json:
    """Contacts without consent (as known then and now), late opt-outs, collection after erasure,
    retention overruns, late requests and undeclared recipients, each with its events."""
    gate(request, credentials, tenant, AUDITOR)
    services = request.app.state.services
    now = datetime.now(UTC)
    rules = services.rules(now)
    report = violations(
        services.ledger,
        tenant,
        Period(*period(start, to, now), now),
        rules,
        services.settings.purge_confirm_days,
    )
    return Json(report.as_json())


@router.get(
    "/ropa",
    summary="the Art. 30 record of processing, derived (`ropa --json`, `--csv`, `--format fides`)",
    responses={200: {"content": {"application/json": {"example": examples.ROPA}, "text/csv": {}}}},
)
def tenant_ropa(
    request: Request,
    *,
    tenant: TenantPath,
    start: From = None,
    to: To = None,
    format: Annotated[Literal["json", "csv", "fides"], Query(description="the document's form")] = "json",
    credentials: Key,
) -> Response:
    """Per purpose: categories of data and of subjects, legal bases, systems, recipients with
    countries and transfer mechanisms, retention rules and messages sent, with counts."""
    gate(request, credentials, tenant, AUDITOR)
    services = request.app.state.services
    begin, end = period(start, to, datetime.now(UTC))
    record = record_of_processing(services.ledger, tenant, begin, end, services.rules(end))
    if format == "csv":
        return Response(record.as_csv(), media_type="text/csv")
    return Json(record.as_fides() if format == "fides" else record.as_json())


@router.get(
    "/drift",
    summary="what the facts show that the declaration does not (`drift --json`)",
    responses=answer(examples.DRIFT),
)
def tenant_drift(request: Request, *, tenant: TenantPath, credentials: Key) -> Json:
    """Undeclared recipients, countries, transfer mechanisms, purposes, categories, legal bases, and
    data kept past the declared period; 400 when the tenant never declared."""
    gate(request, credentials, tenant, AUDITOR)
    services = request.app.state.services
    return Json(drift(services.ledger, tenant, datetime.now(UTC)).as_json())
