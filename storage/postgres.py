"""The PostgreSQL implementation of ``Store``, for several instances on one database.

The queries are ``SQLStore``'s, shared with SQLite; ``pg_database`` pools the connections and
``pg_migrate`` upgrades the schema (once, under an advisory lock) when the store opens.

A database that is down when the bot starts is waited for: one log line per attempt, the
attempts further and further apart (up to ``MAX_RETRY_DELAY_S``), never a crash loop. Once
running, a failed statement raises ``psycopg.OperationalError`` from the store call, which
the core treats as any failed turn; the pool replaces the connections meanwhile.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterable, Iterator

from psycopg import AsyncConnection, OperationalError

from .pg_database import PostgresDatabase, connection_options
from .pg_migrate import migrate
from .sqlstore import SQLStore
from .urls import redact_url, scrub

log = logging.getLogger(__name__)

FIRST_RETRY_DELAY_S = 0.5
MAX_RETRY_DELAY_S = 30.0


def retry_delays() -> Iterator[float]:
    """0.5, 1, 2, 4, ... seconds, then every ``MAX_RETRY_DELAY_S``, for ever."""
    for attempt in itertools.count():
        yield min(FIRST_RETRY_DELAY_S * 2**attempt, MAX_RETRY_DELAY_S)


class DatabaseUnavailableError(ConnectionError):
    """The database could not be reached; the message never holds the URL's password."""


class PostgresStore(SQLStore):
    """``Store`` over a connection pool. Create it with ``await PostgresStore.open(url)``."""

    _db: PostgresDatabase

    @classmethod
    async def open(
        cls, url: str, *, pool_size: int, delays: Iterable[float] | None = None
    ) -> PostgresStore:
        """Connect (waiting for the database, ``delays`` apart), migrate, fill the pool."""
        applied = await _migrate_when_reachable(url, retry_delays() if delays is None else delays)
        try:
            db = await PostgresDatabase.open(url, size=pool_size)
        except OperationalError as exc:  # down again between the migration and the pool
            raise DatabaseUnavailableError(_reason(exc, url)) from None
        store = cls(db)
        store.migrations_applied = applied
        return store


async def _migrate_when_reachable(url: str, delays: Iterable[float]) -> tuple[int, ...]:
    shown = redact_url(url)
    waits = iter(delays)
    attempt = 0
    while True:
        attempt += 1
        try:
            conn = await AsyncConnection.connect(url, **connection_options())
        except OperationalError as exc:
            delay = next(waits, None)
            if delay is None:
                raise DatabaseUnavailableError(
                    f"PostgreSQL at {shown} is not reachable: {_reason(exc, url)}"
                ) from None
            log.warning(
                "PostgreSQL at %s is not reachable (%s); retrying in %g s",
                shown,
                _reason(exc, url),
                delay,
                extra={"attempt": attempt},
            )
            await asyncio.sleep(delay)
            continue
        if attempt > 1:
            log.info("PostgreSQL at %s is reachable", shown)
        async with conn:
            return await migrate(conn)


def _reason(exc: BaseException, url: str) -> str:
    """A driver's message on one line, without the URL's password."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return scrub(text, url)
