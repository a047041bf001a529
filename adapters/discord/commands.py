"""Discord's slash commands: their tree, built from the one registry, its sync, and the answers.

- Names, descriptions, options and choices all come from ``bot.commands.COMMANDS``. discord.py
  reads a command's options from its callback's signature, so each command with options is a
  method of ``SlashCommands``; the others share one callback made per name.
- The tree is synced only when its definition, target guild or application changed (a hash
  kept through the core), and, with shards, only by the instance that runs shard 0: commands
  belong to the application, not to a shard, and one writer keeps the hash honest.
- ``/ask`` is answered in public: access, rate limit and budget are checked before "thinking…"
  shows in the channel. The other commands are answered to their user alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from adapters.common.inflight import InFlight
from adapters.discord.reply import NO_PINGS, DiscordReply, Editable, recorder
from adapters.discord.translate import (
    NOT_LOADED,
    Place,
    channel_key,
    command_event,
    new_conversation,
    place_conversation,
    place_of,
    roles,
)
from bot.commands import Command, command_named, commands_for
from bot.events import ConversationKey, Event
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.core import Core

log = logging.getLogger(__name__)

COMMANDS_HASH_KEY = "discord:commands_hash"
PRIVATE_COMMANDS = frozenset(c.name for c in commands_for("discord") if c.private)
ASK, MODEL, SETTINGS = (command_named(name) for name in ("ask", "model", "settings"))

Callback = Callable[..., Coroutine[Any, Any, None]]


def syncs_commands(settings: Settings) -> bool:
    """Does this instance sync the slash commands? Unsharded, yes; sharded, if it runs shard 0
    (``DISCORD_SHARD_IDS`` empty: it runs them all)."""
    return not settings.discord_shard_ids or 0 in settings.discord_shard_ids


def _option_descriptions(command: Command) -> dict[str, str]:
    return {option.name: option.description for option in command.options}


class SlashCommands:
    """The bot's slash commands, answered through the core like messages are."""

    def __init__(
        self, core: Core, settings: Settings, *, inflight: InFlight, outcomes: Counter[str]
    ) -> None:
        self.core = core
        self._settings = settings  # not ``settings``: that name is the /settings command
        self._inflight = inflight
        self._outcomes = outcomes

    # ------------------------------------------------------------------ the commands

    @app_commands.describe(**_option_descriptions(ASK))
    async def ask(self, interaction: discord.Interaction[Any], question: str) -> None:
        await self.answer(interaction, ASK.name, question)

    @app_commands.describe(**_option_descriptions(MODEL))
    async def model(self, interaction: discord.Interaction[Any], name: str | None = None) -> None:
        await self.answer(interaction, MODEL.name, name or "")

    @app_commands.describe(**_option_descriptions(SETTINGS))
    @app_commands.choices(
        setting=[app_commands.Choice(name=n, value=n) for n in SETTINGS.options[0].choices]
    )
    async def settings(
        self,
        interaction: discord.Interaction[Any],
        setting: str | None = None,
        value: str | None = None,
    ) -> None:
        args = " ".join(part for part in (setting, value) if part)
        await self.answer(interaction, SETTINGS.name, args)

    def _without_options(self, name: str) -> Callback:
        async def callback(interaction: discord.Interaction[Any]) -> None:
            await self.answer(interaction, name, "")

        return callback

    # ------------------------------------------------------------------ the tree

    def register(self, tree: app_commands.CommandTree[Any]) -> None:
        """Add every Discord command of the registry to ``tree``, in the registry's order (the
        order is part of the synced definition, and so of its hash)."""
        with_options: dict[str, Callback] = {
            ASK.name: self.ask,
            MODEL.name: self.model,
            SETTINGS.name: self.settings,
        }
        for command in commands_for("discord"):
            callback = with_options.get(command.name)
            if callback is None:
                if command.options:  # it would be synced without them
                    raise TypeError(f"/{command.name} has options but no SlashCommands method")
                callback = self._without_options(command.name)
            tree.add_command(
                app_commands.Command(
                    name=command.name, description=command.description, callback=callback
                )
            )

    async def sync(self, tree: app_commands.CommandTree[Any]) -> None:
        """Sync the command tree when its definition, its target guild or the application
        changed, never else. The application is part of the hash: commands belong to one, so
        the same database pointed at another app (a new bot, staging vs production) must sync
        that app's commands, which "unchanged" used to skip."""
        if not syncs_commands(self._settings):
            log.info("discord: slash commands are synced by the instance that runs shard 0")
            return
        guild_id = self._settings.discord_guild_id
        guild = discord.Object(guild_id) if guild_id else None
        definition = [c.to_dict(tree) for c in tree.get_commands()]
        target = [tree.client.application_id, guild.id if guild else None]
        digest = hashlib.sha256(
            json.dumps([target, definition], sort_keys=True).encode()
        ).hexdigest()
        if await self.core.conversations.recall(COMMANDS_HASH_KEY) == digest:
            log.info("discord: slash commands unchanged, not synced")
            return
        if guild is not None:
            tree.copy_global_to(guild=guild)
        await tree.sync(guild=guild)
        await self.core.conversations.remember(COMMANDS_HASH_KEY, digest)
        log.info("discord: slash commands synced%s", f" to guild {guild.id}" if guild else "")

    # ------------------------------------------------------------------ the answers

    async def answer(self, interaction: discord.Interaction[Any], name: str, args: str) -> None:
        with self._inflight.track():
            await self._answer(interaction, name, args)

    async def _answer(self, interaction: discord.Interaction[Any], name: str, args: str) -> None:
        channel = interaction.channel
        # The payload's guild_id decides, not discord.py's guild cache (an interaction from a
        # guild not loaded yet, or one the bot is not in, has a partial guild there).
        if channel is not None:
            place = place_of(channel, interaction.guild_id)
        elif interaction.channel_id is not None:  # a channel type discord.py cannot build
            place = Place(guild_id=interaction.guild_id, channel_id=interaction.channel_id)
        else:
            await interaction.response.send_message(NOT_LOADED, ephemeral=True)
            return
        private = name in PRIVATE_COMMANDS

        def event_in(conversation: ConversationKey) -> Event:
            return command_event(
                interaction_id=interaction.id,
                place=place,
                conversation=conversation,
                user_id=interaction.user.id,
                user_name=interaction.user.display_name,
                name=name,
                args=args,
                user_roles=roles(interaction.user),
            )

        async def tell_privately(content: str) -> Any:
            if interaction.response.is_done():
                return await interaction.followup.send(
                    content, ephemeral=True, allowed_mentions=NO_PINGS
                )
            return await interaction.response.send_message(
                content, ephemeral=True, allowed_mentions=NO_PINGS
            )

        admitted = False
        if private:
            await interaction.response.defer(thinking=True, ephemeral=True)
            conversation = place_conversation(place)
            if conversation is None and name in ("reset", "files"):
                conversation = await self.core.conversations.latest_of(
                    user=f"discord:{interaction.user.id}", channel=channel_key(place)
                )
            event = event_in(conversation or new_conversation(place, interaction.id))
        else:
            # /ask is answered in public: everything is checked before "thinking…" shows there.
            event = event_in(place_conversation(place) or new_conversation(place, interaction.id))
            # The others answer at once: no need to tell after a crash.
            event = dataclasses.replace(event, address=json.dumps({"channel": place.channel_id}))
            refused = await self.core.admit(event, tell_privately)
            if refused is not None:
                self._outcomes[refused.outcome.value] += 1
                return
            admitted = True
            await interaction.response.defer(thinking=True)
        followup = interaction.followup

        async def send(content: str) -> Editable:
            message: Editable = await followup.send(
                content, ephemeral=private, wait=True, allowed_mentions=NO_PINGS
            )
            return message

        reply = DiscordReply(
            send_first=send,
            send_more=send,
            send_private=tell_privately,
            sent=recorder(self.core.conversations, event.conversation),
            interval_s=1.5,
        )
        result = await self.core.handle(event, reply, admitted=admitted)
        self._outcomes[result.outcome.value] += 1
