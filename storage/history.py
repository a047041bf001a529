"""Conversation history: the conversations, their items, and the messages seen in them.

History is written only by ``complete_turn`` (in ``storage.sqlite``), through ``insert_items``;
reading it back is the hot path of every turn, so ``load_history`` reads a bounded window.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence

from .base import HistoryItem, NewItem, ObservedMessage
from .sql import Backend, Session, storable

_SURROGATE = re.compile("[\ud800-\udfff]")

LOAD_HISTORY_SQL = """\
SELECT seq, item_json, tokens, turn_start
FROM history_items
WHERE conversation_id = (SELECT id FROM conversations WHERE key = ?)
ORDER BY seq DESC
LIMIT ?"""
"""The one statement ``load_history`` runs: the newest ``max_items`` rows through the
(conversation_id, seq) primary-key index, so its cost does not grow with the conversation.
Only the rows that fit the token budget are decoded (in ``load_history``). Two alternatives
were measured slower with bench/history.py: a window-function SUM in SQL (it re-sorts the wide
rows twice) and decoding in a column converter on the worker thread (a Python callback a row,
and the GIL keeps the loop waiting anyway)."""

_CONVERSATION_ID_SQL = """\
INSERT INTO conversations (key, created_at, updated_at) VALUES (?, ?, ?)
ON CONFLICT (key) DO UPDATE SET updated_at = excluded.updated_at
RETURNING id"""

OBSERVED_MAX_AGE_S = 7 * 86_400
"""Observed messages older than this are never shown to the model."""

EncodedItem = tuple[str, int, int]
"""(item_json, tokens, turn_start) of one history row, serialised before any write."""


class HistoryQueries:
    """The ``Store`` methods that read history and keep observed messages."""

    _db: Backend

    async def load_history(
        self, *, conversation: str, max_items: int, max_tokens: int
    ) -> list[HistoryItem]:
        if max_items <= 0 or max_tokens < 0:
            return []
        async with self._db.locked() as db:
            rows = await db.fetchall(LOAD_HISTORY_SQL, (conversation, max_items))
        keep = fit_history([(row[0], row[2], bool(row[3])) for row in rows], max_tokens)
        return [
            HistoryItem(seq=row[0], item=json.loads(row[1]), tokens=row[2], turn_start=bool(row[3]))
            for row in reversed(rows[:keep])
        ]

    # --- messages seen but not addressed to the bot ---------------------------------------
    async def observe_message(
        self, *, conversation: str, message_id: str, author: str, text: str, keep: int
    ) -> None:
        now = time.time()
        async with self._db.transaction() as db:
            await db.execute(
                "INSERT INTO observed_messages (conversation, message_id, author, text, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (conversation, message_id) DO NOTHING",
                (conversation, message_id, storable(author), storable(text), now),
            )
            # The week-old rows of every conversation before this one's surplus: where
            # transactions run side by side (PostgreSQL), each then locks rows in the same
            # order, so two of them wait for each other instead of deadlocking.
            await db.execute(
                "DELETE FROM observed_messages WHERE created_at < ?", (now - OBSERVED_MAX_AGE_S,)
            )
            await db.execute(
                "DELETE FROM observed_messages WHERE conversation = ? AND id NOT IN"
                " (SELECT id FROM observed_messages WHERE conversation = ?"
                " ORDER BY id DESC LIMIT ?)",
                (conversation, conversation, keep),
            )

    async def observed_messages(self, *, conversation: str) -> list[ObservedMessage]:
        async with self._db.locked() as db:
            rows = await db.fetchall(
                "SELECT id, message_id, author, text FROM observed_messages"
                " WHERE conversation = ? ORDER BY id",
                (conversation,),
            )
        return [ObservedMessage(int(i), str(m), str(a), str(t)) for i, m, a, t in rows]


def fit_history(newest_first: Sequence[tuple[int, int, bool]], max_tokens: int) -> int:
    """How many of the newest rows (seq, tokens, turn_start) to keep.

    Walks back from the newest row while the token sum stays within ``max_tokens`` and keeps
    everything up to the oldest turn start reached, so history is only ever cut before a turn.
    0 if not even the newest turn fits (or no turn start is in the window).
    """
    total = 0
    keep = 0
    for index, (_seq, tokens, turn_start) in enumerate(newest_first):
        total += tokens
        if total > max_tokens:
            break
        if turn_start:
            keep = index + 1
    return keep


def encode_items(items: Sequence[NewItem]) -> list[EncodedItem]:
    return [(json_text(new.item), new.tokens, int(new.turn_start)) for new in items]


def json_text(value: object) -> str:
    """``value`` as JSON for a TEXT column."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if _SURROGATE.search(text):
        # A lone surrogate (a model can emit one) is not UTF-8, so SQLite could not store it;
        # as a JSON escape it round-trips intact.
        return json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text


async def conversation_id(db: Session, conversation: str) -> int:
    """The conversation's row id, creating the row; call inside a transaction."""
    now = time.time()
    rows = await db.fetchall(_CONVERSATION_ID_SQL, (conversation, now, now))
    return int(rows[0][0])


async def insert_items(db: Session, conversation: str, encoded: list[EncodedItem]) -> None:
    """Append after the conversation's newest item; call inside a transaction."""
    row_id = await conversation_id(db, conversation)
    rows = await db.fetchall(
        "SELECT COALESCE(MAX(seq), 0) FROM history_items WHERE conversation_id = ?",
        (row_id,),
    )
    last_seq = int(rows[0][0])
    await db.executemany(
        "INSERT INTO history_items (conversation_id, seq, item_json, tokens, turn_start)"
        " VALUES (?, ?, ?, ?, ?)",
        [
            (row_id, last_seq + offset, item_json, tokens, turn_start)
            for offset, (item_json, tokens, turn_start) in enumerate(encoded, start=1)
        ],
    )


async def take_observed(db: Session, conversation: str, *, upto: int) -> None:
    """Delete the observed messages a turn took in (ids up to ``upto``); call inside a
    transaction."""
    await db.execute(
        "DELETE FROM observed_messages WHERE conversation = ? AND id <= ?",
        (conversation, upto),
    )
