"""What the queries run on, whichever database is behind them.

The query modules (``history``, ``files``, ``events``, ``usage``, ``state``) and the store's
multi-table transactions (``sqlstore``) are written once, in the SQL both SQLite and
PostgreSQL understand, with ``?`` placeholders. They take a ``Session`` from the store's
``Backend`` for each unit of work: ``locked()`` for reads and lone writes, ``transaction()``
for everything that must be all or nothing. SQLite's backend is one connection behind a lock
(``storage.database``); PostgreSQL's is a connection pool (``storage.pg_database``).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

Params = tuple[object, ...]


def storable(text: str) -> str:
    """Chat text as both databases can keep it: without NUL characters, which PostgreSQL's TEXT
    refuses (and which mean nothing in a message). JSON needs none of this: it escapes them."""
    return text.replace("\x00", "")


class StoreClosedError(RuntimeError):
    """The store was used after ``close()``."""


@dataclass(frozen=True, slots=True)
class Dialect:
    """The few fragments of SQL that differ between the databases."""

    name: str
    row_key: str
    """A column that identifies a ``processed_events`` row, for batched deletes: SQLite's
    ``rowid`` (what its partial index holds), PostgreSQL's primary key."""
    link_order: str
    """How the links of one conversation to its files tie-break when added at the same instant:
    SQLite's ``rowid`` is insertion order; PostgreSQL has none, so the hash decides."""
    key_lock: str = ""
    """A statement, taking one ``?`` (a string key), that makes the rest of a transaction wait
    for any other transaction that ran it with the same key: PostgreSQL's transaction-scoped
    advisory lock. Empty on SQLite, whose write transactions already run one at a time."""


class Session(Protocol):
    """Statements on one connection, inside ``Backend.locked`` or ``Backend.transaction``."""

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None: ...

    async def fetchall(self, sql: str, params: Params = ()) -> list[Any]:
        """Run one statement (a ``RETURNING`` write too) and return all its rows as tuples."""
        ...


class Backend(Protocol):
    dialect: Dialect

    def locked(self) -> AbstractAsyncContextManager[Session]:
        """A session for reads, or a lone write, that need no transaction."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[Session]:
        """A session inside one write transaction: committed at the end, rolled back if the
        body raises (or is cancelled)."""
        ...

    async def close(self) -> None: ...
