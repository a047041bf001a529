"""The ``Store`` both databases share: the query groups, and the transactions that span them.

Each group of tables has its module, whose queries ``SQLStore`` takes in as a base class:
``history`` (conversations, their items, observed messages), ``files``, ``events``, ``usage``,
``state``, ``instances`` and ``feedback``. The transactions that span the groups (a finished turn,
``/reset``, retention) are here. ``SQLiteStore`` and ``PostgresStore`` add how to open and
close their database.
"""

from __future__ import annotations

from collections.abc import Sequence

from .approvals import ApprovalQueries
from .base import Expired, Forgotten, NewItem, UsageRecord
from .events import EventQueries, mark_answered
from .feedback import FeedbackQueries
from .files import FileQueries
from .history import HistoryQueries, encode_items, insert_items, take_observed
from .instances import InstanceQueries
from .sql import Backend, Session
from .state import StateQueries
from .usage import UsageQueries, insert_usage

MAX_EXPIRE_BATCH = 500
"""Most rows of each kind one ``expire_older_than`` call may delete: its conversation ids are
bound parameters, and SQLite before 3.32 allows 999 of them."""


class SQLStore(
    HistoryQueries,
    FileQueries,
    EventQueries,
    UsageQueries,
    StateQueries,
    InstanceQueries,
    FeedbackQueries,
    ApprovalQueries,
):
    """``Store`` over a ``Backend``; the subclasses open one."""

    def __init__(self, db: Backend) -> None:
        self._db = db
        self.migrations_applied: tuple[int, ...] = ()
        """The migration versions this ``open`` applied (empty if the schema was current)."""

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
        async with self._db.transaction() as db:
            if observed_upto is not None:
                await take_observed(db, conversation, upto=observed_upto)
            if encoded:
                await insert_items(db, conversation, encoded)
            if usage is not None:
                await insert_usage(db, usage)
            if event_id is not None:
                await mark_answered(db, event_id=event_id, conversation=conversation)

    async def forget_conversation(self, *, conversation: str) -> Forgotten:
        async with self._db.transaction() as db:
            rows = await db.fetchall("SELECT id FROM conversations WHERE key = ?", (conversation,))
            items, files, _ = await _delete_conversations(db, [int(r[0]) for r in rows])
            await db.execute(
                "DELETE FROM observed_messages WHERE conversation = ?", (conversation,)
            )
        return Forgotten(items=items, files=files)

    # --- retention ------------------------------------------------------------------------
    async def expire_older_than(self, *, cutoff: float, limit: int) -> Expired:
        if not 0 < limit <= MAX_EXPIRE_BATCH:
            raise ValueError(f"limit must be 1 to {MAX_EXPIRE_BATCH}, not {limit}")
        key = self._db.dialect.row_key
        async with self._db.transaction() as db:
            rows = await db.fetchall(
                "SELECT id FROM conversations WHERE updated_at < ? ORDER BY updated_at, id LIMIT ?",
                (cutoff, limit),
            )
            _, _, files = await _delete_conversations(db, [int(r[0]) for r in rows])
            # Key subqueries, because SQLite's DELETE ... LIMIT needs a compile-time option.
            usage_rows = await db.execute(
                "DELETE FROM usage WHERE id IN (SELECT id FROM usage WHERE created_at < ? LIMIT ?)",
                (cutoff, limit),
            )
            events = await db.execute(
                f"DELETE FROM processed_events WHERE {key} IN (SELECT {key} FROM processed_events"
                " WHERE finished_at IS NOT NULL AND finished_at < ? LIMIT ?)",
                (cutoff, limit),
            )
            observed = await db.execute(
                "DELETE FROM observed_messages WHERE id IN"
                " (SELECT id FROM observed_messages WHERE created_at < ? LIMIT ?)",
                (cutoff, limit),
            )
            # Their messages and votes go with them (ON DELETE CASCADE).
            answers = await db.execute(
                "DELETE FROM answers WHERE event_id IN"
                " (SELECT event_id FROM answers WHERE created_at < ? LIMIT ?)",
                (cutoff, limit),
            )
        return Expired(
            conversations=len(rows),
            files=files,
            usage_rows=usage_rows,
            events=events,
            observed=observed,
            answers=answers,
        )


async def _delete_conversations(db: Session, ids: list[int]) -> tuple[int, int, int]:
    """Delete conversations with everything linked to them, and the files no other
    conversation links; call inside a transaction. Returns (history items, file links,
    files deleted)."""
    if not ids:
        return 0, 0, 0
    marks = ", ".join("?" * len(ids))
    params = tuple(ids)
    items = await db.execute(
        f"DELETE FROM history_items WHERE conversation_id IN ({marks})", params
    )
    unlinked = await db.fetchall(
        f"DELETE FROM conversation_files WHERE conversation_id IN ({marks}) RETURNING sha256",
        params,
    )
    await db.execute(f"DELETE FROM file_annotations WHERE conversation_id IN ({marks})", params)
    await db.execute(f"DELETE FROM conversations WHERE id IN ({marks})", params)
    # A file's bytes are shared by hash across conversations: they go with the last link.
    files = 0
    for sha256 in sorted({str(row[0]) for row in unlinked}):
        files += await db.execute(
            "DELETE FROM files WHERE sha256 = ?"
            " AND NOT EXISTS (SELECT 1 FROM conversation_files WHERE sha256 = ?)",
            (sha256, sha256),
        )
    return items, len(unlinked), files
