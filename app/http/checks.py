"""The hot question for senders: may this subject (or these 10,000) be contacted now?"""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, Field

from app.http.auth import Key, gate
from app.http.json import Json
from app.http.params import Channel, Moment, Purpose, SubjectPath, TenantPath, Text
from ledger.access import AUDITOR, CHECKER
from projections import queries
from projections.timeline import may_contact_at

router = APIRouter(prefix="/v1/tenants/{tenant}", tags=["checks"])
MAX_SUBJECTS = 10_000


class Decision(BaseModel):
    """The `check --json` contract."""

    allowed: bool
    reason: str
    event_id: str | None = Field(description="the event that decided it, if one did")

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "allowed": True,
                    "reason": "consent granted for marketing on sms since 2026-01-31T09:30:00+00:00",
                    "event_id": "evt-1",
                }
            ]
        }
    }


class BulkCheck(BaseModel):
    """Up to 10,000 subjects of the tenant, for one purpose on one channel."""

    purpose: Purpose
    channel: Channel
    subjects: list[Text] = Field(min_length=1, max_length=MAX_SUBJECTS)


class Denied(BaseModel):
    """A subject that may not be contacted, and why."""

    subject: str
    reason: str
    event_id: str | None


class BulkAnswer(BaseModel):
    """Who may be contacted and who may not (unknown subjects are denied as unknown)."""

    purpose: str
    channel: str
    allowed: list[str]
    denied: list[Denied]


@router.get(
    "/subjects/{subject}/check",
    response_model=Decision,
    summary="may this subject be contacted for a purpose on a channel (now, or at a past instant)?",
)
def check(
    request: Request,
    *,
    tenant: TenantPath,
    subject: SubjectPath,
    purpose: Purpose,
    channel: Channel,
    at: Annotated[Moment | None, Query(description="answer for this event time instead of now")] = None,
    known_at: Annotated[Moment | None, Query(description="counting only what was recorded by then")] = None,
    credentials: Key,
) -> Json:
    """The decision, its reason and the deciding event; 404 for a subject the tenant does not have."""
    gate(request, credentials, tenant, CHECKER, AUDITOR)
    ledger = request.app.state.services.ledger
    if at is None and known_at is None:
        decision = queries.may_contact(ledger, tenant, subject, purpose, channel)
    else:
        moment = at or datetime.now(UTC)
        decision = may_contact_at(ledger, tenant, subject, purpose, channel, at=moment, known_at=known_at)
    request.app.state.metrics.decided(int(decision.allowed), int(not decision.allowed))
    return Json({"allowed": decision.allowed, "reason": decision.reason, "event_id": decision.event_id})


@router.post("/checks", response_model=BulkAnswer, summary="bulk check: up to 10,000 subjects in one query")
def bulk_check(
    request: Request,
    *,
    tenant: TenantPath,
    body: Annotated[
        BulkCheck,
        Body(
            openapi_examples={
                "campaign": {
                    "summary": "an SMS marketing campaign",
                    "value": {
                        "purpose": "marketing",
                        "channel": "sms",
                        "subjects": ["contact-1", "contact-2"],
                    },
                }
            }
        ),
    ],
    credentials: Key,
) -> Json:
    """Allowed subjects by id; denied ones with the reason and the deciding event."""
    gate(request, credentials, tenant, CHECKER, AUDITOR)
    ledger = request.app.state.services.ledger
    decisions = queries.may_contact_many(ledger, tenant, body.subjects, body.purpose, body.channel)
    allowed = [subject for subject, decision in decisions.items() if decision.allowed]
    denied = [
        {"subject": subject, "reason": decision.reason, "event_id": decision.event_id}
        for subject, decision in decisions.items()
        if not decision.allowed
    ]
    request.app.state.metrics.decided(len(allowed), len(denied))
    return Json({"purpose": body.purpose, "channel": body.channel, "allowed": allowed, "denied": denied})
