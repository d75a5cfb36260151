"""Retention: the policy in force and its history, what a sweep would order now, and a what-if for a
proposed policy (what would expire earlier or later under it), before anyone adopts it."""

import tomllib
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.datastructures import UploadFile
from starlette.responses import Response

from app.console.render import PAGE, page
from app.console.sessions import Posted, Seeing, not_found
from app.http.params import TenantPath
from ledger.errors import UsageError
from ledger.retention import parse_policy
from projections.policies import adoptions
from projections.retention import WhatIf, due_page, what_if

router = APIRouter()
MAX_POLICY_BYTES = 256 * 1024
SHOWN = 25  # holdings listed per direction in a what-if; the counts cover all of them


def _page(request: Request, tenant: str, start: str, whatif: WhatIf | None, proposed: str | None) -> Response:
    services = request.app.state.services
    now = datetime.now(UTC)
    rules = services.rules(now)
    due, following = due_page(
        services.ledger,
        rules,
        now,
        services.settings.purge_confirm_days,
        tenant=tenant,
        start=start,
        limit=PAGE,
    )
    context: dict[str, Any] = {
        "tenant": tenant,
        "rules": rules,
        "history": list(reversed(adoptions(services.ledger))),
        "due": due,
        "start": start,
        "next": following,
        "whatif": whatif,
        "proposed": proposed,
    }
    return page(request, "retention.html", context)


@router.get("/t/{tenant}/retention")
def retention(
    request: Request,
    tenant: TenantPath,
    session: Seeing,
    start: Annotated[str, Query(max_length=200, pattern=r"^[^\x00-\x1f]*$")] = "",
) -> Response:
    """The policy in force, its history, and a page of what the sweep would order now."""
    return _page(request, tenant, start, None, None)


@router.post("/t/{tenant}/retention/what-if")
async def retention_what_if(request: Request, tenant: TenantPath, session: Posted) -> Response:
    """Compare every held holding's expiry under the uploaded policy with the one in force."""
    if not session.key.sees(tenant):
        raise not_found(f"tenant {tenant!r}")
    form = await request.form()
    try:
        upload = form.get("policy")
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise UsageError("choose a policy file (TOML, as LEDGER_RETENTION_POLICY takes) to compare")
        text = await upload.read(MAX_POLICY_BYTES + 1)
    finally:
        await form.close()
    if len(text) > MAX_POLICY_BYTES:
        raise UsageError(f"a policy file is at most {MAX_POLICY_BYTES // 1024} KiB")
    try:
        document = tomllib.loads(text.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"{upload.filename} is not a TOML policy: {error}") from None
    proposed = parse_policy(document, upload.filename)
    services = request.app.state.services
    now = datetime.now(UTC)
    found = what_if(services.ledger, tenant, services.rules(now), proposed, now=now, shown=SHOWN)
    return _page(request, tenant, "", found, upload.filename)
