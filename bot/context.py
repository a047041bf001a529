"""What tools receive through the run context (``RunContextWrapper[TurnContext]``).

Never globals: the same tool code serves every turn, test and benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass
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
