"""Who this bot is to Slack, and whether Slack still accepts it.

- ``auth.test`` at start: the workspace and app the bot token belongs to (a refused token is a
  configuration error, not a bot that silently never answers); requests for another
  installation are dropped by the adapter's middleware.
- ``TokenWatch``: every Web API answer passes it, so a token revoked while running is noticed
  once, whichever call meets it first (the adapter then reports unhealthy).
- Socket Mode: a refused app token ends the connection attempts at once instead of retrying
  every 10 s forever; transient failures are retried with a growing pause, one log line each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.request.internals import extract_enterprise_id, extract_team_id
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.payloads import well_formed
from adapters.slack.reply import slack_error
from bot.settings import ConfigError

log = logging.getLogger(__name__)

TOKEN_ERRORS = frozenset({"invalid_auth", "not_authed", "token_revoked", "account_inactive"})
"""Slack's answers that mean the token itself is refused: retrying cannot help."""
SOCKET_RETRY_PAUSES_S = (0.0, 5.0, 20.0, 50.0)
"""Extra pause before each further Socket Mode connection attempt (slack_sdk adds its own
10 s); the last repeats."""


@dataclass(frozen=True, slots=True)
class Installation:
    """Where this bot token is installed, from ``auth.test``."""

    team_id: str
    enterprise_id: str | None
    enterprise_install: bool
    app_id: str | None
    """Known when ``auth.test`` names it (bot tokens do)."""
    authorized: AuthorizeResult
    """The same answer as bolt's authorization takes it (see ``transport.bolt_app``)."""

    def accepts(self, body: Mapping[str, Any]) -> bool:
        app = body.get("api_app_id")
        if self.app_id and isinstance(app, str) and app and app != self.app_id:
            return False
        if self.enterprise_install:
            enterprise = _enterprise_of(body)
            return enterprise is None or enterprise == self.enterprise_id
        team = team_of(body)
        return team is None or team == self.team_id


async def installation(client: AsyncWebClient) -> Installation:
    """``auth.test``: which workspace and app this token belongs to. A refused token is a
    configuration error (one line, exit 2), not a bot that silently never answers."""
    try:
        auth = await client.auth_test()
    except SlackApiError as exc:
        error = slack_error(exc)
        if error in TOKEN_ERRORS:
            raise ConfigError(f"SLACK_BOT_TOKEN was refused by Slack ({error})") from None
        raise
    return Installation(
        team_id=str(auth.get("team_id") or ""),
        enterprise_id=auth.get("enterprise_id") or None,
        enterprise_install=bool(auth.get("is_enterprise_install")),
        app_id=auth.get("app_id") or None,
        authorized=AuthorizeResult.from_auth_test_response(
            auth_test_response=auth,
            bot_token=client.token,
            bot_scopes=auth.headers.get("x-oauth-scopes"),
        ),
    )


def team_of(body: Mapping[str, Any]) -> str | None:
    try:
        team = extract_team_id(dict(body))
    except (AttributeError, IndexError, KeyError, TypeError):
        return None
    return team if isinstance(team, str) and team else None


def _enterprise_of(body: Mapping[str, Any]) -> str | None:
    try:
        enterprise = extract_enterprise_id(dict(body))
    except (AttributeError, IndexError, KeyError, TypeError):
        return None
    return enterprise if isinstance(enterprise, str) and enterprise else None


def safe_id(value: object) -> str:
    """An id from a request, fit for a log line (it may be anything a sender made up)."""
    text = str(value)[:24]
    return text if text.isalnum() else repr(text)


class TokenWatch(AsyncRetryHandler):
    """Sees every Web API answer (as the first retry handler) and never asks for a retry: the
    first answer refusing the token calls ``on_refused(error)``, once."""

    def __init__(self, on_refused: Callable[[str], None]) -> None:
        super().__init__(max_retry_count=1)
        self._on_refused = on_refused
        self.refused: str | None = None

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        body = response.body if response is not None else None
        error_code = body.get("error") if isinstance(body, dict) else None
        if error_code in TOKEN_ERRORS and self.refused is None:
            self.refused = str(error_code)
            self._on_refused(self.refused)
        return False


class _QuietSocketLog(logging.Filter):
    """slack_sdk logs every failed connection attempt with a full traceback and the API's
    answer over several lines: keep one line (a warning: the attempt is retried)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info or "\n" in message:
            record.msg = " ".join(message.split())[:300]
            record.args = None
            record.exc_info = None
            record.exc_text = None
            if record.levelno > logging.WARNING:
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def socket_handler(app: AsyncApp, app_token: str) -> Any:
    """bolt's Socket Mode handler with two guards: payloads Slack would never send are acked
    and dropped before bolt dispatches them (as the HTTP path does), and a refused app token
    stops the connection attempts (``handler.client.refused`` then says why)."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
    from slack_sdk.socket_mode.aiohttp import SocketModeClient
    from slack_sdk.socket_mode.request import SocketModeRequest
    from slack_sdk.socket_mode.response import SocketModeResponse

    class GuardedSocketModeClient(SocketModeClient):
        refused: str | None = None
        failures = 0

        async def issue_new_wss_url(self) -> str:
            try:
                url = await super().issue_new_wss_url()
            except SlackApiError as exc:
                error = slack_error(exc)
                if error in TOKEN_ERRORS:
                    self.refused = error
                    await self.close()  # type: ignore[no-untyped-call]  # connect() stops retrying once closed
                else:
                    await self._pause()
                raise
            except Exception:
                await self._pause()
                raise
            self.failures = 0
            return url

        async def _pause(self) -> None:
            pause = SOCKET_RETRY_PAUSES_S[min(self.failures, len(SOCKET_RETRY_PAUSES_S) - 1)]
            self.failures += 1
            await asyncio.sleep(pause)

    socket_log = logging.getLogger("adapters.slack.socket")
    if not any(isinstance(f, _QuietSocketLog) for f in socket_log.filters):
        socket_log.addFilter(_QuietSocketLog())

    class GuardedSocketModeHandler(AsyncSocketModeHandler):
        def __init__(self) -> None:
            # What bolt's __init__ does, with our client (bolt's would open an aiohttp session
            # only to be replaced).
            self.app = app
            self.app_token = app_token
            self.client = GuardedSocketModeClient(
                app_token=app_token, logger=socket_log, web_client=app.client
            )
            self.client.socket_mode_request_listeners.append(self.handle)

        async def handle(self, client: Any, req: SocketModeRequest) -> None:
            if well_formed(req.payload):
                await super().handle(client, req)
                return
            log.warning("slack: dropped a malformed %s payload from Socket Mode", req.type)
            await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))

    return GuardedSocketModeHandler()
