"""The FastAPI application: routes, keys, limits, problem documents and metrics over one `Services`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp

from app.bootstrap import Services
from app.console.site import create_app as create_console
from app.http import (
    answers,
    checks,
    compliance,
    deadletters,
    events,
    evidence,
    health,
    keys,
    pool,
    problems,
    reads,
)
from app.http.auth import RateLimiter
from app.http.fastcheck import FastCheck
from app.http.json import Json
from app.http.limits import BodyLimit
from app.http.metrics import Measured, Metrics

DESCRIPTION = """\
The consent and retention ledger over HTTP: publish events, ask whether a subject may be contacted
(one or 10,000 at a time), and read what an auditor may read, scoped to the API key's tenant.

Send an API key (`consent-ledger keys create --tenant T --role R`) as `Authorization: Bearer <key>`.
Roles: `publisher` (POST /v1/events), `checker` (checks), `auditor` (every read of its tenant),
`admin` (every tenant, verify). Anything of another tenant answers 404. Errors are RFC 9457 problem
documents (`application/problem+json`).

Rate limit: each key may make {rate} requests a second to each server process (`LEDGER_HTTP_RATE_LIMIT`),
in bursts of up to a second's worth; past that, 429 with `Retry-After`. Bodies are limited to {body}
bytes (`LEDGER_HTTP_MAX_BODY_BYTES`, else 413).
"""
PROBLEMS = problems.documented(
    {
        400: "the request cannot be answered as asked",
        401: "no API key, or an unknown or revoked one",
        403: "the key's role may not do this",
        404: "no such thing for this key (another tenant's things are never found)",
        410: "the subject was erased",
        413: "the body is too large",
        422: "the request breaks its schema",
        429: "the key is over its rate limit",
        503: "PostgreSQL or the broker is not answering",
    }
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Close the check pool and the metrics' broker client when the server stops."""
    try:
        yield
    finally:
        await app.state.pool.close()
        app.state.metrics.close()


class Api(FastAPI):
    """FastAPI with the single check's fast path (app/http/fastcheck.py) ahead of its whole middleware
    stack, so the common check skips it all."""

    def build_middleware_stack(self) -> ASGIApp:
        state = self.state
        return FastCheck(
            super().build_middleware_stack(),
            pool=state.pool,
            keys=state.services.ledger.api_keys,
            settings=state.services.settings,
            limiter=state.limiter,
            metrics=state.metrics,
        )


def create_app(services: Services) -> FastAPI:
    """An application answering from `services`."""
    app = Api(
        title="consent-ledger",
        version="0.1.0",
        description=DESCRIPTION.format(
            rate=services.settings.http_rate_limit, body=services.settings.http_max_body_bytes
        ),
        default_response_class=Json,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.metrics = Metrics(services)
    app.state.limiter = RateLimiter(services.settings.http_rate_limit)
    app.state.pool = pool.Pool(services)
    problems.install(app)
    app.include_router(health.router)
    routers = (
        checks.router,
        events.router,
        reads.tenant_router,
        reads.router,
        compliance.router,
        evidence.router,
        keys.router,
        deadletters.router,
        answers.router,
    )
    for router in routers:
        app.include_router(router, responses=PROBLEMS)
    app.mount("/console", create_console(services))  # the auditor console: HTML pages, same keys
    app.add_middleware(BodyLimit, limit=services.settings.http_max_body_bytes)
    app.add_middleware(Measured, metrics=app.state.metrics)
    return app
