"""A fake Slack on 127.0.0.1: the Web API, file hosting, response URLs, event delivery, Socket Mode.

It speaks the wire formats the real clients use, so the adapter is tested through the REAL
``slack_bolt.AsyncApp`` and ``slack_sdk.AsyncWebClient`` pointed at it:

- the Web API methods the bot calls (``auth.test``, ``chat.postMessage``, ``chat.update``,
  ``chat.postEphemeral``, ``chat.startStream`` / ``appendStream`` / ``stopStream``,
  ``assistant.threads.setStatus`` / ``setSuggestedPrompts``, ``apps.connections.open``; any
  other is ``unknown_method``) at ``{base_url}/api/<method>`` (``api_url`` is the clients'
  ``base_url``): JSON, form-encoded and query parameters alike; ``Authorization: Bearer`` or a
  ``token`` field; HTTP 200 ``{"ok": false, "error": ...}`` for API errors and HTTP 429 +
  ``Retry-After`` for scripted rate limits (``rate_limit``) or a random fraction of calls
  (``rate_limit_randomly``), as Slack does;
- a message store per channel (threads, edits, native streams);
- private files at ``/files-pri/T...-F.../name`` that need the bot token (else a 200 HTML
  sign-in page, as Slack answers);
- ``response_url`` endpoints for slash commands (``new_response_url()``);
- signed Events API / slash command delivery to an app's request URL (``deliver_event``,
  ``deliver_command``) and Socket Mode (``apps.connections.open`` gives a ``ws://`` URL on this
  server; ``deliver_socket_event`` / ``deliver_socket_payload``).

Builders at module level (``app_mention``, ``message_event``, ``file_share_message``,
``bot_message``, ``message_changed``, ``app_home_opened``) make events shaped like Slack's.

Usage::

    async with FakeSlack() as fake:
        client = AsyncWebClient(base_url=fake.api_url, token=fake.bot_token)
        app = AsyncApp(token=fake.bot_token, signing_secret=SECRET, client=client)
        ...  # serve the app on 127.0.0.1, then:
        status, _ = await fake.deliver_event(url, SECRET, app_mention("<@U0BOT> hi"))
        reply = await fake.wait_for(lambda: fake.calls("chat.postMessage"))
        assert fake.thread("C123", event_ts)[-1]["text"] == "..."

Run it standalone for manual checks: ``python -m tests.fakes.slack --port 8098``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import html
import itertools
import json
import random
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import web

from tests.fakes._server import LoopbackServer

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "DEFAULT_APP_TOKEN",
    "DEFAULT_BOT_TOKEN",
    "DEFAULT_SIGNING_SECRET",
    "TEAM_ID",
    "USER_ID",
    "ApiCall",
    "Delivery",
    "FakeSlack",
    "FileDownload",
    "ResponsePost",
    "SocketAck",
    "StreamState",
    "Workspace",
    "app_home_opened",
    "app_mention",
    "bot_message",
    "event_envelope",
    "file_share_message",
    "im_message",
    "message_changed",
    "message_event",
    "new_ts",
    "rich_text_blocks",
    "sign",
    "signed_headers",
]

JSONDict = dict[str, Any]
T = TypeVar("T")

DEFAULT_BOT_TOKEN: Final = "xoxb-1-fake-bot-token"
DEFAULT_APP_TOKEN: Final = "xapp-1-A0APP-1-fake-app-token"
DEFAULT_SIGNING_SECRET: Final = "fake-signing-secret-0123456789abcdef"
TEAM_ID: Final = "T1"
BOT_USER_ID: Final = "U0BOT"
BOT_ID: Final = "B0BOT"
APP_ID: Final = "A0APP"
USER_ID: Final = "U123"
"""The default human in the builders."""
VERIFICATION_TOKEN: Final = "fake-verification-token"
SCOPES: Final = (
    "app_mentions:read,channels:history,chat:write,commands,files:read,groups:history,"
    "im:history,im:write,mpim:history,reactions:write,users:read,assistant:write"
)
REDACTED: Final = "[REDACTED]"

POST_TEXT_LIMIT: Final = 40_000
"""``chat.postMessage`` truncates ``text`` beyond this (it does not fail)."""
UPDATE_TEXT_LIMIT: Final = 4_000
"""``chat.update`` fails with ``msg_too_long`` a little above this in practice."""
STREAM_CHUNK_LIMIT: Final = 12_000
"""Markdown per ``chat.*Stream`` call (its ``markdown_text``)."""
STREAM_LIFETIME: Final = 300.0
"""Seconds a native stream accepts appends; later calls get ``message_not_in_streaming_state``."""
MAX_BLOCKS: Final = 50
RESPONSE_URL_USES: Final = 5

_APP_TOKEN_METHODS: Final = frozenset({"apps.connections.open"})
_JSON_PARAMS: Final = frozenset({"blocks", "attachments", "prompts", "loading_messages"})
_CHANNEL_ID: Final = re.compile(r"^[CDG][A-Z0-9]+$")
_ENTITY: Final = re.compile(
    r"<(@[UW][A-Z0-9]+(?:\|[^>]*)?|#[CG][A-Z0-9]+(?:\|[^>]*)?|![a-z]+(?:\^[^>|]*)?(?:\|[^>]*)?"
    r"|(?:https?|mailto):[^>|]+(?:\|[^>]*)?)>"
)
_SIGN_IN_PAGE: Final = (
    '<!DOCTYPE html>\n<html lang="en-US">\n<head>\n<meta charset="utf-8">\n'
    "<title>Slack</title>\n</head>\n<body>\n<h1>Sign in to Slack</h1>\n"
    '<form id="signin_form" action="/signin" method="post">'
    '<input type="email" name="email"><button type="submit">Sign In</button></form>\n'
    "</body>\n</html>\n"
)


# --------------------------------------------------------------------------- ids and time


class _TsClock:
    """Message timestamps like Slack's (``"1700000000.000100"``): wall time, strictly increasing."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            micros = max(int(time.time() * 1_000_000), self._last + 1)
            self._last = micros
        seconds, fraction = divmod(micros, 1_000_000)
        return f"{seconds}.{fraction:06d}"


_CLOCK: Final = _TsClock()
_COUNTER: Final = itertools.count(1)
_ALNUM: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def new_ts() -> str:
    """A fresh message timestamp, unique and increasing across the process."""
    return _CLOCK.next()


def _slack_id(prefix: str, length: int = 10) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


def _block_id() -> str:
    return "".join(
        secrets.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        for _ in range(5)
    )


def _event_id() -> str:
    return _slack_id("Ev", 10)


def _trigger_id() -> str:
    head = f"{next(_COUNTER)}{secrets.randbelow(10**9)}"
    return f"{head}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"


def _channel_type(channel: str) -> str:
    if channel.startswith("D"):
        return "im"
    if channel.startswith("G"):
        return "group"
    return "channel"


# --------------------------------------------------------------------------- payload builders


def rich_text_blocks(text: str) -> list[JSONDict]:
    """The ``rich_text`` block Slack attaches to a message typed in the client.

    Mentions (``<@U..>``), channel links (``<#C..|name>``), broadcasts (``<!here>``) and links
    (``<https://..|label>``) become their rich-text elements; the rest becomes text elements with
    Slack's ``&lt;``/``&gt;``/``&amp;`` escapes undone.
    """
    elements: list[JSONDict] = []
    pos = 0
    for match in _ENTITY.finditer(text):
        if match.start() > pos:
            elements.append({"type": "text", "text": html.unescape(text[pos : match.start()])})
        body = match.group(1)
        target, _, label = body.partition("|")
        if target.startswith("@"):
            elements.append({"type": "user", "user_id": target[1:]})
        elif target.startswith("#"):
            elements.append({"type": "channel", "channel_id": target[1:]})
        elif target.startswith("!"):
            elements.append({"type": "broadcast", "range": target[1:].split("^")[0]})
        else:
            link: JSONDict = {"type": "link", "url": target}
            if label:
                link["text"] = label
            elements.append(link)
        pos = match.end()
    if pos < len(text):
        elements.append({"type": "text", "text": html.unescape(text[pos:])})
    return [
        {
            "type": "rich_text",
            "block_id": _block_id(),
            "elements": [{"type": "rich_text_section", "elements": elements}],
        }
    ]


def _user_message(
    text: str,
    *,
    event_type: str,
    user: str,
    channel: str,
    ts: str | None,
    thread_ts: str | None,
    parent_user_id: str | None,
    team: str,
    channel_type: str | None,
) -> JSONDict:
    ts = ts or new_ts()
    event: JSONDict = {
        "user": user,
        "type": event_type,
        "ts": ts,
        "client_msg_id": str(uuid.uuid4()),
        "text": text,
        "team": team,
        "blocks": rich_text_blocks(text),
        "channel": channel,
        "event_ts": ts,
    }
    if thread_ts is not None and thread_ts != ts:
        event["thread_ts"] = thread_ts
        event["parent_user_id"] = parent_user_id or user
    if event_type == "message":
        event["channel_type"] = channel_type or _channel_type(channel)
    return event


def app_mention(
    text: str = f"<@{BOT_USER_ID}> hello",
    *,
    user: str = USER_ID,
    channel: str = "C123",
    ts: str | None = None,
    thread_ts: str | None = None,
    parent_user_id: str | None = None,
    team: str = TEAM_ID,
    files: Sequence[JSONDict] | None = None,
) -> JSONDict:
    """An ``app_mention`` event (``text`` is used verbatim: put ``<@BOT>`` in it).

    A mid-thread mention carries ``thread_ts`` (the root's ts) and ``parent_user_id``.
    """
    event = _user_message(
        text,
        event_type="app_mention",
        user=user,
        channel=channel,
        ts=ts,
        thread_ts=thread_ts,
        parent_user_id=parent_user_id,
        team=team,
        channel_type=None,
    )
    if files:
        event["files"] = [dict(f) for f in files]
        event["upload"] = False
        event["display_as_bot"] = False
    return event


def message_event(
    text: str = "hello",
    *,
    user: str = USER_ID,
    channel: str = "C123",
    ts: str | None = None,
    thread_ts: str | None = None,
    parent_user_id: str | None = None,
    team: str = TEAM_ID,
    channel_type: str | None = None,
) -> JSONDict:
    """A plain user ``message`` event; ``channel_type`` follows the ID (``D`` -> ``im``)."""
    return _user_message(
        text,
        event_type="message",
        user=user,
        channel=channel,
        ts=ts,
        thread_ts=thread_ts,
        parent_user_id=parent_user_id,
        team=team,
        channel_type=channel_type,
    )


def im_message(
    text: str = "hello",
    *,
    user: str = USER_ID,
    channel: str = "D123",
    ts: str | None = None,
    thread_ts: str | None = None,
    team: str = TEAM_ID,
) -> JSONDict:
    """A ``message`` event in the bot's DM (``channel_type: im``)."""
    return message_event(
        text, user=user, channel=channel, ts=ts, thread_ts=thread_ts, team=team, channel_type="im"
    )


def file_share_message(
    files: Sequence[JSONDict],
    text: str = "",
    *,
    user: str = USER_ID,
    channel: str = "C123",
    ts: str | None = None,
    thread_ts: str | None = None,
    team: str = TEAM_ID,
    channel_type: str | None = None,
) -> JSONDict:
    """A ``message`` with ``subtype: file_share`` and the file objects (from ``add_file``)."""
    event = message_event(
        text,
        user=user,
        channel=channel,
        ts=ts,
        thread_ts=thread_ts,
        team=team,
        channel_type=channel_type,
    )
    if not text:
        event.pop("blocks", None)  # a bare upload has no text, so no rich_text block
    event.update(
        {
            "subtype": "file_share",
            "files": [dict(f) for f in files],
            "upload": False,
            "display_as_bot": False,
        }
    )
    return event


def bot_message(
    text: str = "beep",
    *,
    bot_id: str = "B0OTHER",
    channel: str = "C123",
    user: str | None = None,
    app_id: str = "A0OTHER",
    username: str = "other-bot",
    ts: str | None = None,
    thread_ts: str | None = None,
    team: str = TEAM_ID,
) -> JSONDict:
    """A message posted by a bot.

    Without ``user``: the legacy shape (``subtype: bot_message``, ``username``, no ``user``), as
    webhooks and old integrations post. With ``user`` (a bot user): the shape of an app's
    ``chat.postMessage`` (no subtype, ``user``, ``bot_id``, ``bot_profile``), which is how our own
    replies come back as ``message`` events.
    """
    ts = ts or new_ts()
    event: JSONDict = {
        "type": "message",
        "text": text,
        "ts": ts,
        "bot_id": bot_id,
        "app_id": app_id,
        "channel": channel,
        "event_ts": ts,
        "channel_type": _channel_type(channel),
    }
    if user is None:
        event.update({"subtype": "bot_message", "username": username})
    else:
        event.update(
            {
                "user": user,
                "team": team,
                "blocks": rich_text_blocks(text),
                "bot_profile": _bot_profile(bot_id, app_id, username, team),
            }
        )
    if thread_ts is not None and thread_ts != ts:
        event["thread_ts"] = thread_ts
    return event


def message_changed(
    new_text: str,
    *,
    previous_text: str = "hello",
    message_ts: str | None = None,
    user: str = USER_ID,
    channel: str = "C123",
    thread_ts: str | None = None,
    team: str = TEAM_ID,
) -> JSONDict:
    """A ``message_changed`` event (hidden): the edited ``message`` and ``previous_message``."""
    message_ts = message_ts or new_ts()
    event_ts = new_ts()
    client_msg_id = str(uuid.uuid4())
    previous: JSONDict = {
        "client_msg_id": client_msg_id,
        "type": "message",
        "text": previous_text,
        "user": user,
        "ts": message_ts,
        "team": team,
        "blocks": rich_text_blocks(previous_text),
    }
    current: JSONDict = {
        **previous,
        "text": new_text,
        "blocks": rich_text_blocks(new_text),
        "edited": {"user": user, "ts": event_ts},
        "source_team": team,
        "user_team": team,
    }
    if thread_ts is not None:
        for m in (previous, current):
            m["thread_ts"] = thread_ts
            m["parent_user_id"] = user
    return {
        "type": "message",
        "subtype": "message_changed",
        "message": current,
        "previous_message": previous,
        "channel": channel,
        "hidden": True,
        "ts": event_ts,
        "event_ts": event_ts,
        "channel_type": _channel_type(channel),
    }


def app_home_opened(
    *,
    user: str = USER_ID,
    channel: str = "D123",
    tab: Literal["home", "messages"] = "messages",
    team: str = TEAM_ID,
    app_id: str = APP_ID,
) -> JSONDict:
    """``app_home_opened``: ``tab == "messages"`` when the user opens the bot's DM."""
    event: JSONDict = {
        "type": "app_home_opened",
        "user": user,
        "channel": channel,
        "tab": tab,
        "event_ts": new_ts(),
    }
    if tab == "home":
        event["view"] = {
            "id": _slack_id("V"),
            "team_id": team,
            "type": "home",
            "blocks": [],
            "private_metadata": "",
            "callback_id": "",
            "hash": secrets.token_hex(8),
            "app_id": app_id,
            "bot_id": BOT_ID,
        }
    return event


def event_envelope(
    event: Mapping[str, Any],
    *,
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
    bot_user_id: str = BOT_USER_ID,
    event_id: str | None = None,
    event_time: int | None = None,
) -> JSONDict:
    """The ``event_callback`` body Slack posts to the request URL (and wraps in Socket Mode)."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": api_app_id,
        "event": dict(event),
        "type": "event_callback",
        "event_id": event_id or _event_id(),
        "event_time": event_time if event_time is not None else int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + secrets.token_urlsafe(24),
    }


def sign(signing_secret: str, body: bytes | str, timestamp: int | str) -> str:
    """``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}``: the ``X-Slack-Signature`` value."""
    raw = body.encode() if isinstance(body, str) else body
    base = f"v0:{timestamp}:".encode() + raw
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    signing_secret: str, body: bytes | str, *, timestamp: int | None = None, content_type: str
) -> dict[str, str]:
    """The headers Slack sends with a request to an app's request URL."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": content_type,
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": sign(signing_secret, body, ts),
    }


def _bot_profile(bot_id: str, app_id: str, name: str, team: str) -> JSONDict:
    return {
        "id": bot_id,
        "app_id": app_id,
        "name": name,
        "icons": {"image_36": "", "image_48": "", "image_72": ""},
        "deleted": False,
        "updated": 1_700_000_000,
        "team_id": team,
    }


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Workspace:
    """One installation: a team and the bot token that acts in it."""

    team_id: str
    bot_token: str
    team: str = "Fake Team"
    domain: str = "fake-team"
    bot_user_id: str = BOT_USER_ID
    bot_id: str = BOT_ID
    bot_name: str = "fakebot"

    @property
    def url(self) -> str:
        return f"https://{self.domain}.slack.com/"


@dataclass(slots=True)
class ApiCall:
    """One Web API request as received (tokens redacted) and what the fake answered."""

    method: str
    http_method: str
    params: JSONDict
    """Query, form and JSON parameters merged; a ``token`` parameter shows as ``[REDACTED]``."""
    content_type: str
    auth: Literal["bot", "app", "invalid", "missing"]
    auth_header: bool
    """The token came in ``Authorization: Bearer`` (not as a ``token`` parameter)."""
    team_id: str | None
    status: int
    response: JSONDict
    at: float
    """``time.monotonic()`` when received."""

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        error = self.response.get("error")
        return error if isinstance(error, str) else None


@dataclass(frozen=True, slots=True)
class FileDownload:
    """One GET of a private file URL. The token itself is never kept."""

    path: str
    file_id: str | None
    authorization_present: bool
    authorized: bool
    status: int
    content_type: str
    at: float


@dataclass(frozen=True, slots=True)
class ResponsePost:
    """One POST to a ``response_url``."""

    response_id: str
    url: str
    body: JSONDict
    status: int
    at: float


@dataclass(frozen=True, slots=True)
class Delivery:
    """One request the fake sent to an app.

    ``kind`` is ``event``, ``command`` or ``url_verification``.
    """

    kind: str
    url: str
    payload: JSONDict
    headers: dict[str, str]
    status: int
    body: str
    at: float


@dataclass(frozen=True, slots=True)
class SocketAck:
    """An app's acknowledgement of a Socket Mode envelope (``payload`` may carry a response)."""

    envelope_id: str
    type: str
    message: JSONDict
    at: float


@dataclass(slots=True)
class StreamState:
    """One native stream (``chat.startStream`` .. ``chat.stopStream``) and what it accumulated."""

    channel: str
    ts: str
    thread_ts: str | None
    recipient_user_id: str | None
    recipient_team_id: str | None
    started_at: float
    state: Literal["in_progress", "completed", "expired"] = "in_progress"
    text: str = ""
    """All markdown appended so far (the ``markdown_text`` of every call)."""
    blocks: list[JSONDict] = field(default_factory=list)


@dataclass(slots=True)
class _Failure:
    status: int
    error: str
    retry_after: int | None


@dataclass(slots=True)
class _RandomLimit:
    fraction: float
    methods: frozenset[str] | None
    retry_after: int
    rng: random.Random

    def hits(self, method: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        return self.rng.random() < self.fraction


@dataclass(slots=True)
class _Socket:
    ws: web.WebSocketResponse
    opened_at: float


class _ApiError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


# --------------------------------------------------------------------------- the server


class FakeSlack(LoopbackServer):
    """A Slack look-alike on ``127.0.0.1`` (ephemeral port unless ``port`` is given).

    ``api_url`` (``http://127.0.0.1:PORT/api/``) is the clients' ``base_url``. Everything is
    recorded; nothing is shared between instances. All state lives on the event loop that runs
    the server: touch it from that loop only.
    """

    def __init__(
        self,
        *,
        bot_token: str = DEFAULT_BOT_TOKEN,
        app_token: str = DEFAULT_APP_TOKEN,
        team_id: str = TEAM_ID,
        team: str = "Fake Team",
        bot_user_id: str = BOT_USER_ID,
        bot_id: str = BOT_ID,
        app_id: str = APP_ID,
        port: int = 0,
        update_text_limit: int = UPDATE_TEXT_LIMIT,
    ) -> None:
        self.app_id = app_id
        self.update_text_limit = update_text_limit
        self.latency = 0.0
        """Seconds every Web API call waits before answering (mutable while running)."""

        self._workspaces: dict[str, Workspace] = {}
        self._tokens: dict[str, Workspace] = {}
        self._app_tokens: set[str] = {app_token}
        self.default_workspace = self.add_workspace(
            team_id, bot_token=bot_token, team=team, bot_user_id=bot_user_id, bot_id=bot_id
        )
        self.app_token = app_token

        self.api_calls: list[ApiCall] = []
        self.downloads: list[FileDownload] = []
        self.response_posts: list[ResponsePost] = []
        self.deliveries: list[Delivery] = []

        self._messages: dict[str, list[JSONDict]] = {}
        self._ephemeral: dict[str, list[JSONDict]] = {}
        self._streams: dict[tuple[str, str], StreamState] = {}
        self._status: dict[tuple[str, str], str] = {}
        self._status_history: dict[tuple[str, str], list[str]] = {}
        self._prompts: dict[tuple[str, str | None], JSONDict] = {}
        self._files: dict[str, tuple[JSONDict, bytes]] = {}
        self._response_urls: dict[str, int] = {}
        self._failures: dict[str, deque[_Failure]] = {}
        self._random_limit: _RandomLimit | None = None
        self.random_429s = 0
        """How many calls ``rate_limit_randomly`` answered with a 429."""
        self._tickets: set[str] = set()
        self._sockets: list[_Socket] = []
        self._pending_acks: dict[str, asyncio.Future[JSONDict]] = {}
        self._socket_turn = itertools.count()
        self._file_ids = itertools.count(1)

        super().__init__(port=port)
        self._session: aiohttp.ClientSession | None = None
        self._changed = asyncio.Event()

        self._methods: dict[str, Callable[[JSONDict, Workspace | None], JSONDict]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.startStream": self._chat_start_stream,
            "chat.appendStream": self._chat_append_stream,
            "chat.stopStream": self._chat_stop_stream,
            "assistant.threads.setStatus": self._assistant_set_status,
            "assistant.threads.setSuggestedPrompts": self._assistant_set_prompts,
            "apps.connections.open": self._apps_connections_open,
        }

    # ----------------------------------------------------------------- lifecycle

    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_get("/files-pri/{key}/{tail:.*}", self._handle_file)
        app.router.add_post("/response/{response_id}", self._handle_response_url)
        app.router.add_get("/link/", self._handle_socket)
        return app

    async def _on_started(self) -> None:
        self._changed = asyncio.Event()  # fresh: a restart may be on another loop
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def _on_stopping(self) -> None:
        for future in self._pending_acks.values():
            future.cancel()
        for sock in list(self._sockets):
            with contextlib.suppress(Exception):
                await sock.ws.close(code=aiohttp.WSCloseCode.GOING_AWAY)
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash): the host of files and response URLs."""
        return self.host_url

    @property
    def api_url(self) -> str:
        """``http://127.0.0.1:PORT/api/``: pass as ``AsyncWebClient(base_url=...)``."""
        return f"{self.base_url}/api/"

    @property
    def bot_token(self) -> str:
        return self.default_workspace.bot_token

    @property
    def team_id(self) -> str:
        return self.default_workspace.team_id

    @property
    def bot_user_id(self) -> str:
        return self.default_workspace.bot_user_id

    @property
    def bot_id(self) -> str:
        return self.default_workspace.bot_id

    # ----------------------------------------------------------------- set-up

    def add_workspace(
        self,
        team_id: str,
        *,
        bot_token: str,
        team: str | None = None,
        bot_user_id: str = BOT_USER_ID,
        bot_id: str = BOT_ID,
    ) -> Workspace:
        """Install the app in another team (multi-workspace): ``bot_token`` acts in ``team_id``."""
        name = team or f"Team {team_id}"
        workspace = Workspace(
            team_id=team_id,
            bot_token=bot_token,
            team=name,
            domain=re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "team",
            bot_user_id=bot_user_id,
            bot_id=bot_id,
        )
        self._workspaces[team_id] = workspace
        self._tokens[bot_token] = workspace
        return workspace

    def revoke_token(self, token: str) -> None:
        """Calls with this token now get ``invalid_auth``."""
        self._tokens.pop(token, None)
        self._app_tokens.discard(token)

    def add_message(self, channel: str, message: Mapping[str, Any]) -> JSONDict:
        """Put a message (e.g. a user's, from a builder) in ``channel`` as if it had been sent."""
        stored = {
            k: v for k, v in message.items() if k not in ("channel", "event_ts", "channel_type")
        }
        stored["type"] = "message"
        stored.setdefault("ts", new_ts())
        existing = self._find(channel, str(stored["ts"]))
        if existing is not None:
            return existing
        self._store(channel, stored)
        return stored

    def add_file(
        self,
        team: str,
        name: str,
        content: bytes | str,
        mimetype: str,
        *,
        user: str = USER_ID,
        title: str | None = None,
        filetype: str | None = None,
    ) -> JSONDict:
        """A private file in ``team``: the Slack file object, with URLs on this fake host."""
        data = content.encode() if isinstance(content, str) else content
        file_id = f"F{next(self._file_ids):08d}X"
        key = f"{team}-{file_id}"
        quoted = quote(name)
        created = int(time.time())
        ftype = filetype or _filetype(name, mimetype)
        file: JSONDict = {
            "id": file_id,
            "created": created,
            "timestamp": created,
            "name": name,
            "title": title or name,
            "mimetype": mimetype,
            "filetype": ftype,
            "pretty_type": ftype.upper(),
            "user": user,
            "user_team": team,
            "editable": mimetype.startswith("text/"),
            "size": len(data),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": False,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": f"{self.base_url}/files-pri/{key}/{quoted}",
            "url_private_download": f"{self.base_url}/files-pri/{key}/download/{quoted}",
            "permalink": f"{self._workspace(team).url}files/{user}/{file_id}/{quoted}",
            "permalink_public": f"https://slack-files.com/{key}-{secrets.token_hex(5)}",
            "file_access": "visible",
        }
        self._files[file_id] = (file, data)
        return dict(file)

    def new_response_url(self) -> str:
        """A fresh ``response_url`` on this fake (usable ``RESPONSE_URL_USES`` times)."""
        response_id = secrets.token_hex(12)
        self._response_urls[response_id] = 0
        return f"{self.base_url}/response/{response_id}"

    # ----------------------------------------------------------------- scripting

    def rate_limit(self, method: str, *, times: int = 1, retry_after: int = 1) -> None:
        """The next ``times`` calls of ``method`` (``"*"``: any) get HTTP 429 ``ratelimited``
        with ``Retry-After: retry_after`` (whole seconds, as Slack sends)."""
        self.fail_next(method, "ratelimited", times=times, status=429, retry_after=retry_after)

    def fail_next(
        self,
        method: str,
        error: str,
        *,
        times: int = 1,
        status: int = 200,
        retry_after: int | None = None,
    ) -> None:
        """The next ``times`` authorized calls of ``method`` (``"*"``: any) answer
        ``{"ok": false, "error": error}`` with HTTP ``status`` and nothing else happens."""
        queue = self._failures.setdefault(method, deque())
        queue.extend(_Failure(status, error, retry_after) for _ in range(times))

    def rate_limit_randomly(
        self,
        fraction: float,
        *,
        methods: Collection[str] | None = None,
        retry_after: int = 1,
        seed: int | None = None,
    ) -> None:
        """From now on, answer a random ``fraction`` of the authorized calls of ``methods``
        (``None``: any method) with HTTP 429 ``ratelimited`` and ``Retry-After: retry_after``,
        as Slack does under load; scripted failures (``fail_next``) still come first. For load
        tests: such calls are recorded with status 429 and counted in ``random_429s``.
        ``fraction`` 0 turns it off."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("fraction must be between 0 and 1")
        self._random_limit = (
            _RandomLimit(
                fraction,
                frozenset(methods) if methods is not None else None,
                retry_after,
                random.Random(seed),
            )
            if fraction
            else None
        )

    def expire_stream(self, channel: str, ts: str) -> None:
        """End a stream as Slack does after its lifetime: later calls get
        ``message_not_in_streaming_state``."""
        self.stream(channel, ts).state = "expired"

    # ----------------------------------------------------------------- inspection

    def calls(self, method: str | None = None) -> list[ApiCall]:
        """Recorded Web API calls, oldest first (of ``method`` only if given)."""
        return [c for c in self.api_calls if method is None or c.method == method]

    def last_call(self, method: str | None = None) -> ApiCall:
        found = self.calls(method)
        if not found:
            raise LookupError(f"no {method or 'API'} call recorded")
        return found[-1]

    def messages(self, channel: str) -> list[JSONDict]:
        """Messages in ``channel`` (top-level and replies) in posting order."""
        return list(self._messages.get(channel, ()))

    def thread(self, channel: str, thread_ts: str) -> list[JSONDict]:
        """The root (if known) and the replies of one thread, oldest first."""
        return [
            m
            for m in self._messages.get(channel, ())
            if m.get("ts") == thread_ts or m.get("thread_ts") == thread_ts
        ]

    def message(self, channel: str, ts: str) -> JSONDict:
        found = self._find(channel, ts)
        if found is None:
            raise LookupError(f"no message {ts} in {channel}")
        return found

    def bot_messages(self, channel: str) -> list[JSONDict]:
        """Messages the bot posted (or streamed) in ``channel``."""
        return [m for m in self._messages.get(channel, ()) if m.get("bot_id")]

    def ephemerals(self, channel: str) -> list[JSONDict]:
        return list(self._ephemeral.get(channel, ()))

    def stream(self, channel: str, ts: str) -> StreamState:
        try:
            return self._streams[(channel, ts)]
        except KeyError:
            raise LookupError(f"no stream {ts} in {channel}") from None

    def streams(self, channel: str | None = None) -> list[StreamState]:
        return [s for s in self._streams.values() if channel is None or s.channel == channel]

    def status(self, channel_id: str, thread_ts: str) -> str | None:
        """The assistant status shown in a thread now (``None``: unset, or cleared by a reply)."""
        return self._status.get((channel_id, thread_ts)) or None

    def status_history(self, channel_id: str, thread_ts: str) -> list[str]:
        """Every status set in a thread, ``""`` for explicit clears."""
        return list(self._status_history.get((channel_id, thread_ts), ()))

    def suggested_prompts(self, channel_id: str, thread_ts: str | None = None) -> JSONDict | None:
        return self._prompts.get((channel_id, thread_ts))

    def responses(self, url: str | None = None) -> list[ResponsePost]:
        """POSTs received on response URLs (one URL's if given)."""
        if url is None:
            return list(self.response_posts)
        response_id = url.rstrip("/").rsplit("/", 1)[-1]
        return [p for p in self.response_posts if p.response_id == response_id]

    # The waits below take a ``timeout`` (ASYNC109) on purpose: a hung fake must fail a test with
    # a message saying what was awaited, not hang it.
    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:  # noqa: ASYNC109
        """Wait until ``predicate()`` is truthy (checked after every change) and return it.

        Raises ``TimeoutError`` with the predicate's last value after ``timeout`` seconds.
        """
        result = predicate()
        try:
            async with asyncio.timeout(timeout):
                while not result:
                    self._changed.clear()
                    await self._changed.wait()
                    result = predicate()
        except TimeoutError:
            raise TimeoutError(f"condition not met within {timeout}s (last: {result!r})") from None
        return result

    async def wait_for_call(
        self,
        method: str,
        *,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> ApiCall:
        """The ``count``-th call of ``method`` once it has been answered."""
        await self.wait_for(lambda: len(self.calls(method)) >= count, timeout)
        return self.calls(method)[count - 1]

    # ----------------------------------------------------------------- delivery over HTTP

    async def deliver_event(
        self,
        url: str,
        signing_secret: str,
        event: Mapping[str, Any],
        *,
        event_id: str | None = None,
        team_id: str = TEAM_ID,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        timestamp: int | None = None,
    ) -> tuple[int, str]:
        """POST a signed ``event_callback`` to an app's request URL; ``(status, body)`` back.

        A retry (``retry_num``) adds ``X-Slack-Retry-Num`` and ``X-Slack-Retry-Reason``
        (default ``http_timeout``); pass the first delivery's ``event_id`` to make it a true
        retry. A user message in the event is also stored in ``messages(channel)``, as it
        exists in Slack by the time the event arrives. ``timestamp`` (unix seconds) signs with
        another time, e.g. one older than 5 minutes that bolt must reject.
        """
        payload = event_envelope(
            event,
            team_id=team_id,
            api_app_id=self.app_id,
            bot_user_id=self._workspace(team_id).bot_user_id,
            event_id=event_id,
        )
        self._absorb_event(event)
        body = json.dumps(payload, separators=(",", ":"))
        headers = signed_headers(
            signing_secret, body, timestamp=timestamp, content_type="application/json"
        )
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        return await self._deliver("event", url, payload, body, headers)

    async def deliver_command(
        self,
        url: str,
        signing_secret: str,
        command: str = "/ask",
        text: str = "",
        *,
        user_id: str = USER_ID,
        user_name: str = "alice",
        channel_id: str = "C123",
        channel_name: str = "general",
        team_id: str = TEAM_ID,
        timestamp: int | None = None,
    ) -> tuple[int, str]:
        """POST a signed, form-encoded slash command with a ``response_url`` on this fake.

        The payload sent is ``deliveries[-1].payload`` (its ``response_url`` for ``responses()``).
        """
        payload = self._command_payload(
            command,
            text,
            user_id=user_id,
            user_name=user_name,
            channel_id=channel_id,
            channel_name=channel_name,
            team_id=team_id,
        )
        body = urlencode(payload)
        headers = signed_headers(
            signing_secret,
            body,
            timestamp=timestamp,
            content_type="application/x-www-form-urlencoded",
        )
        return await self._deliver("command", url, payload, body, headers)

    async def _deliver(
        self, kind: str, url: str, payload: JSONDict, body: str, headers: dict[str, str]
    ) -> tuple[int, str]:
        if self._session is None:
            raise RuntimeError("FakeSlack is not running")
        async with self._session.post(url, data=body.encode(), headers=headers) as resp:
            text = await resp.text()
            status = resp.status
        self.deliveries.append(
            Delivery(kind, url, payload, dict(headers), status, text, time.monotonic())
        )
        self._changed.set()
        return status, text

    def _command_payload(
        self,
        command: str,
        text: str,
        *,
        user_id: str,
        user_name: str,
        channel_id: str,
        channel_name: str,
        team_id: str,
    ) -> dict[str, str]:
        workspace = self._workspace(team_id)
        return {
            "token": VERIFICATION_TOKEN,
            "team_id": team_id,
            "team_domain": workspace.domain,
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": self.new_response_url(),
            "trigger_id": _trigger_id(),
        }

    def _absorb_event(self, event: Mapping[str, Any]) -> None:
        channel = event.get("channel")
        if not isinstance(channel, str):
            return
        subtype = event.get("subtype")
        if event.get("type") in ("message", "app_mention") and subtype in (None, "file_share"):
            self.add_message(channel, event)
        elif subtype == "message_changed" and isinstance(event.get("message"), dict):
            changed = event["message"]
            existing = self._find(channel, str(changed.get("ts")))
            if existing is not None:
                existing.update(changed)

    # ----------------------------------------------------------------- delivery over Socket Mode

    async def wait_for_socket(self, count: int = 1, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until ``count`` Socket Mode connections are open (and greeted with ``hello``)."""
        await self.wait_for(lambda: len(self._sockets) >= count, timeout)

    async def deliver_socket_event(
        self,
        event: Mapping[str, Any],
        *,
        event_id: str | None = None,
        team_id: str = TEAM_ID,
        retry_attempt: int = 0,
        retry_reason: str = "",
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> SocketAck:
        """Send an ``events_api`` envelope to ONE open connection; wait for the app's ack."""
        payload = event_envelope(
            event,
            team_id=team_id,
            api_app_id=self.app_id,
            bot_user_id=self._workspace(team_id).bot_user_id,
            event_id=event_id,
        )
        self._absorb_event(event)
        envelope = {
            "envelope_id": str(uuid.uuid4()),
            "payload": payload,
            "type": "events_api",
            "accepts_response_payload": False,
            "retry_attempt": retry_attempt,
            "retry_reason": retry_reason,
        }
        return await self._send_envelope(envelope, timeout)

    async def deliver_socket_payload(
        self,
        payload: object,
        kind: Literal["interactive", "slash_commands", "events_api"] = "interactive",
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> SocketAck:
        """Send any ``payload`` (of any shape) in an envelope of ``kind``; wait for the ack."""
        envelope = {
            "envelope_id": str(uuid.uuid4()),
            "payload": payload,
            "type": kind,
            "accepts_response_payload": kind != "events_api",
        }
        return await self._send_envelope(envelope, timeout)

    async def _send_envelope(self, envelope: JSONDict, timeout: float) -> SocketAck:  # noqa: ASYNC109
        if not self._sockets:
            raise RuntimeError("no Socket Mode connection is open")
        sock = self._sockets[next(self._socket_turn) % len(self._sockets)]
        envelope_id = str(envelope["envelope_id"])
        future: asyncio.Future[JSONDict] = asyncio.get_running_loop().create_future()
        self._pending_acks[envelope_id] = future
        try:
            await sock.ws.send_json(envelope)
            async with asyncio.timeout(timeout):
                message = await future
        finally:
            self._pending_acks.pop(envelope_id, None)
        ack = SocketAck(envelope_id, str(envelope["type"]), message, time.monotonic())
        self._changed.set()
        return ack

    async def _handle_socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, timeout=1.0)  # short close handshake
        ticket = request.query.get("ticket", "")
        await ws.prepare(request)
        if ticket not in self._tickets:
            await ws.close(code=aiohttp.WSCloseCode.POLICY_VIOLATION, message=b"invalid ticket")
            return ws
        self._tickets.discard(ticket)  # a URL is good for one connection
        sock = _Socket(ws, time.monotonic())
        self._sockets.append(sock)
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": len(self._sockets),
                    "debug_info": {
                        "host": "fake-applink",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": self.app_id},
                }
            )
            self._changed.set()
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                with contextlib.suppress(ValueError):
                    data = json.loads(msg.data)
                    future = self._pending_acks.get(str(data.get("envelope_id")))
                    if future is not None and not future.done():
                        future.set_result(data)
        finally:
            self._sockets.remove(sock)
            self._changed.set()
        return ws

    # ----------------------------------------------------------------- HTTP handlers

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params, ctype = await _read_params(request)
        header = request.headers.get("Authorization", "")
        auth_header = header.lower().startswith("bearer ")
        param_token = params.pop("token", None)
        token = header[7:].strip() if auth_header else param_token
        recorded = dict(params)
        if param_token is not None:
            recorded["token"] = REDACTED

        status, body, headers = 200, {"ok": False, "error": "unknown_method"}, {}
        auth: Literal["bot", "app", "invalid", "missing"] = "missing"
        workspace: Workspace | None = None
        if isinstance(token, str) and token:
            if token in self._tokens:
                auth, workspace = "bot", self._tokens[token]
            elif token in self._app_tokens:
                auth = "app"
            else:
                auth = "invalid"
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        handler = self._methods.get(method)
        if handler is None:
            body["req_method"] = method
        elif auth == "missing":
            body = {"ok": False, "error": "not_authed"}
        elif auth == "invalid":
            body = {"ok": False, "error": "invalid_auth"}
        elif (auth == "app") != (method in _APP_TOKEN_METHODS):
            body = {"ok": False, "error": "not_allowed_token_type"}
        elif (failure := self._next_failure(method)) is not None:
            status, body = failure.status, {"ok": False, "error": failure.error}
            if failure.retry_after is not None:
                headers["Retry-After"] = str(failure.retry_after)
        else:
            try:
                body = {"ok": True, **handler(params, workspace)}
            except _ApiError as e:
                body = {"ok": False, "error": e.error, **e.extra}
        if workspace is not None:
            headers["X-OAuth-Scopes"] = SCOPES
            headers["X-Accepted-OAuth-Scopes"] = ""
        headers["X-Slack-Req-Id"] = secrets.token_hex(16)
        self.api_calls.append(
            ApiCall(
                method=method,
                http_method=request.method,
                params=recorded,
                content_type=ctype,
                auth=auth,
                auth_header=auth_header,
                team_id=workspace.team_id if workspace else None,
                status=status,
                response=body,
                at=time.monotonic(),
            )
        )
        self._changed.set()
        return web.json_response(body, status=status, headers=headers)

    def _next_failure(self, method: str) -> _Failure | None:
        for key in (method, "*"):
            queue = self._failures.get(key)
            if queue:
                return queue.popleft()
        limit = self._random_limit
        if limit is not None and limit.hits(method):
            self.random_429s += 1
            return _Failure(429, "ratelimited", limit.retry_after)
        return None

    async def _handle_file(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        team, _, file_id = key.partition("-")
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        workspace = self._tokens.get(token)
        entry = self._files.get(file_id)
        authorized = workspace is not None and workspace.team_id == team
        if not authorized:
            # Slack shows its sign-in page (HTTP 200) to anyone without a valid token for the team.
            response = web.Response(text=_SIGN_IN_PAGE, content_type="text/html", charset="utf-8")
        elif entry is None or entry[0]["user_team"] != team:
            response = web.Response(status=404, text="Not Found", content_type="text/html")
        else:
            file, data = entry
            response = web.Response(body=data, content_type=file["mimetype"])
            if request.match_info["tail"].startswith("download/"):
                response.headers["Content-Disposition"] = f'attachment; filename="{file["name"]}"'
        self.downloads.append(
            FileDownload(
                path=request.path,
                file_id=file_id or None,
                authorization_present="Authorization" in request.headers,
                authorized=authorized,
                status=response.status,
                content_type=response.content_type,
                at=time.monotonic(),
            )
        )
        self._changed.set()
        return response

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        response_id = request.match_info["response_id"]
        try:
            body = await request.json()
        except ValueError:
            body = None
        uses = self._response_urls.get(response_id)
        if uses is None:
            status, text = 404, "expired_url"
        elif uses >= RESPONSE_URL_USES:
            status, text = 404, "used_url"
        elif not isinstance(body, dict):
            status, text = 400, "invalid_payload"
        else:
            self._response_urls[response_id] = uses + 1
            status, text = 200, "ok"
        self.response_posts.append(
            ResponsePost(
                response_id=response_id,
                url=str(request.url),
                body=body if isinstance(body, dict) else {},
                status=status,
                at=time.monotonic(),
            )
        )
        self._changed.set()
        if status == 200:
            return web.json_response({"ok": True})
        return web.Response(status=status, text=text)

    # ----------------------------------------------------------------- Web API methods

    def _auth_test(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        ws = _bot(workspace)
        return {
            "url": ws.url,
            "team": ws.team,
            "user": ws.bot_name,
            "team_id": ws.team_id,
            "user_id": ws.bot_user_id,
            "bot_id": ws.bot_id,
            # Bot tokens: the app the token belongs to (see the Web API's AuthTestResponse).
            "app_id": self.app_id,
            "app_name": ws.bot_name,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        ws = _bot(workspace)
        channel = self._channel_param(params, "channel")
        text = _str(params.get("text"))
        markdown = _str(params.get("markdown_text"))
        blocks = _blocks(params)
        if not (text or markdown or blocks or params.get("attachments")):
            raise _ApiError("no_text")
        thread_ts = _str(params.get("thread_ts")) or None
        message = self._bot_message(ws, text=(text or markdown)[:POST_TEXT_LIMIT], blocks=blocks)
        if markdown and not blocks:
            message["blocks"] = [{"type": "markdown", "text": markdown}]
        self._post(channel, message, thread_ts)
        return {"channel": channel, "ts": message["ts"], "message": _public(message)}

    def _chat_update(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        ws = _bot(workspace)
        channel = self._channel_param(params, "channel")
        ts = _required(params, "ts")
        message = self._find(channel, ts)
        if message is None:
            raise _ApiError("message_not_found")
        if message.get("bot_id") != ws.bot_id:
            raise _ApiError("cant_update_message")
        text = _str(params.get("text"))
        markdown = _str(params.get("markdown_text"))
        if len(text) > self.update_text_limit or len(markdown) > self.update_text_limit:
            raise _ApiError("msg_too_long")
        blocks = _blocks(params)
        if text or markdown:
            message["text"] = text or markdown
        if blocks:
            message["blocks"] = blocks
        elif markdown:
            message["blocks"] = [{"type": "markdown", "text": markdown}]
        elif text:
            message["blocks"] = rich_text_blocks(text)
        message["edited"] = {"user": ws.bot_user_id, "ts": new_ts()}
        return {"channel": channel, "ts": ts, "text": message["text"], "message": _public(message)}

    def _chat_post_ephemeral(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        ws = _bot(workspace)
        channel = self._channel_param(params, "channel")
        user = _required(params, "user")
        text = _str(params.get("text")) or _str(params.get("markdown_text"))
        blocks = _blocks(params)
        if not (text or blocks or params.get("attachments")):
            raise _ApiError("no_text")
        message = self._bot_message(ws, text=text, blocks=blocks)
        message["user_to"] = user  # the fake's note of who sees it
        if thread_ts := _str(params.get("thread_ts")):
            message["thread_ts"] = thread_ts
        self._ephemeral.setdefault(channel, []).append(message)
        return {"message_ts": message["ts"]}

    def _chat_start_stream(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        ws = _bot(workspace)
        channel = self._channel_param(params, "channel")
        thread_ts = _required(params, "thread_ts")  # streamed messages are always thread replies
        recipient_user = _str(params.get("recipient_user_id")) or None
        recipient_team = _str(params.get("recipient_team_id")) or None
        if _channel_type(channel) != "im":
            if recipient_user is None:
                raise _ApiError("missing_recipient_user_id")
            if recipient_team is None:
                raise _ApiError("missing_recipient_team_id")
        stream = StreamState(
            channel=channel,
            ts="",
            thread_ts=thread_ts,
            recipient_user_id=recipient_user,
            recipient_team_id=recipient_team,
            started_at=time.monotonic(),
        )
        self._absorb_markdown(stream, params)
        message = self._bot_message(ws, text=stream.text, blocks=None)
        stream.ts = message["ts"]
        self._streams[(channel, stream.ts)] = stream
        self._post(channel, message, thread_ts)
        return {"channel": channel, "ts": stream.ts}

    def _chat_append_stream(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        stream, message = self._live_stream(params)
        if not params.get("markdown_text"):
            raise _ApiError("no_text")
        self._absorb_markdown(stream, params)
        message["text"] = stream.text
        return {"channel": stream.channel, "ts": stream.ts}

    def _chat_stop_stream(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        stream, message = self._live_stream(params)
        self._absorb_markdown(stream, params)
        blocks = _blocks(params)
        if blocks:
            stream.blocks.extend(blocks)
            message["blocks"] = blocks
        message["text"] = stream.text
        stream.state = "completed"
        return {"channel": stream.channel, "ts": stream.ts, "message": _public(message)}

    def _assistant_set_status(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        channel = self._channel_param(params, "channel_id")
        thread_ts = _required(params, "thread_ts")
        if "status" not in params:
            raise _missing("status")
        status = _str(params.get("status"))
        self._status[(channel, thread_ts)] = status
        self._status_history.setdefault((channel, thread_ts), []).append(status)
        return {}

    def _assistant_set_prompts(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        channel = self._channel_param(params, "channel_id")
        prompts = params.get("prompts")
        if not isinstance(prompts, list) or not prompts:
            raise _missing("prompts")
        if any(
            not isinstance(p, dict) or not p.get("title") or not p.get("message") for p in prompts
        ):
            raise _ApiError("invalid_arguments")
        thread_ts = _str(params.get("thread_ts")) or None
        self._prompts[(channel, thread_ts)] = {"title": params.get("title"), "prompts": prompts}
        return {}

    def _apps_connections_open(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        ticket = str(uuid.uuid4())
        self._tickets.add(ticket)
        return {"url": f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"}

    # ----------------------------------------------------------------- store helpers

    def _workspace(self, team_id: str) -> Workspace:
        return self._workspaces.get(team_id, self.default_workspace)

    def _channel_param(self, params: JSONDict, name: str) -> str:
        channel = _str(params.get(name))
        if not channel:
            if name == "channel":
                raise _ApiError("channel_not_found")
            raise _missing(name)
        if not _CHANNEL_ID.match(channel):
            raise _ApiError("channel_not_found")
        return channel

    def _find(self, channel: str, ts: str) -> JSONDict | None:
        for message in self._messages.get(channel, ()):
            if message.get("ts") == ts:
                return message
        return None

    def _bot_message(self, ws: Workspace, *, text: str, blocks: list[JSONDict] | None) -> JSONDict:
        return {
            "user": ws.bot_user_id,
            "type": "message",
            "ts": new_ts(),
            "bot_id": ws.bot_id,
            "app_id": self.app_id,
            "text": text,
            "team": ws.team_id,
            "bot_profile": _bot_profile(ws.bot_id, self.app_id, ws.bot_name, ws.team_id),
            "blocks": blocks if blocks else rich_text_blocks(text),
        }

    def _post(self, channel: str, message: JSONDict, thread_ts: str | None) -> None:
        if thread_ts:
            message["thread_ts"] = thread_ts
            root = self._find(channel, thread_ts)
            if root is not None:
                message["parent_user_id"] = root.get("user")
                root["thread_ts"] = thread_ts
                root["reply_count"] = int(root.get("reply_count", 0)) + 1
                users = root.setdefault("reply_users", [])
                if message["user"] not in users:
                    users.append(message["user"])
                root["reply_users_count"] = len(users)
                root["latest_reply"] = message["ts"]
            # Slack clears the assistant status when the app replies in the thread.
            self._status.pop((channel, thread_ts), None)
        self._store(channel, message)

    def _store(self, channel: str, message: JSONDict) -> None:
        self._messages.setdefault(channel, []).append(message)

    def _live_stream(self, params: JSONDict) -> tuple[StreamState, JSONDict]:
        channel = self._channel_param(params, "channel")
        ts = _required(params, "ts")
        stream = self._streams.get((channel, ts))
        message = self._find(channel, ts)
        if stream is None or message is None:
            raise _ApiError("message_not_found")
        if stream.state == "in_progress" and (
            time.monotonic() - stream.started_at > STREAM_LIFETIME
        ):
            stream.state = "expired"
        if stream.state != "in_progress":
            raise _ApiError("message_not_in_streaming_state")
        return stream, message

    def _absorb_markdown(self, stream: StreamState, params: JSONDict) -> None:
        """Append the call's ``markdown_text``; a rejected call changes nothing. ``chunks``
        (task and plan updates, the SDK's ``chat_stream`` helper) are not emulated: refused."""
        if params.get("chunks") is not None:
            raise _ApiError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] chunks are not emulated by this fake"]},
            )
        markdown = params.get("markdown_text")
        if markdown is None:
            return
        if not isinstance(markdown, str):
            raise _ApiError("invalid_arguments")
        if len(markdown) > STREAM_CHUNK_LIMIT:
            raise _ApiError("msg_too_long")
        stream.text += markdown


# --------------------------------------------------------------------------- helpers


async def _read_params(request: web.Request) -> tuple[JSONDict, str]:
    """Query string, then the body (JSON object or form) on top: how Slack reads arguments."""
    params: JSONDict = dict(request.query)
    ctype = request.content_type if request.can_read_body else ""
    if request.can_read_body:
        if ctype == "application/json":
            try:
                body = await request.json()
            except ValueError:
                body = None
            if isinstance(body, dict):
                params.update(body)
        elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, str):
                    params[key] = value
                elif isinstance(value, web.FileField):
                    params[key] = f"<file {value.filename}>"
    for key in _JSON_PARAMS & params.keys():
        value = params[key]
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
    return params, ctype


def _bot(workspace: Workspace | None) -> Workspace:
    if workspace is None:
        raise _ApiError("not_allowed_token_type")
    return workspace


def _str(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _missing(name: str) -> _ApiError:
    return _ApiError(
        "invalid_arguments",
        response_metadata={"messages": [f"[ERROR] missing required field: {name}"]},
    )


def _required(params: JSONDict, name: str) -> str:
    value = _str(params.get(name))
    if not value:
        raise _missing(name)
    return value


def _blocks(params: JSONDict) -> list[JSONDict]:
    blocks = params.get("blocks")
    if blocks is None or blocks == "":
        return []
    if not isinstance(blocks, list) or not all(
        isinstance(b, dict) and b.get("type") for b in blocks
    ):
        raise _ApiError("invalid_blocks")
    if len(blocks) > MAX_BLOCKS:
        raise _ApiError("invalid_blocks")
    return blocks


def _public(message: JSONDict) -> JSONDict:
    """A message as the API returns it (without the fake's own bookkeeping keys)."""
    return {k: v for k, v in message.items() if k != "user_to"}


def _filetype(name: str, mimetype: str) -> str:
    _, dot, ext = name.rpartition(".")
    if dot and ext:
        return ext.lower()
    return mimetype.rpartition("/")[2] or "binary"


# --------------------------------------------------------------------------- standalone


async def _serve(port: int) -> None:
    async with FakeSlack(port=port) as fake:
        print(
            f"fake Slack API at {fake.api_url} (bot token {fake.bot_token!r}, "
            f"app token {fake.app_token!r}); Ctrl-C to stop",
            flush=True,
        )
        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the fake Slack on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8098)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port))


if __name__ == "__main__":
    main()
