"""Errors as RFC 9457 problem documents (`application/problem+json`), never a stack trace.

Messages are the ledger's own one-line errors, which never quote personal data; a request that fails
validation is told where and which rule, never echoed the value it sent.
"""

from typing import Any

import orjson
import psycopg
import structlog
from eventsourcing.persistence import InterfaceError, OperationalError, PersistenceError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException
from starlette.responses import Response

from ledger.errors import (
    ConfigError,
    LedgerError,
    ServiceUnavailable,
    SubjectErased,
    UnknownEvent,
    UnknownSubject,
    UsageError,
    WrongState,
)

log = structlog.get_logger()
MEDIA_TYPE = "application/problem+json"
TYPE = "urn:consent-ledger:problem:"
_STATUS = {  # the first kind an error is an instance of gives its status
    WrongState: 409,
    UnknownSubject: 404,
    UnknownEvent: 404,
    SubjectErased: 410,
    UsageError: 400,
    ConfigError: 500,
    ServiceUnavailable: 503,
}
_TITLES = {
    400: "bad request",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    409: "conflict",
    410: "gone",
    413: "request body too large",
    422: "unprocessable content",
    429: "too many requests",
    500: "internal error",
    503: "service unavailable",
}


_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
}


def documented(statuses: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` entries of routes that may answer these statuses (each with what it
    means) with a problem document."""
    return {
        status: {"description": text, "content": {MEDIA_TYPE: {"schema": _SCHEMA}}}
        for status, text in statuses.items()
    }


class Problem(Exception):
    """An answer other than success: a status, a one-line detail, and any extra members."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers
        self.extra = extra


def not_found(what: str) -> Problem:
    """The same answer whether a thing does not exist or belongs to a tenant the key cannot see."""
    return Problem(404, f"no {what} here for this key")


def response(status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> Response:
    """A problem document."""
    title = _TITLES.get(status, "error")
    body = {"type": TYPE + title.replace(" ", "-"), "title": title, "status": status, "detail": detail}
    return Response(orjson.dumps(body | extra), status, headers, media_type=MEDIA_TYPE)


def unavailable(error: Exception, path: str) -> Response:
    """503 for a database that did not answer (`error`) a request of `path`, logged."""
    log.warning("http.database_failed", error=type(error).__name__, path=path)
    return response(503, "PostgreSQL is not answering; retry shortly", {"Retry-After": "1"})


def install(app: FastAPI) -> None:
    """Answer every failure with a problem document."""

    async def problem(request: Request, error: Exception) -> Response:
        assert isinstance(error, Problem)
        return response(error.status, error.detail, error.headers, **error.extra)

    async def invalid(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        errors = [
            {"where": ".".join(str(part) for part in item.get("loc", ())), "rule": str(item.get("msg", ""))}
            for item in error.errors()
        ]
        first = errors[0] if errors else {"where": "request", "rule": "invalid"}
        return response(422, f"{first['where']}: {first['rule']}", errors=errors)

    async def http(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        return response(error.status_code, str(error.detail), dict(error.headers or {}))

    async def ledger(request: Request, error: Exception) -> Response:
        status = next((code for kind, code in _STATUS.items() if isinstance(error, kind)), 400)
        return response(status, str(error))

    async def database(request: Request, error: Exception) -> Response:
        if not isinstance(error, OperationalError | InterfaceError | psycopg.OperationalError | PoolTimeout):
            return await unexpected(request, error)
        return unavailable(error, request.url.path)

    async def unexpected(request: Request, error: Exception) -> Response:
        log.error("http.failed", error=type(error).__name__, path=request.url.path)
        return response(500, "the ledger failed to answer; the error is logged")

    app.add_exception_handler(Problem, problem)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http)
    app.add_exception_handler(LedgerError, ledger)
    for failure in (PersistenceError, psycopg.OperationalError, PoolTimeout):  # store's, check pool's
        app.add_exception_handler(failure, database)
    app.add_exception_handler(Exception, unexpected)
