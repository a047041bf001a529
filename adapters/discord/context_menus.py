"""Discord's message context-menu commands (Apps -> "Summarize", "Translate" on a message).

- Deferred at once, ephemerally (only the user who asked sees "thinking…" and the answer),
  then run through the core (``Core.act``): claimed once by the interaction id, admitted like a
  question, and only then read; the answer comes as ephemeral follow-ups (split at 2,000
  characters).
- "Summarize" reads the thread the message is in (its newest messages), or in a channel the
  messages up to the one picked, through REST channel history: bounded, newest first, 100 a
  request (discord.py pages and keeps to the rate limits). "Translate" needs only the message,
  which the interaction carries, in the user's client language (``interaction.locale``).
- They are registered in the same command tree as the slash commands, so the command-set hash
  that decides re-syncing covers them.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from adapters.common.inflight import InFlight
from adapters.common.text import split_markdown
from adapters.discord.commands import everywhere
from adapters.discord.reply import NO_PINGS
from adapters.discord.translate import PLATFORM, Place, channel_key, place_of, roles, scrub
from bot.actions import (
    MAX_ACTION_MESSAGES,
    Action,
    ActionInput,
    ActionRequest,
    SourceMessage,
    SourceUnavailable,
    language_of,
)
from bot.events import Author, ConversationKey, Event, EventKind

if TYPE_CHECKING:
    from bot.core import Core

log = logging.getLogger(__name__)

MENUS = {"Summarize": Action.SUMMARIZE, "Translate": Action.TRANSLATE}
"""Menu name (what users see under Apps) -> action."""
MESSAGE_CHARS = 2_000
CANNOT_READ = "I can't read this channel's messages. Ask an admin to let me read its history."
CHANNEL_BEYOND = "Summarized the last {kept} messages of this channel, up to the one you picked."


def action_event(interaction: discord.Interaction[Any], place: Place) -> Event:
    """The request as the core sees it. Its conversation is the interaction's own, never the
    thread's or the channel's: a summary must not make the bot take part there."""
    where = str(place.guild_id) if place.guild_id else "dm"
    return Event(
        platform=PLATFORM,
        event_id=f"{PLATFORM}:interaction:{interaction.id}",
        conversation=ConversationKey(PLATFORM, (where, str(place.channel_id), "action")),
        channel=channel_key(place),
        kind=EventKind.ACTION,
        author=Author(
            id=str(interaction.user.id),
            display_name=interaction.user.display_name,
            roles=roles(interaction.user),
        ),
        text="",
        workspace=str(place.guild_id) if place.guild_id else None,
    )


def spoken(message: discord.Message) -> SourceMessage | None:
    """A Discord message as a ``SourceMessage`` (None: nothing said in words). A forwarded
    message's text is its snapshot's."""
    text = message.content
    if not text.strip():
        snapshots = getattr(message, "message_snapshots", None) or ()
        text = "\n".join(s.content for s in snapshots if getattr(s, "content", ""))
    if not text.strip():
        return None
    return SourceMessage(scrub(message.author.display_name), scrub(text))


class MessageMenus:
    def __init__(self, core: Core, *, inflight: InFlight, outcomes: Counter[str]) -> None:
        self.core = core
        self._inflight = inflight
        self._outcomes = outcomes

    def register(self, tree: app_commands.CommandTree[Any]) -> None:
        for name, action in MENUS.items():
            menu = app_commands.ContextMenu(name=name, callback=self._callback(action))
            tree.add_command(everywhere(menu))  # like the slash commands: user installs too

    def _callback(self, action: Action) -> Any:
        async def on_message(
            interaction: discord.Interaction[Any], message: discord.Message
        ) -> None:
            with self._inflight.track():
                await self._run(interaction, message, action)

        return on_message

    async def _run(
        self, interaction: discord.Interaction[Any], message: discord.Message, action: Action
    ) -> None:
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
        except (discord.InteractionResponded, discord.HTTPException) as exc:
            # A replayed interaction (already answered) or one past its deadline.
            log.info("discord: could not defer a message command (%s)", type(exc).__name__)
            self._outcomes["duplicate"] += 1
            return
        if interaction.channel is not None:
            place = place_of(interaction.channel, interaction.guild_id)
        else:
            place = Place(guild_id=interaction.guild_id, channel_id=message.channel.id)
        language = language_of(str(interaction.locale.value))

        async def read() -> ActionInput:
            return await self._read(interaction, message, action, place, language)

        async def tell(text: str) -> None:
            for piece in split_markdown(text, MESSAGE_CHARS):
                await interaction.followup.send(piece, ephemeral=True, allowed_mentions=NO_PINGS)

        try:
            request = ActionRequest(action_event(interaction, place), action, read)
            result = await self.core.act(request, tell)
            self._outcomes[result.outcome.value] += 1
        except Exception:
            log.exception("discord: a message command failed")

    async def _read(
        self,
        interaction: discord.Interaction[Any],
        message: discord.Message,
        action: Action,
        place: Place,
        language: str,
    ) -> ActionInput:
        picked = spoken(message)
        if action is Action.TRANSLATE:
            return ActionInput([picked] if picked else [], language=language)
        channel = interaction.client.get_partial_messageable(
            place.channel_id, guild_id=place.guild_id
        )
        try:
            if place.is_thread:  # the thread's newest messages, whichever was picked
                found = [m async for m in channel.history(limit=MAX_ACTION_MESSAGES)]
                earlier: list[SourceMessage] = []
            else:  # the channel up to the picked message
                found = [
                    m async for m in channel.history(limit=MAX_ACTION_MESSAGES - 1, before=message)
                ]
                earlier = [picked] if picked else []
        except (discord.Forbidden, discord.NotFound) as exc:
            log.info("discord: could not read a channel's history (%s)", exc.status)
            raise SourceUnavailable(CANNOT_READ) from exc
        said = [s for s in map(spoken, reversed(found)) if s is not None] + earlier
        full = len(found) >= (MAX_ACTION_MESSAGES if place.is_thread else MAX_ACTION_MESSAGES - 1)
        total = getattr(interaction.channel, "message_count", None) if place.is_thread else None
        beyond = CHANNEL_BEYOND if full and not place.is_thread else ""
        return ActionInput(said, total=total, language=language, beyond=beyond)
