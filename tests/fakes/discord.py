"""A fake Discord (REST API v10 + gateway) on 127.0.0.1, for driving the real discord.py client.

One aiohttp server answers three things:

* REST under ``/api/v10`` (``rest_base``): the calls the bot makes through discord.py (login,
  application info, command sync, sending, fetching and editing messages, typing, a thread from
  a message, DMs, interaction callbacks, webhook follow-ups and their edits); any other path is
  Discord's 404. Bot routes need ``Authorization: Bot <token>``; interaction and webhook
  routes carry their token in the path. Every response has Discord's rate-limit headers, limits
  are emulated per route and per top-level resource (channel, guild, webhook), and 429s and other
  errors can be scripted. Errors use Discord's JSON shape (``{"message", "code", "errors"?}``).
* The gateway websocket (``gateway_url``): HELLO, IDENTIFY -> READY + GUILD_CREATE, heartbeats,
  RESUME with replay of missed dispatches, sequence numbers, ``zlib-stream`` transport compression
  or plain JSON, as the client's URL asks; an opcode the bot never sends (presence, voice, member
  requests) closes the socket with 4001. ``zstd-stream`` is refused (HTTP 400, recorded in
  ``gateway_errors``): discord.py 2.7 asks for it only when ``zstandard`` (or Python 3.14's
  ``compression.zstd``) is importable, and neither is in this venv, so it asks for zlib-stream.
* A CDN look-alike (``cdn_base``) serving attachment bytes at
  ``/attachments/{channel_id}/{attachment_id}/{filename}`` for ``Attachment.read()``.

Hostile worlds, for tests of what a real Discord may send now and then: a guild whose
GUILD_CREATE is withheld (``unavailable_guilds``, then ``make_available``), a guild the client
never heard of (``add_guild`` after it connected), a webhook's message (``message_create(...,
webhook_id=...)``), an attachment that lies about its size (``AttachmentSpec(declared_size=...,
served_size=...)``, streamed, ``bytes_served`` counted), a malformed READY or RESUMED
(``mangle_next``) and any raw frame (``send_frame``).

Messages the bot creates or edits are stored per channel (``FakeMessage``: content, embeds,
allowed_mentions, message_reference, attachments, edit history) and dispatched back over the
gateway as MESSAGE_CREATE / MESSAGE_UPDATE / MESSAGE_DELETE, as Discord does (content length is
checked, embed limits are not: the bot sends none). The gateway honours
the intents sent in IDENTIFY: no guild MESSAGE_CREATE without
GUILD_MESSAGES, blank content in guild messages that do not mention the bot without
MESSAGE_CONTENT, only the bot's own member in GUILD_CREATE without GUILD_MEMBERS.

Usage with the real client::

    async with FakeDiscord() as fake:
        with point_discord_py_at(fake):  # Route.BASE and DEFAULT_GATEWAY, restored on exit
            client = discord.Client(intents=intents)
            task = asyncio.create_task(run(client, fake.token))  # async with client: start()
            ...  # wait for on_ready
            await fake.send_user_message(content=f"<@{fake.bot.id}> hi")  # -> on_message
            reply = await fake.wait_for_message(lambda m: m.reply_to is not None)
            assert reply.allowed_mentions == {"parse": []}  # AllowedMentions.none()
            fake.fail_next("PATCH /channels/{id}/messages/{id}", retry_after=0.5)
            await fake.drop_connection()  # the client RESUMEs; missed dispatches are replayed

The default world: bot ``FakeBot``, users ``alice`` (``fake.user``) and ``bob``; guild
``Fake Guild`` (``fake.guild``) with ``#general`` (``fake.channel``), ``#random`` and a public
thread ``existing thread`` under #general (``fake.thread``); a DM channel with alice
(``fake.dm_channel``). Pass ``bot=``, ``guilds=`` and ``users=`` for another world.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import mimetypes
import re
import secrets
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

from aiohttp import BodyPartReader, WSMsgType, web

from tests.fakes._server import LoopbackServer

__all__ = [
    "DEFAULT_PERMISSIONS",
    "DEFAULT_TOKEN",
    "INTENT_DIRECT_MESSAGES",
    "INTENT_GUILDS",
    "INTENT_GUILD_MEMBERS",
    "INTENT_GUILD_MESSAGES",
    "INTENT_MESSAGE_CONTENT",
    "AttachmentSpec",
    "CommandSync",
    "DispatchedEvent",
    "FakeAttachment",
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeInteraction",
    "FakeMessage",
    "FakeRole",
    "FakeUser",
    "GatewayConnection",
    "RecordedRequest",
    "UploadedFile",
    "new_snowflake",
    "normalize_route",
    "point_discord_py_at",
    "snowflake_time",
]

JSONDict = dict[str, Any]

DEFAULT_TOKEN: Final = "fake-discord-bot-token"
API_PREFIX: Final = "/api/v10"
GATEWAY_PATH: Final = "/gateway"
REDACTED: Final = "[REDACTED]"
DISCORD_EPOCH_MS: Final = 1_420_070_400_000
MAX_CONTENT: Final = 2000
HEARTBEAT_INTERVAL_MS: Final = 41_250
INTERACTION_TIMEOUT: Final = 3.0
"""Seconds after INTERACTION_CREATE within which the callback must arrive (10062 later)."""
DEFAULT_LIMIT: Final = 50
DEFAULT_PER_S: Final = 1.0
"""Every route allows ``DEFAULT_LIMIT`` requests per ``DEFAULT_PER_S`` seconds per top-level
resource unless ``set_route_limit`` says otherwise."""

# Gateway intents (bit values from the Discord docs).
INTENT_GUILDS: Final = 1 << 0
INTENT_GUILD_MEMBERS: Final = 1 << 1
INTENT_GUILD_MESSAGES: Final = 1 << 9
INTENT_DIRECT_MESSAGES: Final = 1 << 12
INTENT_MESSAGE_CONTENT: Final = 1 << 15

# Channel types.
TEXT: Final = 0
DM: Final = 1
PUBLIC_THREAD: Final = 11
PRIVATE_THREAD: Final = 12

# Message flags.
FLAG_EPHEMERAL: Final = 1 << 6
FLAG_LOADING: Final = 1 << 7

# Interaction callback types that create a message.
CB_MESSAGE: Final = 4
CB_DEFERRED_MESSAGE: Final = 5

# VIEW_CHANNEL, SEND_MESSAGES, EMBED_LINKS, ATTACH_FILES, READ_MESSAGE_HISTORY, ADD_REACTIONS,
# USE_APPLICATION_COMMANDS, CREATE_PUBLIC_THREADS, SEND_MESSAGES_IN_THREADS: what @everyone gets.
DEFAULT_PERMISSIONS: Final = (
    (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 6) | (1 << 31) | (1 << 35)
) | (1 << 38)
# GATEWAY_MESSAGE_CONTENT_LIMITED | APPLICATION_COMMAND_BADGE: an unverified bot with the intent.
DEFAULT_APPLICATION_FLAGS: Final = (1 << 19) | (1 << 23)

_SECRET_HEADERS: Final = frozenset({"authorization"})
_MENTION = re.compile(r"<@!?(\d+)>")
_PARAM = re.compile(r"\{[^}]*\}")
_last_snowflake = 0


def new_snowflake(at: float | None = None) -> int:
    """A Discord snowflake for ``at`` (default: now), strictly increasing within this process."""
    global _last_snowflake
    ms = int((time.time() if at is None else at) * 1000)
    value = max((ms - DISCORD_EPOCH_MS) << 22, _last_snowflake + 1)
    _last_snowflake = value
    return value


def snowflake_time(snowflake: int) -> datetime:
    return datetime.fromtimestamp(((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000, UTC)


def _iso(snowflake_or_time: int | float) -> str:
    if isinstance(snowflake_or_time, int):
        moment = snowflake_time(snowflake_or_time)
    else:
        moment = datetime.fromtimestamp(snowflake_or_time, UTC)
    return moment.isoformat(timespec="microseconds")


def normalize_route(route: str) -> str:
    """``"patch /api/v10/channels/{id}/messages/{mid}"`` -> ``"PATCH /channels/{}/messages/{}"``."""
    method, _, path = route.strip().partition(" ")
    path = path.strip().removeprefix(API_PREFIX)
    return f"{method.upper()} {_PARAM.sub('{}', path)}"


# --------------------------------------------------------------------------- the world


@dataclass(slots=True)
class FakeUser:
    id: int
    username: str
    global_name: str | None = None
    bot: bool = False

    def to_payload(self) -> JSONDict:
        payload: JSONDict = {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "avatar_decoration_data": None,
            "collectibles": None,
            "primary_guild": None,
            "public_flags": 0,
        }
        if self.bot:
            payload["bot"] = True
        return payload

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


@dataclass(slots=True)
class FakeChannel:
    """A guild text channel, a thread (``parent_id`` is its text channel) or a DM."""

    id: int
    type: int = TEXT
    name: str | None = None
    guild_id: int | None = None
    parent_id: int | None = None
    owner_id: int | None = None
    recipients: list[FakeUser] = field(default_factory=list)
    position: int = 0
    topic: str | None = None
    last_message_id: int | None = None
    message_count: int = 0
    auto_archive_duration: int = 1440

    @property
    def is_thread(self) -> bool:
        return self.type in (PUBLIC_THREAD, PRIVATE_THREAD)

    @property
    def is_dm(self) -> bool:
        return self.type == DM

    def to_payload(self, *, with_guild_id: bool = True) -> JSONDict:
        payload: JSONDict = {
            "id": str(self.id),
            "type": self.type,
            "last_message_id": _opt_str(self.last_message_id),
            "flags": 0,
        }
        if self.is_dm:
            payload["recipients"] = [u.to_payload() for u in self.recipients]
            return payload
        if with_guild_id or self.is_thread:
            payload["guild_id"] = _opt_str(self.guild_id)
        payload.update(name=self.name, parent_id=_opt_str(self.parent_id), rate_limit_per_user=0)
        if self.is_thread:
            payload.update(
                owner_id=_opt_str(self.owner_id),
                message_count=self.message_count,
                total_message_sent=self.message_count,
                member_count=1,
                thread_metadata={
                    "archived": False,
                    "auto_archive_duration": self.auto_archive_duration,
                    "archive_timestamp": _iso(self.id),
                    "locked": False,
                    "create_timestamp": _iso(self.id),
                },
            )
        else:
            payload.update(
                position=self.position, topic=self.topic, nsfw=False, permission_overwrites=[]
            )
        return payload


@dataclass(slots=True)
class FakeRole:
    id: int
    name: str
    permissions: int = DEFAULT_PERMISSIONS
    position: int = 0

    def to_payload(self) -> JSONDict:
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }


@dataclass(slots=True)
class FakeGuild:
    id: int
    name: str
    owner_id: int
    channels: list[FakeChannel] = field(default_factory=list)
    threads: list[FakeChannel] = field(default_factory=list)
    members: list[FakeUser] = field(default_factory=list)
    roles: list[FakeRole] = field(default_factory=list)
    member_roles: dict[int, list[int]] = field(default_factory=dict)
    """Role ids per member (user id), as the member object's ``roles`` lists them (never the
    ``@everyone`` role)."""

    @classmethod
    def create(
        cls,
        name: str,
        *,
        owner: FakeUser,
        members: Sequence[FakeUser],
        channel_names: Sequence[str] = ("general",),
        thread_names: Sequence[str] = (),
    ) -> FakeGuild:
        """A guild with text channels and public threads (under the first channel) and an
        ``@everyone`` role (id = guild id) with ``DEFAULT_PERMISSIONS``."""
        guild_id = new_snowflake()
        guild = cls(id=guild_id, name=name, owner_id=owner.id, members=list(members))
        guild.roles.append(FakeRole(id=guild_id, name="@everyone"))
        for position, channel_name in enumerate(channel_names):
            channel = FakeChannel(
                id=new_snowflake(), name=channel_name, guild_id=guild_id, position=position
            )
            guild.channels.append(channel)
        for thread_name in thread_names:
            thread = FakeChannel(
                id=new_snowflake(),
                type=PUBLIC_THREAD,
                name=thread_name,
                guild_id=guild_id,
                parent_id=guild.channels[0].id,
                owner_id=owner.id,
            )
            guild.threads.append(thread)
        return guild

    def member_payload(self, user: FakeUser, *, with_user: bool = True) -> JSONDict:
        payload: JSONDict = {
            "roles": [str(r) for r in self.member_roles.get(user.id, [])],
            "joined_at": _iso(self.id),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": None,
            "avatar": None,
            "banner": None,
            "communication_disabled_until": None,
        }
        if with_user:
            payload["user"] = user.to_payload()
        return payload

    def permissions(self) -> int:
        perms = 0
        for role in self.roles:
            perms |= role.permissions
        return perms


@dataclass(slots=True)
class FakeAttachment:
    id: int
    channel_id: int
    filename: str
    data: bytes = field(repr=False)
    content_type: str | None
    url: str
    description: str | None = None
    declared_size: int | None = None
    """The ``size`` the payload claims, when it lies (default: the real size)."""
    served_size: int | None = None
    """Bytes the CDN streams instead of ``data`` (zeros, made as they are sent, never held)."""
    bytes_served: int = 0
    """Bytes the CDN wrote for this attachment so far (a client that stops reading stops it)."""

    def to_payload(self) -> JSONDict:
        size = len(self.data) if self.declared_size is None else self.declared_size
        payload: JSONDict = {
            "id": str(self.id),
            "filename": self.filename,
            "size": size,
            "url": self.url,
            "proxy_url": self.url,
        }
        if self.content_type is not None:
            payload["content_type"] = self.content_type
        if self.description is not None:
            payload["description"] = self.description
        return payload


@dataclass(frozen=True, slots=True)
class AttachmentSpec:
    """An attachment on a user message built by ``message_create``."""

    filename: str
    data: bytes
    content_type: str | None = None
    description: str | None = None
    declared_size: int | None = None
    """A lie: the ``size`` the payload gives (the real one by default)."""
    served_size: int | None = None
    """The CDN streams this many bytes (zeros) instead of ``data``: a file far larger than it
    says, without the test holding it in memory."""


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file part of a multipart request (``files[n]``)."""

    name: str
    """The form field (``files[0]``)."""
    filename: str
    data: bytes = field(repr=False)
    content_type: str | None


@dataclass(slots=True)
class FakeMessage:
    """A message as the fake stores it. ``allowed_mentions`` and ``message_reference`` are what
    the client sent (Discord does not echo ``allowed_mentions``); ``edits`` are the PATCH bodies
    received, oldest first."""

    id: int
    channel_id: int
    guild_id: int | None
    author: FakeUser
    content: str = ""
    embeds: list[JSONDict] = field(default_factory=list)
    allowed_mentions: JSONDict | None = None
    message_reference: JSONDict | None = None
    attachments: list[FakeAttachment] = field(default_factory=list)
    mentions: list[FakeUser] = field(default_factory=list)
    mention_everyone: bool = False
    components: list[JSONDict] = field(default_factory=list)
    type: int = 0
    flags: int = 0
    tts: bool = False
    nonce: str | None = None
    webhook_id: int | None = None
    interaction_id: int | None = None
    thread_id: int | None = None
    edits: list[JSONDict] = field(default_factory=list)
    edited_at: float | None = None
    deleted: bool = False

    @property
    def reply_to(self) -> int | None:
        """The id of the message this one replies to, if any."""
        ref = self.message_reference
        if ref is None or ref.get("message_id") is None:
            return None
        return int(ref["message_id"])

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & FLAG_EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & FLAG_LOADING)


@dataclass(slots=True)
class FakeInteraction:
    """An interaction built by ``interaction_create`` and what the client did with it."""

    id: int
    token: str
    payload: JSONDict = field(repr=False)
    channel_id: int
    guild_id: int | None
    user: FakeUser
    created_at: float
    callbacks: list[JSONDict] = field(default_factory=list)
    response_type: int | None = None
    ephemeral: bool = False
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return self.response_type is not None


@dataclass(frozen=True, slots=True)
class CommandSync:
    """One bulk overwrite (``PUT``) of application commands; ``guild_id`` None means global."""

    guild_id: int | None
    commands: list[JSONDict]
    at: float


@dataclass(slots=True)
class RecordedRequest:
    """One HTTP request as received; ``headers`` has the token redacted (``Bot [REDACTED]``)."""

    method: str
    path: str
    route: str
    """The route template (``"POST /channels/{channel_id}/messages"``); ``""`` if unknown."""
    query: dict[str, str]
    headers: dict[str, str]
    received_at: float
    body: Any = None
    """The JSON body, or the parsed ``payload_json`` of a multipart body."""
    files: list[UploadedFile] = field(default_factory=list)
    status: int | None = None
    response: Any = None
    response_headers: dict[str, str] = field(default_factory=dict)
    authorized: bool = False
    """``Authorization: Bot <the fake's token>`` was sent."""

    def matches(self, route: str) -> bool:
        return bool(self.route) and normalize_route(self.route) == normalize_route(route)


@dataclass(slots=True)
class GatewayConnection:
    """One websocket connection to the fake gateway."""

    query: dict[str, str]
    compression: str | None
    opened_at: float
    identified: bool = False
    resumed: bool = False
    session_id: str | None = None
    closed_at: float | None = None
    close_code: int | None = None
    closed_by_server: bool = False


@dataclass(frozen=True, slots=True)
class DispatchedEvent:
    seq: int
    event: str
    data: JSONDict = field(repr=False)
    session_id: str


@dataclass(slots=True)
class _Session:
    id: str
    intents: int
    seq: int = 0
    history: deque[JSONDict] = field(default_factory=lambda: deque(maxlen=2000))
    conn: _Conn | None = None
    invalid: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(slots=True)
class _Conn:
    ws: web.WebSocketResponse
    request: web.Request
    record: GatewayConnection
    compressor: Any  # zlib.compressobj() or None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    session: _Session | None = None


@dataclass(slots=True)
class _Scripted:
    status: int
    body: JSONDict = field(default_factory=dict)
    retry_after: float | None = None


@dataclass(slots=True)
class _Limit:
    limit: int
    per_s: float


@dataclass(slots=True)
class _Window:
    started: float
    count: int = 0


class _ApiError(Exception):
    def __init__(self, status: int, code: int, message: str, errors: JSONDict | None = None):
        super().__init__(message)
        self.status = status
        self.body: JSONDict = {"message": message, "code": code}
        if errors is not None:
            self.body["errors"] = errors


def _form_error(path: str, code: str, message: str) -> _ApiError:
    """Discord's 50035 ``Invalid Form Body`` with the error nested at ``path`` (dotted)."""
    errors: JSONDict = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(path.split(".")):
        errors = {part: errors}
    return _ApiError(400, 50035, "Invalid Form Body", errors)


def _unknown(what: str, code: int) -> _ApiError:
    return _ApiError(404, code, f"Unknown {what}")


@dataclass(slots=True)
class _Ctx:
    request: web.Request
    record: RecordedRequest
    body: Any
    files: list[UploadedFile]

    def param(self, name: str) -> str:
        return self.request.match_info[name]

    def int_param(self, name: str) -> int:
        value = self.request.match_info[name]
        if not value.isdigit():
            raise _ApiError(404, 0, "404: Not Found")
        return int(value)

    def json_object(self) -> JSONDict:
        if self.body is None:
            return {}
        if not isinstance(self.body, dict):
            raise _ApiError(400, 50109, "The request body contains invalid JSON.")
        return self.body


_Handler = Callable[[_Ctx], Awaitable[web.StreamResponse]]


# --------------------------------------------------------------------------- the server


class FakeDiscord(LoopbackServer):
    """A Discord look-alike on ``127.0.0.1`` (ephemeral port unless ``port`` is given)."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        port: int = 0,
        bot: FakeUser | None = None,
        guilds: Sequence[FakeGuild] | None = None,
        users: Sequence[FakeUser] = (),
        application_flags: int = DEFAULT_APPLICATION_FLAGS,
    ) -> None:
        self.token = token
        """The bot token accepted on REST (``Bot <token>``) and in IDENTIFY / RESUME."""
        self.bot = bot or FakeUser(id=new_snowflake(), username="FakeBot", bot=True)
        self.application_id = self.bot.id
        """Like bots made since 2019: the application id is the bot user's id."""
        self.application_flags = application_flags

        self.users: dict[int, FakeUser] = {self.bot.id: self.bot}
        self.guilds: dict[int, FakeGuild] = {}
        self.channels: dict[int, FakeChannel] = {}
        if guilds is None:
            alice = FakeUser(id=new_snowflake(), username="alice", global_name="Alice")
            bob = FakeUser(id=new_snowflake(), username="bob", global_name="Bob")
            users = [alice, bob, *users]
            guilds = [
                FakeGuild.create(
                    "Fake Guild",
                    owner=alice,
                    members=[self.bot, alice, bob],
                    channel_names=("general", "random"),
                    thread_names=("existing thread",),
                )
            ]
        for user in users:
            self.users[user.id] = user
        for guild in guilds:
            self.add_guild(guild)
        humans = [u for u in self.users.values() if not u.bot]
        if not humans:
            raise ValueError("the world needs at least one non-bot user")
        self.user = humans[0]
        """The first non-bot user (``alice`` in the default world): the default author."""
        self.dm_channel = self.dm_channel_for(self.user)

        self.messages: dict[int, list[FakeMessage]] = {}
        """Every message per channel id, oldest first (deleted ones kept, flagged)."""
        self.commands: dict[int | None, list[JSONDict]] = {}
        """Registered application commands per guild id (``None``: global)."""
        self.command_syncs: list[CommandSync] = []
        self.interactions: dict[int, FakeInteraction] = {}
        self.requests: list[RecordedRequest] = []
        """Every REST request, oldest first; those to API paths this fake does not implement
        (answered 404) have ``route == ""``."""

        self.connections: list[GatewayConnection] = []
        self.identifies: list[JSONDict] = []
        self.resumes: list[JSONDict] = []
        self.gateway_errors: list[str] = []
        self.dispatched: list[DispatchedEvent] = []
        self.heartbeats = 0
        self.intents: int | None = None
        """The intents of the last IDENTIFY."""
        self.unavailable_guilds: set[int] = set()
        """Guilds READY lists (as unavailable, like all) whose GUILD_CREATE is not sent after
        it, as in a Discord outage or before a big bot's GUILD_CREATE burst reaches them;
        ``make_available`` sends it."""
        self._mangled: dict[str, deque[Any]] = {}

        super().__init__(port=port)
        self._attachments: dict[int, FakeAttachment] = {}
        self._messages_by_id: dict[int, FakeMessage] = {}
        self._sessions: dict[str, _Session] = {}
        self._session: _Session | None = None
        self._conns: list[_Conn] = []
        self._default_limit = _Limit(DEFAULT_LIMIT, DEFAULT_PER_S)
        self._limits: dict[str, _Limit] = {}
        self._windows: dict[tuple[str, str], _Window] = {}
        self._scripted: dict[str, deque[_Scripted]] = {}
        self._routes: dict[str, str] = {}  # normalized -> template
        self._changed = asyncio.Event()
        self._command_ids: dict[tuple[int | None, str], int] = {}

    # ----------------------------------------------------------------- lifecycle

    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._not_found])
        self._add_routes(app)
        return app

    async def _on_started(self) -> None:
        self._changed = asyncio.Event()

    async def _on_stopping(self) -> None:
        for conn in list(self._conns):
            conn.record.closed_by_server = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(code=1001, message=b"fake stopping"), 1.0)

    @property
    def cdn_base(self) -> str:
        """Attachment URLs live here (and ``discord.Asset.BASE``, so that nothing reaches
        Discord's CDN)."""
        return self.host_url

    @property
    def rest_base(self) -> str:
        """For ``discord.http.Route.BASE``."""
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """For ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` (as a ``yarl.URL``); also
        READY's ``resume_gateway_url``. The client adds ``?v=10&encoding=json&compress=...``."""
        return f"ws://127.0.0.1:{self.port}{GATEWAY_PATH}"

    # ----------------------------------------------------------------- the world

    @property
    def guild(self) -> FakeGuild:
        """The first guild."""
        return next(iter(self.guilds.values()))

    @property
    def channel(self) -> FakeChannel:
        """The first text channel of the first guild (``#general``)."""
        return self.guild.channels[0]

    @property
    def thread(self) -> FakeChannel:
        """The first thread of the first guild."""
        if not self.guild.threads:
            raise LookupError("the first guild has no thread")
        return self.guild.threads[0]

    def add_guild(self, guild: FakeGuild) -> FakeGuild:
        """Add a guild to the world (before the client connects, or dispatch GUILD_CREATE)."""
        self.guilds[guild.id] = guild
        for user in guild.members:
            self.users.setdefault(user.id, user)
        for channel in (*guild.channels, *guild.threads):
            channel.guild_id = guild.id
            self.channels[channel.id] = channel
        return guild

    def add_user(self, username: str, *, global_name: str | None = None) -> FakeUser:
        """A new user, member of every guild."""
        user = FakeUser(id=new_snowflake(), username=username, global_name=global_name)
        self.users[user.id] = user
        for guild in self.guilds.values():
            guild.members.append(user)
        return user

    def get_user_by_name(self, username: str) -> FakeUser:
        for user in self.users.values():
            if user.username == username:
                return user
        raise LookupError(f"no user named {username!r}")

    def dm_channel_for(self, user: FakeUser) -> FakeChannel:
        """The DM channel between the bot and ``user`` (created on first use)."""
        for channel in self.channels.values():
            if channel.is_dm and channel.recipients and channel.recipients[0].id == user.id:
                return channel
        channel = FakeChannel(id=new_snowflake(), type=DM, recipients=[user])
        self.channels[channel.id] = channel
        return channel

    def _channel(self, channel_id: int) -> FakeChannel:
        try:
            return self.channels[channel_id]
        except KeyError:
            raise _unknown("Channel", 10003) from None

    def _guild_of(self, channel: FakeChannel) -> FakeGuild | None:
        return None if channel.guild_id is None else self.guilds.get(channel.guild_id)

    # ----------------------------------------------------------------- stored messages

    def attachment(self, attachment_id: int | str) -> FakeAttachment:
        return self._attachments[int(attachment_id)]

    def message(self, message_id: int) -> FakeMessage:
        return self._messages_by_id[message_id]

    def messages_in(self, channel_id: int, *, include_deleted: bool = False) -> list[FakeMessage]:
        return [m for m in self.messages.get(channel_id, []) if include_deleted or not m.deleted]

    def bot_messages(self, channel_id: int | None = None) -> list[FakeMessage]:
        """Messages the bot wrote (including interaction responses), oldest first."""
        found = [
            m for m in self._messages_by_id.values() if m.author.id == self.bot.id and not m.deleted
        ]
        if channel_id is not None:
            found = [m for m in found if m.channel_id == channel_id]
        return sorted(found, key=lambda m: m.id)

    def _store(self, message: FakeMessage) -> FakeMessage:
        self.messages.setdefault(message.channel_id, []).append(message)
        self._messages_by_id[message.id] = message
        channel = self.channels.get(message.channel_id)
        if channel is not None:
            channel.last_message_id = message.id
            channel.message_count += 1
        return message

    def _message_in(self, channel_id: int, message_id: int) -> FakeMessage:
        message = self._messages_by_id.get(message_id)
        if message is None or message.channel_id != channel_id or message.deleted:
            raise _unknown("Message", 10008)
        return message

    def message_payload(self, message: FakeMessage, *, gateway: bool = True) -> JSONDict:
        """The message as Discord shows it: over the gateway with ``guild_id`` and ``member``,
        in REST responses without them."""
        payload: JSONDict = {
            "id": str(message.id),
            "channel_id": str(message.channel_id),
            "type": message.type,
            "content": message.content,
            "author": message.author.to_payload(),
            "attachments": [a.to_payload() for a in message.attachments],
            "embeds": message.embeds,
            "mentions": [u.to_payload() for u in message.mentions],
            "mention_roles": [],
            "mention_everyone": message.mention_everyone,
            "pinned": False,
            "tts": message.tts,
            "timestamp": _iso(message.id),
            "edited_timestamp": None if message.edited_at is None else _iso(message.edited_at),
            "flags": message.flags,
            "components": message.components,
        }
        if message.nonce is not None:
            payload["nonce"] = message.nonce
        ref = message.message_reference
        if ref is not None and ref.get("message_id") is not None:
            target_id = int(ref["message_id"])
            payload["message_reference"] = {
                "type": int(ref.get("type", 0)),
                "message_id": str(target_id),
                "channel_id": str(ref.get("channel_id", message.channel_id)),
            }
            if message.guild_id is not None:
                payload["message_reference"]["guild_id"] = str(message.guild_id)
            target = self._messages_by_id.get(target_id)
            if target is not None and not target.deleted and target is not message:
                inner = self.message_payload(target, gateway=False)
                inner.pop("referenced_message", None)
                payload["referenced_message"] = inner
            else:
                payload["referenced_message"] = None
        if message.webhook_id is not None:
            payload["webhook_id"] = str(message.webhook_id)
            if message.webhook_id == self.application_id:  # the bot's interaction webhook
                payload["application_id"] = str(self.application_id)
        if message.interaction_id is not None:
            interaction = self.interactions.get(message.interaction_id)
            if interaction is not None:
                payload["interaction_metadata"] = {
                    "id": str(interaction.id),
                    "type": 2,
                    "user": interaction.user.to_payload(),
                    "authorizing_integration_owners": interaction.payload.get(
                        "authorizing_integration_owners", {}
                    ),
                    "name": interaction.payload.get("data", {}).get("name"),
                    "command_type": 1,
                }
        if message.thread_id is not None and message.thread_id in self.channels:
            payload["thread"] = self.channels[message.thread_id].to_payload()
        guild = None if message.guild_id is None else self.guilds.get(message.guild_id)
        if gateway and guild is not None:
            payload["guild_id"] = str(guild.id)
            if message.webhook_id is None or message.interaction_id is not None:
                payload["member"] = guild.member_payload(message.author, with_user=False)
            payload["mentions"] = [
                {**u.to_payload(), "member": guild.member_payload(u, with_user=False)}
                for u in message.mentions
            ]
        return payload

    # ----------------------------------------------------------------- builders (test side)

    def message_create(
        self,
        channel_id: int | None = None,
        author: FakeUser | None = None,
        content: str = "",
        *,
        mentions: Sequence[FakeUser] | None = None,
        message_reference: int | JSONDict | None = None,
        attachments: Sequence[AttachmentSpec | tuple[str, bytes]] = (),
        message_id: int | None = None,
        webhook_id: int | None = None,
    ) -> JSONDict:
        """Store a message from a user and return its MESSAGE_CREATE payload (to ``dispatch``).

        Defaults: ``#general``, from ``fake.user``. ``mentions`` default to the users mentioned
        as ``<@id>`` in ``content`` (how Discord derives them); put ``fake.bot.mention`` in the
        content to address the bot. ``message_reference`` is a message id in the same channel
        (or a reference dict): the payload then carries ``referenced_message`` and type 19.
        ``attachments`` are served at ``/attachments/{channel}/{id}/{filename}``.

        ``webhook_id``: a message posted through a channel webhook. As Discord documents it,
        the author is then the webhook itself (its id, name and avatar; by default
        ``Captain Hook``, without ``bot``), there is no ``member``, and ``webhook_id`` is set.
        """
        channel = self.channels[channel_id if channel_id is not None else self.channel.id]
        if webhook_id is not None and author is None:
            author = FakeUser(id=webhook_id, username="Captain Hook")
        author = author or self.user
        msg_id = message_id if message_id is not None else new_snowflake()
        if mentions is None:
            mentioned_ids = {int(i) for i in _MENTION.findall(content)}
            mentions = [u for uid, u in self.users.items() if uid in mentioned_ids]
        reference: JSONDict | None = None
        if isinstance(message_reference, int):
            reference = {"type": 0, "message_id": message_reference, "channel_id": channel.id}
        elif message_reference is not None:
            reference = dict(message_reference)
        message = FakeMessage(
            id=msg_id,
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author=author,
            content=content,
            message_reference=reference,
            mentions=list(mentions),
            mention_everyone="@everyone" in content or "@here" in content,
            type=19 if reference is not None else 0,
            webhook_id=webhook_id,
        )
        for spec in attachments:
            if isinstance(spec, tuple):
                spec = AttachmentSpec(filename=spec[0], data=spec[1])
            attachment = self._new_attachment(
                channel.id, spec.filename, spec.data, spec.content_type, spec.description
            )
            attachment.declared_size = spec.declared_size
            attachment.served_size = spec.served_size
            message.attachments.append(attachment)
        self._store(message)
        return self.message_payload(message, gateway=True)

    async def send_user_message(
        self,
        channel_id: int | None = None,
        author: FakeUser | None = None,
        content: str = "",
        **kwargs: Any,
    ) -> JSONDict:
        """``message_create`` + ``dispatch("MESSAGE_CREATE", ...)``; returns the payload."""
        payload = self.message_create(channel_id, author, content, **kwargs)
        await self.dispatch("MESSAGE_CREATE", payload)
        return payload

    def interaction_create(
        self,
        name: str,
        options: Mapping[str, str | int | float | bool] | None = None,
        *,
        user: FakeUser | None = None,
        channel_id: int | None = None,
    ) -> JSONDict:
        """An INTERACTION_CREATE payload for an application command (type 2) and its record in
        ``interactions`` (token, callbacks, responses).

        ``options`` as ``{"question": "hi"}`` become typed options (str 3, int 4, bool 5,
        float 10). ``data.guild_id`` and the command id come from the last sync of ``name``
        (guild sync first) when there was one.
        """
        channel = self.channels[channel_id if channel_id is not None else self.channel.id]
        user = user or self.user
        guild = self._guild_of(channel)
        interaction_id = new_snowflake()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
        option_list = [_option(k, v) for k, v in (options or {}).items()]
        data: JSONDict = {"name": name, "type": 1, "options": option_list}
        command_guild = guild.id if guild and (guild.id, name) in self._command_ids else None
        data["id"] = str(self._command_ids.get((command_guild, name), new_snowflake()))
        if command_guild is not None:
            data["guild_id"] = str(command_guild)
        perms = str(guild.permissions() if guild else DEFAULT_PERMISSIONS)
        channel_payload = channel.to_payload()
        if guild is not None:
            channel_payload["permissions"] = perms
        payload: JSONDict = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": 2,
            "data": data,
            "channel_id": str(channel.id),
            "channel": channel_payload,
            "token": token,
            "version": 1,
            "app_permissions": perms,
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if guild is not None:
            payload["guild_id"] = str(guild.id)
            payload["guild"] = {"id": str(guild.id), "locale": "en-US", "features": []}
            payload["guild_locale"] = "en-US"
            payload["member"] = {**guild.member_payload(user), "permissions": perms}
            payload["context"] = 0
            payload["authorizing_integration_owners"] = {"0": str(guild.id)}
        else:
            payload["user"] = user.to_payload()
            payload["context"] = 1
            payload["authorizing_integration_owners"] = {"0": "0"}
        self.interactions[interaction_id] = FakeInteraction(
            id=interaction_id,
            token=token,
            payload=payload,
            channel_id=channel.id,
            guild_id=guild.id if guild else None,
            user=user,
            created_at=time.monotonic(),
        )
        return payload

    async def send_interaction(
        self, name: str, options: Mapping[str, Any] | None = None, **kw: Any
    ) -> FakeInteraction:
        """``interaction_create`` + ``dispatch("INTERACTION_CREATE", ...)``; returns the record."""
        payload = self.interaction_create(name, options, **kw)
        await self.dispatch("INTERACTION_CREATE", payload)
        return self.interactions[int(payload["id"])]

    def _new_attachment(
        self,
        channel_id: int,
        filename: str,
        data: bytes,
        content_type: str | None,
        description: str | None = None,
    ) -> FakeAttachment:
        attachment_id = new_snowflake()
        now = int(time.time())
        url = (
            f"{self.cdn_base}/attachments/{channel_id}/{attachment_id}/{quote(filename)}"
            f"?ex={now + 86400:x}&is={now:x}&hm={secrets.token_hex(32)}&"
        )
        if content_type is None:
            content_type = mimetypes.guess_type(filename)[0]
        attachment = FakeAttachment(
            id=attachment_id,
            channel_id=channel_id,
            filename=filename,
            data=data,
            content_type=content_type,
            url=url,
            description=description,
        )
        self._attachments[attachment_id] = attachment
        return attachment

    # ----------------------------------------------------------------- scripting

    def set_route_limit(self, route: str, *, limit: int, per_s: float) -> None:
        """Emulate a per-route limit: ``limit`` requests per ``per_s`` seconds per top-level
        resource (channel, guild or webhook), e.g. ``"PATCH /channels/{id}/messages/{id}"``.
        The headers count down; the request after the last gets a real 429."""
        self._limits[self._known_route(route)] = _Limit(limit, per_s)

    def fail_next(self, route: str, *, times: int = 1, retry_after: float = 1.0) -> None:
        """Answer the next ``times`` requests to ``route`` with 429 (``retry_after`` seconds,
        ``Retry-After`` header, ``Via`` header so discord.py trusts it as Discord's)."""
        scripted = _Scripted(429, retry_after=retry_after)
        self._scripted.setdefault(self._known_route(route), deque()).extend([scripted] * times)

    def error_next(
        self,
        route: str,
        status: int,
        *,
        code: int = 0,
        message: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests to ``route`` with an error, e.g.
        ``error_next(route, 403, code=50013, message="Missing Permissions")``."""
        body = {"message": message or f"{status}: Error", "code": code}
        scripted = _Scripted(status, body)
        self._scripted.setdefault(self._known_route(route), deque()).extend([scripted] * times)

    def _known_route(self, route: str) -> str:
        key = normalize_route(route)
        if key not in self._routes:
            known = ", ".join(sorted(self._routes.values()))
            raise ValueError(f"unknown route {route!r}; known: {known}")
        return key

    def requests_to(self, route: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.matches(route)]

    # ----------------------------------------------------------------- waiting

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def wait_until(self, predicate: Callable[[], Any]) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked after every request, gateway frame
        and dispatch) and return its value. Waits for ever: wrap it in ``asyncio.timeout``."""
        while True:
            changed = self._changed
            result = predicate()
            if result:
                return result
            await changed.wait()

    async def wait_for_request(self, route: str, *, count: int = 1) -> RecordedRequest:
        """The ``count``-th answered request to ``route`` (``"POST /channels/{id}/typing"``)."""
        self._known_route(route)

        def found() -> RecordedRequest | None:
            done = [r for r in self.requests_to(route) if r.status is not None]
            return done[count - 1] if len(done) >= count else None

        result: RecordedRequest = await self.wait_until(found)
        return result

    async def wait_for_message(
        self,
        predicate: Callable[[FakeMessage], bool] | None = None,
        *,
        channel_id: int | None = None,
    ) -> FakeMessage:
        """The first message from the bot (optionally in ``channel_id``) matching ``predicate``."""

        def found() -> FakeMessage | None:
            for message in self.bot_messages(channel_id):
                if predicate is None or predicate(message):
                    return message
            return None

        result: FakeMessage = await self.wait_until(found)
        return result

    async def wait_for_identify(self, count: int = 1) -> None:
        await self.wait_until(lambda: len(self.identifies) >= count)

    async def wait_for_resume(self, count: int = 1) -> None:
        await self.wait_until(lambda: len(self.resumes) >= count)

    # ----------------------------------------------------------------- gateway: test side

    async def dispatch(self, event: str, data: JSONDict) -> int | None:
        """Send a dispatch (op 0) to the current gateway session; returns its sequence number
        (``None`` if the session's intents filter it out). While the socket is down the event
        is kept and replayed on RESUME, like Discord does."""
        session = self._session
        if session is None:
            raise RuntimeError("no gateway session: the client has not identified yet")
        if event == "INTERACTION_CREATE" and str(data.get("id", "")).isdigit():
            interaction = self.interactions.get(int(data["id"]))
            if interaction is not None:
                interaction.created_at = time.monotonic()
        return await self._dispatch(session, event, data)

    async def replay(self, seq: int | None = None) -> int | None:
        """Send an earlier dispatch again with a new sequence number (a duplicate delivery, as
        a client sees after some resumes). Default: the last MESSAGE_CREATE."""
        candidates = [
            d
            for d in self.dispatched
            if (d.seq == seq if seq is not None else d.event == "MESSAGE_CREATE")
        ]
        if not candidates:
            raise LookupError(f"nothing to replay (seq={seq})")
        original = candidates[-1]
        return await self.dispatch(original.event, original.data)

    async def drop_connection(self, *, code: int = 4000) -> None:
        """Close the live gateway socket(s) from the server side; discord.py reconnects and
        RESUMEs (``code`` 4000 is "unknown error": resumable)."""
        for conn in list(self._conns):
            conn.record.closed_by_server = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(code=code, message=b"fake: dropped"), 5)

    def mangle_next(self, event: str, data: Any) -> None:
        """The next ``READY`` or ``RESUMED`` the gateway sends carries ``data`` as its ``d``
        (a malformed payload, as a broken proxy or a changed protocol could send)."""
        if event not in ("READY", "RESUMED"):
            raise ValueError("only READY and RESUMED are sent by the gateway itself")
        self._mangled.setdefault(event, deque()).append(data)

    def _payload_for(self, event: str, data: JSONDict) -> Any:
        queue = self._mangled.get(event)
        return queue.popleft() if queue else data

    async def send_frame(self, frame: Any) -> None:
        """Send ``frame`` as it is (any JSON value, even not an object) on the live socket(s),
        outside the session's sequence: a frame no well-behaved gateway would send."""
        for conn in list(self._conns):
            await self._send(conn, frame)

    async def make_available(self, guild_id: int) -> int | None:
        """Send a withheld guild's GUILD_CREATE (see ``unavailable_guilds``)."""
        self.unavailable_guilds.discard(guild_id)
        session = self._session
        if session is None:
            raise RuntimeError("no gateway session: the client has not identified yet")
        guild = self.guilds[guild_id]
        return await self._dispatch(
            session, "GUILD_CREATE", self.guild_create(guild, session.intents)
        )

    async def invalidate_session(self, *, resumable: bool = False) -> None:
        """Op 9 INVALID_SESSION: with ``resumable`` False the client IDENTIFYs anew."""
        session = self._session
        if session is not None and not resumable:
            session.invalid = True
        for conn in list(self._conns):
            await self._send(conn, {"op": 9, "d": resumable, "s": None, "t": None})

    # ----------------------------------------------------------------- gateway: server side

    async def _dispatch_if_connected(self, event: str, data: JSONDict) -> None:
        if self._session is not None and not self._session.invalid:
            await self._dispatch(self._session, event, data)

    async def _dispatch(self, session: _Session, event: str, data: JSONDict) -> int | None:
        shaped = self._shape_for_intents(session, event, data)
        if shaped is None:
            return None
        async with session.lock:
            session.seq += 1
            frame = {"op": 0, "t": event, "s": session.seq, "d": shaped}
            session.history.append(frame)
            self.dispatched.append(DispatchedEvent(session.seq, event, shaped, session.id))
            if session.conn is not None:
                await self._send(session.conn, frame)
            self._notify()
            return session.seq

    def _shape_for_intents(self, session: _Session, event: str, data: JSONDict) -> JSONDict | None:
        """What Discord would send this session for ``event``, or None if filtered out."""
        intents = session.intents
        if event.startswith(("GUILD_", "CHANNEL_", "THREAD_")):
            return data if intents & INTENT_GUILDS else None
        if event not in ("MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE"):
            return data
        in_guild = data.get("guild_id") is not None
        if not intents & (INTENT_GUILD_MESSAGES if in_guild else INTENT_DIRECT_MESSAGES):
            return None
        if event == "MESSAGE_DELETE" or not in_guild or intents & INTENT_MESSAGE_CONTENT:
            return data
        bot_id = str(self.bot.id)
        author_id = (data.get("author") or {}).get("id")
        mentioned = any(u.get("id") == bot_id for u in data.get("mentions") or [])
        if author_id == bot_id or mentioned:
            return data
        blanked = {**data, "content": "", "embeds": [], "attachments": [], "components": []}
        blanked.pop("poll", None)
        return blanked

    async def _send(self, conn: _Conn, payload: Any) -> bool:
        text = json.dumps(payload, separators=(",", ":"))
        async with conn.lock:
            if conn.ws.closed:
                return False
            try:
                if conn.compressor is not None:
                    data = conn.compressor.compress(text.encode())
                    data += conn.compressor.flush(zlib.Z_SYNC_FLUSH)
                    await conn.ws.send_bytes(data)
                else:
                    await conn.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return False
            return True

    async def _handle_gateway(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        compression = query.get("compress") or None
        record = GatewayConnection(query=query, compression=compression, opened_at=time.time())
        self.connections.append(record)
        encoding = query.get("encoding", "json")
        if encoding != "json" or compression not in (None, "zlib-stream"):
            problem = (
                f"unsupported gateway encoding={encoding!r} compress={compression!r}: this fake "
                "speaks json with zlib-stream or no compression (zstd-stream needs zstandard)"
            )
            self.gateway_errors.append(problem)
            self._notify()
            return _json({"message": problem, "code": 0}, status=400)
        ws = web.WebSocketResponse(max_msg_size=0, compress=False)
        await ws.prepare(request)
        compressor = zlib.compressobj() if compression == "zlib-stream" else None
        conn = _Conn(ws=ws, request=request, record=record, compressor=compressor)
        self._conns.append(conn)
        self._notify()
        try:
            await self._send(
                conn,
                {
                    "op": 10,
                    "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS},
                    "s": None,
                    "t": None,
                },
            )
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    try:
                        frame = json.loads(msg.data)
                    except ValueError:
                        await ws.close(code=4002, message=b"Error while decoding payload.")
                        break
                    if isinstance(frame, dict):
                        await self._on_frame(conn, frame)
                elif msg.type is WSMsgType.BINARY:
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
        finally:
            record.closed_at = time.time()
            record.close_code = ws.close_code
            self._conns.remove(conn)
            session = conn.session
            if session is not None and session.conn is conn:
                session.conn = None
                # A client's own clean close ends the session, as on Discord.
                if not record.closed_by_server and ws.close_code in (1000, 1001):
                    session.invalid = True
            self._notify()
        return ws

    async def _on_frame(self, conn: _Conn, frame: JSONDict) -> None:
        op = frame.get("op")
        data = frame.get("d")
        logged = dict(frame)
        if isinstance(data, dict) and "token" in data:
            logged["d"] = {**data, "token": REDACTED}
        self._notify()
        if op == 1:
            self.heartbeats += 1
            await self._send(conn, {"op": 11, "d": None, "s": None, "t": None})
        elif op == 2 and isinstance(data, dict):
            await self._identify(conn, data, logged["d"])
        elif op == 6 and isinstance(data, dict):
            await self._resume(conn, data, logged["d"])
        elif conn.session is None:
            await conn.ws.close(code=4003, message=b"Not authenticated.")
        else:
            # Presence (3), voice state (4) and member requests (8) are not emulated: the bot
            # sends none of them, and a test that does should fail loudly, not hang.
            await conn.ws.close(code=4001, message=b"Unknown opcode.")

    async def _identify(self, conn: _Conn, data: JSONDict, logged: JSONDict) -> None:
        if conn.session is not None:
            await conn.ws.close(code=4005, message=b"Already authenticated.")
            return
        if data.get("token") != self.token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        intents = data.get("intents")
        if not isinstance(intents, int):
            await conn.ws.close(code=4013, message=b"Invalid intent(s).")
            return
        self.identifies.append(logged)
        self.intents = intents
        session = _Session(id=secrets.token_hex(16), intents=intents)
        self._sessions[session.id] = session
        self._session = session
        conn.session = session
        session.conn = conn
        conn.record.identified = True
        conn.record.session_id = session.id
        user = {**self.bot.to_payload(), "verified": True, "mfa_enabled": False, "flags": 0}
        ready: JSONDict = {
            "v": 10,
            "user": user,
            "guilds": [{"id": str(g), "unavailable": True} for g in self.guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": self.application_flags},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "user_settings": {},
            "geo_ordered_rtc_regions": ["fake"],
            "auth": {},
            "_trace": ['["fake-discord-gateway",{"micros":0}]'],
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        await self._dispatch(session, "READY", self._payload_for("READY", ready))
        for guild in self.guilds.values():
            if guild.id not in self.unavailable_guilds:
                await self._dispatch(session, "GUILD_CREATE", self.guild_create(guild, intents))

    def guild_create(self, guild: FakeGuild, intents: int | None = None) -> JSONDict:
        """The GUILD_CREATE payload for ``guild`` (members limited to the bot without the
        GUILD_MEMBERS intent, as on Discord)."""
        members = guild.members
        if intents is not None and not intents & INTENT_GUILD_MEMBERS:
            members = [u for u in members if u.id == self.bot.id]
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [r.to_payload() for r in guild.roles],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "max_members": 500_000,
            "max_video_channel_users": 25,
            "incidents_data": None,
            "joined_at": _iso(guild.id),
            "large": False,
            "unavailable": False,
            "lazy": True,
            "member_count": len(guild.members),
            "voice_states": [],
            "members": [guild.member_payload(u) for u in members],
            "channels": [c.to_payload(with_guild_id=False) for c in guild.channels],
            "threads": [t.to_payload() for t in guild.threads],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    async def _resume(self, conn: _Conn, data: JSONDict, logged: JSONDict) -> None:
        self.resumes.append(logged)
        session = self._sessions.get(str(data.get("session_id")))
        if data.get("token") != self.token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        if session is None or session.invalid:
            await self._send(conn, {"op": 9, "d": False, "s": None, "t": None})
            return
        last_seen = data.get("seq") or 0
        async with session.lock:
            old = session.conn
            session.conn = conn
            conn.session = session
            conn.record.resumed = True
            conn.record.session_id = session.id
            for frame in session.history:
                if frame["s"] > last_seen:
                    await self._send(conn, frame)
            session.seq += 1
            resumed = {
                "op": 0,
                "t": "RESUMED",
                "s": session.seq,
                "d": self._payload_for("RESUMED", {}),
            }
            session.history.append(resumed)
            await self._send(conn, resumed)
        self._notify()
        if old is not None and old is not conn:
            old.record.closed_by_server = True
            with contextlib.suppress(Exception):
                await old.ws.close(code=4000, message=b"Session resumed elsewhere.")

    # ----------------------------------------------------------------- REST plumbing

    def _add_routes(self, app: web.Application) -> None:
        bot_routes: list[tuple[str, str, _Handler]] = [
            ("GET", "/users/@me", self._get_me),
            ("POST", "/users/@me/channels", self._create_dm),
            ("GET", "/oauth2/applications/@me", self._get_application),
            ("PUT", "/applications/{application_id}/commands", self._put_commands),
            (
                "PUT",
                "/applications/{application_id}/guilds/{guild_id}/commands",
                self._put_commands,
            ),
            ("GET", "/channels/{channel_id}", self._get_channel),
            ("POST", "/channels/{channel_id}/messages", self._post_message),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self._get_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self._patch_message),
            ("POST", "/channels/{channel_id}/typing", self._typing),
            (
                "POST",
                "/channels/{channel_id}/messages/{message_id}/threads",
                self._thread_from_message,
            ),
        ]
        open_routes: list[tuple[str, str, _Handler]] = [
            (
                "POST",
                "/interactions/{interaction_id}/{interaction_token}/callback",
                self._interaction_callback,
            ),
            ("POST", "/webhooks/{webhook_id}/{webhook_token}", self._execute_webhook),
            (
                "PATCH",
                "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
                self._edit_webhook_message,
            ),
        ]
        for routes, auth in ((bot_routes, True), (open_routes, False)):
            for method, path, handler in routes:
                template = f"{method} {path}"
                self._routes[normalize_route(template)] = template
                app.router.add_route(
                    method, API_PREFIX + path, self._wrap(template, handler, auth=auth)
                )
        app.router.add_get(GATEWAY_PATH, self._handle_gateway)
        app.router.add_get(
            "/attachments/{channel_id}/{attachment_id}/{filename}", self._get_attachment
        )

    @web.middleware
    async def _not_found(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
            if not request.path.startswith(API_PREFIX + "/"):
                raise
            record = self._record(request, "")
            with contextlib.suppress(Exception):
                record.body = await request.json()
            status = exc.status
            body = {"message": f"{status}: {exc.reason}", "code": 0}
            record.status, record.response = status, body
            self._notify()
            return _json(body, status=status, headers={"Via": "1.1 google"})

    def _record(self, request: web.Request, route: str) -> RecordedRequest:
        headers = {
            k: (_redact(v) if k.lower() in _SECRET_HEADERS else v)
            for k, v in request.headers.items()
        }
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            route=route,
            query=dict(request.query),
            headers=headers,
            received_at=time.monotonic(),
            authorized=request.headers.get("Authorization") == f"Bot {self.token}",
        )
        self.requests.append(record)
        return record

    def _wrap(self, template: str, handler: _Handler, *, auth: bool) -> _AiohttpHandler:
        key = normalize_route(template)
        bucket = hashlib.sha1(key.encode()).hexdigest()[:32]

        async def wrapped(request: web.Request) -> web.StreamResponse:
            record = self._record(request, template)
            response: web.StreamResponse
            rate_headers: dict[str, str] = {}
            try:
                record.body, record.files = await _read_body(request)
            except ValueError:
                response = _error(_ApiError(400, 50109, "The request body contains invalid JSON."))
            else:
                if auth and not record.authorized:
                    response = _json({"message": "401: Unauthorized", "code": 0}, status=401)
                else:
                    response, rate_headers = await self._answer(
                        request, record, key, bucket, handler
                    )
            response.headers.setdefault("Via", "1.1 google")
            for name, value in rate_headers.items():
                response.headers.setdefault(name, value)
            record.status = response.status
            record.response_headers = dict(response.headers)
            if isinstance(response, web.Response) and response.body is not None:
                with contextlib.suppress(ValueError, TypeError):
                    record.response = json.loads(response.text or "null")
            self._notify()
            return response

        return wrapped

    async def _answer(
        self,
        request: web.Request,
        record: RecordedRequest,
        key: str,
        bucket: str,
        handler: _Handler,
    ) -> tuple[web.StreamResponse, dict[str, str]]:
        """The handler's response and its rate-limit headers (a 429 carries its own)."""
        scripted_queue = self._scripted.get(key)
        if scripted_queue:
            scripted = scripted_queue.popleft()
            if scripted.status == 429:
                return self._rate_limited(scripted.retry_after or 1.0, bucket), {}
            return _json(scripted.body, status=scripted.status), {}
        major = "+".join(
            request.match_info[name]
            for name in (
                "channel_id",
                "guild_id",
                "webhook_id",
                "webhook_token",
                "interaction_id",
                "interaction_token",
            )
            if name in request.match_info
        )
        limit = self._limits.get(key, self._default_limit)
        now = time.monotonic()
        window = self._windows.get((key, major))
        if window is None or now >= window.started + limit.per_s:
            window = self._windows[(key, major)] = _Window(started=now)
        reset_after = max(0.0, window.started + limit.per_s - now)
        if window.count >= limit.limit:
            return self._rate_limited(reset_after, bucket, limit=limit.limit), {}
        window.count += 1
        headers = _rate_headers(limit.limit, limit.limit - window.count, reset_after, bucket)
        ctx = _Ctx(request=request, record=record, body=record.body, files=record.files)
        try:
            response = await handler(ctx)
        except _ApiError as exc:
            response = _error(exc)
        return response, headers

    def _rate_limited(self, retry_after: float, bucket: str, *, limit: int = 1) -> web.Response:
        """Discord's 429 for a per-route limit (global limits are not emulated)."""
        retry_after = round(max(retry_after, 0.001), 3)
        body = {
            "message": "You are being rate limited.",
            "retry_after": retry_after,
            "global": False,
        }
        headers = {
            "Retry-After": str(math.ceil(retry_after)),
            "X-RateLimit-Scope": "user",
            **_rate_headers(limit, 0, retry_after, bucket),
        }
        return _json(body, status=429, headers=headers)

    # ----------------------------------------------------------------- REST: identity

    async def _get_me(self, ctx: _Ctx) -> web.Response:
        payload = {
            **self.bot.to_payload(),
            "verified": True,
            "mfa_enabled": False,
            "locale": "en-US",
            "flags": 0,
            "email": None,
            "banner": None,
            "accent_color": None,
        }
        return _json(payload)

    async def _get_application(self, ctx: _Ctx) -> web.Response:
        owner = self.user
        return _json(
            {
                "id": str(self.application_id),
                "name": self.bot.username,
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "bot": self.bot.to_payload(),
                "owner": owner.to_payload(),
                "team": None,
                "verify_key": hashlib.sha256(self.token.encode()).hexdigest(),
                "flags": self.application_flags,
                "hook": True,
                "is_monetized": False,
                "interactions_endpoint_url": None,
                "redirect_uris": [],
                "tags": [],
                "approximate_guild_count": len(self.guilds),
                "integration_types_config": {"0": {}},
            }
        )

    # ----------------------------------------------------------------- REST: commands

    def _check_application(self, ctx: _Ctx) -> int | None:
        if ctx.param("application_id") != str(self.application_id):
            raise _ApiError(403, 50001, "Missing Access")
        if "guild_id" not in ctx.request.match_info:
            return None
        guild_id = ctx.int_param("guild_id")
        if guild_id not in self.guilds:
            raise _ApiError(403, 50001, "Missing Access")
        return guild_id

    async def _put_commands(self, ctx: _Ctx) -> web.Response:
        guild_id = self._check_application(ctx)
        if not isinstance(ctx.body, list):
            raise _ApiError(400, 50035, "Invalid Form Body")
        registered: list[JSONDict] = []
        for index, command in enumerate(ctx.body):
            if not isinstance(command, dict) or not command.get("name"):
                raise _form_error(f"{index}.name", "BASE_TYPE_REQUIRED", "This field is required")
            name = str(command["name"])
            command_id = self._command_ids.setdefault((guild_id, name), new_snowflake())
            stored: JSONDict = {
                "type": 1,
                "description": "",
                "options": [],
                "default_member_permissions": None,
                "nsfw": False,
                **command,
                "id": str(command_id),
                "application_id": str(self.application_id),
                "version": str(new_snowflake()),
            }
            if guild_id is not None:
                stored["guild_id"] = str(guild_id)
            registered.append(stored)
        names = {c["name"] for c in registered}
        for key in [k for k in self._command_ids if k[0] == guild_id and k[1] not in names]:
            del self._command_ids[key]
        self.commands[guild_id] = registered
        self.command_syncs.append(CommandSync(guild_id, registered, time.time()))
        return _json(registered)

    # ----------------------------------------------------------------- REST: channels, messages

    async def _get_channel(self, ctx: _Ctx) -> web.Response:
        channel = self._channel(ctx.int_param("channel_id"))
        return _json(channel.to_payload())

    async def _get_message(self, ctx: _Ctx) -> web.Response:
        message = self._message_in(ctx.int_param("channel_id"), ctx.int_param("message_id"))
        return _json(self.message_payload(message, gateway=False))

    async def _post_message(self, ctx: _Ctx) -> web.Response:
        channel = self._channel(ctx.int_param("channel_id"))
        body = ctx.json_object()
        message = self._new_bot_message(channel, body, ctx.files)
        await self._dispatch_if_connected("MESSAGE_CREATE", self.message_payload(message))
        return _json(self.message_payload(message, gateway=False))

    def _new_bot_message(
        self,
        channel: FakeChannel,
        body: JSONDict,
        files: list[UploadedFile],
        *,
        error_prefix: str = "",
        allow_empty: bool = False,
        message_type: int | None = None,
        webhook: bool = False,
        interaction: FakeInteraction | None = None,
        flags: int | None = None,
    ) -> FakeMessage:
        _validate_message(body, files, prefix=error_prefix, allow_empty=allow_empty)
        reference = body.get("message_reference")
        target: FakeMessage | None = None
        if isinstance(reference, dict) and reference.get("message_id") is not None:
            target = self._messages_by_id.get(int(reference["message_id"]))
            if (target is None or target.deleted) and reference.get("fail_if_not_exists", True):
                raise _form_error(
                    f"{error_prefix}message_reference", "REPLIES_UNKNOWN_MESSAGE", "Unknown message"
                )
        message = FakeMessage(
            id=new_snowflake(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author=self.bot,
            content=str(body.get("content") or ""),
            embeds=list(body.get("embeds") or []),
            allowed_mentions=body.get("allowed_mentions"),
            message_reference=reference if isinstance(reference, dict) else None,
            components=list(body.get("components") or []),
            tts=bool(body.get("tts", False)),
            nonce=None if body.get("nonce") is None else str(body["nonce"]),
            flags=int(body.get("flags") or 0) if flags is None else flags,
            webhook_id=self.application_id if webhook else None,
            interaction_id=interaction.id if interaction else None,
        )
        if message_type is not None:
            message.type = message_type
        elif message.message_reference is not None:
            message.type = 19
        message.attachments = self._attachments_for(channel.id, body, files, [])
        message.mentions, message.mention_everyone = self._resolve_mentions(message, target)
        return self._store(message)

    def _attachments_for(
        self,
        channel_id: int,
        body: JSONDict,
        files: list[UploadedFile],
        existing: list[FakeAttachment],
    ) -> list[FakeAttachment]:
        uploads = {f.name: f for f in files}
        result: list[FakeAttachment] = []
        listed = body.get("attachments")
        if isinstance(listed, list):
            kept = {a.id: a for a in existing}
            for entry in listed:
                if not isinstance(entry, dict) or entry.get("id") is None:
                    continue
                entry_id = int(entry["id"])
                if entry_id in kept:
                    result.append(kept[entry_id])
                    continue
                upload = uploads.pop(f"files[{entry_id}]", None)
                if upload is not None:
                    result.append(
                        self._new_attachment(
                            channel_id,
                            str(entry.get("filename") or upload.filename),
                            upload.data,
                            None,
                            entry.get("description"),
                        )
                    )
        else:
            result.extend(existing)
        for upload in uploads.values():
            result.append(self._new_attachment(channel_id, upload.filename, upload.data, None))
        return result

    def _resolve_mentions(
        self, message: FakeMessage, target: FakeMessage | None
    ) -> tuple[list[FakeUser], bool]:
        """Who is pinged: ``<@id>`` in content, filtered by ``allowed_mentions``; the replied-to
        author only with ``replied_user``. ``@everyone``/``@here`` only if parse has it."""
        allowed = message.allowed_mentions
        parse = ["users", "roles", "everyone"] if allowed is None else allowed.get("parse") or []
        listed_users = set() if allowed is None else {int(u) for u in allowed.get("users") or []}
        mentioned_ids = [int(i) for i in _MENTION.findall(message.content)]
        users = [
            self.users[i]
            for i in dict.fromkeys(mentioned_ids)
            if i in self.users and ("users" in parse or i in listed_users)
        ]
        replied = allowed is None or bool(allowed.get("replied_user", False))
        if target is not None and replied and target.author not in users:
            users.append(target.author)
        everyone = "everyone" in parse and (
            "@everyone" in message.content or "@here" in message.content
        )
        return users, everyone

    def _edit(self, message: FakeMessage, body: JSONDict, files: list[UploadedFile]) -> None:
        _validate_message(body, files, prefix="", allow_empty=True)
        if "content" in body:
            message.content = str(body["content"] or "")
        if "embeds" in body:
            message.embeds = list(body["embeds"] or [])
        if "allowed_mentions" in body:
            message.allowed_mentions = body["allowed_mentions"]
        if "components" in body:
            message.components = list(body["components"] or [])
        if "flags" in body and body["flags"] is not None:
            keep = message.flags & FLAG_EPHEMERAL
            message.flags = (int(body["flags"]) & ~FLAG_LOADING) | keep
        if "attachments" in body or files:
            message.attachments = self._attachments_for(
                message.channel_id, body, files, message.attachments
            )
        target = None if message.reply_to is None else self._messages_by_id.get(message.reply_to)
        message.mentions, message.mention_everyone = self._resolve_mentions(message, target)
        message.flags &= ~FLAG_LOADING
        message.edits.append(body)
        message.edited_at = time.time()

    async def _patch_message(self, ctx: _Ctx) -> web.Response:
        message = self._message_in(ctx.int_param("channel_id"), ctx.int_param("message_id"))
        if message.author.id != self.bot.id or message.webhook_id is not None:
            raise _ApiError(403, 50005, "Cannot edit a message authored by another user")
        self._edit(message, ctx.json_object(), ctx.files)
        await self._dispatch_if_connected("MESSAGE_UPDATE", self.message_payload(message))
        return _json(self.message_payload(message, gateway=False))

    async def delete_by_user(self, message_id: int) -> None:
        """The author deletes their message in the client (MESSAGE_DELETE is dispatched)."""
        await self._mark_deleted(self.message(message_id))

    async def _mark_deleted(self, message: FakeMessage) -> None:
        message.deleted = True
        if message.ephemeral:
            return
        data: JSONDict = {"id": str(message.id), "channel_id": str(message.channel_id)}
        if message.guild_id is not None:
            data["guild_id"] = str(message.guild_id)
        await self._dispatch_if_connected("MESSAGE_DELETE", data)

    async def _typing(self, ctx: _Ctx) -> web.Response:
        self._channel(ctx.int_param("channel_id"))
        return web.Response(status=204)

    # ----------------------------------------------------------------- REST: threads, DMs

    async def _thread_from_message(self, ctx: _Ctx) -> web.Response:
        channel = self._channel(ctx.int_param("channel_id"))
        message = self._message_in(channel.id, ctx.int_param("message_id"))
        if channel.type != TEXT or channel.guild_id is None:
            raise _ApiError(400, 50024, "Cannot execute action on this channel type")
        if message.thread_id is not None:
            raise _ApiError(400, 160004, "A thread has already been created for this message")
        body = ctx.json_object()
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise _form_error(
                "name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
            )
        thread = FakeChannel(
            id=message.id,  # Discord gives a thread started from a message that message's id
            type=PUBLIC_THREAD,
            name=name,
            guild_id=channel.guild_id,
            parent_id=channel.id,
            owner_id=self.bot.id,
            auto_archive_duration=int(body.get("auto_archive_duration") or 1440),
        )
        self.channels[thread.id] = thread
        guild = self._guild_of(channel)
        if guild is not None:
            guild.threads.append(thread)
        message.thread_id = thread.id
        await self._dispatch_if_connected(
            "THREAD_CREATE", {**thread.to_payload(), "newly_created": True}
        )
        return _json(thread.to_payload())

    async def _create_dm(self, ctx: _Ctx) -> web.Response:
        body = ctx.json_object()
        try:
            user = self.users[int(body.get("recipient_id", 0))]
        except (KeyError, TypeError, ValueError):
            raise _unknown("User", 10013) from None
        return _json(self.dm_channel_for(user).to_payload())

    # ----------------------------------------------------------------- REST: interactions

    def _interaction_by_token(self, ctx: _Ctx) -> FakeInteraction:
        if ctx.param("webhook_id") != str(self.application_id):
            raise _unknown("Webhook", 10015)
        token = ctx.param("webhook_token")
        for interaction in self.interactions.values():
            if interaction.token == token and interaction.acknowledged:
                return interaction
        raise _unknown("Webhook", 10015)

    async def _interaction_callback(self, ctx: _Ctx) -> web.Response:
        interaction = self.interactions.get(ctx.int_param("interaction_id"))
        if interaction is None or interaction.token != ctx.param("interaction_token"):
            raise _ApiError(404, 10062, "Unknown interaction")
        if interaction.acknowledged:
            raise _ApiError(400, 40060, "Interaction has already been acknowledged.")
        if time.monotonic() - interaction.created_at > INTERACTION_TIMEOUT:
            raise _ApiError(404, 10062, "Unknown interaction")
        body = ctx.json_object()
        callback_type = body.get("type")
        data = body.get("data") or {}
        if not isinstance(callback_type, int) or not isinstance(data, dict):
            raise _form_error("type", "BASE_TYPE_REQUIRED", "This field is required")
        channel = self._channel(interaction.channel_id)
        ephemeral = bool(int(data.get("flags") or 0) & FLAG_EPHEMERAL)
        message: FakeMessage | None = None
        if callback_type == CB_MESSAGE:
            message = self._new_bot_message(
                channel,
                data,
                ctx.files,
                error_prefix="data.",
                message_type=20,
                webhook=True,
                interaction=interaction,
                flags=FLAG_EPHEMERAL if ephemeral else 0,
            )
        elif callback_type == CB_DEFERRED_MESSAGE:
            message = self._new_bot_message(
                channel,
                {},
                [],
                allow_empty=True,
                message_type=20,
                webhook=True,
                interaction=interaction,
                flags=FLAG_LOADING | (FLAG_EPHEMERAL if ephemeral else 0),
            )
        interaction.callbacks.append(body)
        interaction.response_type = callback_type
        interaction.ephemeral = ephemeral
        if message is not None:
            interaction.original_message_id = message.id
            if not message.ephemeral:
                await self._dispatch_if_connected("MESSAGE_CREATE", self.message_payload(message))
        if ctx.request.query.get("with_response") not in ("1", "true", "True"):
            return web.Response(status=204)
        callback: JSONDict = {
            "id": str(interaction.id),
            "type": 2,
            "response_message_loading": callback_type == CB_DEFERRED_MESSAGE,
            "response_message_ephemeral": ephemeral,
        }
        resource: JSONDict = {"type": callback_type}
        if message is not None:
            callback["response_message_id"] = str(message.id)
            resource["message"] = self.message_payload(message, gateway=False)
        return _json({"interaction": callback, "resource": resource})

    async def _execute_webhook(self, ctx: _Ctx) -> web.Response:
        interaction = self._interaction_by_token(ctx)
        body = ctx.json_object()
        wait = ctx.request.query.get("wait") in ("1", "true", "True")
        original = (
            None
            if interaction.original_message_id is None
            else self._messages_by_id.get(interaction.original_message_id)
        )
        if (
            interaction.response_type == CB_DEFERRED_MESSAGE
            and original is not None
            and original.loading
            and not interaction.followup_ids
        ):
            # Discord: the first follow-up after a deferred "thinking" response edits the
            # loading message (keeping the ephemerality chosen at defer time).
            self._edit(original, {k: v for k, v in body.items() if k != "flags"}, ctx.files)
            interaction.followup_ids.append(original.id)
            if not original.ephemeral:
                await self._dispatch_if_connected("MESSAGE_UPDATE", self.message_payload(original))
            message = original
        else:
            ephemeral = bool(int(body.get("flags") or 0) & FLAG_EPHEMERAL)
            message = self._new_bot_message(
                self._channel(interaction.channel_id),
                body,
                ctx.files,
                webhook=True,
                interaction=interaction,
                flags=FLAG_EPHEMERAL if ephemeral else 0,
            )
            interaction.followup_ids.append(message.id)
            if not message.ephemeral:
                await self._dispatch_if_connected("MESSAGE_CREATE", self.message_payload(message))
        if not wait:
            return web.Response(status=204)
        return _json(self.message_payload(message, gateway=False))

    def _webhook_message(self, ctx: _Ctx, interaction: FakeInteraction) -> FakeMessage:
        raw = ctx.param("message_id")
        if raw == "@original":
            if interaction.original_message_id is None:
                raise _unknown("Message", 10008)
            message_id = interaction.original_message_id
        else:
            message_id = ctx.int_param("message_id")
            if message_id not in (interaction.original_message_id, *interaction.followup_ids):
                raise _unknown("Message", 10008)
        message = self._messages_by_id.get(message_id)
        if message is None or message.deleted:
            raise _unknown("Message", 10008)
        return message

    async def _edit_webhook_message(self, ctx: _Ctx) -> web.Response:
        message = self._webhook_message(ctx, self._interaction_by_token(ctx))
        self._edit(message, ctx.json_object(), ctx.files)
        if not message.ephemeral:
            await self._dispatch_if_connected("MESSAGE_UPDATE", self.message_payload(message))
        return _json(self.message_payload(message, gateway=False))

    # ----------------------------------------------------------------- CDN

    async def _get_attachment(self, request: web.Request) -> web.StreamResponse:
        attachment_id = request.match_info["attachment_id"]
        attachment = self._attachments.get(int(attachment_id)) if attachment_id.isdigit() else None
        if attachment is None or str(attachment.channel_id) != request.match_info["channel_id"]:
            return web.Response(status=404, text="This content is no longer available.")
        content_type = attachment.content_type or "application/octet-stream"
        if attachment.served_size is None:
            attachment.bytes_served += len(attachment.data)
            return web.Response(body=attachment.data, content_type=content_type)
        # Streamed with its true length, chunk by chunk, so what a client reads before it hangs
        # up is what was served (give or take the sockets' buffers).
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.content_length = attachment.served_size
        await response.prepare(request)
        chunk = bytes(64 * 1024)
        left = attachment.served_size
        try:
            while left > 0:
                part = chunk[: min(left, len(chunk))]
                await response.write(part)
                attachment.bytes_served += len(part)
                left -= len(part)
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client stopped reading and closed the connection
        return response


_AiohttpHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --------------------------------------------------------------------------- helpers


def _opt_str(value: int | None) -> str | None:
    return None if value is None else str(value)


def _redact(value: str) -> str:
    scheme, sep, _ = value.partition(" ")
    return f"{scheme} {REDACTED}" if sep else REDACTED


def _json(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON response with Discord's exact ``Content-Type: application/json``: discord.py's
    ``json_or_text`` compares the header verbatim, so aiohttp's ``; charset=utf-8`` would make
    it hand every body back as a string."""
    body = json.dumps(data, separators=(",", ":")).encode()
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")


def _error(exc: _ApiError) -> web.Response:
    return _json(exc.body, status=exc.status)


def _rate_headers(limit: int, remaining: int, reset_after: float, bucket: str) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(remaining, 0)),
        "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        "X-RateLimit-Reset-After": f"{reset_after:.3f}",
        "X-RateLimit-Bucket": bucket,
    }


def _option(name: str, value: str | int | float | bool) -> JSONDict:
    if isinstance(value, bool):
        kind = 5
    elif isinstance(value, int):
        kind = 4
    elif isinstance(value, float):
        kind = 10
    else:
        kind = 3
    return {"name": name, "type": kind, "value": value}


def _validate_message(
    body: JSONDict, files: list[UploadedFile], *, prefix: str, allow_empty: bool
) -> None:
    content = body.get("content")
    if content is not None and not isinstance(content, str):
        raise _form_error(f"{prefix}content", "BASE_TYPE_STRING", "Must be a string.")
    if content is not None and len(content) > MAX_CONTENT:
        raise _form_error(
            f"{prefix}content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length."
        )
    has_something = bool(
        content
        or body.get("embeds")
        or files
        or body.get("sticker_ids")
        or body.get("components")
        or body.get("poll")
        or body.get("attachments")
    )
    if not allow_empty and not has_something:
        raise _ApiError(400, 50006, "Cannot send an empty message")


async def _read_body(request: web.Request) -> tuple[Any, list[UploadedFile]]:
    """The JSON body (or a multipart body's ``payload_json``) and uploaded files."""
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        payload: Any = None
        files: list[UploadedFile] = []
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "payload_json":
                payload = json.loads(await part.text())
            elif part.filename is not None:
                files.append(
                    UploadedFile(
                        name=part.name or "",
                        filename=part.filename,
                        data=bytes(await part.read(decode=False)),
                        content_type=part.headers.get("Content-Type"),
                    )
                )
        return payload, files
    if not request.can_read_body:
        return None, []
    text = await request.text()
    return (json.loads(text) if text.strip() else None), []


@contextlib.contextmanager
def point_discord_py_at(fake: FakeDiscord) -> Iterator[None]:
    """Point discord.py's REST (``Route.BASE``) and gateway (``DEFAULT_GATEWAY``) at ``fake``
    (and ``Asset.BASE``, so that avatar URLs stay on loopback); restore all three on exit.
    They are class attributes read at request / connect time: set them before ``start()``."""
    import discord.asset
    import discord.gateway
    import discord.http
    import yarl

    route, gateway = discord.http.Route, discord.gateway.DiscordWebSocket
    asset = discord.asset.Asset
    saved = (route.BASE, gateway.DEFAULT_GATEWAY, asset.BASE)
    route.BASE = fake.rest_base
    gateway.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    asset.BASE = fake.cdn_base
    try:
        yield
    finally:
        route.BASE, gateway.DEFAULT_GATEWAY, asset.BASE = saved
