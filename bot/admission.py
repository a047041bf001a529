"""Admit: may this event be answered now? The allowlists, the user's rate limit, the budgets.

The first step of a turn, and of every path that posts something visible: a refusal is told
to its author alone (the adapters' ``refuse``), never in the channel.
"""

from __future__ import annotations

import logging
import math
import time

from bot.access import REFUSAL, allowed
from bot.budgets import DAY_S, budgets_for, day_start
from bot.errors import ErrorKind
from bot.events import Event, EventKind
from bot.limits import RateLimiter
from bot.results import TurnResult, user_key
from bot.settings import Settings
from storage.base import Outcome, Store

log = logging.getLogger(__name__)


class Admission:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self._store = store
        self.rate = RateLimiter(store, settings.user_rate_limit)

    def allows(self, event: Event) -> bool:
        """Do the allowlists let ``event``'s author use the bot there?"""
        return allowed(self.settings, event)

    async def refusal(self, event: Event) -> TurnResult | None:
        """The allowlists, then (questions only: commands are exempt) the user's rate limit
        and the daily budgets. ``None``: answer it; else the refusal, not yet told."""
        if not allowed(self.settings, event):
            log.info("refused by the allowlists", extra={"event_id": event.event_id})
            return TurnResult(Outcome.REFUSED, text=REFUSAL)
        if event.kind is EventKind.COMMAND and event.command != "ask":
            return None
        wait = await self.rate.retry_after(user_key(event))
        if wait > 0:
            log.info("user over the rate limit", extra={"retry_after_s": round(wait, 1)})
            line = (
                f"You're sending messages faster than I can take them ({self.rate.limit} a "
                f"minute). Please try again in {math.ceil(wait)} s."
            )
            return TurnResult(Outcome.FAILED, error=ErrorKind.USER_RATE_LIMIT, text=line)
        try:
            over = await self._over_budget(event)
        except Exception:
            log.exception("could not read today's usage; answering without the budget check")
            over = None
        if over is not None:
            log.info("over the daily budget", extra={"event_id": event.event_id})
            return TurnResult(Outcome.FAILED, error=ErrorKind.BUDGET, text=over)
        return None

    async def _over_budget(self, event: Event) -> str | None:
        """A line saying which daily budget is spent and when it resets, or None."""
        budgets = budgets_for(self.settings, event)
        if not budgets:
            return None
        now = time.time()
        today = day_start(now)
        for budget in budgets:
            totals = await self._store.usage_totals(since=today, **budget.filters)
            if budget.tokens and totals.input_tokens + totals.output_tokens >= budget.tokens:
                limit = f"{budget.tokens:,} tokens"
            elif budget.usd and totals.cost_usd >= budget.usd:
                limit = f"${budget.usd:,.2f} of model usage"
            else:
                continue
            has = "have" if budget.subject == "You" else "has"
            return (
                f"{budget.subject} {has} reached today's limit of {limit} with me. It resets at "
                f"midnight UTC, in {_duration(today + DAY_S - now)}."
            )
        return None


def _duration(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"
