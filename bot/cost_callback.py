"""OpenRouter's reported cost of each model call, attributed to the turn that made it.

The Agents SDK drops ``usage.cost``; litellm's success callback still sees the response, so a
``CustomLogger`` adds each call's cost to the current turn's ``TurnStats`` (found through a
ContextVar the core sets per turn).
"""

from __future__ import annotations

import logging
from typing import Any

from bot.settings import prepare_library_environment

prepare_library_environment()

import litellm  # noqa: E402
from litellm.integrations.custom_logger import CustomLogger  # noqa: E402

from bot.turn_stats import TURN_STATS  # noqa: E402

log = logging.getLogger(__name__)


def reported_cost(kwargs: dict[str, Any], response: Any) -> float | None:
    """OpenRouter's own ``usage.cost`` when present, else litellm's ``response_cost``.

    For OpenRouter responses litellm's ``response_cost`` is OpenRouter's reported cost too (checked
    against a fake sending ``usage.cost``), not its price-map estimate.
    """
    usage = getattr(response, "usage", None)
    cost = getattr(usage, "cost", None)
    if cost is None and isinstance(usage, dict):
        cost = usage.get("cost")
    if cost is None:
        cost = kwargs.get("response_cost")
    try:
        return float(cost) if cost is not None else None
    except (TypeError, ValueError):
        return None


class TurnCostLogger(CustomLogger):
    def log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
        # Runs inside the caller's task, so the turn's ContextVar is visible here.
        stats = TURN_STATS.get()
        if stats is not None:
            stats.calls_started += 1

    async def async_log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        # litellm calls this with keyword arguments: the parameter names above must stay.
        stats = TURN_STATS.get()
        if stats is not None:
            stats.add_cost(reported_cost(kwargs, response_obj))


_logger = TurnCostLogger()


def configure_litellm() -> None:
    """Quiet litellm, let it drop what a model does not take, and attribute each call's cost to
    its turn. Idempotent: every path that calls litellm calls this first."""
    litellm.suppress_debug_info = True  # no "Give Feedback" banner on stdout per exception
    litellm.drop_params = True  # drop params a model does not take (e.g. temperature on o1)
    # Per-chunk logging work (a thread-pool task per streamed chunk) that nothing here reads;
    # the success callback that carries the cost still runs once per call.
    litellm.disable_streaming_logging = True
    if _logger not in litellm.callbacks:
        litellm.callbacks.append(_logger)
