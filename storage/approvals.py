"""Tool calls waiting for a person's approval: asked by the paused turn, decided by a click.

The decision is written only while it is still empty (one statement), so a click on any
instance, a second click and the turn's own expiry race safely: exactly one of them decides.
"""

from __future__ import annotations

from .base import ApprovalRecord
from .sql import Backend

KEEP_APPROVALS_S = 86_400.0
"""Decided approvals are kept a day (a late click finds its answer), then swept."""


class ApprovalQueries:
    """The ``Store`` methods for approvals."""

    _db: Backend

    async def open_approval(self, record: ApprovalRecord) -> None:
        async with self._db.transaction() as db:
            await db.execute(
                "INSERT INTO approvals (id, conversation, requester, tool, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.conversation,
                    record.requester,
                    record.tool,
                    record.created_at,
                ),
            )
            await db.execute(
                "DELETE FROM approvals WHERE created_at < ?",
                (record.created_at - KEEP_APPROVALS_S,),
            )

    async def approval(self, *, approval_id: str) -> ApprovalRecord | None:
        async with self._db.locked() as db:
            rows = await db.fetchall(
                "SELECT id, conversation, requester, tool, created_at, decision, decided_by"
                " FROM approvals WHERE id = ?",
                (approval_id,),
            )
        if not rows:
            return None
        row = rows[0]
        return ApprovalRecord(
            id=str(row[0]),
            conversation=str(row[1]),
            requester=str(row[2]),
            tool=str(row[3]),
            created_at=float(row[4]),
            decision=None if row[5] is None else str(row[5]),
            decided_by=None if row[6] is None else str(row[6]),
        )

    async def decide_approval(
        self, *, approval_id: str, decision: str, by: str, now: float
    ) -> bool:
        async with self._db.transaction() as db:
            changed = await db.execute(
                "UPDATE approvals SET decision = ?, decided_by = ?, decided_at = ?"
                " WHERE id = ? AND decision IS NULL",
                (decision, by, now, approval_id),
            )
        return changed > 0
