"""Verify (admin): recompute every chain and checkpoint, say each break in words; the latest tree head."""

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from app.console.render import page
from app.console.sessions import Posted, Signed, admin
from ledger import audit
from projections.receipts import tree_head

router = APIRouter()


@router.get("/verify")
def verify_form(request: Request, session: Signed) -> Response:
    """When the log was last verified, and the button that runs it (admin: verify covers every tenant)."""
    admin(session)
    ledger = request.app.state.services.ledger
    return page(request, "verify.html", {"last": audit.last_verification(ledger), "report": None})


@router.post("/verify")
async def run_verify(request: Request, session: Posted) -> Response:
    """Run verify over the whole log (as long as `consent-ledger verify` takes) and record the outcome."""
    admin(session)
    services = request.app.state.services
    report = audit.verify(services.ledger, services.public_keys)
    audit.record(services.ledger, report, session.key.key_id)
    return page(request, "verify.html", {"last": audit.last_verification(services.ledger), "report": report})


@router.get("/tree-head.json")
def latest_tree_head(request: Request, session: Signed) -> Response:
    """The newest signed tree head, as `consent-ledger tree-head` writes it."""
    document = tree_head(request.app.state.services.ledger, None)
    return Response(
        orjson.dumps(document, option=orjson.OPT_INDENT_2),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="tree-head.json"'},
    )
