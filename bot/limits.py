"""Limits a turn passes before it runs: a per-user rate limit and one lock per conversation
in this process (``bot.instance`` holds it across instances)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.instance import RATE_WINDOW_S
from storage.base import Store

log = logging.getLogger(__name__)


class RateLimiter:
    """At most ``limit`` events per minute per key, over a sliding window kept in the store:
    every instance on the database counts against the same limit."""

    def __init__(self, store: Store, limit: int) -> None:
        self.limit = limit
        self._store = store

    async def retry_after(self, key: str) -> float:
        """0 if ``key`` may go on (and count it); else seconds until it may. A store that
        does not answer lets the event through (logged): the limit guards cost, and a refusal
        nobody can explain would be worse."""
        if self.limit <= 0:
            return 0.0
        try:
            return await self._store.hit_rate(
                key=key, limit=self.limit, window_s=RATE_WINDOW_S, now=time.time()
            )
        except Exception:
            log.exception("could not count a message against the rate limit; letting it through")
            return 0.0


class KeyedLocks:
    """One lock per key, dropped when nobody holds or waits for it (no growth per conversation)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
