"""PostgreSQL's ``Backend``: a psycopg async connection pool that hands out sessions.

Where SQLite shares one connection behind a lock, each unit of work here takes its own
connection from the pool, so turns of different conversations touch the database in
parallel, in this process and in others. What SQLite gets from its lock, PostgreSQL gets
from its own locking: ``transaction()`` is one real transaction (READ COMMITTED), and the
queries are written so that is enough (an upsert locks the conversation's row before its
history is appended, so two appends to one conversation take turns).

The queries carry SQLite's ``?`` placeholders; ``PostgresSession`` turns them into psycopg's
``%s`` (none of our SQL has a ``?`` or ``%`` of its own).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any, Self

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from .sql import Dialect, Params, StoreClosedError

POSTGRESQL = Dialect(
    name="postgresql",
    row_key="event_id",
    link_order="cf.sha256",
    key_lock="SELECT pg_advisory_xact_lock(hashtextextended(?, 0))",
)

POOL_TIMEOUT_S = 10.0
"""Longest wait for a free (or re-established) connection before a store call fails."""
CONNECT_TIMEOUT_S = 10
"""Longest wait for one new connection (libpq's ``connect_timeout``)."""

Pool = AsyncConnectionPool[AsyncConnection[Any]]


def connection_options() -> dict[str, Any]:
    """How every connection is made: autocommit (``transaction()`` opens its own), bounded
    connects, and a name in ``pg_stat_activity``."""
    return {
        "autocommit": True,
        "connect_timeout": CONNECT_TIMEOUT_S,
        "application_name": "chatbot",
    }


@functools.lru_cache(maxsize=512)
def to_pyformat(sql: str) -> str:
    """``?`` placeholders -> ``%s``."""
    if "%" in sql:
        raise ValueError("a query with '%' would be misread by psycopg's placeholders")
    return sql.replace("?", "%s")


class PostgresSession:
    """The ``Session`` over one pooled connection."""

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        cursor = await self._conn.execute(to_pyformat(sql), params)
        return cursor.rowcount

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        async with self._conn.cursor() as cursor:
            await cursor.executemany(to_pyformat(sql), list(rows))

    async def fetchall(self, sql: str, params: Params = ()) -> list[Any]:
        cursor = await self._conn.execute(to_pyformat(sql), params)
        return await cursor.fetchall()


class PostgresDatabase:
    """The pool: PostgreSQL's ``Backend``. ``open`` fills it; ``close`` empties it."""

    dialect = POSTGRESQL

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._closed = False

    @classmethod
    async def open(cls, url: str, *, size: int) -> Self:
        """A pool of ``size`` connections to ``url``, all made before this returns.

        Each is checked before it is handed out (one round trip), so a connection the server
        dropped (a restart, a failover) is replaced instead of failing a turn.
        """
        pool: Pool = AsyncConnectionPool(
            url,
            kwargs=connection_options(),
            min_size=size,
            max_size=size,
            open=False,
            check=AsyncConnectionPool.check_connection,
            name="store",
            timeout=POOL_TIMEOUT_S,
        )
        await pool.open(wait=True, timeout=POOL_TIMEOUT_S + CONNECT_TIMEOUT_S)
        return cls(pool)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._pool.close()

    @asynccontextmanager
    async def locked(self) -> AsyncIterator[PostgresSession]:
        """A pooled connection (autocommit) for reads, or a lone write."""
        if self._closed:
            raise StoreClosedError("the store is closed")
        async with self._pool.connection() as conn:
            yield PostgresSession(conn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresSession]:
        """A pooled connection inside BEGIN ... COMMIT (ROLLBACK if the body raises; on
        cancellation psycopg cancels the statement on the server first)."""
        if self._closed:
            raise StoreClosedError("the store is closed")
        async with self._pool.connection() as conn, conn.transaction():
            yield PostgresSession(conn)
