"""The Slack adapter: a slack_bolt ``AsyncApp`` whose listeners hand normalized events to the core.

Transports: Socket Mode when ``SLACK_APP_TOKEN`` is set, else HTTP on ``PORT`` with events,
commands and interactivity at ``POST /slack/events`` (signatures checked by bolt) and
``GET /healthz``. Bolt acks every event before its listener runs, so a slow model never makes
Slack retry; the retries that come anyway (and the ``message`` twin of every ``app_mention``)
are claimed once in the store by the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.internals import parse_body
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from adapters.common.inflight import InFlight
from adapters.slack.connection import (
    Installation,
    TokenWatch,
    installation,
    safe_id,
    socket_handler,
    team_of,
)
from adapters.slack.files import slack_attachments
from adapters.slack.payloads import well_formed
from adapters.slack.reply import (
    NativeStreaming,
    SlackReply,
    raise_if_undeliverable,
    slack_error,
)
from adapters.slack.translate import (
    channel_key,
    command_event,
    conversation_key,
    defuse_mentions,
    route_message,
)
from bot.commands import commands_for
from bot.events import ConversationKey, Event
from bot.ops import add_ops_routes
from bot.settings import ConfigError, Settings

if TYPE_CHECKING:
    from bot.core import Core, TurnResult

log = logging.getLogger(__name__)

COMMANDS = tuple(f"/{c.name}" for c in commands_for("slack"))
"""Slack's slash commands, from the one registry (the manifest is tested against it)."""
GREETING = (
    "Hi! I'm your team's assistant. Ask me anything here, or mention me in a channel and I'll "
    "answer in the thread. I can check the weather and the time anywhere, and read the text "
    "files you send me. Type `/help` for more."
)
SUGGESTED_PROMPTS = [
    {"title": "Weather", "message": "What's the weather in Lisbon this weekend?"},
    {"title": "Time zones", "message": "What time is it in Tokyo and in New York?"},
    {"title": "Explain", "message": "Explain how HTTP caching works, briefly."},
]
ASK_USAGE = "Ask a question after the command, e.g. `/ask what's the weather in Oslo?`"
NOT_IN_CHANNEL = (
    "I can't post in this channel yet. Invite me first (`/invite @me`), or ask me in a DM."
)
ASK_POST_FAILURES = {
    "not_in_channel": NOT_IN_CHANNEL,
    "channel_not_found": NOT_IN_CHANNEL,
    "is_archived": "This channel is archived, so I can't post your question in it.",
    "msg_too_long": "Your question is too long for me to post here. Please shorten it, "
    "or send it to me in a DM (a long text works best as a file).",
    "restricted_action": "This channel only lets some people post, and I'm not one of them. "
    "Ask me in a DM instead.",
    "ratelimited": "Slack is rate-limiting me in this channel right now. Please try again in "
    "a minute.",
}
"""What ``/ask`` tells its user when Slack refuses to post the question, by Slack's error."""


def ask_post_failure(error: str) -> str:
    return ASK_POST_FAILURES.get(
        error,
        f"I couldn't post your question here (Slack said `{error}`). Please try again, "
        "or ask me in a DM.",
    )


Responder = Callable[..., Awaitable[Any]]


class CommandReply:
    """``Reply`` for a command's answer: collected, then sent once as an ephemeral response."""

    def __init__(self, respond: Responder) -> None:
        self._respond = respond
        self._parts: list[str] = []

    async def start(self) -> None:
        pass

    async def stream(self, delta: str) -> None:
        self._parts.append(delta)

    async def progress(self, status: str) -> None:
        pass

    async def notice(self, text: str) -> None:
        self._parts.append(f"_{text}_\n")

    async def finish(self) -> None:
        await self._respond(text="".join(self._parts), response_type="ephemeral")

    async def fail(self, message: str) -> None:
        await self._respond(text=message, response_type="ephemeral")

    async def refuse(self, message: str) -> None:
        await self.fail(message)  # a command's answer is ephemeral already


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
    """Owns the bolt app and its transport; translates Slack in, renders answers out."""

    def __init__(self, core: Core, settings: Settings) -> None:
        self._token = require_slack_settings(settings)
        self.core = core
        core.health["slack"] = lambda: self.healthy
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._native = NativeStreaming(settings.slack_native_streaming)
        self._runner: web.AppRunner | None = None
        self._socket: Any = None
        self._inflight = InFlight("slack")
        self.app: AsyncApp | None = None
        secret = settings.slack_signing_secret
        self._verifier = SignatureVerifier(secret.get_secret_value()) if secret else None
        self.recovery: asyncio.Task[int] | None = None
        """Telling the users whose turns the previous run left unfinished (after start)."""
        self.failed = asyncio.Event()
        """Never set: bolt's HTTP server and Socket Mode client reconnect on their own."""
        self.healthy = False
        self.port: int | None = None
        """HTTP mode: the port bound (``PORT=0`` picks a free one)."""
        self._installation: Installation | None = None
        self.outcomes: Counter[str] = Counter()
        """How the messages and commands that reached the adapter ended (answered, duplicate,
        ignored, failed, command), for logs and metrics."""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect (Socket Mode) or listen (HTTP); returns once Slack can reach the bot."""
        # One pooled HTTP session for every Web API call and file download: slack_sdk would
        # otherwise open a new connection per call.
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        client = web_client(self.settings, self._session, TokenWatch(self._token_refused))
        self.app = AsyncApp(
            client=client,
            # Signatures are checked once, on the raw bytes, by _handle_http before bolt sees
            # a request (Socket Mode needs none).
            signing_secret="",
            request_verification_enabled=False,
            logger=_bolt_logger(),
        )
        self._installation = await installation(client)
        self.app.middleware(self._only_this_installation)
        self._register(self.app)
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
            self._runner = web.AppRunner(self.web_app(), access_log=None, handle_signals=False)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.settings.host, self.settings.port, backlog=1024)
            await site.start()
            self.port = int(self._runner.addresses[0][1])
            log.info(
                "slack: listening on %s port %d (POST /slack/events)", self.settings.host, self.port
            )
        self.healthy = True
        self.recovery = asyncio.create_task(self.core.recover("slack", self._tell))

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
        """Post ``text`` where an event's ``address`` (set in ``_answer``) points."""
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

    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=2 * 1024 * 1024)
        app.router.add_post("/slack/events", self._handle_http)
        if self.settings.ops_share_slack_listener:  # else python -m bot serves them apart
            add_ops_routes(app, self.core)  # /healthz and /metrics
        return app

    async def _handle_http(self, request: web.Request) -> web.Response:
        """Slack's requests: the signature is checked on the raw bytes before anything parses
        them (bolt would parse first, and a malformed body from anyone was a 500), and a body
        that is not a well-formed Slack payload is a 400, not a traceback."""
        if self.app is None:
            return web.Response(status=503, text="starting")
        raw = await request.read()
        if self._verifier is not None and not _signed(self._verifier, raw, request.headers):
            log.info("slack: refused a request with a bad or stale signature")
            return web.Response(status=401, text="invalid signature")
        try:
            text = raw.decode("utf-8")
            payload = parse_body(text, request.content_type)
        except (UnicodeDecodeError, ValueError):
            payload = None
        if not well_formed(payload):
            log.warning("slack: refused a malformed request (%d bytes)", len(raw))
            return web.Response(status=400, text="malformed request")
        bolt_request = AsyncBoltRequest(
            body=text,
            query=request.query_string,
            headers=request.headers,  # type: ignore[arg-type]
        )
        response = await self.app.async_dispatch(bolt_request)
        return await to_aiohttp_response(response)

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

    # ------------------------------------------------------------------ listeners

    def _register(self, app: AsyncApp) -> None:
        app.event("app_mention")(self._on_message)
        app.event("message")(self._on_message)
        app.event("app_home_opened")(self._on_home_opened)
        app.event("assistant_thread_started")(self._on_assistant_thread_started)
        app.event("assistant_thread_context_changed")(self._ignore)
        for name in COMMANDS:
            app.command(name)(self._on_command)

    async def _ignore(self) -> None:
        pass

    async def _on_message(
        self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        with self._inflight.track():
            await self._message(body, event, context)

    async def _message(
        self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        incoming = route_message(
            body,
            event,
            bot_user_id=str(context.bot_user_id or ""),
        )
        if incoming is None:
            self.outcomes["ignored"] += 1
            return
        if not incoming.addressed or (
            incoming.needs_membership
            and (
                await self._mention_required(incoming.event)
                or not await self.core.conversations.bot_takes_part(incoming.event.conversation)
            )
        ):
            await self.core.observe(incoming.event)
            self.outcomes["ignored"] += 1
            return
        normalized = incoming.event
        if incoming.files:
            attachments = slack_attachments(
                incoming.files,
                http=self._http(),
                token=self._token,
                hosts=self.settings.slack_token_hosts,
                max_bytes=int(self.settings.max_file_mb * 1024 * 1024),
            )
            normalized = dataclasses.replace(normalized, attachments=tuple(attachments))
        await self._answer(normalized, thread_ts=normalized.conversation.parts[2])

    async def _mention_required(self, event: Event) -> bool:
        """Do thread follow-ups need a mention here? ``/settings mention``, else
        ``SLACK_REQUIRE_MENTION``."""
        rule = await self.core.conversations.mention_required(event.channel)
        return self.settings.slack_require_mention if rule is None else rule

    async def _answer(self, event: Event, *, thread_ts: str, admitted: bool = False) -> TurnResult:
        channel = event.channel.parts[1]
        event = dataclasses.replace(
            event, address=json.dumps({"channel": channel, "thread_ts": thread_ts})
        )
        reply = SlackReply(
            self.client,
            channel=channel,
            thread_ts=thread_ts,
            user=event.author.id,
            team=event.workspace or event.channel.parts[0],
            native=self._native,
            interval_s=self.settings.slack_stream_interval_s,
        )
        result = await self.core.handle(event, reply, admitted=admitted)
        self.outcomes[result.outcome] += 1
        return result

    async def _on_home_opened(self, event: dict[str, Any], context: AsyncBoltContext) -> None:
        if event.get("tab") != "messages":
            return
        user, channel = str(event.get("user") or ""), str(event.get("channel") or "")
        if not user or not channel:
            return
        probe = command_event({"team_id": context.team_id, "channel_id": channel, "user_id": user})
        if not self.core.allows(probe):
            return  # no greeting inviting questions that the allowlists would refuse
        key = f"slack:greeted:{context.team_id}:{user}"
        if await self.core.conversations.recall(key):
            return  # greet once, not every time the DM is opened
        await self.core.conversations.remember(key, "1")
        try:
            await self.client.chat_postMessage(channel=channel, markdown_text=GREETING)
            await self.client.assistant_threads_setSuggestedPrompts(
                channel_id=channel, title="Try asking", prompts=SUGGESTED_PROMPTS
            )
        except SlackApiError as exc:
            log.info("could not greet in a DM: %s", slack_error(exc))

    async def _on_assistant_thread_started(self, event: dict[str, Any]) -> None:
        thread = event.get("assistant_thread") or {}
        channel, thread_ts = thread.get("channel_id"), thread.get("thread_ts")
        if not (isinstance(channel, str) and isinstance(thread_ts, str)):
            return
        try:
            await self.client.assistant_threads_setSuggestedPrompts(
                channel_id=channel,
                thread_ts=thread_ts,
                title="Try asking",
                prompts=SUGGESTED_PROMPTS,
            )
        except SlackApiError as exc:
            log.info("could not set suggested prompts: %s", slack_error(exc))

    async def _on_command(
        self, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        with self._inflight.track():
            await self._command(command, respond)

    async def _command(self, command: dict[str, Any], respond: AsyncRespond) -> None:
        name = str(command.get("command") or "").lstrip("/").lower()
        try:
            if name == "ask":
                await self._ask(command, respond)
                return
            conversation: ConversationKey | None = None
            if name in ("reset", "files"):
                conversation = await self._latest_conversation(command)
            result = await self.core.handle(
                command_event(command, conversation=conversation), CommandReply(respond)
            )
            self.outcomes[result.outcome] += 1
        except Exception:
            log.exception("slash command failed", extra={"command": name})
            await respond(text="Sorry, that command failed. Please try again.")

    async def _latest_conversation(self, command: Mapping[str, Any]) -> ConversationKey | None:
        """A command cannot be typed in a thread: ``/reset`` means the user's latest one here."""
        team, channel = str(command.get("team_id")), str(command.get("channel_id"))
        return await self.core.conversations.latest_of(
            user=f"slack:{command.get('user_id')}", channel=channel_key(team, channel)
        )

    async def _ask(self, command: Mapping[str, Any], respond: AsyncRespond) -> None:
        question = str(command.get("text") or "").strip()
        if not question:
            await respond(text=ASK_USAGE, response_type="ephemeral")
            return
        team = str(command.get("team_id") or "")
        channel = str(command.get("channel_id") or "")
        user = str(command.get("user_id") or "")
        event = command_event(command)

        async def tell_privately(line: str) -> None:
            await respond(text=line, response_type="ephemeral")

        # The echo is public: access, rate limit and budget are checked before it is posted.
        refused = await self.core.admit(event, tell_privately)
        if refused is not None:
            self.outcomes[refused.outcome] += 1
            return
        try:
            posted = await self.client.chat_postMessage(
                channel=channel, text=f"<@{user}> asked: {defuse_mentions(question)}"
            )
        except SlackApiError as exc:
            error = slack_error(exc)
            log.info("/ask could not post in %s: %s", channel, error)
            await tell_privately(ask_post_failure(error))
            return
        root = str(posted["ts"])
        event = dataclasses.replace(event, conversation=conversation_key(team, channel, root))
        await self._answer(event, thread_ts=root, admitted=True)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the Slack adapter is not started")
        return self._session


def _signed(verifier: SignatureVerifier, raw: bytes, headers: Mapping[str, str]) -> bool:
    try:
        return verifier.is_valid_request(raw, headers)
    except (ValueError, TypeError):  # a timestamp header that is not a number
        return False


class _SameTokenNotice(logging.Filter):
    """bolt reads SLACK_BOT_TOKEN from the environment by itself and warns at every start that
    the client's token wins over it: it is the same token, so the warning is only noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


def _bolt_logger() -> logging.Logger:
    logger = logging.getLogger("slack_bolt")
    if not any(isinstance(f, _SameTokenNotice) for f in logger.filters):
        logger.addFilter(_SameTokenNotice())
    return logger
