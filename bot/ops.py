"""``GET /healthz`` and ``GET /metrics`` for whoever runs the bot.

In Slack's HTTP mode they share the events server's port. Otherwise (Discord, Socket Mode)
``python -m bot`` serves them on ``$PORT`` when ``PORT`` is set, as Heroku and most platforms
set it for a web process; with no ``PORT`` nothing listens.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from bot.core import Core

log = logging.getLogger(__name__)


def add_ops_routes(app: web.Application, core: Core, healthy: Callable[[], bool]) -> None:
    async def healthz(request: web.Request) -> web.Response:
        """200 while the bot takes events and its store answers; 503 otherwise."""
        if not healthy():
            return web.json_response({"ok": False, "reason": "not running"}, status=503)
        try:
            async with asyncio.timeout(2.0):
                await core.store.get_state(key="healthz")
        except Exception as exc:
            log.warning("healthz: the store does not answer (%s)", type(exc).__name__)
            return web.json_response({"ok": False, "reason": "store"}, status=503)
        return web.json_response({"ok": True})

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(
            body=core.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)


class OpsServer:
    """A small HTTP server with only the ops routes (when no Slack HTTP server runs)."""

    def __init__(self, core: Core, healthy: Callable[[], bool]) -> None:
        self._app = web.Application()
        add_ops_routes(self._app, core, healthy)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self, port: int) -> None:
        self._runner = web.AppRunner(self._app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "0.0.0.0", port).start()
        self.port = int(self._runner.addresses[0][1])
        log.info("serving /healthz and /metrics on port %d", self.port)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
