"""After a crash: tell each user whose turn a dead instance never finished, once.

A claimed event that never finished has its user's address (where to answer) and its owner
(the instance that ran it) in the store. Once the owner's lease has run out, one live
instance adopts the claim: it is never re-answered (part of the old answer may be on
screen), its user is told, and the claim closed. If the platform is down too, telling is
retried; what is still untold waits for this instance to stop (then another adopts it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from bot.reply import Undeliverable
from storage.base import Outcome, Store, UnfinishedEvent

log = logging.getLogger(__name__)

RESTART_LINE = (
    "Sorry, I was restarted while answering this, so the answer was lost. Please ask again."
)
"""Told after a restart for each message whose turn a killed process never finished."""
RECOVERY_RETRY_DELAYS_S = (5.0, 30.0, 120.0)
"""After a restart, telling users about cut turns is retried after these pauses while the
platform fails (e.g. it is down too); the rest waits for the next start."""

Tell = Callable[[str, str], Awaitable[None]]
"""``tell(address, line)``: the adapter says ``line`` where an event's address points."""


async def recover(
    store: Store,
    platform: str,
    tell: Tell,
    *,
    instance: str,
    unowned_before: float,
    retry_delays: Sequence[float] = RECOVERY_RETRY_DELAYS_S,
) -> int:
    """Tell the users whose messages a dead instance claimed but never finished (it was
    killed mid-turn): adopt each claim for ``instance`` (one live instance gets each, so
    nobody is told twice), ``tell(address, line)``, then mark it failed. It is never
    re-answered (its partial answer may be on screen). A ``tell`` that fails for good
    (``Undeliverable``: the channel is gone) closes the claim; any other failure (the
    platform is down) is retried after each of ``retry_delays``; what is still untold stays
    claimed by ``instance``, for whoever adopts it when this one stops. Claims without an
    owner (from a version before leases) count as dead if made before ``unowned_before``.
    Returns how many were told."""
    try:
        waiting = await store.adopt_orphans(
            instance=instance, prefix=f"{platform}:", now=time.time(), unowned_before=unowned_before
        )
    except Exception:
        log.exception("could not look for turns a dead instance left unfinished")
        return 0
    cut, told = len(waiting), 0
    for delay in (0.0, *retry_delays):
        if not waiting:
            break
        await asyncio.sleep(delay)
        untold: list[UnfinishedEvent] = []
        for event in waiting:
            try:
                if event.address:
                    await tell(event.address, RESTART_LINE)
                    told += 1
            except Undeliverable as exc:
                log.info("a user whose turn was cut cannot be told: %s", exc)
            except Exception as exc:
                log.warning(
                    "could not tell a user their turn was cut by a restart (%s)",
                    type(exc).__name__,
                    extra={"event_id": event.event_id},
                )
                untold.append(event)
                continue
            await _close(store, event.event_id)
        waiting = untold
    if cut:
        log.info("%s: %d turn(s) cut by a dead instance, %d told", platform, cut, told)
    if waiting:
        log.warning(
            "%s: %d user(s) not told yet; tried again when this instance stops",
            platform,
            len(waiting),
        )
    return told


async def _close(store: Store, event_id: str) -> None:
    try:
        await store.finish_event(event_id=event_id, outcome=Outcome.FAILED)
    except Exception:
        log.exception("could not record the event's outcome")
