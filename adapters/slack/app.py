"""The Slack adapter's lifecycle: a slack_bolt ``AsyncApp`` in our event loop, started and closed.

Transports: Socket Mode when ``SLACK_APP_TOKEN`` is set, else HTTP on ``PORT`` with events,
commands and interactivity at ``POST /slack/events`` and ``GET /healthz`` (``transport``).
``SlackAdapter`` owns what lives as long as the connection: the bolt app and its Web API
client, the pooled HTTP session, the event listeners (``listeners.EventListeners``), slash
commands (``commands.SlashCommands``), feedback clicks (``feedback.FeedbackActions``) and
message shortcuts (``shortcuts.MessageShortcuts``)
registered on it, and the bookkeeping they share (turns
in flight, outcomes). A request for another installation than the token's is dropped by
middleware before any listener sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.common.inflight import InFlight
from adapters.slack.approvals import ApprovalActions
from adapters.slack.assistant import AssistantThreads
from adapters.slack.commands import SlashCommands
from adapters.slack.connection import (
    Installation,
    TokenWatch,
    installation,
    safe_id,
    socket_handler,
    team_of,
)
from adapters.slack.feedback import FeedbackActions
from adapters.slack.home import HomeTab
from adapters.slack.listeners import EventListeners
from adapters.slack.reply import raise_if_undeliverable
from adapters.slack.shortcuts import MessageShortcuts
from adapters.slack.transport import bolt_app, web_app
from bot.settings import ConfigError, Settings

if TYPE_CHECKING:
    from bot.core import Core

log = logging.getLogger(__name__)


def require_slack_settings(settings: Settings) -> str:
    """The bot token, once the settings can run Slack; ``ConfigError`` in one line otherwise."""
    if settings.slack_bot_token is None:
        raise ConfigError("SLACK_BOT_TOKEN is not set")
    if settings.slack_app_token is None and settings.slack_signing_secret is None:
        raise ConfigError(
            "SLACK_SIGNING_SECRET is not set: HTTP mode needs it to verify Slack's requests "
            "(or set SLACK_APP_TOKEN for Socket Mode)"
        )
    return settings.slack_bot_token.get_secret_value()


def web_client(
    settings: Settings,
    session: aiohttp.ClientSession | None,
    watch: TokenWatch | None = None,
) -> AsyncWebClient:
    """The Web API client every call uses: ``SLACK_API_URL``, 429s retried after Retry-After,
    every answer seen by ``watch`` (a token revoked while running)."""
    if settings.slack_bot_token is None:
        raise ConfigError("SLACK_BOT_TOKEN is not set")
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=30,
        session=session,
        retry_handlers=[
            *([watch] if watch is not None else []),
            AsyncConnectionErrorRetryHandler(max_retry_count=1),
            AsyncRateLimitErrorRetryHandler(max_retry_count=4),
        ],
    )


class SlackAdapter:
    """Slack for ``python -m bot``: ``start``, ``close``, ``healthy``, ``port``."""

    def __init__(self, core: Core, settings: Settings) -> None:
        self._token = require_slack_settings(settings)
        self.core = core
        core.health["slack"] = lambda: self.healthy
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._socket: Any = None
        self._inflight = InFlight("slack")
        self.app: AsyncApp | None = None
        self.recovery: asyncio.Task[None] | None = None
        """Telling the users whose turns the previous run left unfinished (after start)."""
        self.failed = asyncio.Event()
        """Never set: bolt's HTTP server and Socket Mode client reconnect on their own."""
        self.healthy = False
        self.port: int | None = None
        """HTTP mode: the port bound (``PORT=0`` picks a free one)."""
        self._installation: Installation | None = None
        self.outcomes: Counter[str] = Counter()
        """How the messages and commands that reached the adapter ended, for logs and metrics:
        counted by ``Outcome`` value (``answered``, ``duplicate``, ``ignored``...), and as
        ``foreign`` a request for another installation, dropped before any event is made."""

    async def start(self) -> None:
        """Connect (Socket Mode) or listen (HTTP); returns once Slack can reach the bot."""
        # One pooled HTTP session for every Web API call and file download: slack_sdk would
        # otherwise open a new connection per call.
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        client = web_client(self.settings, self._session, TokenWatch(self._token_refused))
        self._installation = await installation(client)
        self.app = bolt_app(client, self._installation)
        self.app.middleware(self._only_this_installation)
        self._register(self.app, client)
        if self.settings.slack_app_token is not None:
            self._socket = socket_handler(
                self.app, self.settings.slack_app_token.get_secret_value()
            )
            await self._socket.connect_async()
            if self._socket.client.refused:
                raise ConfigError(
                    f"SLACK_APP_TOKEN was refused by Slack ({self._socket.client.refused})"
                )
            log.info("slack: connected over Socket Mode")
        else:
            # /healthz and /metrics here too, unless python -m bot serves them apart.
            ops = self.core if self.settings.ops_share_slack_listener else None
            server = web_app(self.app, self.settings.slack_signing_secret, ops)
            self._runner = web.AppRunner(server, access_log=None, handle_signals=False)
            await self._runner.setup()
            site = web.TCPSite(
                self._runner,
                self.settings.host,
                self.settings.port,
                backlog=1024,
                # Several workers (--workers) each bind PORT; the kernel spreads connections.
                reuse_port=self.settings.reuse_port,
            )
            await site.start()
            self.port = int(self._runner.addresses[0][1])
            log.info(
                "slack: listening on %s port %d (POST /slack/events)", self.settings.host, self.port
            )
        self.healthy = True
        self.recovery = asyncio.create_task(self.core.watch_orphans("slack", self._tell))

    def _register(self, app: AsyncApp, client: AsyncWebClient) -> None:
        """The listeners for events, slash commands, the Home tab and clicks on the feedback
        buttons, sharing this adapter's bookkeeping."""
        home = HomeTab(self.core, client, inflight=self._inflight)
        home.register(app)
        assistant = AssistantThreads(
            self.core, self.settings, client, home=home, inflight=self._inflight
        )
        assistant.register(app)
        listeners = EventListeners(
            self.core,
            self.settings,
            client,
            http=self._http,
            token=self._token,
            inflight=self._inflight,
            outcomes=self.outcomes,
            first_question=assistant.first_question,
        )
        listeners.register(app)
        commands = SlashCommands(
            self.core,
            client,
            answer=listeners.answer,
            inflight=self._inflight,
            outcomes=self.outcomes,
        )
        commands.register(app)
        FeedbackActions(self.core, client, inflight=self._inflight).register(app)
        ApprovalActions(self.core, client, inflight=self._inflight).register(app)
        MessageShortcuts(
            self.core, client, inflight=self._inflight, outcomes=self.outcomes
        ).register(app)

    def _token_refused(self, error: str) -> None:
        """Slack refused the bot token mid-run (revoked, app uninstalled): say it once, and
        /healthz turns 503 so whoever runs the bot sees it; every answer fails meanwhile."""
        if not self.healthy:
            return  # still starting: start() reports it as a configuration error
        log.error(
            "slack: SLACK_BOT_TOKEN was refused by Slack (%s); the bot cannot answer on Slack "
            "until it gets a valid token and is restarted",
            error,
        )
        self.healthy = False

    async def _tell(self, address: str, text: str) -> None:
        """Post ``text`` where an event's ``address`` (set in ``EventListeners.answer``) points."""
        where = json.loads(address)
        try:
            await self.client.chat_postMessage(
                channel=str(where["channel"]), thread_ts=where.get("thread_ts"), text=f"_{text}_"
            )
        except SlackApiError as exc:
            raise_if_undeliverable(exc)
            raise

    async def close(self, grace_s: float | None = None) -> None:
        """Stop taking events, let turns in flight finish (up to ``grace_s``, by default
        ``BOT_SHUTDOWN_GRACE``), tell the users of those cut short, then disconnect."""
        self.healthy = False
        self.core.stopping = True
        if grace_s is None:
            grace_s = self.settings.shutdown_grace_s
        if self.recovery is not None and not self.recovery.done():
            self.recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.recovery
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        if self._runner is not None:
            for site in list(self._runner.sites):
                await site.stop()  # no new requests; the listeners in flight keep running
        await self._inflight.drain(grace_s)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _only_this_installation(
        self, body: dict[str, Any], next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        """Bolt middleware: a request for another workspace (or another app) than the one this
        token is installed in is dropped with one log line, whatever the allowlists say. A
        request naming no workspace (``url_verification``) goes on."""
        ours = self._installation
        if ours is None or ours.accepts(body):
            await next()
            return None
        log.warning(
            "slack: dropped a request for another installation (team %s, app %s); this bot "
            "serves team %s",
            safe_id(team_of(body)),
            safe_id(body.get("api_app_id")),
            ours.team_id,
        )
        self.outcomes["foreign"] += 1
        return BoltResponse(status=200, body="")

    @property
    def client(self) -> AsyncWebClient:
        if self.app is None:
            raise RuntimeError("the Slack adapter is not started")
        return self.app.client

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the Slack adapter is not started")
        return self._session
