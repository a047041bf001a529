"""The Discord adapter's lifecycle: a discord.py client in our event loop, started and closed.

``DiscordAdapter`` owns what lives as long as the connection: the gateway client
(``gateway.ChatClient``), the slash commands (``commands.SlashCommands``), the message
context-menu commands (``context_menus.MessageMenus``) and the message handler
(``messages.MessageHandler``) it routes to, the attachment download session, and the
bookkeeping they share (turns in flight, outcomes). Start-up failures that are configuration
(a refused token or intents) become one-line ``ConfigError``s; a client that ends on its own
later sets ``failed`` so that ``python -m bot`` exits and its supervisor restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import aiohttp
import discord

from adapters.common.inflight import InFlight
from adapters.discord.approvals import ApprovalClicks
from adapters.discord.commands import SlashCommands
from adapters.discord.context_menus import MessageMenus
from adapters.discord.feedback import FeedbackClicks
from adapters.discord.gateway import (
    ChatClient,
    Endpoints,
    ShardedChatClient,
    message_content_granted,
    point_at,
    restore,
)
from adapters.discord.messages import MessageHandler
from adapters.discord.reply import NO_PINGS, TypingHub
from bot.reply import Undeliverable
from bot.settings import ConfigError, Settings

if TYPE_CHECKING:
    from bot.core import Core

log = logging.getLogger(__name__)


def require_discord_settings(settings: Settings) -> str:
    if settings.discord_bot_token is None or not settings.discord_bot_token.get_secret_value():
        raise ConfigError("DISCORD_BOT_TOKEN is not set")
    return settings.discord_bot_token.get_secret_value()


class DiscordAdapter:
    """Discord for ``python -m bot``: ``start``, ``close``, ``healthy``, ``failed``."""

    def __init__(self, core: Core, settings: Settings) -> None:
        self._token = require_discord_settings(settings)
        self.core = core
        core.health["discord"] = lambda: self.healthy
        self.settings = settings
        self.client: ChatClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._saved_endpoints: Endpoints | None = None
        self._inflight = InFlight("discord")
        self._typing = TypingHub()
        self.recovery: asyncio.Task[None] | None = None
        """Telling the users whose turns the previous run left unfinished (after start)."""
        self.failed = asyncio.Event()
        """Set if the gateway client ends on its own: ``python -m bot`` then exits non-zero, so
        the process supervisor restarts it."""
        self.message_content = False
        self.outcomes: Counter[str] = Counter()
        """How the messages and commands that reached the adapter ended, for logs and metrics:
        counted by ``Outcome`` value (``answered``, ``refused``, ``ignored``...)."""
        self._cdn: aiohttp.ClientSession | None = None
        """Attachment downloads (Discord's CDN needs no token; discord.py's session is private)."""

    @property
    def healthy(self) -> bool:
        """Connected to the gateway and taking events (sharded: on every shard it runs)."""
        client = self.client
        return client is not None and client.connected

    async def start(self, timeout_s: float = 60.0) -> None:
        """Log in, connect to the gateway and return once the bot is ready (``timeout_s``, plus
        the pauses discord.py makes between the IDENTIFYs of several shards)."""
        self._saved_endpoints = point_at(
            self.settings.discord_api_base, self.settings.discord_gateway_url
        )
        intents = discord.Intents.default()
        self.message_content = await message_content_granted(
            self.settings.discord_api_base, self._token
        )
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
        client = self.client = self._new_client(intents, self._cdn)
        timeout_s += client.identify_wait_s
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
        self.recovery = asyncio.create_task(self.core.watch_orphans("discord", self._tell))

    def _new_client(self, intents: discord.Intents, cdn: aiohttp.ClientSession) -> ChatClient:
        """The gateway client, its messages, slash commands and feedback clicks routed to
        their handlers."""
        messages = MessageHandler(
            self.core,
            self.settings,
            client=lambda: self.client,
            message_content=self.message_content,
            cdn=cdn,
            typing=self._typing,
            inflight=self._inflight,
            outcomes=self.outcomes,
        )
        commands = SlashCommands(
            self.core, self.settings, inflight=self._inflight, outcomes=self.outcomes
        )
        feedback = FeedbackClicks(self.core, inflight=self._inflight)
        approvals = ApprovalClicks(self.core, inflight=self._inflight)
        menus = MessageMenus(self.core, inflight=self._inflight, outcomes=self.outcomes)
        handlers: dict[str, Any] = {
            "commands": commands,
            "menus": menus,
            "answer_message": messages.on_message,
            "feedback": feedback,
            "approvals": approvals,
        }
        count = self.settings.discord_shard_count
        if count is None:
            return ChatClient(intents, **handlers)
        return ShardedChatClient(
            intents,
            **handlers,
            shard_count=count,
            shard_ids=self.settings.discord_shard_ids or None,
        )

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
        if "webhook" in where:
            await _tell_through_interaction(client, where, text)
            return
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
        if self._saved_endpoints is not None:
            restore(self._saved_endpoints)
            self._saved_endpoints = None


async def _tell_through_interaction(
    client: discord.Client, where: dict[str, Any], text: str
) -> None:
    """Tell ``text`` as a follow-up of the interaction in ``where``: the only way to reach a
    channel the bot is no member of (a user-installed command in others' DMs), while the
    interaction's token lives."""
    if time.time() >= float(where.get("until") or 0):
        raise Undeliverable("the interaction's token has expired")
    application_id, token = where["webhook"]
    webhook = discord.Webhook.partial(int(application_id), str(token), client=client)
    try:
        await webhook.send(f"*{text}*", allowed_mentions=NO_PINGS)
    except (discord.Forbidden, discord.NotFound) as exc:
        raise Undeliverable(f"Discord answered {exc.status}") from exc
