"""Feedback on answers: each answer the bot posted, the messages it went out as, and the votes.

A vote is one row per answer and user, written with an upsert: a second click changes the row,
and two clicks at once (two instances, or a double click) still leave one.
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import AnswerRecord, VoteShare
from .sql import Backend


class FeedbackQueries:
    """The ``Store`` methods for answers and their votes."""

    _db: Backend

    async def save_answer(
        self, *, answer: AnswerRecord, platform: str, message_ids: Sequence[str]
    ) -> None:
        async with self._db.transaction() as db:
            await db.execute(
                "INSERT INTO answers (event_id, conversation, channel, model, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
                (
                    answer.event_id,
                    answer.conversation,
                    answer.channel,
                    answer.model,
                    answer.created_at,
                ),
            )
            for message_id in dict.fromkeys(message_ids):
                await db.execute(
                    "INSERT INTO answer_messages (platform, message_id, event_id) VALUES (?, ?, ?)"
                    " ON CONFLICT (platform, message_id) DO NOTHING",
                    (platform, message_id, answer.event_id),
                )

    async def answer_of_message(self, *, platform: str, message_id: str) -> AnswerRecord | None:
        async with self._db.locked() as db:
            rows = await db.fetchall(
                "SELECT a.event_id, a.conversation, a.channel, a.model, a.created_at"
                " FROM answer_messages m JOIN answers a ON a.event_id = m.event_id"
                " WHERE m.platform = ? AND m.message_id = ?",
                (platform, message_id),
            )
        if not rows:
            return None
        event_id, conversation, channel, model, created_at = rows[0]
        return AnswerRecord(str(event_id), str(conversation), str(channel), str(model), created_at)

    async def vote(self, *, event_id: str, user_id: str, value: str, now: float) -> str | None:
        async with self._db.transaction() as db:
            if self._db.dialect.key_lock:  # one user's clicks on one answer, one at a time
                await db.fetchall(self._db.dialect.key_lock, (f"vote:{event_id}:{user_id}",))
            rows = await db.fetchall(
                "SELECT value FROM votes WHERE event_id = ? AND user_id = ?", (event_id, user_id)
            )
            await db.execute(
                "INSERT INTO votes (event_id, user_id, value, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (event_id, user_id) DO UPDATE SET"
                " value = excluded.value, updated_at = excluded.updated_at",
                (event_id, user_id, value, now, now),
            )
        return str(rows[0][0]) if rows else None

    async def vote_shares(self, *, channel: str | None = None) -> list[VoteShare]:
        where, params = ("WHERE a.channel = ?", (channel,)) if channel is not None else ("", ())
        async with self._db.locked() as db:
            rows = await db.fetchall(
                "SELECT a.model, a.channel,"
                " SUM(CASE WHEN v.value = 'up' THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN v.value = 'down' THEN 1 ELSE 0 END)"
                f" FROM votes v JOIN answers a ON a.event_id = v.event_id {where}"
                " GROUP BY a.model, a.channel ORDER BY a.channel, a.model",
                params,
            )
        # PostgreSQL sums as BIGINT or NUMERIC: int() makes them plain ints on both.
        return [VoteShare(str(m), str(c), int(up), int(down)) for m, c, up, down in rows]
