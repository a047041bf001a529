"""Small named values: per-channel settings (``/model``, ``/prompt``) and the bot's own state
(e.g. the hash of the slash commands last synced)."""

from __future__ import annotations

import time

from .sql import Backend, storable


class StateQueries:
    """The ``Store`` methods for channel settings and key/value state."""

    _db: Backend

    async def get_channel_setting(self, *, channel: str, name: str) -> str | None:
        async with self._db.locked() as db:
            rows = await db.fetchall(
                "SELECT value FROM channel_settings WHERE channel = ? AND name = ?",
                (channel, name),
            )
        return str(rows[0][0]) if rows else None

    async def channel_settings(self, *, channel: str) -> dict[str, str]:
        async with self._db.locked() as db:
            rows = await db.fetchall(
                "SELECT name, value FROM channel_settings WHERE channel = ?", (channel,)
            )
        return {str(name): str(value) for name, value in rows}

    async def set_channel_setting(self, *, channel: str, name: str, value: str | None) -> None:
        async with self._db.locked() as db:
            if value is None:
                await db.execute(
                    "DELETE FROM channel_settings WHERE channel = ? AND name = ?", (channel, name)
                )
            else:
                await db.execute(
                    "INSERT INTO channel_settings (channel, name, value, updated_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (channel, name) DO UPDATE SET"
                    " value = excluded.value, updated_at = excluded.updated_at",
                    (channel, name, storable(value), time.time()),
                )

    async def channels_with_settings(self, *, prefix: str, limit: int) -> dict[str, dict[str, str]]:
        async with self._db.locked() as db:
            rows = await db.fetchall(
                "SELECT s.channel, s.name, s.value FROM channel_settings s JOIN ("
                " SELECT channel, MAX(updated_at) AS changed FROM channel_settings"
                " WHERE substr(channel, 1, ?) = ? GROUP BY channel"
                " ORDER BY changed DESC, channel LIMIT ?"
                ") recent ON recent.channel = s.channel"
                " ORDER BY recent.changed DESC, s.channel, s.name",
                (len(prefix), prefix, limit),
            )
        found: dict[str, dict[str, str]] = {}
        for channel, name, value in rows:
            found.setdefault(str(channel), {})[str(name)] = str(value)
        return found

    async def get_state(self, *, key: str) -> str | None:
        async with self._db.locked() as db:
            rows = await db.fetchall("SELECT value FROM state WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    async def set_state(self, *, key: str, value: str) -> None:
        async with self._db.locked() as db:
            await db.execute(
                "INSERT INTO state (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
