"""Discord's slash commands: their tree, built from the one registry, its sync, and the answers.

- Names, descriptions, options and choices all come from ``bot.commands.COMMANDS``. discord.py
  reads a command's options from its callback's signature, so each command with options is a
  method of ``SlashCommands``; the others share one callback made per name.
- The tree is synced only when its definition, target guild or application changed (a hash
  kept through the core), and, with shards, only by the instance that runs shard 0: commands
  belong to the application, not to a shard, and one writer keeps the hash honest.
- ``/ask`` is answered in public: access, rate limit and budget are checked before "thinking…"
  shows in the channel. The other commands are answered to their user alone.
- User installs: every command is installable on servers and by users, and usable in servers,
  the bot's DM, other DMs and group DMs (``everywhere``). They are synced globally, which is
  the only sync that carries ``integration_types`` and ``contexts``: ``DISCORD_GUILD_ID`` syncs
  them to one server for development, without the user install. Every answer goes through the
  interaction (its response and webhook follow-ups), never a channel send: in a DM or group DM
  of others, or a server that did not add the bot, the bot is no member and a channel send
  fails (403, Missing Access).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

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
AppCommand = TypeVar("AppCommand", app_commands.Command[Any, ..., Any], app_commands.ContextMenu)

INTERACTION_WEBHOOK_S = 15 * 60
"""How long an interaction's token lets the bot post follow-ups (Discord: 15 minutes)."""


def everywhere(command: AppCommand) -> AppCommand:
    """``command`` installable by servers and by users, and usable in servers, in the bot's DM
    and in other DMs and group DMs (where only a user install brings it)."""
    command = app_commands.allowed_installs(guilds=True, users=True)(command)
    return app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)(command)


def commands_digest(tree: app_commands.CommandTree[Any], guild_id: int | None) -> str:
    """The hash that decides re-syncing: the application, the target guild and each command's
    whole synced definition, ``integration_types`` and ``contexts`` included (discord.py's
    ``to_dict``), so that changing where a command may be used syncs it again."""
    definition = [c.to_dict(tree) for c in tree.get_commands()]
    target = [tree.client.application_id, guild_id]
    return hashlib.sha256(json.dumps([target, definition], sort_keys=True).encode()).hexdigest()


def bot_is_member(interaction: discord.Interaction[Any]) -> bool:
    """Is the bot a member of the channel ``interaction`` comes from, so that it could post
    there itself? In its own DM, and in a server that added it (the guild install authorized
    the interaction); not in a DM or group DM of others, nor in a server where only a user's
    install brought the command (``authorizing_integration_owners`` has only the user)."""
    if interaction.context.dm_channel:
        return True
    return bool(interaction.context.guild) and interaction.is_guild_integration()


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
                everywhere(
                    app_commands.Command(
                        name=command.name, description=command.description, callback=callback
                    )
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
        digest = commands_digest(tree, guild.id if guild else None)
        if await self.core.conversations.recall(COMMANDS_HASH_KEY) == digest:
            log.info("discord: slash commands unchanged, not synced")
            return
        if guild is not None:
            # Guild commands cannot carry integration_types and contexts (Discord reads them
            # on global commands only): this is the development set-up, without user installs.
            tree.copy_global_to(guild=guild)
        await tree.sync(guild=guild)
        await self.core.conversations.remember(COMMANDS_HASH_KEY, digest)
        if guild is not None:
            log.info(
                "discord: slash commands synced to guild %s only (DISCORD_GUILD_ID, for "
                "development): a guild sync cannot carry the user install, so they are not "
                "offered in DMs or group DMs; unset DISCORD_GUILD_ID to sync them globally",
                guild.id,
            )
        else:
            log.info("discord: slash commands synced globally, for server and user installs")

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
            event = dataclasses.replace(event, address=json.dumps(_address(interaction, place)))
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

        async def send_question(
            content: str, view: discord.ui.View, mentions: discord.AllowedMentions
        ) -> Editable:
            message: Editable = await followup.send(
                content, ephemeral=private, wait=True, view=view, allowed_mentions=mentions
            )
            return message

        reply = DiscordReply(
            send_first=send,
            send_more=send,
            send_private=tell_privately,
            send_question=send_question,
            sent=recorder(self.core.conversations, event.conversation),
            interval_s=1.5,
        )
        result = await self.core.handle(event, reply, admitted=admitted)
        self._outcomes[result.outcome.value] += 1


def _address(interaction: discord.Interaction[Any], place: Place) -> dict[str, Any]:
    """Where to tell the user after a crash that their /ask was cut: the channel where the bot
    is a member; elsewhere (a user install in others' DMs) only the interaction's webhook can
    reach them, for as long as its token lives. The token is kept with the claim: it can post
    follow-ups to this one interaction only, and for 15 minutes only."""
    if bot_is_member(interaction):
        return {"channel": place.channel_id}
    return {
        "channel": place.channel_id,
        "webhook": [interaction.application_id, interaction.token],
        "until": int(interaction.created_at.timestamp()) + INTERACTION_WEBHOOK_S,
    }
