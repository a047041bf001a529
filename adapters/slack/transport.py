"""How Slack's requests reach bolt: the ``AsyncApp`` and, in HTTP mode, its web endpoint.

- HTTP mode serves events, commands and interactivity at ``POST /slack/events``. The signature
  is checked once, on the raw bytes, before anything parses the body; bolt's own check is off
  (``bolt_app``), as it would parse first, and a malformed body from anyone was a 500.
- A body that is not a well-formed Slack payload is a 400 with one log line, not a traceback.
- Socket Mode (``connection.socket_handler``) needs no signature: the socket is authenticated.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import SecretStr
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.logger.messages import (
    warning_client_prioritized_and_token_skipped,
    warning_token_skipped,
)
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.internals import parse_body
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.connection import Installation
from adapters.slack.payloads import well_formed
from bot.ops import add_ops_routes

if TYPE_CHECKING:
    from bot.core import Core

log = logging.getLogger(__name__)


def bolt_app(client: AsyncWebClient, installation: Installation) -> AsyncApp:
    """Bolt's app over ``client``, for either transport, authorized by the ``auth.test`` the
    adapter made at start: bolt's own single-workspace authorization would call it again on
    the first request, a round trip before Slack's first event is acknowledged."""
    return AsyncApp(
        client=client,
        authorize=_Authorized(installation.authorized),
        # Signatures are checked once, on the raw bytes, by handle_events before bolt sees a
        # request (Socket Mode needs none).
        signing_secret="",
        request_verification_enabled=False,
        logger=_bolt_logger(),
        # Else bolt names the app after its caller's file through inspect.stack(), which
        # reads the source of every frame: ~80 ms of start-up.
        name="chatbot",
    )


class _Authorized(AsyncAuthorize):
    """Every request is for the one installation the token belongs to (the adapter's
    middleware drops the others)."""

    def __init__(self, result: AuthorizeResult) -> None:
        self._result = result

    async def __call__(self, **_: Any) -> AuthorizeResult:
        return self._result


def web_app(bolt: AsyncApp, signing_secret: SecretStr | None, ops: Core | None) -> web.Application:
    """HTTP mode's server: ``POST /slack/events`` into ``bolt``, and ``/healthz`` and
    ``/metrics`` when ``ops`` is given. No ``signing_secret``: requests are not verified."""
    verifier = SignatureVerifier(signing_secret.get_secret_value()) if signing_secret else None
    app = web.Application(client_max_size=2 * 1024 * 1024)
    app.router.add_post("/slack/events", functools.partial(handle_events, bolt, verifier))
    if ops is not None:
        add_ops_routes(app, ops)
    return app


async def handle_events(
    bolt: AsyncApp, verifier: SignatureVerifier | None, request: web.Request
) -> web.Response:
    """One of Slack's requests: verified, checked for shape, then dispatched through bolt."""
    raw = await request.read()
    if verifier is not None and not _signed(verifier, raw, request.headers):
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
    response = await bolt.async_dispatch(bolt_request)
    return await to_aiohttp_response(response)


def _signed(verifier: SignatureVerifier, raw: bytes, headers: Mapping[str, str]) -> bool:
    try:
        return verifier.is_valid_request(raw, headers)
    except (ValueError, TypeError):  # a timestamp header that is not a number
        return False


class _SameTokenNotice(logging.Filter):
    """bolt reads SLACK_BOT_TOKEN from the environment by itself and warns at every start that
    the client's token, or ``authorize``, wins over it: it is the same token, so the warnings
    are only noise."""

    NOISE = frozenset({warning_client_prioritized_and_token_skipped(), warning_token_skipped()})

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in self.NOISE


def _bolt_logger() -> logging.Logger:
    logger = logging.getLogger("slack_bolt")
    if not any(isinstance(f, _SameTokenNotice) for f in logger.filters):
        logger.addFilter(_SameTokenNotice())
    return logger
