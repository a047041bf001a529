"""A click on one of the bot's buttons (feedback, approvals), answered the same way: acked at
once with a deferred ephemeral response (Discord drops an interaction not answered within
3 s), acted on through the core as an event of the clicker, and the outcome told to the
clicker alone in an ephemeral follow-up."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from adapters.common.inflight import InFlight
from adapters.discord.translate import click_event
from bot.events import Event

log = logging.getLogger(__name__)


async def answer_click(
    interaction: discord.Interaction[Any],
    *,
    name: str,
    inflight: InFlight,
    act: Callable[[Event], Awaitable[str]],
) -> None:
    """Ack ``interaction``, run ``act`` with the click as a command ``name`` of its clicker,
    and tell the clicker the line it returns."""
    with inflight.track():
        await interaction.response.defer(ephemeral=True, thinking=True)
        text = await act(click_event(interaction, name))
        try:
            await interaction.followup.send(
                text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.HTTPException as exc:
            log.info("discord: could not tell a clicker the outcome of a %s (%s)", name, exc.status)
