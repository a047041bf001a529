"""``FakeDiscord``: the state and the mixins on one aiohttp app; ``point_discord_py_at``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from aiohttp import web

from tests.fakes.discord.application import Application
from tests.fakes.discord.constants import API_PREFIX, GATEWAY_PATH
from tests.fakes.discord.history import History
from tests.fakes.discord.installs import UserInstalls
from tests.fakes.discord.records import normalize_route
from tests.fakes.discord.wire import Handler


class FakeDiscord(Application, UserInstalls, History):
    """A Discord look-alike on ``127.0.0.1`` (ephemeral port unless ``port`` is given)."""

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

    def _add_routes(self, app: web.Application) -> None:
        bot_routes: list[tuple[str, str, Handler]] = [
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
            ("GET", "/channels/{channel_id}/messages", self._list_messages),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self._get_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self._patch_message),
            ("POST", "/channels/{channel_id}/typing", self._typing),
            (
                "POST",
                "/channels/{channel_id}/messages/{message_id}/threads",
                self._thread_from_message,
            ),
        ]
        open_routes: list[tuple[str, str, Handler]] = [
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
