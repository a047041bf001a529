"""The platform-neutral surface the core answers through; every adapter implements it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bot.web_search import Source


class Undeliverable(Exception):
    """The platform will not take this answer: the channel is gone, the bot was removed or may
    not post there. Not a bug: the core logs one warning line (``str()`` says why), no traceback.
    """


class Reply(Protocol):
    """One answer to one event, rendered by the adapter.

    The core calls, in order: ``start`` once, then any number of ``stream`` and ``progress``,
    then exactly one of ``finish`` or ``fail``. Or, for an event the bot will not answer (the
    allowlists, the rate limit, a budget), only ``refuse``, before anything else. ``notice``
    may come at any time after ``start`` for side remarks (skipped files, trimmed history) that
    are not part of the answer.
    """

    async def start(self) -> None:
        """Show that the bot is working (Slack status, Discord typing, a spinner)."""

    async def stream(self, delta: str) -> None:
        """Append a piece of the answer's Markdown text."""

    async def progress(self, status: str) -> None:
        """Show what the bot is doing now, e.g. "Checking the weather in Tokyo…"."""

    async def notice(self, text: str) -> None:
        """A short remark outside the answer text (e.g. a file that was skipped)."""

    async def finish(self, sources: Sequence[Source] = ()) -> None:
        """The answer is complete: flush what is pending and clear any working state.
        ``sources`` (web pages the answer cites) are listed at its end, numbered in order."""

    async def fail(self, message: str) -> None:
        """End with a short, user-facing line; text already streamed stays visible."""

    async def refuse(self, message: str) -> None:
        """Say why the bot will not answer, to the author only (Slack: ephemeral; Discord: an
        ephemeral response or a DM) and never in the channel: the channel sees nothing."""
