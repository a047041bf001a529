"""The answers a platform adapter is writing now, so that shutdown can let them finish.

slack_bolt and discord.py run listeners as loose tasks the adapter never sees; each listener
marks itself with ``track()``, and ``drain()`` waits for them (up to a grace period) once the
adapter has stopped taking new events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)


class InFlight:
    def __init__(self, name: str) -> None:
        self._name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def drain(self, grace_s: float) -> int:
        """Wait for the tracked tasks; cancel those still running after ``grace_s``.

        Returns how many were cut short.
        """
        if not self._tasks:
            return 0
        log.info("%s: waiting for %d answer(s) in flight", self._name, len(self._tasks))
        _, late = await asyncio.wait(set(self._tasks), timeout=grace_s)
        for task in late:
            task.cancel()
        if late:
            log.warning("%s: %d answer(s) cut short by shutdown", self._name, len(late))
            await asyncio.wait(late, timeout=3.0)  # each tells its user (bot.core SHUTDOWN_TELL_S)
        return len(late)
