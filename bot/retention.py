"""``BOT_RETENTION_DAYS``: what is older is deleted by a job in the running bot, once at start
and then hourly, in short batches so turns waiting for the store go in between."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter

from bot.budgets import DAY_S
from storage.base import Expired, Store

log = logging.getLogger(__name__)

RETENTION_INTERVAL_S = 3_600.0
RETENTION_BATCH = 100
"""Conversations (and rows of each other kind) deleted per transaction: each one holds the
store's lock, so a first run over a large backlog must not keep turns waiting for long."""


async def expire_once(
    store: Store, days: int, *, batch: int = RETENTION_BATCH, now: float | None = None
) -> dict[str, int]:
    """Delete everything older than ``days`` days, batch by batch; log and return the counts."""
    cutoff = (time.time() if now is None else now) - days * DAY_S
    counts: Counter[str] = Counter()
    while True:
        deleted = dataclasses.asdict(await store.expire_older_than(cutoff=cutoff, limit=batch))
        counts.update(deleted)
        if not any(deleted.values()):
            break
        # asyncio's lock is fair: a turn already waiting for the store gets it before our next
        # batch. Yield anyway, so the loop runs everything else that became ready meanwhile.
        await asyncio.sleep(0)
    totals = {field.name: counts[field.name] for field in dataclasses.fields(Expired)}
    log.info("retention: deleted what is older than %d days", days, extra=totals)
    return totals


async def run_retention(
    store: Store, days: int, *, interval_s: float = RETENTION_INTERVAL_S
) -> None:
    """``expire_once`` now and every ``interval_s`` until cancelled; a failed run is logged
    and the next one tries again."""
    while True:
        try:
            await expire_once(store, days)
        except Exception:
            log.exception("retention: deleting old data failed; the next run tries again")
        await asyncio.sleep(interval_s)
