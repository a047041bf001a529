"""Tool calls waiting for a person's approval: asked by the paused turn, decided by a click.

The decision is written only while it is still empty (one statement), so a click on any
instance, a second click and the turn's own expiry race safely: exactly one of them decides.
A person's answer also needs the turn to be waiting still: before the request's expiry, and
with the lease of the instance that waits alive (a crashed one's requests take no answers).
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
                "INSERT INTO approvals"
                " (id, conversation, requester, tool, owner, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.conversation,
                    record.requester,
                    record.tool,
                    record.owner,
                    record.created_at,
                    record.expires_at,
                ),
            )
            await db.execute(
                "DELETE FROM approvals WHERE created_at < ?",
                (record.created_at - KEEP_APPROVALS_S,),
            )

    async def approval(self, *, approval_id: str) -> ApprovalRecord | None:
        async with self._db.locked() as db:
            rows = await db.fetchall(
                "SELECT id, conversation, requester, tool, owner, created_at, expires_at,"
                " decision, decided_by FROM approvals WHERE id = ?",
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
            owner=str(row[4]),
            created_at=float(row[5]),
            expires_at=float(row[6]),
            decision=None if row[7] is None else str(row[7]),
            decided_by=None if row[8] is None else str(row[8]),
        )

    async def decide_approval(
        self, *, approval_id: str, decision: str, by: str, now: float
    ) -> bool:
        sql = (
            "UPDATE approvals SET decision = ?, decided_by = ?, decided_at = ?"
            " WHERE id = ? AND decision IS NULL"
        )
        params: tuple[object, ...] = (decision, by, now, approval_id)
        if decision != "expired":  # a person's answer counts only while the turn waits
            sql += (
                " AND expires_at > ? AND EXISTS (SELECT 1 FROM instances i"
                " WHERE i.id = approvals.owner AND i.expires_at > ?)"
            )
            params += (now, now)
        async with self._db.transaction() as db:
            changed = await db.execute(sql, params)
        return changed > 0
