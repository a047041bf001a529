"""discord.py's gateway client, pointed at our endpoints and kept alive whatever the gateway sends.

- REST goes to ``DISCORD_API_BASE`` (``discord.http.Route.BASE``) and the gateway to
  ``DISCORD_GATEWAY_URL`` (``DiscordWebSocket.DEFAULT_GATEWAY``): discord.py has no public
  setting for either, so ``point_at`` sets both before the client starts and ``restore`` puts
  them back on close (tested).
- The privileged ``message_content`` intent is asked for only when the application has it
  (``message_content_granted``): a refused intent closes the gateway.
- Gateway replays after a resume carry the same message id: the core claims each id once.
- No gateway payload ends the client: a dispatch that cannot be parsed is logged and dropped
  (``guard_parsers``); a frame that leaves no session to trust (a READY, RESUMED or frame it
  cannot read) makes it join the gateway afresh (``ChatClient.connect``; with shards, that
  shard alone: ``RejoiningQueue``).
- ``DISCORD_SHARD_COUNT`` runs ``ShardedChatClient`` (discord.py's ``AutoShardedClient``) with
  the shards of ``DISCORD_SHARD_IDS``. Given a shard count, discord.py connects to
  ``DEFAULT_GATEWAY`` without asking ``GET /gateway/bot``, so ``point_at`` serves it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import discord
import discord.gateway
import discord.http
import yarl
from discord import app_commands
from discord.backoff import ExponentialBackoff
from discord.gateway import ReconnectWebSocket
from discord.shard import EventItem, EventType

from adapters.discord.approvals import ApprovalClicks
from adapters.discord.approvals import register as register_approvals
from adapters.discord.commands import SlashCommands
from adapters.discord.context_menus import MessageMenus
from adapters.discord.feedback import FeedbackClicks, register
from adapters.discord.reply import NO_PINGS

log = logging.getLogger(__name__)

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

IDENTIFY_SPACING_S = 5.0
"""discord.py waits this long before each IDENTIFY of a process but the first (Discord allows
one per 5 s to bots without large-bot sharding), so shards connect one after another."""

Endpoints = tuple[str, yarl.URL]
"""discord.py's REST base and gateway URL, as ``point_at`` found them."""


def point_at(api_base: str, gateway_url: str) -> Endpoints:
    """Send discord.py's REST calls to ``api_base`` and its gateway to ``gateway_url``
    (process-wide class attributes); returns the previous ones for ``restore``."""
    saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    discord.http.Route.BASE = api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
    return saved


def restore(saved: Endpoints) -> None:
    discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved


async def message_content_granted(api_base: str, token: str) -> bool:
    """Does the application have the Message Content intent? False when that cannot be read:
    asking for an intent the application lacks would close the gateway."""
    url = f"{api_base}/oauth2/applications/@me"
    headers = {"Authorization": f"Bot {token}"}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http,
            http.get(url, headers=headers) as resp,
        ):
            if resp.status != 200:
                return False
            flags = int((await resp.json()).get("flags") or 0)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.warning("discord: could not read the application's intents (%s)", type(exc).__name__)
        return False
    return bool(flags & MESSAGE_CONTENT_FLAGS)


class BrokenSession(Exception):
    """A session-setting dispatch could not be parsed: the gateway must be joined afresh."""


def guard_parsers(parsers: dict[str, Any]) -> None:
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
    """discord.py's client: messages go to ``answer_message``, slash commands to ``commands``,
    clicks on answers' feedback buttons (``adapters.discord.feedback``) to ``feedback``, on
    approvals' buttons (``adapters.discord.approvals``) to ``approvals``, message context-menu
    commands to ``menus``."""

    def __init__(
        self,
        intents: discord.Intents,
        *,
        commands: SlashCommands,
        answer_message: Callable[[discord.Message], Awaitable[None]],
        feedback: FeedbackClicks,
        menus: MessageMenus | None = None,
        approvals: ApprovalClicks | None = None,
        **sharding: Any,
    ) -> None:
        # A text bot: the "voice will NOT be supported" start-up warnings are noise here.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        super().__init__(
            intents=intents,
            allowed_mentions=NO_PINGS,
            guild_ready_timeout=0.5,
            enable_debug_events=False,
            **sharding,
        )
        self.tree = app_commands.CommandTree(self)
        self.ready = asyncio.Event()
        self._slash_commands = commands
        self._answer_message = answer_message
        commands.register(self.tree)
        self.feedback_clicked = feedback.clicked
        register(self)  # before the gateway: a click on an old answer may be the first event
        if approvals is not None:
            self.approval_clicked = approvals.clicked
            register_approvals(self)
        if menus is not None:  # in the same tree: synced, and hashed, with the commands
            menus.register(self.tree)
        guard_parsers(self._connection.parsers)

    @property
    def connected(self) -> bool:
        """Ready and connected to the gateway: taking events."""
        return self.is_ready() and not self.is_closed()

    @property
    def identify_wait_s(self) -> float:
        """How long discord.py holds back this client's IDENTIFYs at start, in all."""
        return 0.0

    async def setup_hook(self) -> None:
        await self._slash_commands.sync(self.tree)

    async def connect(self, *, reconnect: bool = True) -> None:
        """discord.py's gateway loop, joined afresh whenever a frame breaks it.

        discord.py reconnects after network errors and closes, but any other exception out of
        its frame handling ends ``Client.connect``, and with it the client: a READY without a
        session id, a RESUMED without data or a frame that is not a JSON object stopped the
        whole process, Slack included. Such a frame leaves no session to trust, so it is
        logged once, the socket closed, and the gateway joined again with a new IDENTIFY,
        after a pause that grows while it keeps happening (IDENTIFYs are limited per day).
        Dispatches that merely fail to parse never get here: ``guard_parsers`` drops them."""
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
            _log_invite(self)
        self.ready.set()

    async def on_message(self, message: discord.Message) -> None:
        await self._answer_message(message)


class ShardedChatClient(ChatClient, discord.AutoShardedClient):
    """``ChatClient`` over discord.py's sharded client: the shards ``shard_ids`` (all when
    None) of ``shard_count`` in this process, each guild's events on its shard
    (``(guild_id >> 22) % shard_count``), DMs on shard 0."""

    def __init__(
        self,
        intents: discord.Intents,
        *,
        commands: SlashCommands,
        answer_message: Callable[[discord.Message], Awaitable[None]],
        feedback: FeedbackClicks,
        shard_count: int,
        shard_ids: list[int] | None,
        menus: MessageMenus | None = None,
        approvals: ApprovalClicks | None = None,
    ) -> None:
        super().__init__(
            intents,
            commands=commands,
            answer_message=answer_message,
            feedback=feedback,
            menus=menus,
            approvals=approvals,
            shard_count=shard_count,
            shard_ids=shard_ids,
        )
        self.running = list(shard_ids or range(shard_count))
        """The shards this process runs."""

    @property
    def connected(self) -> bool:
        """Ready, and every shard this process runs connected: a shard that is reconnecting
        leaves its guilds unanswered meanwhile (discord.py's "ready" stays set)."""
        shards = self.shards
        return super().connected and all(
            i in shards and not shards[i].is_closed() for i in self.running
        )

    @property
    def identify_wait_s(self) -> float:
        return IDENTIFY_SPACING_S * (len(self.running) - 1)

    async def _async_setup_hook(self) -> None:
        await super()._async_setup_hook()
        # The queue discord.py's shards report to (``AutoShardedClient.__queue``, private):
        # see ``RejoiningQueue``.
        self._AutoShardedClient__queue = RejoiningQueue()

    async def on_ready(self) -> None:
        if not self.ready.is_set():
            log.info("discord: running shards %s of %s", self.running, self.shard_count)
        await super().on_ready()


class RejoiningQueue(asyncio.PriorityQueue[EventItem]):
    """What discord.py's shards report to their client, except that a shard whose frame broke
    (anything but ``FATAL_GATEWAY_ERRORS``: a READY without a session, a frame it cannot read)
    joins the gateway afresh after a growing pause, as ``ChatClient.connect`` does unsharded.
    discord.py would end the whole client for it, every other shard with it."""

    def __init__(self) -> None:
        super().__init__()
        self._backoff: dict[int, ExponentialBackoff[bool]] = {}
        self._rejoins: set[asyncio.Task[None]] = set()

    def put_nowait(self, item: EventItem) -> None:
        shard, error = item.shard, item.error
        if (
            item.type != EventType.terminate
            or shard is None
            or error is None
            or isinstance(error, FATAL_GATEWAY_ERRORS)
        ):
            super().put_nowait(item)
            return
        delay = self._backoff.setdefault(shard.id, ExponentialBackoff()).delay()
        log.warning(
            "discord: shard %s got something unreadable from the gateway (%s: %s); joining "
            "it afresh in %.1f s",
            shard.id,
            type(error).__name__,
            error,
            delay,
        )
        task = asyncio.get_running_loop().create_task(self._rejoin(item, delay))
        self._rejoins.add(task)
        task.add_done_callback(self._rejoins.discard)

    async def _rejoin(self, item: EventItem, delay: float) -> None:
        shard = item.shard
        assert shard is not None
        with contextlib.suppress(Exception):
            await shard.ws.close(code=1000)  # the session ends with it
        await asyncio.sleep(delay)
        identify = ReconnectWebSocket(shard.id, resume=False)
        super().put_nowait(EventItem(EventType.identify, shard, identify))


def invite_urls(application_id: int) -> tuple[str, str]:
    """The two install links: to a server (the bot user with its permissions, and the slash
    commands; ``integration_type=0``) and to a user (the commands alone, usable in any DM or
    group DM; ``integration_type=1``, which the application must allow under Installation ->
    User Install)."""
    base = f"https://discord.com/oauth2/authorize?client_id={application_id}"
    server = (
        f"{base}&permissions={INVITE_PERMISSIONS.value}&integration_type=0"
        "&scope=bot+applications.commands"
    )
    user = f"{base}&integration_type=1&scope=applications.commands"
    return server, user


def _log_invite(client: discord.Client) -> None:
    if client.application_id is None:
        return
    server, user = invite_urls(client.application_id)
    log.info(
        "discord: ready as %s; invite it with %s (server install) or %s (user install: "
        "its commands in any DM or group DM)",
        client.user,
        server,
        user,
    )
