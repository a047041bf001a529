"""One storage suite, two databases: what a test needs from "the database behind the store".

A ``StoreBackend`` opens stores on the test's own database (a file under ``tmp_path`` for
SQLite, a database of its own on the session's PostgreSQL server), reads and writes it behind
the store's back as another process would, and knows its database's errors. The ``backend``
fixture (``tests/conftest.py``) gives each parametrized test one of each kind.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Protocol

import aiosqlite
import psycopg
import pytest

import storage.migrate as sqlite_migrate
import storage.pg_migrate as pg_migrate
from storage import NewItem, SQLiteStore, SQLStore, Store
from storage.migrate import Migration, load_migrations
from storage.pg_database import to_pyformat
from storage.postgres import PostgresStore
from tests.pg_cluster import Cluster

Row = tuple[Any, ...]
PG_TEST_POOL_SIZE = 4

_database_names = itertools.count(1)


class StoreBackend(Protocol):
    name: str
    rejected: tuple[type[Exception], ...]
    """What a write the schema refuses raises (a CHECK, a value of the wrong type)."""
    bad_sql: type[Exception]
    """What a statement that is not SQL raises."""

    async def open(self, target: str | None = None) -> SQLStore:
        """A store (closed at the test's end) on the test's database, or on ``target`` (from
        ``new_database``), created and migrated as the bot would."""
        ...

    async def new_database(self) -> str:
        """Another empty database of this test."""
        ...

    async def query(
        self, sql: str, params: tuple[object, ...] = (), target: str | None = None
    ) -> list[Row]:
        """Read (``?`` placeholders) through a connection of its own, committed data only."""
        ...

    async def execute(self, sql: str, params: tuple[object, ...] = ()) -> None:
        """Write (``?`` placeholders) behind the store's back, committed at once."""
        ...

    async def has_table(self, name: str, target: str | None = None) -> bool: ...

    def add_migrations(self, monkeypatch: pytest.MonkeyPatch, *extra: Migration) -> None:
        """Make the store believe ``extra`` ships after its own migrations."""
        ...

    async def close(self) -> None:
        """Close every store ``open`` made (a test that failed may have left them open)."""
        ...


class SQLiteBackend:
    name = "sqlite"
    rejected: tuple[type[Exception], ...] = (aiosqlite.IntegrityError,)
    bad_sql: type[Exception] = aiosqlite.OperationalError

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "bot.db"
        self._opened: list[SQLStore] = []

    async def open(self, target: str | None = None) -> SQLStore:
        store = await SQLiteStore.open(target or self.path)
        self._opened.append(store)
        return store

    async def new_database(self) -> str:
        return str(self.folder / f"other-{next(_database_names)}.db")

    async def query(
        self, sql: str, params: tuple[object, ...] = (), target: str | None = None
    ) -> list[Row]:
        async with aiosqlite.connect(target or self.path) as conn:
            return [tuple(row) for row in await conn.execute_fetchall(sql, params)]

    async def execute(self, sql: str, params: tuple[object, ...] = ()) -> None:
        async with aiosqlite.connect(self.path) as conn:
            await conn.execute(sql, params)
            await conn.commit()

    async def has_table(self, name: str, target: str | None = None) -> bool:
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        return bool(await self.query(sql, (name,), target))

    def add_migrations(self, monkeypatch: pytest.MonkeyPatch, *extra: Migration) -> None:
        monkeypatch.setattr(sqlite_migrate, "load_migrations", lambda: [*load_migrations(), *extra])

    async def close(self) -> None:
        for store in self._opened:
            await store.close()


class PostgresBackend:
    name = "postgresql"
    rejected: tuple[type[Exception], ...] = (psycopg.IntegrityError, psycopg.DataError)
    bad_sql: type[Exception] = psycopg.errors.SyntaxError

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.url = ""
        self._databases: list[str] = []
        self._opened: list[SQLStore] = []

    async def start(self) -> None:
        self.url = await self.new_database()

    async def open(self, target: str | None = None) -> SQLStore:
        store = await PostgresStore.open(target or self.url, pool_size=PG_TEST_POOL_SIZE, delays=())
        self._opened.append(store)
        return store

    async def new_database(self) -> str:
        name = f"test_{next(_database_names)}"
        await self._admin(f"CREATE DATABASE {name} TEMPLATE template0 STRATEGY FILE_COPY")
        self._databases.append(name)
        return self.cluster.url(name)

    async def query(
        self, sql: str, params: tuple[object, ...] = (), target: str | None = None
    ) -> list[Row]:
        async with await psycopg.AsyncConnection.connect(target or self.url) as conn:
            cursor = await conn.execute(to_pyformat(sql), params)
            return await cursor.fetchall()

    async def execute(self, sql: str, params: tuple[object, ...] = ()) -> None:
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            await conn.execute(to_pyformat(sql), params)

    async def has_table(self, name: str, target: str | None = None) -> bool:
        rows = await self.query("SELECT to_regclass(?) IS NOT NULL", (name,), target)
        return bool(rows[0][0])

    def add_migrations(self, monkeypatch: pytest.MonkeyPatch, *extra: Migration) -> None:
        shipped = pg_migrate.load_pg_migrations()
        monkeypatch.setattr(pg_migrate, "load_pg_migrations", lambda: [*shipped, *extra])

    async def close(self) -> None:
        for store in self._opened:
            await store.close()
        for name in self._databases:
            await self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    async def _admin(self, sql: str) -> None:
        async with await psycopg.AsyncConnection.connect(
            self.cluster.url(), autocommit=True
        ) as conn:
            await conn.execute(sql)


def item(text: str, role: str = "user") -> dict[str, Any]:
    return {"role": role, "content": text}


def turn(name: str, *replies: str, tokens: int = 10) -> list[NewItem]:
    """A user message opening a turn, then one item per reply, each costing ``tokens``."""
    return [NewItem(item(name), tokens, turn_start=True)] + [
        NewItem(item(reply, "assistant"), tokens) for reply in replies
    ]


async def contents(store: Store, conversation: str, **limits: int) -> list[str]:
    window = {"max_items": 100_000, "max_tokens": 10**12} | limits
    history = await store.load_history(conversation=conversation, **window)
    return [entry.item["content"] for entry in history]


async def assert_intact(backend: StoreBackend) -> None:
    """SQLite's own checks of the file and its foreign keys (PostgreSQL enforces both as it
    writes)."""
    if isinstance(backend, SQLiteBackend):
        assert await backend.query("PRAGMA integrity_check") == [("ok",)]
        assert await backend.query("PRAGMA foreign_key_check") == []
