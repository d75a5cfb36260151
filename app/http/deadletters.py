"""Dead letters over HTTP: the `deadletters` commands. An auditor lists and reads its tenant's
letters (never their bytes); an admin sees every tenant's, opens a letter's original bytes (recorded
in the access log), replays and drops."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request
from pydantic import AfterValidator, BaseModel, Field, WithJsonSchema

from app.http import examples
from app.http.auth import Key, gate
from app.http.examples import answer
from app.http.json import Json
from app.http.params import Moment, Text
from app.http.problems import Problem, documented, not_found
from consumers.replay import replay
from ledger.access import ADMIN, AUDITOR, ApiKey
from ledger.crypto import Unreadable
from ledger.deadletters import REASON_CLASSES, STATUSES, DeadLetter, Selection
from ledger.errors import UnknownEvent
from ledger.store import Ledger
from projections import deadletters

router = APIRouter(prefix="/v1/deadletters", tags=["dead letters"])
LetterPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="the dead letter's id")]
NOT_OPEN = documented(
    {409: "a letter named is not open: replayed or dropped already (the detail names each)"}
)


def _one_of(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"not a {what}: use one of {', '.join(allowed)}")
    return value


ReasonClass = Annotated[
    str,
    AfterValidator(lambda name: _one_of(name, REASON_CLASSES, "reason class")),
    WithJsonSchema({"type": "string", "enum": list(REASON_CLASSES)}),
]
Status = Annotated[
    str,
    WithJsonSchema({"type": "string", "enum": list(STATUSES)}),
    AfterValidator(lambda status: _one_of(status, STATUSES, "status")),
]
Tenant = Annotated[str, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="only this tenant's")]


class Replay(BaseModel):
    """Which open letters to replay: these ids, or those of a reason class, or (neither) every one."""

    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(default=[], max_length=10_000)
    reason: ReasonClass | None = None

    model_config = {"json_schema_extra": {"examples": [{"reason": "vocabulary"}]}}


class Drop(BaseModel):
    """Why the letter is discarded (recorded with the decision)."""

    why: Text

    model_config = {
        "json_schema_extra": {"examples": [{"why": "a truncated test message from a staging feed"}]}
    }


@router.get(
    "",
    summary="dead letters and counts per reason class (`deadletters list --json`)",
    responses=answer(examples.DEADLETTERS),
)
def list_letters(
    request: Request,
    *,
    tenant: Tenant | None = None,
    reason: Annotated[ReasonClass | None, Query(description="only this reason class")] = None,
    since: Annotated[Moment | None, Query(description="only those received since")] = None,
    status: Annotated[Status | None, Query(description="only open, replayed or dropped ones")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    credentials: Key,
) -> Json:
    """An auditor sees its own tenant's letters only; an admin every tenant's (and those naming none)."""
    key = gate(request, credentials, tenant, AUDITOR)
    selection = Selection(tenant=tenant or key.tenant, reason_class=reason, since=since, status=status)
    return Json(deadletters.listing(request.app.state.services.ledger, selection, limit))


@router.get(
    "/{letter_id}",
    summary="one dead letter; with original=true (admin) its bytes, logged",
    responses=answer(examples.DEADLETTER),
)
def show_letter(
    request: Request,
    *,
    letter_id: LetterPath,
    original: Annotated[
        bool, Query(description="include the original key and bytes (admin; logged)")
    ] = False,
    credentials: Key,
) -> Json:
    """The letter's origin, reason and status; its original key and value only for an admin who asks,
    recorded in the access log first."""
    key = gate(request, credentials, None, AUDITOR)
    ledger = request.app.state.services.ledger
    found = _visible(key, ledger, letter_id)
    if not original:
        return Json(deadletters.as_json(found))
    if key.role != ADMIN:
        raise Problem(403, "only an admin key may open a dead letter's original bytes")
    try:
        opened = deadletters.original(ledger, letter_id, key, "deadletters/original")
    except Unreadable as unreadable:
        raise Problem(410, str(unreadable)) from None
    return Json(deadletters.opened_json(opened))


@router.post(
    "/replay",
    summary="check open letters again and store those that now pass",
    responses=answer(examples.REPLAY) | NOT_OPEN,
)
def replay_letters(request: Request, *, body: Annotated[Replay, Body()], credentials: Key) -> Json:
    """`deadletters replay --json`: each letter stored (as which event) or still refused (why)."""
    gate(request, credentials, None, ADMIN)
    services = request.app.state.services
    deadletters.replayable(services.ledger, body.ids)  # 404 for one that does not exist, 409 not open
    selection = Selection(ids=tuple(body.ids), reason_class=body.reason)
    return Json(replay(services.ledger, services.contract, selection, datetime.now(UTC)).as_json())


@router.post(
    "/{letter_id}/drop",
    summary="record a decision to discard an open letter",
    responses=answer(examples.DROPPED) | NOT_OPEN,
)
def drop_letter(
    request: Request, *, letter_id: LetterPath, body: Annotated[Drop, Body()], credentials: Key
) -> Json:
    """`deadletters drop ID --why TEXT --json`: the letter, dropped, its bytes discarded."""
    gate(request, credentials, None, ADMIN)
    ledger = request.app.state.services.ledger
    return Json(deadletters.as_json(deadletters.drop(ledger, letter_id, body.why)))


def _visible(key: ApiKey, ledger: Ledger, letter_id: int) -> DeadLetter:
    """The letter if this key may see it (an auditor: its own tenant's only); else 404."""
    try:
        found = deadletters.letter(ledger, letter_id)
    except UnknownEvent:
        raise not_found(f"dead letter {letter_id}") from None
    if not key.sees(found.tenant or ""):
        raise not_found(f"dead letter {letter_id}")
    return found
