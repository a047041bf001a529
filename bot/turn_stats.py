"""What one turn's model calls came to: written by the model wrapper and the cost callback,
read by the core when the turn is recorded.

Neither writer is handed the turn: ``ResilientModel`` runs inside the SDK's runner and the cost
callback inside litellm, so both find the current turn's ``TurnStats`` through ``TURN_STATS``,
a ContextVar the core sets per turn.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass(slots=True)
class TurnStats:
    """Facts about the model calls of one turn, filled in by the model wrapper and cost callback."""

    model: str | None = None
    """The model that produced the last response."""
    attempts: int = 0
    fallbacks: int = 0
    cost_usd: float | None = None
    calls_started: int = 0
    """litellm calls begun in this turn (scripted test models make none)."""
    cost_reports: int = 0
    """Successful litellm calls that have reported their cost (it comes after the call ends)."""
    errors: list[str] = field(default_factory=list)
    calls: list[tuple[float, bool]] = field(default_factory=list)
    """(seconds, succeeded) of every model attempt, for the latency metrics."""
    _reported: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def add_cost(self, cost: float | None) -> None:
        if cost is not None:
            self.cost_usd = (self.cost_usd or 0.0) + cost
        self.cost_reports += 1
        self._reported.set()

    async def wait_for_costs(self, responses: int, timeout_s: float) -> None:
        """Wait (bounded) until the turn's successful litellm calls have reported their cost.

        litellm's success callback runs in a background task a loop tick or so after a call
        ends, so the turn's last cost usually arrives just after the stream does. ``responses``
        is the SDK's count of model responses; calls that failed or were cancelled never
        report, and scripted models make no litellm calls at all, hence the ``min``.
        """
        expected = min(responses, self.calls_started)
        try:
            async with asyncio.timeout(timeout_s):
                while self.cost_reports < expected:
                    self._reported.clear()
                    await self._reported.wait()
        except TimeoutError:
            pass


TURN_STATS: ContextVar[TurnStats | None] = ContextVar("turn_stats", default=None)
