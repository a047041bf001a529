"""The SQLite implementation of ``Store``: one aiosqlite connection, WAL, numbered migrations.

Each group of tables has its module, whose queries ``SQLiteStore`` takes in as a base class:
``history`` (conversations, their items, observed messages), ``files``, ``events``, ``usage``
and ``state``. The transactions that span the groups (a finished turn, ``/reset``, retention)
are here. ``database`` shares the connection safely between coroutines; ``migrate`` upgrades
the schema when the store opens.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .base import Expired, Forgotten, NewItem, UsageRecord
from .database import Database
from .events import EventQueries, mark_answered
from .files import FileQueries
from .history import HistoryQueries, encode_items, insert_items, take_observed
from .migrate import migrate
from .state import StateQueries
from .usage import UsageQueries, insert_usage

MAX_EXPIRE_BATCH = 500
"""Most rows of each kind one ``expire_older_than`` call may delete: its conversation ids are
bound parameters, and SQLite before 3.32 allows 999 of them."""


class SQLiteStore(HistoryQueries, FileQueries, EventQueries, UsageQueries, StateQueries):
    """``Store`` over one aiosqlite connection. Create it with ``await SQLiteStore.open(path)``."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.migrations_applied: tuple[int, ...] = ()
        """The migration versions this ``open`` applied (empty if the schema was current)."""

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

    async def close(self) -> None:
        await self._db.close()

    async def complete_turn(
        self,
        *,
        conversation: str,
        items: Sequence[NewItem],
        usage: UsageRecord | None,
        event_id: str | None,
        observed_upto: int | None = None,
    ) -> None:
        # Serialised before the transaction: a bad item fails the call with nothing written.
        encoded = encode_items(items)
        async with self._db.transaction():
            if observed_upto is not None:
                await take_observed(self._db, conversation, upto=observed_upto)
            if encoded:
                await insert_items(self._db, conversation, encoded)
            if usage is not None:
                await insert_usage(self._db, usage)
            if event_id is not None:
                await mark_answered(self._db, event_id=event_id, conversation=conversation)

    async def forget_conversation(self, *, conversation: str) -> Forgotten:
        async with self._db.transaction():
            rows = await self._db.fetchall(
                "SELECT id FROM conversations WHERE key = ?", (conversation,)
            )
            items, files, _ = await self._delete_conversations([int(r[0]) for r in rows])
            await self._db.execute(
                "DELETE FROM observed_messages WHERE conversation = ?", (conversation,)
            )
        return Forgotten(items=items, files=files)

    # --- retention ------------------------------------------------------------------------
    async def expire_older_than(self, *, cutoff: float, limit: int) -> Expired:
        if not 0 < limit <= MAX_EXPIRE_BATCH:
            raise ValueError(f"limit must be 1 to {MAX_EXPIRE_BATCH}, not {limit}")
        async with self._db.transaction():
            rows = await self._db.fetchall(
                "SELECT id FROM conversations WHERE updated_at < ? ORDER BY updated_at LIMIT ?",
                (cutoff, limit),
            )
            _, _, files = await self._delete_conversations([int(r[0]) for r in rows])
            # rowid subqueries, because DELETE ... LIMIT needs a compile-time option.
            usage_rows = await self._db.execute(
                "DELETE FROM usage WHERE id IN (SELECT id FROM usage WHERE created_at < ? LIMIT ?)",
                (cutoff, limit),
            )
            events = await self._db.execute(
                "DELETE FROM processed_events WHERE rowid IN (SELECT rowid FROM processed_events"
                " WHERE finished_at IS NOT NULL AND finished_at < ? LIMIT ?)",
                (cutoff, limit),
            )
            observed = await self._db.execute(
                "DELETE FROM observed_messages WHERE id IN"
                " (SELECT id FROM observed_messages WHERE created_at < ? LIMIT ?)",
                (cutoff, limit),
            )
        return Expired(
            conversations=len(rows),
            files=files,
            usage_rows=usage_rows,
            events=events,
            observed=observed,
        )

    async def _delete_conversations(self, ids: list[int]) -> tuple[int, int, int]:
        """Delete conversations with everything linked to them, and the files no other
        conversation links; call inside a transaction. Returns (history items, file links,
        files deleted)."""
        if not ids:
            return 0, 0, 0
        marks = ", ".join("?" * len(ids))
        params = tuple(ids)
        items = await self._db.execute(
            f"DELETE FROM history_items WHERE conversation_id IN ({marks})", params
        )
        unlinked = await self._db.fetchall(
            f"DELETE FROM conversation_files WHERE conversation_id IN ({marks}) RETURNING sha256",
            params,
        )
        await self._db.execute(
            f"DELETE FROM file_annotations WHERE conversation_id IN ({marks})", params
        )
        await self._db.execute(f"DELETE FROM conversations WHERE id IN ({marks})", params)
        # A file's bytes are shared by hash across conversations: they go with the last link.
        files = 0
        for sha256 in sorted({str(row[0]) for row in unlinked}):
            files += await self._db.execute(
                "DELETE FROM files WHERE sha256 = ?"
                " AND NOT EXISTS (SELECT 1 FROM conversation_files WHERE sha256 = ?)",
                (sha256, sha256),
            )
        return items, len(unlinked), files
