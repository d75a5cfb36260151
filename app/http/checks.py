"""The hot question for senders: may this subject (or these 10,000) be contacted now?"""

import functools
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from psycopg.rows import DictRow
from psycopg.sql import SQL
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from app.http import examples
from app.http.auth import Credentials, Key, admit, gate, presented
from app.http.json import Json
from app.http.params import Channel, Moment, Purpose, SubjectPath, TenantPath, Text
from app.http.pool import Pool
from app.http.problems import Problem
from ledger.access import ADMIN, AUDITOR, CHECKER, ApiKeys, digest, key_of
from ledger.contact import Decision as Decided
from ledger.errors import UnknownName, UnknownSubject
from projections import names, queries
from projections.timeline import may_contact_at

router = APIRouter(prefix="/v1/tenants/{tenant}", tags=["checks"])
MAX_SUBJECTS = 10_000
ROLES = (CHECKER, AUDITOR)  # who may check, besides admins
ROLES_SEEING = [*ROLES, ADMIN]


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

    model_config = {"json_schema_extra": {"examples": [examples.BULK]}}


@router.get(
    "/subjects/{subject}/check",
    response_model=Decision,
    summary="may this subject be contacted for a purpose on a channel (now, or at a past instant)?",
)
async def check(
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
    text = presented(credentials)
    if at is not None or known_at is not None:
        moment = at or datetime.now(UTC)
        return await run_in_threadpool(
            _check_at, request, credentials, (tenant, subject, purpose, channel), moment, known_at
        )
    state = request.app.state
    row = await keyed_row(
        state.pool, state.services.ledger.api_keys, text, (tenant, subject, purpose, channel)
    )
    admit(request, None if row is None else key_of(row), tenant, *ROLES)
    assert row is not None  # admitted: the key was found
    _require_channel(request, tenant, channel)
    decision = queries.decision_of(row, purpose, channel)
    if decision is None:
        raise UnknownSubject(f"tenant {tenant!r} has no subject {subject!r}: check both ids")
    return _answer(request, decision)


async def keyed_row(
    pool: Pool, keys: ApiKeys, text: str, question: tuple[str, str, str, str]
) -> DictRow | None:
    """The row of the single check's statement (`queries.keyed_decision`) for the key `text` and
    `question` (tenant, subject, purpose, channel); None when no live key has that text."""
    tenant, subject, purpose, channel = question
    async with pool.connection() as conn:
        cursor = await conn.execute(
            keyed_statement(keys),
            {
                "hash": digest(text),
                "roles": ROLES_SEEING,
                "tenant": tenant,
                "subject": subject,
                "purpose": purpose,
                "channel": channel,
            },
            prepare=True,
        )
        return await cursor.fetchone()


@functools.cache
def keyed_statement(keys: ApiKeys) -> SQL:
    """The single check's statement over this key table, composed once."""
    return SQL(queries.keyed_decision(keys.table).as_string())


def _check_at(
    request: Request,
    credentials: Credentials,
    question: tuple[str, str, str, str],
    at: datetime,
    known_at: datetime | None,
) -> Json:
    """A check at a past instant (`question`: tenant, subject, purpose, channel), in the thread pool."""
    tenant, subject, purpose, channel = question
    gate(request, credentials, tenant, *ROLES)
    _require_channel(request, tenant, channel)
    ledger = request.app.state.services.ledger
    decision = may_contact_at(ledger, tenant, subject, purpose, channel, at=at, known_at=known_at)
    return _answer(request, decision)


def _require_channel(request: Request, tenant: str, channel: str) -> None:
    """422, like any word outside the vocabulary, unless the channel is the vocabulary's or the tenant's."""
    try:
        names.require_channel(channel, request.app.state.services.settings.channels_of(tenant))
    except UnknownName as error:
        raise Problem(422, str(error)) from None


def _answer(request: Request, decision: Decided) -> Json:
    request.app.state.metrics.decided(int(decision.allowed), int(not decision.allowed))
    return Json(answer(decision))


def answer(decision: Decided) -> dict[str, object]:
    """The body of a single check's answer (`Decision`)."""
    return {"allowed": decision.allowed, "reason": decision.reason, "event_id": decision.event_id}


@router.post("/checks", response_model=BulkAnswer, summary="bulk check: up to 10,000 subjects in one query")
async def bulk_check(
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
    text = presented(credentials)
    parameters = queries.bulk_parameters(tenant, body.subjects, body.purpose, body.channel)
    async with request.app.state.pool.connection() as conn:
        cursor = await conn.execute(
            keyed_bulk_statement(request.app.state.services.ledger.api_keys),
            parameters | {"hash": digest(text), "roles": ROLES_SEEING},
            prepare=False,  # a generic plan cannot know the batch's size (see queries._bulk)
            binary=True,  # its arrays and times load faster than from text
        )
        row = await cursor.fetchone()
    admit(request, None if row is None else key_of(row), tenant, *ROLES)
    assert row is not None  # admitted: the key was found
    _require_channel(request, tenant, body.channel)
    checked = queries.checked_of(row, body.purpose, body.channel)
    denied = [
        {"subject": subject, "reason": decision.reason, "event_id": decision.event_id}
        for subject, decision in checked.denied.items()
    ]
    request.app.state.metrics.decided(len(checked.allowed), len(denied))
    return Json(
        {"purpose": body.purpose, "channel": body.channel, "allowed": checked.allowed, "denied": denied}
    )


@functools.cache
def keyed_bulk_statement(keys: ApiKeys) -> SQL:
    """The bulk check's statement over this key table, composed once."""
    return SQL(queries.keyed_bulk(keys.table).as_string())
