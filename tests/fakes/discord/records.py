"""What the fake records (requests, gateway connections, dispatches, command syncs) and
the bookkeeping behind the gateway and the rate limits."""

from __future__ import annotations

import asyncio
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.discord.constants import API_PREFIX, JSONDict
from tests.fakes.discord.ids import shard_of

_PARAM = re.compile(r"\{[^}]*\}")


def normalize_route(route: str) -> str:
    """``"patch /api/v10/channels/{id}/messages/{mid}"`` -> ``"PATCH /channels/{}/messages/{}"``."""
    method, _, path = route.strip().partition(" ")
    path = path.strip().removeprefix(API_PREFIX)
    return f"{method.upper()} {_PARAM.sub('{}', path)}"


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
    """The JSON body."""
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
    shard: tuple[int, int] | None = None
    """IDENTIFY's ``[shard_id, shard_count]``, when it sent one."""


@dataclass(frozen=True, slots=True)
class DispatchedEvent:
    seq: int
    event: str
    data: JSONDict = field(repr=False)
    session_id: str
    shard: int | None = None
    """The shard id of the session it went to (None: an unsharded session)."""


@dataclass(slots=True)
class Session:
    """A gateway session: its sequence and the dispatches kept for RESUME."""

    id: str
    intents: int
    seq: int = 0
    history: deque[JSONDict] = field(default_factory=lambda: deque(maxlen=2000))
    conn: Conn | None = None
    invalid: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    shard: tuple[int, int] | None = None
    """``(shard_id, shard_count)`` from IDENTIFY; None: the session gets every guild."""

    def serves(self, guild_id: int | None) -> bool:
        """Discord's routing: a guild's events go to shard ``(guild_id >> 22) % shard_count``
        and events outside guilds (DMs) to shard 0; a session without a shard gets them all."""
        if self.shard is None:
            return True
        shard_id, count = self.shard
        return shard_id == (0 if guild_id is None else shard_of(guild_id, count))


@dataclass(slots=True)
class Conn:
    """An open gateway socket and the session it speaks for."""

    ws: web.WebSocketResponse
    request: web.Request
    record: GatewayConnection
    compressor: Any  # zlib.compressobj() or None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    session: Session | None = None


@dataclass(slots=True)
class Scripted:
    """An answer ``fail_next`` / ``error_next`` queued for a route."""

    status: int
    body: JSONDict = field(default_factory=dict)
    retry_after: float | None = None


@dataclass(slots=True)
class RouteLimit:
    """A route's limit: ``limit`` requests per ``per_s`` seconds."""

    limit: int
    per_s: float


@dataclass(slots=True)
class Window:
    """The current rate-limit window of a route and resource."""

    started: float
    count: int = 0
