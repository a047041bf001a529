"""Persistence behind the small ``Store`` protocol: conversation history, files, usage, state."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosqlite

from .base import (
    AnswerRecord,
    ApprovalRecord,
    Expired,
    Forgotten,
    HistoryItem,
    JSONDict,
    NewItem,
    ObservedMessage,
    Outcome,
    Store,
    StoredFile,
    UnfinishedEvent,
    UsageRecord,
    UsageTotals,
    VoteShare,
)
from .migrate import describe_version, load_migrations, schema_version
from .sql import StoreClosedError
from .sqlite import SQLiteStore
from .sqlstore import SQLStore
from .urls import database_kind, redact_url, sqlite_path_from_url, url_password

__all__ = [
    "AnswerRecord",
    "ApprovalRecord",
    "Expired",
    "Forgotten",
    "HistoryItem",
    "JSONDict",
    "NewItem",
    "ObservedMessage",
    "Outcome",
    "SQLStore",
    "SQLiteStore",
    "Store",
    "StoreClosedError",
    "StoredFile",
    "UnfinishedEvent",
    "UsageRecord",
    "UsageTotals",
    "VoteShare",
    "database_kind",
    "inspect_database",
    "open_store",
    "redact_url",
    "sqlite_path_from_url",
    "url_password",
]


DEFAULT_POOL_SIZE = 10
"""Connections a PostgreSQL store keeps (``DATABASE_POOL_SIZE``); SQLite has one."""


async def open_store(database_url: str, *, pool_size: int = DEFAULT_POOL_SIZE) -> Store:
    """Open (creating and migrating if needed) the store a ``DATABASE_URL`` names.

    ``sqlite:///data/bot.db`` is relative to the working directory, ``sqlite:////abs/bot.db``
    absolute, ``sqlite:///:memory:`` a throwaway database; ``postgresql://user:password@host/db``
    (or ``postgres://``) a PostgreSQL database, waited for while it is down, with a pool of
    ``pool_size`` connections. Anything else is a ``ValueError``.
    """
    if database_kind(database_url) == "postgresql":
        from .postgres import PostgresStore  # psycopg is imported only when it is used

        return await PostgresStore.open(database_url, pool_size=pool_size)
    path = sqlite_path_from_url(database_url)
    if path is None:
        return await SQLiteStore.open(":memory:")
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    return await SQLiteStore.open(path)


async def inspect_database(database_url: str) -> str:
    """What ``python -m bot check`` says of the database, without creating or migrating it:
    its schema version against this code's, or where it will be created. ``OSError`` or
    the driver's error if it exists but cannot be read (never holding the URL's password)."""
    if database_kind(database_url) == "postgresql":
        from .pg_inspect import inspect_postgres

        return await inspect_postgres(database_url)
    path = sqlite_path_from_url(database_url)
    if path is None:
        return "in memory (a new, empty database at every start)"
    latest = len(load_migrations())
    if not await asyncio.to_thread(path.exists):
        folder = path.parent if str(path.parent) else Path(".")
        return f"{path} does not exist yet; created at first start (in {folder.resolve()})"
    uri = f"{path.resolve().as_uri()}?mode=ro"
    async with aiosqlite.connect(uri, uri=True) as db:
        version = await schema_version(db)
    return f"{path.resolve()} ({describe_version(version, latest)})"
