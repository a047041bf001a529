"""``FakeSlack``: the state and the protocol mixins on one aiohttp app."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from aiohttp import web

from tests.fakes.slack.chat import Chat
from tests.fakes.slack.events import EventDelivery
from tests.fakes.slack.hosting import Hosting
from tests.fakes.slack.socket_mode import SocketMode
from tests.fakes.slack.state import Method
from tests.fakes.slack.views import Views
from tests.fakes.slack.web_api import WebApi


class FakeSlack(WebApi, Chat, Views, Hosting, EventDelivery, SocketMode):
    """A Slack look-alike on ``127.0.0.1`` (ephemeral port unless ``port`` is given).

    ``api_url`` (``http://127.0.0.1:PORT/api/``) is the clients' ``base_url``. Everything is
    recorded; nothing is shared between instances. All state lives on the event loop that runs
    the server: touch it from that loop only.
    """

    def _method_table(self) -> dict[str, Method]:
        return {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.startStream": self._chat_start_stream,
            "chat.appendStream": self._chat_append_stream,
            "chat.stopStream": self._chat_stop_stream,
            "assistant.threads.setStatus": self._assistant_set_status,
            "assistant.threads.setSuggestedPrompts": self._assistant_set_prompts,
            "assistant.threads.setTitle": self._assistant_set_title,
            "views.publish": self._views_publish,
            "views.open": self._views_open,
            "apps.connections.open": self._apps_connections_open,
        }

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
