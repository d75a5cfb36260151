"""The single check's fast path (app/http/fastcheck.py): it answers the common check itself, leaves
everything else to the FastAPI route, and through the real server answers exactly as the route does,
refusals included, counted in the same metrics."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from psycopg_pool import PoolTimeout
from starlette.types import Message, Receive, Scope, Send

from app import stack
from app.bootstrap import Services
from app.http import problems
from app.http.auth import RateLimiter
from app.http.fastcheck import FastCheck
from app.http.metrics import Metrics
from app.http.pool import Connection, Pool
from ledger.access import ADMIN, AUDITOR, CHECKER, PUBLISHER
from ledger.settings import Settings
from tests.helpers import fact
from tests.test_http import Api, _metric, _serving, api  # noqa: F401 - `api` is the server fixture

pytestmark = pytest.mark.services

CHECK = "/v1/tenants/{t}/subjects/{s}/check"
ROUTE = "/v1/tenants/{tenant}/subjects/{subject}/check"


def _both(client: httpx.Client, tenant: str, subject: str, channel: str = "sms") -> list[httpx.Response]:
    """The same question asked as the fast path takes it, then with its query the other way round,
    which the fast path leaves to the route."""
    path = CHECK.format(t=tenant, s=subject)
    return [
        client.get(f"{path}?purpose=marketing&channel={channel}"),
        client.get(f"{path}?channel={channel}&purpose=marketing"),
    ]


def _same(answers: list[httpx.Response], status: int) -> dict[str, Any]:
    """The one answer both gave: same status, headers (but the date) and body; its JSON."""
    fast, routed = answers
    assert (fast.status_code, routed.status_code) == (status, status), fast.text
    assert {**fast.headers, "date": ""} == {**routed.headers, "date": ""}
    assert fast.content == routed.content
    body: dict[str, Any] = fast.json()
    return body


def test_the_fast_path_answers_as_the_route(api: Api) -> None:  # noqa: F811
    """Allowed, denied, restricted, a tenant's added channel, every role that may check: the same 200;
    an unknown subject, another tenant's, a bad channel or purpose, no key, a publisher's key: the same
    problem document."""
    restriction = {"request_id": "r-fast", "right": "restriction", "channel": "email"}
    api.services.ledger.append(
        [
            fact("acme", "rita", "rita-1", minutes=1),
            fact("acme", "rita", "rita-2", "rights.requested", minutes=2, data=restriction),
        ]
    )
    api.services.projector.run(until_idle=True)
    with api.client("acme", CHECKER) as client:
        assert _same(_both(client, "acme", "alice"), 200)["allowed"] is True
        assert _same(_both(client, "acme", "bob"), 200)["event_id"] == "b2"
        restricted = _same(_both(client, "acme", "rita"), 200)
        assert restricted["allowed"] is False and "r-fast" in restricted["reason"]
        assert _same(_both(client, "acme", "alice", "whatsapp"), 200)["allowed"] is False
        assert "has no subject" in _same(_both(client, "acme", "nobody"), 404)["detail"]
        _same(_both(client, "globex", "carol"), 404)
        _same(_both(client, "acme", "alice", "pigeon"), 422)
        spam = CHECK.format(t="acme", s="alice")
        _same(
            [client.get(f"{spam}?purpose=spam&channel=sms"), client.get(f"{spam}?channel=sms&purpose=spam")],
            422,
        )
    with api.client("globex", CHECKER) as client:
        _same(_both(client, "globex", "carol", "whatsapp"), 422)  # acme's added channel, not globex's
    for tenant, role in (("acme", AUDITOR), (None, ADMIN)):
        with api.client(tenant, role) as client:
            assert _same(_both(client, "acme", "alice"), 200)["allowed"] is True
    with api.client("acme", PUBLISHER) as client:
        _same(_both(client, "acme", "alice"), 403)
    with httpx.Client(base_url=api.url) as client:
        _same(_both(client, "acme", "alice"), 401)


def test_a_revoked_key_is_refused_at_once_by_both(api: Api) -> None:  # noqa: F811
    """The check after a revocation is refused 401, as the route refuses it."""
    key_id, text = api.new_key("acme", CHECKER)
    with api.key_client(text) as client:
        _same(_both(client, "acme", "alice"), 200)
        with api.services.ledger.writer.datastore.transaction(commit=True) as curs:
            api.services.ledger.api_keys.revoke(curs, key_id)
        _same(_both(client, "acme", "alice"), 401)


def test_past_its_rate_a_key_gets_the_routes_429(api: Api) -> None:  # noqa: F811
    """A key over its rate is refused by the fast path exactly as by the route, Retry-After included."""
    settings = Settings.from_env(api.env | {"LEDGER_HTTP_RATE_LIMIT": "1"})
    assert settings.database_url is not None
    built = Services(settings, stack.Endpoints(settings.database_url, api.services.kafka_bootstrap))
    with _serving(built) as url:
        headers = {"Authorization": f"Bearer {api.keys[('acme', CHECKER)]}"}
        with httpx.Client(base_url=url, headers=headers) as client:
            path = CHECK.format(t="acme", s="alice")
            fast = [client.get(f"{path}?purpose=marketing&channel=sms")]
            while fast[-1].status_code == 200 and len(fast) < 10:  # a slow machine refills the bucket
                fast.append(client.get(f"{path}?purpose=marketing&channel=sms"))
            refused = _same([fast[-1], client.get(f"{path}?channel=sms&purpose=marketing")], 429)
            assert "over its limit" in refused["detail"] and fast[-1].headers["retry-after"] == "1"
    built.close()


def test_the_fast_paths_checks_are_counted(api: Api) -> None:  # noqa: F811
    """Checks the fast path answers are counted and timed under the route's template, and their
    decisions counted, as the route's are."""
    requests = f'ledger_http_requests_total{{method="GET",route="{ROUTE}",status="200"}}'
    timed = f'ledger_http_request_seconds_count{{route="{ROUTE}"}}'
    allowed, denied = 'ledger_checks_total{decision="allowed"}', 'ledger_checks_total{decision="denied"}'
    with api.client("acme", CHECKER) as client:
        client.get(CHECK.format(t="acme", s="alice") + "?purpose=marketing&channel=sms")  # the series exist
        before = httpx.get(f"{api.url}/metrics").text
        for subject in ("alice", "alice", "alice", "bob", "bob"):
            assert client.get(CHECK.format(t="acme", s=subject) + "?purpose=marketing&channel=sms").is_success
    after = httpx.get(f"{api.url}/metrics").text
    assert [_metric(after, name) - _metric(before, name) for name in (requests, timed, allowed, denied)] == [
        5,
        5,
        3,
        2,
    ]


class _Route:
    """The app behind the fast path: records what it was left, answers nothing."""

    def __init__(self) -> None:
        self.left: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.left.append(scope)


class _Unreachable(Pool):
    """A pool whose PostgreSQL does not answer, as psycopg_pool says so after its timeout."""

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        raise PoolTimeout("couldn't get a connection after 30.00 sec")
        yield  # an async generator, as the real one


def _fast(services: Services, route: _Route, pool: Pool) -> FastCheck:
    return FastCheck(
        route,
        pool=pool,
        keys=services.ledger.api_keys,
        settings=services.settings,
        limiter=RateLimiter(1000),
        metrics=Metrics(services),
    )


async def _exchange(fast: FastCheck, scope: Scope) -> list[Message]:
    """The messages the fast path sent for one request."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await fast(scope, receive, send)
    return sent


def _scope(key: str, tenant: str = "acme", subject: str = "alice", **changes: Any) -> Scope:
    return {
        "type": "http",
        "method": "GET",
        "path": CHECK.format(t=tenant, s=subject),
        "root_path": "",
        "query_string": b"purpose=marketing&channel=sms",
        "headers": [(b"host", b"test"), (b"authorization", b"Bearer " + key.encode())],
    } | changes


def test_the_fast_path_takes_only_the_common_check(api: Api) -> None:  # noqa: F811
    """It answers a well-formed check the route would answer 200 in one body message, and leaves the
    rest, untouched and unanswered, to the route: other methods and query strings, at/known_at, other
    authorizations, ids out of bounds, and every refusal (unknown subject, another tenant, a channel
    the tenant lacks, a role that may not check, a revoked key); PostgreSQL not answering is its 503."""
    checker, publisher, globex = (
        api.keys[key] for key in (("acme", CHECKER), ("acme", PUBLISHER), ("globex", CHECKER))
    )
    revoked_id, revoked = api.new_key("acme", CHECKER)
    with api.services.ledger.writer.datastore.transaction(commit=True) as curs:
        api.services.ledger.api_keys.revoke(curs, revoked_id)
    answered = [
        _scope(checker),
        _scope(checker, query_string=b"purpose=marketing&channel=whatsapp"),
        _scope(api.keys[(None, ADMIN)]),
        _scope(api.keys[("acme", AUDITOR)], subject="bob"),
    ]
    left = [
        _scope(checker, method="HEAD"),
        _scope(checker, method="POST"),
        _scope(checker, root_path="/api"),
        _scope(checker, query_string=b"channel=sms&purpose=marketing"),
        _scope(checker, query_string=b"purpose=marketin%67&channel=sms"),
        _scope(checker, query_string=b"purpose=marketing&channel=sms&at=2026-01-01T00:03:00Z"),
        _scope(checker, query_string=b"purpose=marketing&channel=sms&known_at=2026-01-01T00:03:00Z"),
        _scope(checker, query_string=b"purpose=spam&channel=sms"),
        _scope(checker, query_string=b"purpose=marketing&channel=pigeon"),
        _scope(checker, headers=[]),
        _scope(checker, headers=[(b"authorization", b"bearer " + checker.encode())]),
        _scope(checker, headers=[(b"authorization", b"Basic dXNlcjpwYXNz")]),
        _scope(checker, subject="x" * 201),
        _scope(checker, subject="al\x01ice"),
        _scope(checker, tenant="-acme"),
        _scope(checker, subject="nobody"),
        _scope(checker, tenant="globex", subject="carol"),
        _scope(globex, tenant="globex", subject="carol", query_string=b"purpose=marketing&channel=whatsapp"),
        _scope(publisher),
        _scope(revoked),
    ]

    async def run() -> None:
        pool = Pool(api.services)
        route = _Route()
        fast = _fast(api.services, route, pool)
        for scope in answered:
            start, body = await _exchange(fast, scope)
            assert start["status"] == 200
            assert start["headers"] == [
                (b"content-length", b"%d" % len(body["body"])),
                (b"content-type", b"application/json"),
            ]
            assert set(httpx.Response(200, content=body["body"]).json()) == {"allowed", "reason", "event_id"}
        assert route.left == []
        for scope in left:
            assert await _exchange(fast, scope) == [], scope
        assert route.left == left
        unreachable = _fast(api.services, route, _Unreachable(api.services))
        start, body = await _exchange(unreachable, _scope(checker))
        expected = problems.response(503, "PostgreSQL is not answering; retry shortly", {"Retry-After": "1"})
        assert (start["status"], start["headers"], body["body"]) == (503, expected.raw_headers, expected.body)
        await pool.close()

    asyncio.run(run())
