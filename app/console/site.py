"""The console as an application of its own, mounted under /console on the API's app: its own error
pages (HTML, not problem documents), its own assets, the same `Services`."""

from eventsourcing.persistence import InterfaceError, OperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from app.bootstrap import Services
from app.console import breach, pages, retention, sessions, verify
from app.console.render import HERE, page
from app.console.sessions import PATH, Refused, SignIn
from ledger.errors import LedgerError, SubjectErased, UnknownEvent, UnknownName, UnknownSubject

_STATUS = {UnknownSubject: 404, UnknownEvent: 404, SubjectErased: 410, UnknownName: 400}


def create_app(services: Services) -> FastAPI:
    """The console over `services`, to be mounted at /console."""
    console = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    console.state.services = services
    console.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (sessions, pages, breach, retention, verify):
        console.include_router(module.router)

    def error(request: Request, status: int, detail: str) -> Response:
        return page(request, "error.html", {"status": status, "detail": detail}, status)

    async def sign_in(request: Request, _: Exception) -> Response:
        return RedirectResponse(f"{PATH}/sign-in", 303)

    async def refused(request: Request, failure: Exception) -> Response:
        assert isinstance(failure, Refused)
        return error(request, failure.status, failure.detail)

    async def ledger(request: Request, failure: Exception) -> Response:
        status = next((code for kind, code in _STATUS.items() if isinstance(failure, kind)), 400)
        return error(request, status, str(failure))

    async def invalid(request: Request, failure: Exception) -> Response:
        assert isinstance(failure, RequestValidationError)
        where = [".".join(str(part) for part in item.get("loc", ())) for item in failure.errors()]
        return error(request, 400, f"this request is not one the console can answer ({', '.join(where)})")

    async def http(request: Request, failure: Exception) -> Response:
        assert isinstance(failure, HTTPException)
        return error(request, failure.status_code, str(failure.detail))

    async def database(request: Request, failure: Exception) -> Response:
        if isinstance(failure, OperationalError | InterfaceError):
            return error(request, 503, "PostgreSQL is not answering; try again shortly")
        raise failure

    console.add_exception_handler(SignIn, sign_in)
    console.add_exception_handler(Refused, refused)
    console.add_exception_handler(LedgerError, ledger)
    console.add_exception_handler(RequestValidationError, invalid)
    console.add_exception_handler(HTTPException, http)
    console.add_exception_handler(OperationalError, database)
    console.add_exception_handler(InterfaceError, database)
    return console
