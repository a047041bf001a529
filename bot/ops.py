"""``GET /healthz`` and ``GET /metrics`` for whoever runs the bot.

They listen on ``BOT_OPS_HOST`` (default: ``HOST``, the address Slack's listener binds) and
``BOT_OPS_PORT`` (default: ``PORT``). In Slack's HTTP mode with both defaults they share the
events server. Otherwise (Discord, Socket Mode, or another host or port) ``python -m bot``
serves them on their own server, when ``PORT`` or ``BOT_OPS_PORT`` is set (as Heroku and most
platforms set ``PORT`` for a web process); with neither, nothing listens.
``BOT_METRICS_TOKEN`` makes ``/metrics`` ask for ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from bot.core import Core

log = logging.getLogger(__name__)


def add_ops_routes(app: web.Application, core: Core) -> None:
    async def healthz(request: web.Request) -> web.Response:
        """200 while every platform takes events, the store answers and this instance's lease
        holds; 503 otherwise. In the first seconds the agent stack may still be loading: events
        are taken then, and answered once it has loaded, so that is healthy too, said as
        ``"loading": true``. Either way it names the instance and when its lease runs out."""
        instance = core.instance
        about: dict[str, object] = {
            "instance": instance.id,
            "lease_expires_in_s": round(instance.lease_left(), 1) if instance.expires_at else None,
        }
        if not core.healthy():
            return web.json_response({"ok": False, "reason": "not running", **about}, status=503)
        try:
            async with asyncio.timeout(2.0):
                await core.store.get_state(key="healthz")
        except Exception as exc:
            log.warning("healthz: the store does not answer (%s)", type(exc).__name__)
            return web.json_response({"ok": False, "reason": "store", **about}, status=503)
        if instance.expires_at and instance.lease_left() < 0:
            # Other instances may be telling this one's users their turns were cut.
            return web.json_response({"ok": False, "reason": "lease", **about}, status=503)
        if not core.ready:
            about["loading"] = True
        return web.json_response({"ok": True, **about})

    token = core.settings.metrics_token
    expected = f"Bearer {token.get_secret_value()}".encode() if token else None

    async def metrics(request: web.Request) -> web.Response:
        if expected is not None:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return web.Response(
                    status=401,
                    text="unauthorized\n",
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        return web.Response(
            body=core.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)


class OpsServer:
    """A small HTTP server with only the ops routes (when no Slack HTTP server runs)."""

    def __init__(self, core: Core) -> None:
        self._app = web.Application()
        add_ops_routes(self._app, core)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self, host: str, port: int) -> None:
        self._runner = web.AppRunner(self._app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.port = int(self._runner.addresses[0][1])
        log.info("serving /healthz and /metrics on %s port %d", host, self.port)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
