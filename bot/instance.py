"""This process as one of several instances on one database: its lease, and its turns' locks.

Every instance (a ``python -m bot`` process, or a worker of ``--workers``) holds a lease in the
store, renewed every third of ``BOT_LEASE_S``. Its claims and conversation locks belong to it
while the lease holds. One that stops renewing (``kill -9``, a lost machine) is dead once the
lease runs out: a live instance then adopts its unfinished claims and tells their users
(``bot.recovery``), and takes its conversation locks. A clean shutdown gives the lease up at
once. A starting instance never touches what a live one holds, so rolling deploys and
overlapping processes are safe.

One turn per conversation across instances is a lock row in the store (see
``storage.instances`` for why rows and not PostgreSQL's advisory locks): a follow-up that
reaches this instance while another answers its conversation polls until that turn ends (the
lock is released when its history is written), then sees its history.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from storage.base import Store

log = logging.getLogger(__name__)

LOCK_POLL_S = (0.02, 0.25)
"""Waiting for a conversation another instance is answering: the first pause between tries,
and the longest (pauses grow by half each try)."""
RATE_WINDOW_S = 60.0
"""The per-user rate limit's window (``BOT_USER_RATE_LIMIT`` is per minute)."""


def new_instance_id() -> str:
    """``host-pid-random``: unique per start, readable in logs and ``/healthz``."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Instance:
    def __init__(
        self, store: Store, *, instance_id: str | None, lease_s: float, longest_turn_s: float
    ) -> None:
        self.id = instance_id or new_instance_id()
        self.lease_s = lease_s
        self.longest_turn_s = longest_turn_s
        """No turn holds its conversation longer (``BOT_TURN_TIMEOUT`` and a margin): a lock
        older than this lost its release, and another instance may take it."""
        self.started_at = time.time()
        """Claims without an owner from before this are a previous version's (see recovery)."""
        self.expires_at = 0.0
        """When this instance's lease runs out, as last renewed (0: not taken yet)."""
        self._store = store
        self._keeping: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()

    @property
    def tick_s(self) -> float:
        """How often the lease is renewed (and dead instances' claims looked for)."""
        return self.lease_s / 3

    def lease_left(self, now: float | None = None) -> float:
        """Seconds until the lease runs out (negative: it has; nothing held is safe)."""
        return self.expires_at - (time.time() if now is None else now)

    async def start(self) -> None:
        """Take the lease (once; later calls return at once) and keep it renewed. Called
        before this instance claims anything: a claim whose owner holds no lease would look
        like a dead instance's to the others."""
        if self._keeping is not None:
            return
        async with self._starting:
            if self._keeping is None:
                await self._renew()
                self._keeping = asyncio.create_task(self._keep())
                log.info(
                    "instance %s holds its lease (%g s, renewed every %g s)",
                    self.id,
                    self.lease_s,
                    self.tick_s,
                )

    async def close(self) -> None:
        """Stop renewing and give the lease up, with the conversation locks still held: what
        this instance leaves unfinished is for the others to tell at once."""
        if self._keeping is None:
            return
        self._keeping.cancel()
        await asyncio.gather(self._keeping, return_exceptions=True)
        self._keeping = None
        try:
            async with asyncio.timeout(self.tick_s):
                await self._store.end_lease(instance=self.id)
        except Exception as exc:
            log.warning(
                "could not give the lease up (%s); it runs out in %.0f s",
                type(exc).__name__,
                self.lease_left(),
            )

    @asynccontextmanager
    async def conversation(self, key: str) -> AsyncIterator[None]:
        """Hold the conversation's lock across instances for a turn (call it under this
        process's own lock for ``key``, so only one of its turns polls)."""
        await self.start()
        pause, longest = LOCK_POLL_S
        waited = False
        while not await self._store.lock_conversation(
            conversation=key,
            instance=self.id,
            now=(now := time.time()),
            stale_before=now - self.longest_turn_s,
        ):
            if not waited:
                log.info("waiting for another instance to finish the conversation's turn")
                waited = True
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, longest)
        try:
            yield
        finally:
            await self._unlock(key)

    async def _unlock(self, key: str) -> None:
        try:
            # Shielded: a turn cancelled at shutdown still lets its conversation go.
            await asyncio.shield(
                self._store.unlock_conversation(conversation=key, instance=self.id)
            )
        except Exception as exc:
            # Held on, it is this instance's until its next turn there, its shutdown, or
            # ``longest_turn_s``: the other instances wait for it no longer than that.
            log.warning("could not release a conversation lock (%s)", type(exc).__name__)

    async def _renew(self) -> None:
        now = time.time()
        info = f"{socket.gethostname()} pid {os.getpid()}"
        held = await self._store.renew_lease(
            instance=self.id, now=now, lease_s=self.lease_s, info=info
        )
        if not held and self.expires_at:
            log.error(
                "instance %s renewed its lease %.1f s after it ran out: other instances may "
                "have told its users their turns were cut",
                self.id,
                now - self.expires_at,
            )
        self.expires_at = now + self.lease_s

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                async with asyncio.timeout(self.tick_s):
                    await self._renew()
            except Exception as exc:
                log.warning(
                    "could not renew the lease (%s); it runs out in %.1f s",
                    type(exc).__name__,
                    self.lease_left(),
                )
                continue
            try:
                await self._store.sweep_instances(now=time.time(), rate_window_s=RATE_WINDOW_S)
            except Exception as exc:
                log.warning("could not sweep old rate hits (%s)", type(exc).__name__)
