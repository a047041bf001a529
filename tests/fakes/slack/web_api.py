"""The Web API's front door: tokens, scripted failures and rate limits, recording; auth.test."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections import deque
from collections.abc import Collection
from typing import Final, Literal

from aiohttp import web

from tests.fakes.slack.constants import JSONDict
from tests.fakes.slack.params import ApiError, bot_workspace, read_params, refuse_not_emulated
from tests.fakes.slack.records import ApiCall, RandomLimit, ScriptedFailure, Workspace
from tests.fakes.slack.state import SlackState

SCOPES: Final = (
    "app_mentions:read,channels:history,chat:write,commands,files:read,groups:history,"
    "im:history,im:write,mpim:history,reactions:write,users:read,assistant:write"
)
REDACTED: Final = "[REDACTED]"
_APP_TOKEN_METHODS: Final = frozenset({"apps.connections.open"})


class WebApi(SlackState):
    """``/api/<method>``: who is calling, what was scripted, then the method's handler."""

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
        queue.extend(ScriptedFailure(status, error, retry_after) for _ in range(times))

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
            RandomLimit(
                fraction,
                frozenset(methods) if methods is not None else None,
                retry_after,
                random.Random(seed),
            )
            if fraction
            else None
        )

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params, ctype = await read_params(request)
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
                refuse_not_emulated(params, method)
                body = {"ok": True, **handler(params, workspace)}
            except ApiError as e:
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

    def _next_failure(self, method: str) -> ScriptedFailure | None:
        for key in (method, "*"):
            queue = self._failures.get(key)
            if queue:
                return queue.popleft()
        limit = self._random_limit
        if limit is not None and limit.hits(method):
            self.random_429s += 1
            return ScriptedFailure(429, "ratelimited", limit.retry_after)
        return None

    def _auth_test(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        ws = bot_workspace(workspace)
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
