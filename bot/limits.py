"""Limits a turn passes before it runs: a per-user rate limit and one lock per conversation."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class RateLimiter:
    """At most ``limit`` events per ``window_s`` per key, over a sliding window; memory is
    bounded by the keys active in the last window."""

    def __init__(self, limit: int, window_s: float = 60.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = {}
        self._last_sweep = 0.0

    def retry_after(self, key: str, now: float | None = None) -> float:
        """0 if ``key`` may go on (and count it); else seconds until it may."""
        if self.limit <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        self._sweep(now)
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if len(hits) >= self.limit:
            return hits[0] + self.window_s - now
        hits.append(now)
        return 0.0

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < self.window_s:
            return
        self._last_sweep = now
        for key in [
            k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self.window_s
        ]:
            del self._hits[key]


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
