"""REST plumbing: recording, the bot token, per-route rate limits, scripted 429s and errors."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from tests.fakes.discord.constants import API_PREFIX
from tests.fakes.discord.records import (
    RecordedRequest,
    RouteLimit,
    Scripted,
    Window,
    normalize_route,
)
from tests.fakes.discord.state import DiscordState
from tests.fakes.discord.wire import (
    AiohttpHandler,
    ApiError,
    Ctx,
    Handler,
    error_response,
    json_response,
    rate_headers,
    read_body,
    redact,
)

_SECRET_HEADERS: Final = frozenset({"authorization"})


class Rest(DiscordState):
    """Every route goes through ``_wrap``; unknown API paths get Discord's 404."""

    def set_route_limit(self, route: str, *, limit: int, per_s: float) -> None:
        """Emulate a per-route limit: ``limit`` requests per ``per_s`` seconds per top-level
        resource (channel, guild or webhook), e.g. ``"PATCH /channels/{id}/messages/{id}"``.
        The headers count down; the request after the last gets a real 429."""
        self._limits[self._known_route(route)] = RouteLimit(limit, per_s)

    def fail_next(self, route: str, *, times: int = 1, retry_after: float = 1.0) -> None:
        """Answer the next ``times`` requests to ``route`` with 429 (``retry_after`` seconds,
        ``Retry-After`` header, ``Via`` header so discord.py trusts it as Discord's)."""
        scripted = Scripted(429, retry_after=retry_after)
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
        scripted = Scripted(status, body)
        self._scripted.setdefault(self._known_route(route), deque()).extend([scripted] * times)

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
            return json_response(body, status=status, headers={"Via": "1.1 google"})

    def _record(self, request: web.Request, route: str) -> RecordedRequest:
        headers = {
            k: (redact(v) if k.lower() in _SECRET_HEADERS else v)
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

    def _wrap(self, template: str, handler: Handler, *, auth: bool) -> AiohttpHandler:
        key = normalize_route(template)
        bucket = hashlib.sha1(key.encode()).hexdigest()[:32]

        async def wrapped(request: web.Request) -> web.StreamResponse:
            record = self._record(request, template)
            response: web.StreamResponse
            limit_headers: dict[str, str] = {}
            try:
                record.body = await read_body(request)
            except ValueError:
                response = error_response(
                    ApiError(400, 50109, "The request body contains invalid JSON.")
                )
            except ApiError as exc:
                response = error_response(exc)
            else:
                if auth and not record.authorized:
                    response = json_response(
                        {"message": "401: Unauthorized", "code": 0}, status=401
                    )
                else:
                    response, limit_headers = await self._answer(
                        request, record, key, bucket, handler
                    )
            response.headers.setdefault("Via", "1.1 google")
            for name, value in limit_headers.items():
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
        handler: Handler,
    ) -> tuple[web.StreamResponse, dict[str, str]]:
        """The handler's response and its rate-limit headers (a 429 carries its own)."""
        scripted_queue = self._scripted.get(key)
        if scripted_queue:
            scripted = scripted_queue.popleft()
            if scripted.status == 429:
                return self._rate_limited(scripted.retry_after or 1.0, bucket), {}
            return json_response(scripted.body, status=scripted.status), {}
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
            window = self._windows[(key, major)] = Window(started=now)
        reset_after = max(0.0, window.started + limit.per_s - now)
        if window.count >= limit.limit:
            return self._rate_limited(reset_after, bucket, limit=limit.limit), {}
        window.count += 1
        headers = rate_headers(limit.limit, limit.limit - window.count, reset_after, bucket)
        ctx = Ctx(request=request, record=record, body=record.body)
        try:
            self._check_channel_access(request, record)
            response = await handler(ctx)
        except ApiError as exc:
            response = error_response(exc)
        return response, headers

    def _check_channel_access(self, request: web.Request, record: RecordedRequest) -> None:
        """The bot's own calls to a channel it is no member of (others' DMs and group DMs,
        reached only through a user install's interactions) fail as on Discord."""
        raw = request.match_info.get("channel_id", "")
        channel = self.channels.get(int(raw)) if raw.isdigit() else None
        if channel is not None and not channel.bot_member and record.authorized:
            raise ApiError(403, 50001, "Missing Access")

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
            **rate_headers(limit, 0, retry_after, bucket),
        }
        return json_response(body, status=429, headers=headers)
