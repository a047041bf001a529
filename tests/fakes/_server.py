"""What every fake shares: an aiohttp app on 127.0.0.1, started and stopped, ``async with``-able.

A fake supplies its routes (``_make_app``) and, where it holds open sockets or hung requests,
what to release before shutdown (``_on_stopping``). The port is ephemeral unless one is given.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from aiohttp import web


class LoopbackServer:
    def __init__(self, *, port: int = 0) -> None:
        self._port = port
        self._runner: web.AppRunner | None = None

    def _make_app(self) -> web.Application:
        raise NotImplementedError

    def _runner_options(self) -> dict[str, Any]:
        """Extra ``web.AppRunner`` options (e.g. ``handler_cancellation``)."""
        return {}

    def _site_options(self) -> dict[str, Any]:
        """Extra ``web.TCPSite`` options (e.g. a larger backlog for load tests)."""
        return {}

    async def _on_started(self) -> None:
        """Runs on the serving loop after the site is up (make per-loop asyncio objects here)."""

    async def _on_stopping(self) -> None:
        """Release what would keep shutdown waiting: websockets, hung handlers, client sessions."""

    async def start(self) -> Self:
        if self._runner is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        runner = web.AppRunner(
            self._make_app(),
            handle_signals=False,
            access_log=None,
            shutdown_timeout=1.0,
            **self._runner_options(),
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self._port, **self._site_options())
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        await self._on_started()
        return self

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        await self._on_stopping()
        await runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._runner is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return self._port

    @property
    def host_url(self) -> str:
        """``http://127.0.0.1:PORT``, no trailing slash."""
        return f"http://127.0.0.1:{self.port}"
