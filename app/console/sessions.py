"""Signing in to the console with an API key, and the checks every page and form goes through.

The key is sent once, in the sign-in form, and never kept: the browser holds a random session token
in an HttpOnly, SameSite=Strict cookie (Secure over https), and the ledger only its hash, tied to the
key, so revoking the key ends the session at once. Every POST carries the session's form token
(checked in constant time); the sign-in form, before there is a session, carries a token that must
match a cookie of its own (a double submit), so no other site can sign a browser in or out.
"""

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import RedirectResponse, Response

from app.console.render import page
from ledger.access import ADMIN, AUDITOR, SESSION_HOURS, Session
from ledger.store import Ledger

COOKIE = "ledger_console"
SIGN_IN_COOKIE = "ledger_console_sign_in"
PATH = "/console"
ROLES = (AUDITOR, ADMIN)
router = APIRouter()


class SignIn(Exception):
    """No live session: the browser is sent to the sign-in page."""


class Refused(Exception):
    """A request the console answers with an error page: a status and one line saying why."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def not_found(what: str) -> Refused:
    """The same answer whether a thing does not exist or belongs to a tenant the key cannot see."""
    return Refused(404, f"no {what} here for this key")


def _ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.services.ledger
    return ledger


def signed_in(request: Request) -> Session:
    """The session of this browser; without one, off to the sign-in page."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise SignIn
    with _ledger(request).writer.datastore.get_connection() as conn:  # autocommit: one round trip
        session = _ledger(request).sessions.find(conn.cursor(), token)
    if session is None:
        raise SignIn
    request.state.session = session
    return session


Signed = Annotated[Session, Depends(signed_in)]


def seeing(request: Request, tenant: str) -> Session:
    """The session, if its key may see `tenant` (404 otherwise, as for a tenant that does not exist)."""
    session = signed_in(request)
    if not session.key.sees(tenant):
        raise not_found(f"tenant {tenant!r}")
    return session


Seeing = Annotated[Session, Depends(seeing)]


async def posted(request: Request) -> Session:
    """The session of a form sent with its form token; refused (403) without it."""
    session = signed_in(request)
    form = await request.form()
    sent = form.get("csrf")
    if not isinstance(sent, str) or not hmac.compare_digest(sent, session.csrf):
        await form.close()  # an uploaded file's spool, if any
        raise Refused(403, "this form has no valid form token: reload the page and send it again")
    return session


Posted = Annotated[Session, Depends(posted)]


def admin(session: Session) -> None:
    """Refuse (403) a key that is not an admin's."""
    if session.key.role != ADMIN:
        raise Refused(403, f"an {session.key.role} key may not do this: it needs an admin key")


def _cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


@router.get("/sign-in")
def sign_in_form(request: Request, error: str | None = None, status: int = 200) -> Response:
    """The sign-in form, with a fresh token that must come back with it."""
    token = secrets.token_urlsafe(32)
    response = page(request, "sign_in.html", {"csrf": token, "error": error}, status)
    _cookie(request, response, SIGN_IN_COOKIE, token, 600)
    return response


@router.post("/sign-in")
def sign_in(
    request: Request, key: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = ""
) -> Response:
    """Open a session for an auditor or admin key; anything else gets the form again, saying why."""
    expected = request.cookies.get(SIGN_IN_COOKIE, "")
    if not csrf or not hmac.compare_digest(csrf, expected):
        raise Refused(403, "this form has no valid form token: reload the sign-in page and send it again")
    ledger = _ledger(request)
    with ledger.writer.datastore.transaction(commit=True) as curs:
        found = ledger.api_keys.find(curs, key.strip())
        if found is None or found.role not in ROLES:
            why = (
                "this API key is unknown or revoked"
                if found is None
                else f"a {found.role} key cannot sign in: the console needs an auditor or admin key"
            )
            return sign_in_form(request, why, 401 if found is None else 403)
        token = ledger.sessions.open(curs, found)
    response = RedirectResponse(f"{PATH}/", 303)
    _cookie(request, response, COOKIE, token, SESSION_HOURS * 3600)
    response.delete_cookie(SIGN_IN_COOKIE, path=PATH)
    return response


@router.post("/sign-out")
def sign_out(request: Request, session: Posted) -> Response:
    """End the session, here and in the ledger."""
    ledger = _ledger(request)
    with ledger.writer.datastore.transaction(commit=True) as curs:
        ledger.sessions.close(curs, request.cookies.get(COOKIE, ""))
    response = RedirectResponse(f"{PATH}/sign-in", 303)
    response.delete_cookie(COOKIE, path=PATH)
    return response
