"""One aiosqlite connection that the store's coroutines share: its pragmas, a lock, transactions.

Every statement runs on aiosqlite's single worker thread, so nothing here blocks the event loop,
but coroutines still interleave *between* statements. Two turns doing "BEGIN; INSERT; COMMIT"
on the shared connection would mix their transactions, and a lone write issued while another
coroutine's transaction is open would silently become part of it (and vanish with its
rollback). So every use of the connection, reads included, goes through one ``asyncio.Lock``
(``locked`` or ``transaction``): the worker thread serialises the statements anyway, and the
lock makes each store method's statements a unit that sees only committed data.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Self

import aiosqlite

from .sql import Dialect, Params, StoreClosedError

log = logging.getLogger(__name__)

SQLITE = Dialect(name="sqlite", row_key="rowid", link_order="cf.rowid")

BUSY_TIMEOUT_MS = 5_000
"""How long a write waits for another process's lock before failing with ``database is locked``."""

# STRICT tables arrived in 3.37; RETURNING and upsert are older.
_MIN_SQLITE_VERSION = (3, 37, 0)

__all__ = ["SQLITE", "Database", "StoreClosedError"]


class Database:
    """The connection and its lock: SQLite's ``Backend``, and the ``Session`` it hands out.
    Statements run only inside ``locked()`` or ``transaction()``; ``connect`` opens one with
    the pragmas set."""

    dialect = SQLITE

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn
        self._lock = asyncio.Lock()
        self._closed = False

    @classmethod
    async def connect(cls, database: str | Path) -> Self:
        """Connect and set the pragmas (WAL, busy timeout, foreign keys). ``database`` is a
        file path or ``:memory:``."""
        if sqlite3.sqlite_version_info < _MIN_SQLITE_VERSION:
            raise RuntimeError(
                f"SQLite {sqlite3.sqlite_version} is too old: STRICT tables need 3.37 or newer"
            )
        # isolation_level=None: no implicit BEGINs from the sqlite3 module; we issue our own.
        conn = await aiosqlite.connect(database, isolation_level=None)
        db = cls(conn)
        try:
            await db._configure(in_memory=str(database) == ":memory:")
        except BaseException:
            await conn.close()
            raise
        return db

    async def close(self) -> None:
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            await self.conn.close()

    @asynccontextmanager
    async def locked(self) -> AsyncIterator[Self]:
        """Hold the lock for reads (or a lone write) that need no transaction."""
        async with self._lock:
            if self._closed:
                raise StoreClosedError("the store is closed")
            yield self

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Self]:
        """Hold the lock for one write transaction: BEGIN IMMEDIATE ... COMMIT, or ROLLBACK."""
        async with self.locked():
            try:
                # IMMEDIATE takes the write lock up front (waiting up to busy_timeout for other
                # processes) instead of failing on the first write of a read-then-write body.
                await self.execute("BEGIN IMMEDIATE")
                yield self
                await self.execute("COMMIT")
            except BaseException:
                await self._rollback()
                raise

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        async with self.conn.execute(sql, params) as cursor:
            return cursor.rowcount

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        async with self.conn.executemany(sql, rows):
            pass

    async def fetchall(self, sql: str, params: Params = ()) -> list[Any]:
        # fetchall runs the statement to completion, so a RETURNING write is finished too.
        return list(await self.conn.execute_fetchall(sql, params))

    async def _rollback(self) -> None:
        # Shielded so a second cancellation cannot leave the transaction open; the worker thread
        # runs statements in order, so the ROLLBACK lands before any later BEGIN.
        try:
            await asyncio.shield(self.execute("ROLLBACK"))
        except sqlite3.OperationalError as exc:
            # BEGIN never ran, or COMMIT got through before a cancellation reached us.
            if "no transaction is active" not in str(exc):
                log.exception("ROLLBACK failed")
        except Exception:
            log.exception("ROLLBACK failed")

    async def _configure(self, *, in_memory: bool) -> None:
        await self.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = await self._switch_to_wal()
        if not in_memory and mode != "wal":
            log.warning("SQLite refused WAL mode (journal_mode=%s); writes will be slower", mode)
        await self.execute("PRAGMA synchronous = NORMAL")
        await self.execute("PRAGMA foreign_keys = ON")

    async def _switch_to_wal(self) -> str:
        """Set WAL (it persists in the file) and return the journal mode in effect.

        When two connections open a new file at once, the switch can fail with "database is
        locked" straight away: SQLite skips the busy handler where waiting could deadlock. So
        retry for up to the busy timeout ourselves.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            rows = await self.fetchall("PRAGMA journal_mode")
            if str(rows[0][0]).lower() == "wal":
                return "wal"
            try:
                rows = await self.fetchall("PRAGMA journal_mode = WAL")
                return str(rows[0][0]).lower()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.02)
