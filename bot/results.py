"""What one event came to: the value the core returns and the adapters, logs and tests read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.errors import ErrorKind
from bot.events import Event
from bot.web_search import Source
from storage.base import Outcome

__all__ = ["Outcome", "TurnResult", "user_key"]


@dataclass(slots=True)
class TurnResult:
    """What a turn did, for logs, tests and benchmarks."""

    outcome: Outcome
    text: str = ""
    error: ErrorKind | None = None
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    """Of ``output_tokens``, those the model spent reasoning."""
    cost_usd: float | None = None
    tools: list[str] = field(default_factory=list)
    new_items: list[Any] = field(default_factory=list, repr=False)
    """The items the run produced (the model's messages, tool calls and results)."""
    sources: list[Source] = field(default_factory=list)
    """The web pages the answer cites (web search), numbered in this order under it."""


def user_key(event: Event) -> str:
    """The author as ``platform:id``: how usage, budgets and rate limits name a person."""
    return f"{event.platform}:{event.author.id}"
