"""Persistence behind the small ``Store`` protocol: conversation history, files, usage, state."""

from __future__ import annotations

import asyncio

from .base import (
    HistoryItem,
    JSONDict,
    NewItem,
    ObservedMessage,
    Store,
    StoredFile,
    UnfinishedEvent,
    UsageRecord,
    UsageTotals,
)
from .sqlite import SQLiteStore, StoreClosedError, sqlite_path_from_url

__all__ = [
    "HistoryItem",
    "JSONDict",
    "NewItem",
    "ObservedMessage",
    "SQLiteStore",
    "Store",
    "StoreClosedError",
    "StoredFile",
    "UnfinishedEvent",
    "UsageRecord",
    "UsageTotals",
    "open_store",
    "sqlite_path_from_url",
]


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
