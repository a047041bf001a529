"""Channel history over REST (``GET /channels/{id}/messages``) and message context-menu
commands (type 3 application commands) as a user invokes them on a message."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from tests.fakes.discord.builders import Builders
from tests.fakes.discord.constants import JSONDict
from tests.fakes.discord.messages import Messages
from tests.fakes.discord.models import FakeInteraction, FakeMessage, FakeUser
from tests.fakes.discord.wire import ApiError, Ctx, form_error, json_response

HISTORY_DEFAULT_LIMIT: Final = 50
HISTORY_MAX_LIMIT: Final = 100
MESSAGE_COMMAND: Final = 3


class History(Messages, Builders):
    """Discord returns a channel's messages newest first, at most 100 a request, before or
    after a message id (``around`` is not emulated: the bot does not use it)."""

    async def _list_messages(self, ctx: Ctx) -> web.Response:
        channel = self._channel(ctx.int_param("channel_id"))
        query = ctx.request.query
        if "around" in query:
            raise ApiError(400, 0, "around is not emulated by this fake")
        try:
            limit = int(query.get("limit", HISTORY_DEFAULT_LIMIT))
        except ValueError:
            raise form_error("limit", "NUMBER_TYPE_COERCE", "Value is not int.") from None
        if not 1 <= limit <= HISTORY_MAX_LIMIT:
            raise form_error(
                "limit",
                "NUMBER_TYPE_MAX",
                f"int value should be between 1 and {HISTORY_MAX_LIMIT}.",
            )
        found = [m for m in self.messages_in(channel.id) if not m.ephemeral]
        if "before" in query:
            before = _snowflake(query["before"], "before")
            found = [m for m in found if m.id < before]
            page = found[-limit:]
        elif "after" in query:
            after = _snowflake(query["after"], "after")
            page = [m for m in found if m.id > after][:limit]
        else:
            page = found[-limit:]
        newest_first = sorted(page, key=lambda m: m.id, reverse=True)
        return json_response([self.message_payload(m, gateway=False) for m in newest_first])

    def message_command_create(
        self,
        name: str,
        target: FakeMessage,
        *,
        user: FakeUser | None = None,
        locale: str = "en-US",
    ) -> JSONDict:
        """The INTERACTION_CREATE payload of a message context-menu command ``name`` used on
        ``target``: ``data.type`` 3, ``data.target_id`` and the message in
        ``data.resolved.messages``; ``locale`` is the user's client language."""
        payload = self.interaction_create(name, user=user, channel_id=target.channel_id)
        data = payload["data"]
        data.pop("options", None)
        data["type"] = MESSAGE_COMMAND
        data["target_id"] = str(target.id)
        data["resolved"] = {
            "messages": {str(target.id): self.message_payload(target, gateway=False)}
        }
        payload["locale"] = locale
        return payload

    async def send_message_command(
        self,
        name: str,
        target: FakeMessage,
        *,
        user: FakeUser | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """``message_command_create`` + dispatch; returns the interaction's record."""
        payload = self.message_command_create(name, target, user=user, locale=locale)
        await self.dispatch("INTERACTION_CREATE", payload)
        return self.interactions[int(payload["id"])]


def _snowflake(value: str, name: str) -> int:
    if not value.isdigit():
        raise form_error(name, "NUMBER_TYPE_COERCE", f'Value "{value}" is not snowflake.')
    return int(value)
