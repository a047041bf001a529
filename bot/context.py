"""What tools receive through the run context (``RunContextWrapper[TurnContext]``).

Never globals: the same tool code serves every turn, test and benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp


class DocumentAsker(Protocol):
    async def ask(
        self, *, conversation: str, channel: str, model: str, question: str, document: str
    ) -> str: ...


@dataclass(frozen=True, slots=True)
class ToolConfig:
    """Process-wide dependencies of the tools, built once at start-up."""

    http: aiohttp.ClientSession
    open_meteo_url: str
    """Host only, e.g. ``https://api.open-meteo.com``; tools append ``/v1/forecast``."""
    geocoding_url: str
    """Host only, e.g. ``https://geocoding-api.open-meteo.com``; tools append ``/v1/search``."""
    http_timeout_s: float = 10.0
    documents: DocumentAsker | None = None
    """Reads the conversation's PDFs (``bot.documents.DocumentReader``)."""


@dataclass(slots=True)
class ToolCallBudget:
    """How many tool calls one turn may run: ``per_response`` of each model response and
    ``per_turn`` in all (``BOT_MAX_TOOL_CALLS_PER_RESPONSE`` / ``_PER_TURN``).

    A model may ask for any number of calls at once; each one over a cap is not run, and the
    model gets ``refused[call_id]`` as its result instead, so it can answer with what it has.
    """

    per_response: int = 8
    per_turn: int = 24
    used: int = 0
    """Calls admitted so far in this turn."""
    refused: dict[str, str] = field(default_factory=dict)
    """Call id -> what the model is told instead of that call's result."""

    def admit(self, call_ids: Sequence[str]) -> int:
        """Decide for one response's calls, in the order the model asked for them; returns how
        many were refused."""
        before = len(self.refused)
        for index, call_id in enumerate(call_ids):
            if index >= self.per_response:
                self.refused[call_id] = (
                    f"Not run: you asked for {len(call_ids)} tool calls at once, and at most "
                    f"{self.per_response} run per response. Answer with the results you have, "
                    f"or ask again for what is missing, at most {self.per_response} at a time."
                )
            elif self.used >= self.per_turn:
                self.refused[call_id] = (
                    f"Not run: this question has used all its {self.per_turn} tool calls. "
                    "Answer with the results you have, and tell the user what you could not "
                    "look up."
                )
            else:
                self.used += 1
        return len(self.refused) - before


@dataclass(slots=True)
class TurnContext:
    """Per-turn context: the shared tool config plus what this turn is about."""

    tools: ToolConfig
    conversation: str
    user_id: str
    channel: str = ""
    model: str = ""
    """The model this turn runs on (document questions go to it too)."""
    channel_instructions: str = ""
    """What the channel's admins added to the system prompt (``/settings prompt``)."""
    context_note: str = ""
    """What the user is looking at, from the platform (``Conversations.set_context_note``)."""
    tool_calls: ToolCallBudget = field(default_factory=ToolCallBudget)
    """This turn's tool calls so far, against the caps (see ``bot.tools.guards``)."""
