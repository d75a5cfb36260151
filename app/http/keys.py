"""Key management for admins: the `keys` commands over HTTP."""

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel

from app.http import examples
from app.http.auth import Key, gate
from app.http.examples import answer
from app.http.json import Json
from app.http.params import KeyPath
from app.http.problems import not_found
from ledger.access import ADMIN, ROLES
from ledger.errors import UsageError
from ledger.store import Ledger
from projections.queries import plain

router = APIRouter(prefix="/v1/keys", tags=["keys"])


class NewKey(BaseModel):
    """Who the key is for: a tenant and a role (an admin key has no tenant)."""

    tenant: str | None = None
    role: str

    model_config = {"json_schema_extra": {"examples": [{"tenant": "acme", "role": "checker"}]}}


@router.get(
    "",
    summary="every key: id, tenant, role, created, revoked (never its text)",
    responses=answer(examples.KEYS),
)
def list_keys(request: Request, *, credentials: Key) -> Json:
    """`keys list --json`."""
    gate(request, credentials, None, ADMIN)
    ledger: Ledger = request.app.state.services.ledger
    return Json([plain(asdict(key)) for key in ledger.list_api_keys()])


@router.post(
    "",
    status_code=201,
    summary="a new key, its text shown in this answer only",
    responses=answer(examples.NEW_KEY, 201),
)
def create_key(
    request: Request,
    *,
    body: Annotated[
        NewKey, Body(openapi_examples={"checker": {"value": {"tenant": "acme", "role": "checker"}}})
    ],
    credentials: Key,
) -> Json:
    """`keys create`: the stored key and, once, its text (`key`)."""
    gate(request, credentials, None, ADMIN)
    if body.role not in ROLES:
        raise UsageError(f"unknown role {body.role!r}: use one of {', '.join(ROLES)}")
    ledger: Ledger = request.app.state.services.ledger
    key, text = ledger.create_api_key(body.tenant, body.role)
    return Json(plain(asdict(key)) | {"key": text}, 201)


@router.delete(
    "/{key_id}", summary="revoke a key from its next request on", responses=answer(examples.REVOKED_KEY)
)
def revoke_key(request: Request, *, key_id: KeyPath, credentials: Key) -> Json:
    """`keys revoke`: the key as stored, with when it was revoked."""
    gate(request, credentials, None, ADMIN)
    ledger: Ledger = request.app.state.services.ledger
    try:
        key = ledger.revoke_api_key(key_id)
    except UsageError:
        raise not_found(f"key {key_id!r}") from None
    return Json(plain(asdict(key)))
