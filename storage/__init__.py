"""Persistence behind the small ``Store`` protocol: conversation history, files, usage, state."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosqlite

from .base import (
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
)
from .migrate import load_migrations, schema_version
from .sql import StoreClosedError
from .sqlite import SQLiteStore
from .sqlstore import SQLStore

__all__ = [
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
    "inspect_database",
    "open_store",
    "sqlite_path_from_url",
]


def sqlite_path_from_url(database_url: str) -> Path | None:
    """``sqlite:///data/bot.db`` -> ``data/bot.db`` (relative to the working directory),
    ``sqlite:////abs/path.db`` -> ``/abs/path.db``, ``sqlite:///:memory:`` -> None.

    Raises ``ValueError`` for anything else.
    """
    prefix = "sqlite:///"
    rest = database_url.removeprefix(prefix)
    if not database_url.startswith(prefix) or not rest:
        # The URL is not echoed: it may carry a password (postgresql://user:secret@host/db).
        scheme = database_url.partition(":")[0][:20] if ":" in database_url else ""
        raise ValueError(
            f"unsupported database URL (scheme {scheme!r})"
            if scheme
            else "unsupported database URL"
        )
    if rest == ":memory:":
        return None
    return Path(rest)


async def open_store(database_url: str) -> SQLiteStore:
    """Open (creating and migrating if needed) the store a ``DATABASE_URL`` names.

    ``sqlite:///data/bot.db`` is relative to the working directory, ``sqlite:////abs/bot.db``
    absolute, ``sqlite:///:memory:`` a throwaway database; anything else is a ``ValueError``.
    """
    path = sqlite_path_from_url(database_url)
    if path is None:
        return await SQLiteStore.open(":memory:")
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    return await SQLiteStore.open(path)


async def inspect_database(database_url: str) -> str:
    """What ``python -m bot check`` says of the database, without creating or migrating it:
    its schema version against this code's, or where it will be created. ``OSError`` or
    ``aiosqlite.Error`` if it exists but cannot be read."""
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
    if version < latest:
        state = f"schema {version}; migrated to {latest} at the next start"
    elif version > latest:
        state = f"schema {version} is NEWER than this code's {latest} (a downgrade?)"
    else:
        state = f"schema {version}, up to date"
    return f"{path.resolve()} ({state})"
