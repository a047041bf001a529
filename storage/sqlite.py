"""The SQLite implementation of ``Store``: one aiosqlite connection, WAL, numbered migrations.

The queries are ``SQLStore``'s (shared with PostgreSQL); ``database`` shares the connection
safely between coroutines; ``migrate`` upgrades the schema when the store opens.
"""

from __future__ import annotations

from pathlib import Path

from .database import Database
from .migrate import migrate
from .sqlstore import SQLStore


class SQLiteStore(SQLStore):
    """``Store`` over one aiosqlite connection. Create it with ``await SQLiteStore.open(path)``."""

    _db: Database

    @classmethod
    async def open(cls, database: str | Path) -> SQLiteStore:
        """Connect, set the pragmas and migrate. ``database`` is a file path or ``:memory:``."""
        db = await Database.connect(database)
        store = cls(db)
        try:
            store.migrations_applied = await migrate(db)
        except BaseException:
            await db.close()
            raise
        return store
