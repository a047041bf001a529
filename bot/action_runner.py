"""The one model call of an action on a message (``bot.actions``): no tools, no history.

It goes through the same models as a turn (``AgentStack.model``: the channel's model with its
fallbacks, retries and time limits) and the same usage accounting (``TURN_STATS`` for the cost
OpenRouter reports), under the turn's time limit (``BOT_TURN_TIMEOUT``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agents import Agent, RunConfig, Runner
from agents.models.interface import Model

from bot.agent import model_settings
from bot.errors import ErrorKind, turn_failure
from bot.settings import Settings
from bot.turn_stats import TURN_STATS, TurnStats

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ActionOutput:
    text: str = ""
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    error: ErrorKind | None = None


class ActionRunner:
    def __init__(self, *, settings: Settings, models: Callable[[str], Model]) -> None:
        self.settings = settings
        self._models = models
        self._model_settings = model_settings(settings)

    async def run(self, *, model: str, instructions: str, text: str) -> ActionOutput:
        """The model's answer, or ``error`` set (never raises for a model failure)."""
        agent: Agent[Any] = Agent(
            name="message-action",
            instructions=instructions,
            model_settings=self._model_settings,
        )
        stats = TurnStats()
        token = TURN_STATS.set(stats)
        out = ActionOutput(model=model)
        deadline = asyncio.timeout(self.settings.turn_timeout_s)
        result: Any = None
        try:
            async with deadline:
                result = await Runner.run(
                    agent,
                    text,
                    max_turns=1,
                    run_config=RunConfig(
                        model=self._models(model),
                        tracing_disabled=not self.settings.tracing,
                    ),
                )
        except Exception as exc:
            out.error = turn_failure(exc, shown_text=False, turn_timed_out=deadline.expired())
            log.warning("message action failed: %s (%s)", out.error.value, type(exc).__name__)
        finally:
            TURN_STATS.reset(token)
        if result is not None:
            usage = result.context_wrapper.usage
            await stats.wait_for_costs(usage.requests, timeout_s=0.25)
            out.input_tokens, out.output_tokens = int(usage.input_tokens), int(usage.output_tokens)
            out.text = str(result.final_output or "").strip()
            if not out.text:
                out.error = ErrorKind.PROVIDER
        out.cost_usd = stats.cost_usd
        if stats.model:
            out.model = stats.model
        return out
