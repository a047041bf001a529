"""Model usage, one row a turn: what ``/usage`` reports and the daily budgets count."""

from __future__ import annotations

from .base import UsageRecord, UsageTotals
from .sql import Backend, Session


class UsageQueries:
    """The ``Store`` methods for usage rows."""

    _db: Backend

    async def record_usage(self, record: UsageRecord) -> None:
        async with self._db.locked() as db:
            await insert_usage(db, record)

    async def usage_totals(
        self,
        *,
        user_id: str | None = None,
        channel: str | None = None,
        conversation: str | None = None,
        workspace: str | None = None,
        since: float | None = None,
    ) -> UsageTotals:
        filters = (
            ("user_id = ?", user_id),
            ("channel = ?", channel),
            ("conversation = ?", conversation),
            ("workspace = ?", workspace),
            ("created_at >= ?", since),
        )
        given = [(clause, value) for clause, value in filters if value is not None]
        where = " AND ".join(clause for clause, _ in given) or "TRUE"
        async with self._db.locked() as db:
            rows = await db.fetchall(
                # SUM skips NULL costs, and is NULL over no rows. PostgreSQL sums BIGINTs as
                # NUMERIC (a Decimal in Python): the int() and float() below undo that.
                "SELECT COUNT(*), COALESCE(SUM(input_tokens), 0),"
                " COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cost_usd), 0.0),"
                f" COALESCE(SUM(reasoning_tokens), 0) FROM usage WHERE {where}",
                tuple(value for _, value in given),
            )
        turns, input_tokens, output_tokens, cost_usd, reasoning_tokens = rows[0]
        return UsageTotals(
            turns=int(turns),
            input_tokens=int(input_tokens),
            output_tokens=int(output_tokens),
            cost_usd=float(cost_usd),
            reasoning_tokens=int(reasoning_tokens),
        )

    async def latest_conversation(self, *, user_id: str, channel: str) -> str | None:
        async with self._db.locked() as db:
            rows = await db.fetchall(
                "SELECT conversation FROM usage WHERE user_id = ? AND channel = ?"
                " ORDER BY created_at DESC, id DESC LIMIT 1",
                (user_id, channel),
            )
        return str(rows[0][0]) if rows else None


async def insert_usage(db: Session, record: UsageRecord) -> None:
    """Call under the lock (or inside a transaction)."""
    await db.execute(
        "INSERT INTO usage (conversation, channel, workspace, user_id, model,"
        " input_tokens, output_tokens, reasoning_tokens, cost_usd, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.conversation,
            record.channel,
            record.workspace,
            record.user_id,
            record.model,
            record.input_tokens,
            record.output_tokens,
            record.reasoning_tokens,
            record.cost_usd,
            record.created_at,
        ),
    )
