"""The single check answered ahead of FastAPI, for the well-formed common case only.

A check's own work (one prepared statement, the decision, a small JSON body) costs less CPU than
FastAPI's routing, parameter validation, dependency solving and middlewares around it, which kept a
uvicorn worker under the goal of 2,000 checks/s. So a `GET /v1/tenants/{tenant}/subjects/{subject}/check`
whose query is exactly `purpose=P&channel=C`, with a Bearer key, ids within the contract's bounds, a
purpose of the vocabulary and a channel of the vocabulary or the tenant's, is answered here whenever
the route would answer it 200: the same statement (the key is read with the decision, so a revoked
key is refused at once), the same rate limiter, the same metrics, the same JSON and headers. Anything
else (any refusal: 401, 403, 404, 422, 429; `at` or `known_at`; another query string; HEAD) goes on
to the FastAPI route unchanged, which answers its problem documents and documents the check in OpenAPI.
"""

import re
import time

import psycopg
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from app.http import checks, problems
from app.http.auth import RateLimiter
from app.http.json import dumps
from app.http.metrics import Metrics
from app.http.pool import Pool
from ledger.access import ApiKeys, key_of
from ledger.contact import Decision
from ledger.settings import Settings
from ledger.state import PURPOSES
from projections import names, queries

# The contract's bounds (app/http/params.py): TenantPath; SubjectPath, which is also storable; and
# one path segment each, as the router matches them.
_PATH = re.compile(
    r"/v1/tenants/([A-Za-z0-9][A-Za-z0-9._-]{0,63})/subjects/([^/\x00-\x1f\ud800-\udfff]{1,200})/check"
)
_QUERY = re.compile(rb"purpose=([a-z_]{1,32})&channel=([a-z0-9_]{1,32})")  # nothing to unquote
_BEARER = re.compile(rb"Bearer ([\x21-\x7e]+)")  # what HTTPBearer reads as this key's text
_JSON = (b"content-type", b"application/json")


class FastCheck:
    """ASGI middleware, outermost: answers the common single check itself, passes on everything else."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        pool: Pool,
        keys: ApiKeys,
        settings: Settings,
        limiter: RateLimiter,
        metrics: Metrics,
    ) -> None:
        self.app = app
        self.pool, self.keys, self.settings, self.limiter = pool, keys, settings, limiter
        self.metrics = metrics
        self.route = next(
            route.path
            for route in checks.router.routes
            if isinstance(route, APIRoute) and route.endpoint is checks.check
        )
        self.vocabulary = frozenset(names.vocabulary("channel"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        question = self._question(scope) if scope["type"] == "http" else None
        decision = None
        if question is not None:
            try:
                decision = await self._decision(*question)
            except psycopg.OperationalError as error:  # the pool's timeout too: waited for once, not twice
                await problems.unavailable(error, scope["path"])(scope, receive, send)
                self._count(503, started)
                return
            except Exception:  # the route meets it again and answers it as it answers any failure
                decision = None
        if decision is None:
            await self.app(scope, receive, send)
            return
        self.metrics.decided(int(decision.allowed), int(not decision.allowed))
        body = dumps(checks.answer(decision))
        headers = [(b"content-length", b"%d" % len(body)), _JSON]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self._count(200, started)

    async def _decision(self, text: str, question: tuple[str, str, str, str]) -> Decision | None:
        """The decision for the key `text`, spent against its rate, if the route would answer 200."""
        tenant, _, purpose, channel = question
        row = await checks.keyed_row(self.pool, self.keys, text, question)
        if row is None:
            return None
        key = key_of(row)
        decision = queries.decision_of(row, purpose, channel)
        if not key.sees(tenant) or key.role not in checks.ROLES_SEEING or decision is None:
            return None
        if self.limiter.spend(key.key_id) > 0:
            return None  # the route refuses it with 429
        return decision

    def _question(self, scope: Scope) -> tuple[str, tuple[str, str, str, str]] | None:
        """The key's text and (tenant, subject, purpose, channel) of a check this path may answer."""
        if scope["method"] != "GET" or scope.get("root_path"):
            return None
        path = _PATH.fullmatch(scope["path"])
        query = _QUERY.fullmatch(scope["query_string"])
        if path is None or query is None:
            return None
        purpose, channel = query[1].decode(), query[2].decode()
        tenant = path[1]
        if purpose not in PURPOSES or not (
            channel in self.vocabulary or channel in self.settings.channels_of(tenant)
        ):
            return None
        authorization = next((value for name, value in scope["headers"] if name == b"authorization"), b"")
        bearer = _BEARER.fullmatch(authorization)
        if bearer is None:
            return None
        return bearer[1].decode(), (tenant, path[2], purpose, channel)

    def _count(self, status: int, started: float) -> None:
        """Count and time the answer as `Measured` counts the route's."""
        self.metrics.requests.labels(self.route, "GET", str(status)).inc()
        self.metrics.latency.labels(self.route).observe(time.perf_counter() - started)
