"""Answering a data subject's request over HTTP: an export recorded as the answer to an access or
portability request, as `export --answers REQUEST` records it."""

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.http.auth import Key, gate
from app.http.params import RequestPath, SubjectPath, TenantPath
from ledger.access import ADMIN
from projections.export import export_text
from projections.rights import answerable, export_digest, record_export

router = APIRouter(prefix="/v1/tenants/{tenant}", tags=["rights"])
EXAMPLE: dict[str, Any] = {
    "format": "urn:consent-ledger:export:v1",
    "generated_at": "2026-11-26T05:10:00Z",
    "controller": "acme",
    "subject": "user-42",
    "holdings": [],
    "personal_data": [],
}
HEADERS = {
    "X-Export-SHA256": {"description": "the SHA-256 of the body, as recorded", "schema": {"type": "string"}},
    "X-Event-Id": {"description": "the rights.fulfilled event recorded", "schema": {"type": "string"}},
}


@router.post(
    "/subjects/{subject}/requests/{request_id}/export",
    summary="answer an access or portability request with the subject's export (logged, recorded)",
    status_code=201,
    responses={201: {"content": {"application/json": {"example": EXAMPLE}}, "headers": HEADERS}},
)
def answer_with_export(
    request: Request, *, tenant: TenantPath, subject: SubjectPath, request_id: RequestPath, credentials: Key
) -> Response:
    """The `export` document, whose SHA-256 is recorded as a `rights.fulfilled` answering the request;
    refused (400, nothing recorded) unless the request is the subject's, open, verified, and asks for
    access or portability. Admin only: it writes a fact, and an auditor's key only reads."""
    key = gate(request, credentials, tenant, ADMIN)
    services = request.app.state.services
    ledger = services.ledger
    answerable(ledger, tenant, subject, request_id)  # refused before any personal data is read
    ledger.record_access(key, tenant, subject, "export")
    text = export_text(ledger, tenant, subject, services.rules())
    digest = export_digest(text)
    event_id = record_export(ledger, tenant, subject, request_id, digest=digest, at=datetime.now(UTC))
    headers = {"X-Export-SHA256": digest, "X-Event-Id": event_id}
    return Response(text, 201, headers, media_type="application/json")
