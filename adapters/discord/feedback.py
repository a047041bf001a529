"""Feedback buttons under Discord answers (👍 / 👎), and their clicks.

- ``DiscordReply`` puts two buttons under the last message of each finished answer, with
  custom ids ``fb:up:<message id>`` and ``fb:down:<message id>``. They are a ``DynamicItem``
  registered on the client at start (``register``), so discord.py routes a click on any
  message's buttons to it, also on messages sent before a restart: the state is in the id.
- A click is acknowledged at once (a deferred ephemeral response, well within Discord's 3 s),
  recorded through the core, and the outcome told to the clicker alone (an ephemeral
  follow-up). The allowlists apply, as to everything else.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord

from adapters.common.inflight import InFlight
from adapters.discord.clicks import answer_click
from bot.events import Event
from bot.feedback import Vote

if TYPE_CHECKING:
    from bot.core import Core

log = logging.getLogger(__name__)

CUSTOM_ID = re.compile(r"fb:(?P<value>up|down):(?P<message>[0-9]{1,20})")
Clicked = Callable[[discord.Interaction[Any], Vote, int], Awaitable[None]]


class FeedbackButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=CUSTOM_ID,
):
    """One of the two buttons under an answer: its vote and its message are in its id."""

    def __init__(self, value: Vote, message_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.secondary,
                emoji=value.emoji,
                custom_id=f"fb:{value.value}:{message_id}",
            )
        )
        self.value = value
        self.message_id = message_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> FeedbackButton:
        return cls(Vote(match["value"]), int(match["message"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        clicked: Clicked | None = getattr(interaction.client, "feedback_clicked", None)
        if clicked is None:  # a client without feedback: nothing to record it with
            return
        await clicked(interaction, self.value, self.message_id)


def feedback_view(message_id: int) -> discord.ui.View:
    """The buttons under the answer message ``message_id``."""
    view = discord.ui.View(timeout=None)
    view.add_item(FeedbackButton(Vote.UP, message_id))
    view.add_item(FeedbackButton(Vote.DOWN, message_id))
    return view


def register(client: discord.Client) -> None:
    """Route clicks on every answer's buttons, however old, to ``FeedbackButton``."""
    client.add_dynamic_items(FeedbackButton)


class FeedbackClicks:
    """What a click does: ack, record through the core, tell the clicker."""

    def __init__(self, core: Core, *, inflight: InFlight) -> None:
        self.core = core
        self._inflight = inflight

    async def clicked(
        self, interaction: discord.Interaction[Any], value: Vote, message_id: int
    ) -> None:
        async def vote(click: Event) -> str:
            voted = await self.core.vote(click, message_id=str(message_id), value=value)
            return voted.text

        await answer_click(interaction, name="feedback", inflight=self._inflight, act=vote)
