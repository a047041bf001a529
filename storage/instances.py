"""Several instances on one database: leases, orphaned claims, conversation locks, rate hits.

Each instance holds a lease (a row it renews, ``renew_lease``); one whose lease has expired is
dead. What a dead instance held is taken over by a live one, in one statement each, so two
live instances never both take the same thing: its unfinished claims (``adopt_orphans``:
their users are told the turn was cut) and its conversation locks (``lock_conversation``).
Times are unix seconds from the instances' clocks, which must agree to well under a lease.
"""

from __future__ import annotations

from .base import UnfinishedEvent
from .sql import Backend

KEEP_DEAD_INSTANCES_S = 86_400.0
"""A dead instance's row is kept this long past its lease, for whoever looks into an outage."""

_LIVE = "SELECT id FROM instances WHERE expires_at >= ?"


class InstanceQueries:
    """The ``Store`` methods for several instances sharing the database."""

    _db: Backend

    async def renew_lease(
        self, *, instance: str, now: float, lease_s: float, info: str = ""
    ) -> bool:
        async with self._db.locked() as db:
            renewed = await db.execute(
                "UPDATE instances SET renewed_at = ?, expires_at = ?"
                " WHERE id = ? AND expires_at >= ?",
                (now, now + lease_s, instance, now),
            )
            if renewed:
                return True
            # New, or lapsed (whatever it held may have been taken over): held again from now.
            await db.execute(
                "INSERT INTO instances (id, started_at, renewed_at, expires_at, info)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " renewed_at = excluded.renewed_at, expires_at = excluded.expires_at",
                (instance, now, now, now + lease_s, info),
            )
        return False

    async def end_lease(self, *, instance: str) -> None:
        async with self._db.transaction() as db:
            await db.execute("DELETE FROM conversation_locks WHERE owner = ?", (instance,))
            await db.execute("DELETE FROM instances WHERE id = ?", (instance,))

    async def adopt_orphans(
        self, *, instance: str, prefix: str, now: float, unowned_before: float
    ) -> list[UnfinishedEvent]:
        # One UPDATE: of two instances adopting at once, each row goes to one (the other then
        # sees a live owner). The partial index on unfinished events keeps it off history.
        async with self._db.locked() as db:
            rows = await db.fetchall(
                "UPDATE processed_events SET owner = ? WHERE status = 'claimed'"
                " AND substr(conversation, 1, ?) = ?"
                " AND (owner IS NULL AND claimed_at < ?"
                f" OR owner <> ? AND owner NOT IN ({_LIVE}))"
                " RETURNING event_id, conversation, address, claimed_at",
                (instance, len(prefix), prefix, unowned_before, instance, now),
            )
        events = [
            UnfinishedEvent(str(event_id), str(conversation), address, float(claimed_at))
            for event_id, conversation, address, claimed_at in rows
        ]
        return sorted(events, key=lambda e: (e.claimed_at, e.event_id))

    async def lock_conversation(
        self, *, conversation: str, instance: str, now: float, stale_before: float = 0.0
    ) -> bool:
        async with self._db.locked() as db:
            taken = await db.execute(
                "INSERT INTO conversation_locks (conversation, owner, taken_at) VALUES (?, ?, ?)"
                " ON CONFLICT (conversation) DO UPDATE SET"
                " owner = excluded.owner, taken_at = excluded.taken_at"
                " WHERE conversation_locks.owner = excluded.owner"
                " OR conversation_locks.taken_at < ?"
                f" OR conversation_locks.owner NOT IN ({_LIVE})",
                (conversation, instance, now, stale_before, now),
            )
        return taken == 1

    async def unlock_conversation(self, *, conversation: str, instance: str) -> None:
        async with self._db.locked() as db:
            await db.execute(
                "DELETE FROM conversation_locks WHERE conversation = ? AND owner = ?",
                (conversation, instance),
            )

    async def hit_rate(self, *, key: str, limit: int, window_s: float, now: float) -> float:
        async with self._db.transaction() as db:
            if self._db.dialect.key_lock:  # one key's hits are counted one instance at a time
                await db.fetchall(self._db.dialect.key_lock, (f"rate:{key}",))
            await db.execute(
                "DELETE FROM rate_hits WHERE key = ? AND at <= ?", (key, now - window_s)
            )
            rows = await db.fetchall(
                "SELECT count(*), min(at) FROM rate_hits WHERE key = ?", (key,)
            )
            count, oldest = int(rows[0][0]), rows[0][1]
            if count >= limit:
                return float(oldest) + window_s - now
            await db.execute("INSERT INTO rate_hits (key, at) VALUES (?, ?)", (key, now))
        return 0.0

    async def sweep_instances(self, *, now: float, rate_window_s: float) -> None:
        async with self._db.transaction() as db:
            await db.execute("DELETE FROM rate_hits WHERE at <= ?", (now - rate_window_s,))
            await db.execute(
                "DELETE FROM instances WHERE expires_at < ?", (now - KEEP_DEAD_INSTANCES_S,)
            )
