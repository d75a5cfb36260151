"""Who is asking: the API key in `Authorization: Bearer ...`, its tenant and role, and its rate.

A key never learns whether anything of another tenant exists: every path under a tenant it cannot see
answers 404, before its role is even considered. The key is looked up on every request, so a revoked
key is refused from the next request on, in every worker.
"""

import threading
import time
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.http.problems import Problem, not_found
from ledger.access import ADMIN, ApiKey

bearer = HTTPBearer(auto_error=False, description="an API key from `consent-ledger keys create`")
Credentials = HTTPAuthorizationCredentials | None
Key = Annotated[Credentials, Security(bearer)]  # the bearer token, documented as the security scheme


def gate(request: Request, credentials: Credentials, tenant: str | None, *roles: str) -> ApiKey:
    """The key of this request, if it may act on `tenant` (None: no tenant) in one of `roles`."""
    text = presented(credentials)
    services = request.app.state.services
    with services.ledger.writer.datastore.get_connection() as conn:  # autocommit: one round trip
        key: ApiKey | None = services.ledger.api_keys.find(conn.cursor(), text)
    return admit(request, key, tenant, *roles)


def presented(credentials: Credentials) -> str:
    """The text of the key sent, or 401 when none was."""
    if credentials is None:
        raise Problem(
            401,
            "send an API key as `Authorization: Bearer <key>` (`consent-ledger keys create` makes one)",
            {"WWW-Authenticate": "Bearer"},
        )
    return credentials.credentials


def admit(request: Request, key: ApiKey | None, tenant: str | None, *roles: str) -> ApiKey:
    """`key` (None: unknown or revoked), if it may act on `tenant` in one of `roles`, counted against
    its rate; otherwise the problem to answer."""
    if key is None:
        raise Problem(401, "this API key is unknown or revoked", {"WWW-Authenticate": "Bearer"})
    request.app.state.limiter.take(key.key_id)
    if tenant is not None and not key.sees(tenant):
        raise not_found(f"tenant {tenant!r}")
    if key.role != ADMIN and key.role not in roles:
        raise Problem(403, f"a {key.role} key may not do this: it needs one of {', '.join(roles)}")
    return key


class RateLimiter:
    """A token bucket per key: `rate` requests a second, in bursts of up to a second's worth.

    Per process: with several workers each gives a key its own `rate`.
    """

    def __init__(self, rate: int) -> None:
        self.rate = float(rate)
        self.buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, when counted)
        self.lock = threading.Lock()

    def take(self, key_id: str) -> None:
        """Spend one request of this key, or refuse it with 429 and when to retry."""
        wait = self.spend(key_id)
        if wait > 0:
            raise Problem(
                429,
                f"this key is over its limit of {self.rate:.0f} requests a second; retry shortly",
                {"Retry-After": str(max(1, round(wait)))},
            )

    def spend(self, key_id: str) -> float:
        """Spend one request of this key if it has one left (0 returned), else spend nothing and return
        the seconds until it has one."""
        now = time.monotonic()
        with self.lock:
            tokens, then = self.buckets.get(key_id, (self.rate, now))
            tokens = min(self.rate, tokens + (now - then) * self.rate)
            if tokens < 1:
                self.buckets[key_id] = (tokens, now)
                return (1 - tokens) / self.rate
            self.buckets[key_id] = (tokens - 1, now)
            return 0.0
