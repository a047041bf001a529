"""Exactly-once processing: each platform event is claimed once, then finished with its outcome.

A claim belongs to the instance running its turn (``owner``). One that never finishes is a turn
its instance did not live to end: a live instance adopts it (``storage.instances``) and tells
its user.
"""

from __future__ import annotations

import time

from .base import Outcome, UnfinishedEvent
from .sql import Backend, Session

EVENT_OUTCOMES = frozenset({Outcome.ANSWERED, Outcome.FAILED})
"""The outcomes a claimed event can be finished with (its status until then is 'claimed')."""


class EventQueries:
    """The ``Store`` methods for claiming and finishing events."""

    _db: Backend

    async def claim_event(
        self,
        *,
        event_id: str,
        conversation: str,
        address: str | None = None,
        owner: str | None = None,
    ) -> bool:
        async with self._db.locked() as db:
            inserted = await db.execute(
                "INSERT INTO processed_events"
                " (event_id, conversation, status, claimed_at, address, owner)"
                " VALUES (?, ?, 'claimed', ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
                (event_id, conversation, time.time(), address, owner),
            )
        return inserted == 1

    async def finish_event(self, *, event_id: str, outcome: Outcome) -> None:
        # Checked at run time too: the column's CHECK would also take 'claimed'.
        if outcome not in EVENT_OUTCOMES:
            raise ValueError(
                f"outcome must be one of {sorted(map(str, EVENT_OUTCOMES))}, not {outcome!r}"
            )
        async with self._db.locked() as db:
            await db.execute(
                "UPDATE processed_events SET status = ?, finished_at = ? WHERE event_id = ?",
                (outcome, time.time(), event_id),
            )

    async def has_conversation(self, *, conversation: str) -> bool:
        async with self._db.locked() as db:
            rows = await db.fetchall(
                "SELECT EXISTS (SELECT 1 FROM processed_events WHERE conversation = ?)",
                (conversation,),
            )
        return bool(rows[0][0])

    async def unfinished_events(
        self, *, prefix: str = "", before: float | None = None
    ) -> list[UnfinishedEvent]:
        # The partial index on claimed_at holds only unfinished rows: this never scans history.
        sql = (
            "SELECT event_id, conversation, address, claimed_at FROM processed_events"
            " WHERE status = 'claimed'"
        )
        params: tuple[float, ...] = ()
        if before is not None:
            sql += " AND claimed_at < ?"
            params = (before,)
        # Ties (one instant) in the order of the dialect's row key: insertion order on SQLite.
        order = f" ORDER BY claimed_at, {self._db.dialect.row_key}"
        async with self._db.locked() as db:
            rows = await db.fetchall(sql + order, params)
        return [
            UnfinishedEvent(str(event_id), str(conversation), address, float(claimed_at))
            for event_id, conversation, address, claimed_at in rows
            if str(conversation).startswith(prefix)
        ]


async def mark_answered(db: Session, *, event_id: str, conversation: str) -> None:
    """Finish the event as answered; call inside the transaction that writes its answer."""
    # An upsert, so an event answered without a claim is still never answered twice.
    now = time.time()
    await db.execute(
        "INSERT INTO processed_events"
        " (event_id, conversation, status, claimed_at, finished_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (event_id) DO UPDATE SET"
        " status = excluded.status, finished_at = excluded.finished_at",
        (event_id, conversation, Outcome.ANSWERED, now, now),
    )
