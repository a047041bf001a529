"""The Discord adapter: a discord.py client in our event loop, handing events to the core.

- REST goes to ``DISCORD_API_BASE`` (``discord.http.Route.BASE``) and the gateway to
  ``DISCORD_GATEWAY_URL`` (``DiscordWebSocket.DEFAULT_GATEWAY``): discord.py has no public
  setting for either, so both are set before ``start`` and restored on close (tested).
- The privileged ``message_content`` intent is asked for only when the application has it (a
  refused intent closes the gateway); without it mentions, replies and DMs still work and the
  bot says so at start-up.
- Slash commands are synced only when their definition, target guild or application changed
  (a hash kept in the store).
- Gateway replays after a resume carry the same message id: the core claims each id once.
- No gateway payload ends the client: a dispatch that cannot be parsed is logged and dropped;
  a frame that leaves no session to trust (a READY, RESUMED or frame it cannot read) makes it
  join the gateway afresh (``ChatClient.connect``).
- Attachments are downloaded in chunks and abandoned past MAX_FILE_MB: their declared size is
  never trusted.
- A message whose guild discord.py has not loaded (before its GUILD_CREATE, or unavailable) is
  still a guild message: its channel is looked up over REST, never taken for a DM; role ids
  come from the member in the payload, not from the guild cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
import discord.gateway
import discord.http
import yarl
from discord import app_commands
from discord.backoff import ExponentialBackoff

from adapters.common.inflight import InFlight
from adapters.discord.reply import NO_PINGS, DiscordReply, Editable, TypingHub
from adapters.discord.translate import (
    MAX_CHAIN,
    Place,
    channel_key,
    command_event,
    message_event,
    new_conversation,
    place_conversation,
    scrub,
    strip_bot_mention,
)
from bot.commands import Command, command_named, commands_for
from bot.events import Attachment, AttachmentUnavailable, ConversationKey, Event, EventKind
from bot.reply import Undeliverable
from bot.settings import ConfigError, Settings

if TYPE_CHECKING:
    from bot.core import Core

log = logging.getLogger(__name__)

COMMANDS_HASH_KEY = "discord:commands_hash"
# Send messages, read history, embed links, attach files, create public threads, send in threads,
# use application commands.
INVITE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    read_message_history=True,
    embed_links=True,
    attach_files=True,
    add_reactions=True,
    use_application_commands=True,
)
MESSAGE_CONTENT_FLAGS = (1 << 18) | (1 << 19)
"""GATEWAY_MESSAGE_CONTENT and GATEWAY_MESSAGE_CONTENT_LIMITED: the intent is granted."""
USER_MESSAGE_TYPES = frozenset({discord.MessageType.default, discord.MessageType.reply})
PRIVATE_COMMANDS = frozenset(c.name for c in commands_for("discord") if c.private)
NEED_MENTION = (
    "-# I can't read replies that don't mention me here (the Message Content intent is off): "
    "keep the @mention on when you reply, or mention me."
)
NOT_LOADED = (
    "-# Discord hasn't told me about this server yet, so I can't answer here. "
    "Please try again in a minute."
)


def require_discord_settings(settings: Settings) -> str:
    if settings.discord_bot_token is None or not settings.discord_bot_token.get_secret_value():
        raise ConfigError("DISCORD_BOT_TOKEN is not set")
    return settings.discord_bot_token.get_secret_value()


def _option_descriptions(command: Command) -> dict[str, str]:
    return {option.name: option.description for option in command.options}


def place_of(channel: Any, guild_id: int | None = None) -> Place:
    """Where ``channel`` is, as plain ids. ``guild_id`` is the payload's, when the caller has
    it. Without a guild object (discord.py has not loaded the guild yet) the channel's own
    ``guild_id`` still makes it a guild channel: only a channel with no guild id is a DM."""
    guild = getattr(channel, "guild", None)
    if guild_id is None:
        guild_id = guild.id if guild is not None else getattr(channel, "guild_id", None)
    if isinstance(channel, discord.Thread):
        return Place(
            guild_id=guild_id,
            channel_id=channel.id,
            parent_id=channel.parent_id,
            is_thread=True,
        )
    return Place(guild_id=guild_id, channel_id=channel.id)


SESSION_EVENTS = frozenset({"READY"})
"""Dispatches that set up the session: one that cannot be parsed leaves nothing to trust."""
FATAL_GATEWAY_ERRORS: tuple[type[BaseException], ...] = (
    discord.LoginFailure,
    discord.PrivilegedIntentsRequired,
    discord.ConnectionClosed,
    discord.GatewayNotFound,
)
"""What discord.py itself gives up on (a refused token or intents, a close code it may not
reconnect after): configuration to fix, so the client ends and ``python -m bot`` says so."""


class BrokenSession(Exception):
    """A session-setting dispatch could not be parsed: the gateway must be joined afresh."""


def _guard_parsers(parsers: dict[str, Any]) -> None:
    """Make each gateway dispatch parser drop a payload it cannot parse (with a warning) instead
    of raising: discord.py lets such an exception end ``Client.start``, which silently took the
    whole Discord side down (e.g. a MESSAGE_CREATE without ``content``). A READY that cannot be
    parsed is not dropped (that would leave a connected client with no user, deaf to every
    message): it raises ``BrokenSession`` for ``ChatClient.connect`` to reconnect."""

    def guarded(name: str, parse: Any) -> Any:
        def parse_or_drop(data: Any) -> Any:
            try:
                return parse(data)
            except Exception as exc:
                if name in SESSION_EVENTS:
                    raise BrokenSession(f"{name} ({type(exc).__name__}: {exc})") from exc
                log.warning(
                    "discord: dropped a malformed %s dispatch (%s: %s)",
                    name,
                    type(exc).__name__,
                    exc,
                )
                return None

        return parse_or_drop

    for name, parse in list(parsers.items()):
        parsers[name] = guarded(name, parse)


class ChatClient(discord.Client):
    """discord.py's client, its events routed to the adapter."""

    def __init__(self, adapter: DiscordAdapter, intents: discord.Intents) -> None:
        # A text bot: the "voice will NOT be supported" start-up warnings are noise here.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        super().__init__(
            intents=intents,
            allowed_mentions=NO_PINGS,
            guild_ready_timeout=0.5,
            enable_debug_events=False,
        )
        self.adapter = adapter
        self.tree = app_commands.CommandTree(self)
        self.ready = asyncio.Event()
        adapter.register_commands(self.tree)
        _guard_parsers(self._connection.parsers)

    async def setup_hook(self) -> None:
        await self.adapter.sync_commands(self)

    async def connect(self, *, reconnect: bool = True) -> None:
        """discord.py's gateway loop, joined afresh whenever a frame breaks it.

        discord.py reconnects after network errors and closes, but any other exception out of
        its frame handling ends ``Client.connect``, and with it the client: a READY without a
        session id, a RESUMED without data or a frame that is not a JSON object stopped the
        whole process, Slack included. Such a frame leaves no session to trust, so it is
        logged once, the socket closed, and the gateway joined again with a new IDENTIFY,
        after a pause that grows while it keeps happening (IDENTIFYs are limited per day).
        Dispatches that merely fail to parse never get here: ``_guard_parsers`` drops them."""
        backoff = ExponentialBackoff()
        while True:
            try:
                await super().connect(reconnect=reconnect)
                return
            except FATAL_GATEWAY_ERRORS:
                raise
            except Exception as exc:
                if self.is_closed() or not reconnect:
                    raise
                delay = backoff.delay()
                log.warning(
                    "discord: the gateway sent something unreadable (%s: %s); joining it "
                    "afresh in %.1f s",
                    type(exc).__name__,
                    exc,
                    delay,
                )
                with contextlib.suppress(Exception):
                    await self.ws.close(code=1000)  # the session ends with it
                await asyncio.sleep(delay)

    async def on_ready(self) -> None:
        if not self.ready.is_set():
            self.adapter.log_invite(self)
        self.ready.set()

    async def on_message(self, message: discord.Message) -> None:
        await self.adapter.on_message(message)


class DiscordAdapter:
    def __init__(self, core: Core, settings: Settings) -> None:
        self._token = require_discord_settings(settings)
        self.core = core
        core.health["discord"] = lambda: self.healthy
        self.settings = settings
        self.client: ChatClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._saved_globals: tuple[str, yarl.URL] | None = None
        self._inflight = InFlight("discord")
        self._typing = TypingHub()
        self.recovery: asyncio.Task[int] | None = None
        """Telling the users whose turns the previous run left unfinished (after start)."""
        self.failed = asyncio.Event()
        """Set if the gateway client ends on its own: ``python -m bot`` then exits non-zero, so
        the process supervisor restarts it."""
        self.message_content = False
        self.outcomes: Counter[str] = Counter()
        self._cdn: aiohttp.ClientSession | None = None
        """Attachment downloads (Discord's CDN needs no token; discord.py's session is private)."""

    @property
    def healthy(self) -> bool:
        """Connected to the gateway and taking events."""
        client = self.client
        return client is not None and client.is_ready() and not client.is_closed()

    # ------------------------------------------------------------------ lifecycle

    async def start(self, timeout_s: float = 60.0) -> None:
        """Log in, connect to the gateway and return once the bot is ready."""
        self._saved_globals = (
            discord.http.Route.BASE,
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY,
        )
        discord.http.Route.BASE = self.settings.discord_api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(
            self.settings.discord_gateway_url
        )
        intents = discord.Intents.default()
        self.message_content = await self._message_content_granted()
        intents.message_content = self.message_content
        if not self.message_content:
            log.warning(
                "discord: the Message Content intent is not enabled for this bot, so it answers "
                "mentions, replies to it and DMs only (enable it under Bot -> Privileged Gateway "
                "Intents to answer follow-ups in threads without a mention)"
            )
        self._cdn = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=120, sock_read=30),
            headers={"User-Agent": "chatbot (discord attachments)"},
        )
        client = self.client = ChatClient(self, intents)
        self._task = asyncio.create_task(self._run(client))
        ready = asyncio.create_task(client.ready.wait())
        try:
            done, _ = await asyncio.wait(
                {ready, self._task}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            ready.cancel()
        if self._task in done:
            try:
                self._task.result()  # why the client stopped
            except discord.LoginFailure:
                raise ConfigError("DISCORD_BOT_TOKEN was refused by Discord") from None
            except discord.PrivilegedIntentsRequired:
                raise ConfigError(
                    "Discord refused the bot's intents: enable them under Bot -> Privileged "
                    "Gateway Intents"
                ) from None
            except discord.ConnectionClosed as exc:
                if exc.code == 4004:  # "Authentication failed", sent by the gateway itself
                    raise ConfigError(
                        "DISCORD_BOT_TOKEN was refused by Discord (gateway closed 4004)"
                    ) from None
                raise RuntimeError(
                    f"the Discord gateway closed before the bot was ready ({exc.code})"
                ) from None
            raise RuntimeError("the Discord client stopped before it was ready")
        if not done:
            raise TimeoutError("Discord did not become ready in time")
        self._task.add_done_callback(self._client_ended)
        self.recovery = asyncio.create_task(self.core.recover("discord", self._tell))

    def _client_ended(self, task: asyncio.Task[None]) -> None:
        if self.client is None:  # closing: expected
            return
        reason = "stopped" if task.cancelled() or task.exception() is None else "crashed"
        log.error(
            "discord: the gateway client %s unexpectedly%s",
            reason,
            f" ({type(task.exception()).__name__})" if reason == "crashed" else "",
        )
        self.failed.set()

    async def _tell(self, address: str, text: str) -> None:
        """Send ``text`` where an event's ``address`` points: as a reply to the user's message
        when there is one (quietly sent without it if that message is gone)."""
        client = self.client
        if client is None:
            raise RuntimeError("the Discord adapter is closed")
        where = json.loads(address)
        channel = client.get_partial_messageable(int(where["channel"]))
        message = where.get("message")
        text = f"*{text}*"  # as failure lines are shown
        try:
            if message:
                reference = discord.MessageReference(
                    message_id=int(message), channel_id=channel.id, fail_if_not_exists=False
                )
                await channel.send(text, reference=reference, allowed_mentions=NO_PINGS)
            else:
                await channel.send(text, allowed_mentions=NO_PINGS)
        except (discord.Forbidden, discord.NotFound) as exc:
            raise Undeliverable(f"Discord answered {exc.status}") from exc

    async def _run(self, client: ChatClient) -> None:
        async with client:
            await client.start(self._token)

    async def close(self, grace_s: float | None = None) -> None:
        """Stop taking events, let turns in flight finish (up to ``grace_s``, by default
        ``BOT_SHUTDOWN_GRACE``), tell the users of those cut short, then disconnect."""
        self.core.stopping = True
        if self.recovery is not None and not self.recovery.done():
            self.recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.recovery
        client, self.client = self.client, None  # new messages are not taken from here on
        await self._inflight.drain(self.settings.shutdown_grace_s if grace_s is None else grace_s)
        if client is not None:
            await client.close()
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._task
            self._task = None
        if self._cdn is not None:
            await self._cdn.close()
            self._cdn = None
        if self._saved_globals is not None:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = (
                self._saved_globals
            )
            self._saved_globals = None

    async def _message_content_granted(self) -> bool:
        url = f"{self.settings.discord_api_base}/oauth2/applications/@me"
        headers = {"Authorization": f"Bot {self._token}"}
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http,
                http.get(url, headers=headers) as resp,
            ):
                if resp.status != 200:
                    return False
                flags = int((await resp.json()).get("flags") or 0)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning(
                "discord: could not read the application's intents (%s)", type(exc).__name__
            )
            return False
        return bool(flags & MESSAGE_CONTENT_FLAGS)

    def log_invite(self, client: discord.Client) -> None:
        if client.application_id is None:
            return
        url = discord.utils.oauth_url(
            client.application_id,
            permissions=INVITE_PERMISSIONS,
            scopes=("bot", "applications.commands"),
        )
        log.info("discord: ready as %s; invite it with %s", client.user, url)

    # ------------------------------------------------------------------ commands

    def register_commands(self, tree: app_commands.CommandTree[Any]) -> None:
        """The tree from the one command registry (``bot.commands.COMMANDS``): names,
        descriptions, options and choices all come from there. discord.py reads a command's
        options from its callback's signature, so the three with options are written out."""
        adapter = self
        ask, model, settings = (command_named(n) for n in ("ask", "model", "settings"))

        @tree.command(name=ask.name, description=ask.description)
        @app_commands.describe(**_option_descriptions(ask))
        async def ask_command(interaction: discord.Interaction[Any], question: str) -> None:
            await adapter.on_command(interaction, "ask", question)

        @tree.command(name=model.name, description=model.description)
        @app_commands.describe(**_option_descriptions(model))
        async def model_command(
            interaction: discord.Interaction[Any], name: str | None = None
        ) -> None:
            await adapter.on_command(interaction, "model", name or "")

        @tree.command(name=settings.name, description=settings.description)
        @app_commands.describe(**_option_descriptions(settings))
        @app_commands.choices(
            setting=[app_commands.Choice(name=n, value=n) for n in settings.options[0].choices]
        )
        async def settings_command(
            interaction: discord.Interaction[Any],
            setting: str | None = None,
            value: str | None = None,
        ) -> None:
            args = " ".join(part for part in (setting, value) if part)
            await adapter.on_command(interaction, "settings", args)

        for command in commands_for("discord"):
            if command.options:
                continue  # written out above
            tree.add_command(
                app_commands.Command(
                    name=command.name,
                    description=command.description,
                    callback=self._plain_command(command.name),
                )
            )

    def _plain_command(self, name: str) -> Any:
        async def callback(interaction: discord.Interaction[Any]) -> None:
            await self.on_command(interaction, name, "")

        return callback

    async def sync_commands(self, client: ChatClient) -> None:
        """Sync the command tree when its definition, its target guild or the application
        changed, never else. The application is part of the hash: commands belong to one, so
        the same database pointed at another app (a new bot, staging vs production) must sync
        that app's commands, which "unchanged" used to skip."""
        guild = (
            discord.Object(self.settings.discord_guild_id)
            if self.settings.discord_guild_id
            else None
        )
        definition = [c.to_dict(client.tree) for c in client.tree.get_commands()]
        target = [client.application_id, guild.id if guild else None]
        digest = hashlib.sha256(
            json.dumps([target, definition], sort_keys=True).encode()
        ).hexdigest()
        if await self.core.conversations.recall(COMMANDS_HASH_KEY) == digest:
            log.info("discord: slash commands unchanged, not synced")
            return
        if guild is not None:
            client.tree.copy_global_to(guild=guild)
        await client.tree.sync(guild=guild)
        await self.core.conversations.remember(COMMANDS_HASH_KEY, digest)
        log.info("discord: slash commands synced%s", f" to guild {guild.id}" if guild else "")

    async def on_command(self, interaction: discord.Interaction[Any], name: str, args: str) -> None:
        with self._inflight.track():
            await self._command(interaction, name, args)

    async def _command(self, interaction: discord.Interaction[Any], name: str, args: str) -> None:
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
                user_roles=_roles(interaction.user),
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
                self.outcomes[refused.outcome] += 1
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
            sent=self._recorder(event.conversation),
            interval_s=1.5,
        )
        result = await self.core.handle(event, reply, admitted=admitted)
        self.outcomes[result.outcome] += 1

    # ------------------------------------------------------------------ messages

    async def on_message(self, message: discord.Message) -> None:
        with self._inflight.track():
            await self._message(message)

    async def _message(self, message: discord.Message) -> None:
        client = self.client
        if client is None or client.user is None:
            return
        me = client.user
        if message.author.id == me.id or message.type not in USER_MESSAGE_TYPES:
            return
        # getattr: discord.py leaves the attribute unset when a payload lacks "mentions".
        mentioned = any(user.id == me.id for user in getattr(message, "mentions", ()))
        place = await self._place_of_message(
            client, message, addressed=mentioned or message.reference is not None
        )
        if place is None:
            if mentioned:
                await self._say(message, NOT_LOADED)
            self.outcomes["refused"] += 1
            return
        conversation = place_conversation(place)
        kind = EventKind.DIRECT_MESSAGE if place.is_dm else EventKind.MENTION
        if conversation is None and message.reference is not None:
            conversation = await self._conversation_of_chain(message)
        if not (place.is_dm or mentioned):
            # Not addressed by name: a reply into one of our conversations, or a message in a
            # thread the bot takes part in, continues it; anything else is not for the bot.
            kind = EventKind.THREAD_FOLLOW_UP
            follows_up = conversation is not None and (
                not place.is_thread or await self.core.conversations.bot_takes_part(conversation)
            )
            if follows_up and place.is_thread:
                required = await self.core.conversations.mention_required(channel_key(place))
                follows_up = required is not True
            if not follows_up:
                self.outcomes["ignored"] += 1
                return
        event = message_event(
            message_id=message.id,
            place=place,
            conversation=conversation or new_conversation(place, message.id),
            kind=kind,
            author_id=message.author.id,
            author_name=message.author.display_name,
            # A webhook's message (a channel webhook, a followed channel's crosspost) has no
            # person behind it, and its author need not carry the bot flag.
            author_is_bot=message.author.bot or message.webhook_id is not None,
            content=message.content,
            bot_id=me.id,
            author_roles=_roles(message.author),
        )

        in_dm = place.is_dm

        async def tell_privately(content: str) -> Any:
            if in_dm:
                return await message.channel.send(content, allowed_mentions=NO_PINGS)
            return await message.author.send(content, allowed_mentions=NO_PINGS)

        if (
            kind is EventKind.THREAD_FOLLOW_UP
            and not self.message_content
            and not message.content
            and not message.attachments
        ):
            # Discord hides this message's text from a bot without the intent.
            if not place.is_thread and self.core.allows(event):
                await self._say(message, NEED_MENTION)
            self.outcomes["ignored"] += 1
            return
        target: discord.abc.Messageable = message.channel
        admitted = False
        if (
            conversation is None
            and self.settings.discord_auto_thread
            and isinstance(message.channel, discord.TextChannel)
        ):
            # A new thread is visible to everyone: the author is checked before it opens.
            if await self.core.admit(event, tell_privately) is not None:
                self.outcomes["refused"] += 1
                return
            admitted = True
            thread = await message.create_thread(name=_thread_name(message, me.id))
            target = thread
            place = place_of(thread)
            conversation = place_conversation(place)
        if conversation is None:
            conversation = new_conversation(place, message.id)
        event = dataclasses.replace(
            event, conversation=conversation
        )  # a thread's channel key is its parent's
        if message.attachments:
            event = dataclasses.replace(
                event, attachments=tuple(self._attachment(a) for a in message.attachments)
            )
        address: dict[str, int] = {"channel": _channel_id(target, message)}
        if target is message.channel:
            address["message"] = message.id
        event = dataclasses.replace(event, address=json.dumps(address))
        await self._remember(message.id, conversation)
        reply = self._reply_to(message, target, conversation, tell_privately)
        result = await self.core.handle(event, reply, admitted=admitted)
        self.outcomes[result.outcome] += 1

    async def _place_of_message(
        self, client: discord.Client, message: discord.Message, *, addressed: bool
    ) -> Place | None:
        """Where ``message`` was written; None if that cannot be known for sure. ``addressed``:
        it mentions the bot or replies to a message."""
        channel = message.channel
        if not isinstance(channel, discord.PartialMessageable):
            return place_of(channel)
        # discord.py has not loaded this channel: its guild's GUILD_CREATE has not come yet
        # (or the guild is unavailable), or the thread is not cached. The payload's guild_id
        # (kept on the partial channel) makes it a guild message; Discord's REST says whether
        # it is a thread, and of which channel, which the conversation and settings keys need.
        place = place_of(channel)
        as_thread = place_conversation(dataclasses.replace(place, is_thread=True))
        if not addressed and (
            as_thread is None or not await self.core.conversations.bot_takes_part(as_thread)
        ):
            # Neither addressed to the bot nor in a thread it takes part in: ignored whatever
            # the channel is, so REST is not asked (with Message Content on, every message of
            # a guild still loading would be one request).
            return place
        try:
            fetched = await client.fetch_channel(channel.id)
        except Exception as exc:  # HTTP errors, or an answer discord.py cannot build
            log.warning(
                "discord: could not look up a channel of a guild not loaded yet (%s)",
                type(exc).__name__,
            )
            return None
        place = place_of(fetched)
        if place.guild_id != channel.guild_id:
            log.warning("discord: the gateway and REST disagree on a channel's guild")
            return None
        return place

    async def _say(self, message: discord.Message, text: str) -> None:
        try:
            await _reply(message, text)
        except discord.HTTPException as exc:
            log.info("could not reply with a hint: %s", exc.status)

    def _reply_to(
        self,
        message: discord.Message,
        target: discord.abc.Messageable,
        conversation: ConversationKey,
        tell_privately: Any,
    ) -> DiscordReply:
        async def send_first(content: str) -> Editable:
            if target is message.channel:
                return await _reply(message, content)
            return await target.send(content, allowed_mentions=NO_PINGS)

        async def send_more(content: str) -> Editable:
            return await target.send(content, allowed_mentions=NO_PINGS)

        return DiscordReply(
            send_first=send_first,
            send_more=send_more,
            send_private=tell_privately,
            sent=self._recorder(conversation),
            typing=(self._typing, target, _channel_id(target, message)),
            interval_s=1.5,
        )

    async def _conversation_of_chain(self, message: discord.Message) -> ConversationKey | None:
        """The conversation of the nearest message up the reply chain that belongs to one."""
        current: discord.Message | None = message
        for _ in range(MAX_CHAIN):
            reference = current.reference if current is not None else None
            if reference is None or reference.message_id is None:
                return None
            known = await self.core.conversations.of_message(f"discord:{reference.message_id}")
            if known is not None:
                return known
            resolved = reference.resolved
            if isinstance(resolved, discord.Message):
                current = resolved
                continue
            try:
                current = await message.channel.fetch_message(reference.message_id)
            except discord.HTTPException:
                return None
        return None

    def _attachment(self, attachment: discord.Attachment) -> Attachment:
        url, max_mb = attachment.url, self.settings.max_file_mb

        async def fetch() -> bytes:
            if self._cdn is None or self._cdn.closed:
                raise AttachmentUnavailable("I am shutting down")
            return await _download(self._cdn, url, max_mb)

        return Attachment(
            name=scrub(attachment.filename),
            declared_type=attachment.content_type or "application/octet-stream",
            size=attachment.size,
            fetch=fetch,
        )

    def _recorder(self, conversation: ConversationKey) -> Any:
        async def sent(message_id: int) -> None:
            await self._remember(message_id, conversation)

        return sent

    async def _remember(self, message_id: int, conversation: ConversationKey) -> None:
        await self.core.conversations.remember_message(f"discord:{message_id}", conversation)


async def _reply(message: discord.Message, content: str) -> discord.Message:
    """A reply to ``message`` that is still posted if the user deleted it meanwhile (Discord
    then drops the reference instead of refusing with "Unknown message")."""
    return await message.channel.send(
        content,
        reference=message.to_reference(fail_if_not_exists=False),
        mention_author=False,
        allowed_mentions=NO_PINGS,
    )


def _channel_id(target: discord.abc.Messageable, message: discord.Message) -> int:
    """The id of the channel an answer goes to (a new auto-thread, or the message's channel)."""
    channel_id = getattr(target, "id", None)
    return int(channel_id) if isinstance(channel_id, int) else message.channel.id


def _roles(user: discord.abc.User) -> tuple[str, ...]:
    """A guild member's role ids (for role allowlists); none in DMs.

    The ids Discord sent with the member (``Member._roles``), not the roles discord.py could
    match in its guild cache (``Member.roles``): before a guild's GUILD_CREATE, or in an
    interaction from a guild the bot is not in, that cache has none, and every role was lost.
    The list never holds the @everyone role."""
    if not isinstance(user, discord.Member):
        return ()
    return tuple(str(role_id) for role_id in user._roles)


def _thread_name(message: discord.Message, bot_id: int) -> str:
    text = strip_bot_mention(message.content, bot_id) or "Conversation"
    return text[:90]


async def _download(http: aiohttp.ClientSession, url: str, max_mb: float) -> bytes:
    """The file at ``url``, read in chunks and abandoned past ``max_mb``.

    An attachment's ``size`` is only what the payload claims: ``Attachment.read()`` read one
    that declared 10 bytes and served 300 MB whole before anything could check it (the process
    went from 298 to 861 MB). A larger ``Content-Length`` is believed; a smaller one is not."""
    max_bytes = int(max_mb * 1024 * 1024)
    too_big = f"it is over the {max_mb:g} MB limit"
    async with http.get(url) as resp:
        if resp.status != 200:
            raise AttachmentUnavailable(f"Discord answered {resp.status} for it")
        if resp.content_length is not None and resp.content_length > max_bytes:
            raise AttachmentUnavailable(too_big)
        chunks: list[bytes] = []
        total = 0
        async for chunk in resp.content.iter_chunked(64 * 1024):
            total += len(chunk)
            if total > max_bytes:
                raise AttachmentUnavailable(too_big)
            chunks.append(chunk)
    return b"".join(chunks)
