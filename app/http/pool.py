"""The event loop's own connections to PostgreSQL, for the single check.

The check is the hot path: it runs on the event loop over asynchronous connections instead of in the
thread pool over the event store's synchronous ones, which saves a thread hop per request and the
GIL contention of several threads. The pool opens on the first check (a server starts, and says it is
not ready, while PostgreSQL is away) and closes with the application (app/http/api.py).
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool
from starlette.concurrency import run_in_threadpool

from app.bootstrap import Services

Connection = AsyncConnection[DictRow]


class Pool:
    """`LEDGER_HTTP_POOL_SIZE` autocommit connections of one server process."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.pool: AsyncConnectionPool[Connection] | None = None
        self.opening = asyncio.Lock()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A connection for one statement (autocommit: no transaction round trips)."""
        pool = self.pool or await self._open()
        async with pool.connection() as conn:
            yield conn

    async def _open(self) -> AsyncConnectionPool[Connection]:
        async with self.opening:
            if self.pool is None:
                url = await run_in_threadpool(lambda: self.services.database_url)  # may connect once
                size = self.services.settings.http_pool_size
                pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
                    url,
                    min_size=size,
                    max_size=size,
                    kwargs={"autocommit": True, "row_factory": dict_row},
                    connection_class=Connection,
                    open=False,
                )
                await pool.open()
                self.pool = pool
            return self.pool

    async def close(self) -> None:
        """Close the connections, if any were opened."""
        if self.pool is not None:
            await self.pool.close()
