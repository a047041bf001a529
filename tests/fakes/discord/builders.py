"""What users do, built and dispatched by tests: messages, slash commands and button clicks."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any

from tests.fakes.discord.cdn import Cdn
from tests.fakes.discord.components import find_button
from tests.fakes.discord.constants import DEFAULT_PERMISSIONS, MENTION, JSONDict
from tests.fakes.discord.gateway import Gateway
from tests.fakes.discord.ids import new_snowflake
from tests.fakes.discord.models import AttachmentSpec, FakeInteraction, FakeMessage, FakeUser


class Builders(Gateway, Cdn):
    """``message_create`` / ``send_user_message``, ``interaction_create`` /
    ``send_interaction`` (slash commands) and ``component_interaction_create`` /
    ``click_button`` (a button on a message)."""

    def message_create(
        self,
        channel_id: int | None = None,
        author: FakeUser | None = None,
        content: str = "",
        *,
        mentions: Sequence[FakeUser] | None = None,
        message_reference: int | JSONDict | None = None,
        attachments: Sequence[AttachmentSpec | tuple[str, bytes]] = (),
        message_id: int | None = None,
        webhook_id: int | None = None,
    ) -> JSONDict:
        """Store a message from a user and return its MESSAGE_CREATE payload (to ``dispatch``).

        Defaults: ``#general``, from ``fake.user``. ``mentions`` default to the users mentioned
        as ``<@id>`` in ``content`` (how Discord derives them); put ``fake.bot.mention`` in the
        content to address the bot. ``message_reference`` is a message id in the same channel
        (or a reference dict): the payload then carries ``referenced_message`` and type 19.
        ``attachments`` are served at ``/attachments/{channel}/{id}/{filename}``.

        ``webhook_id``: a message posted through a channel webhook. As Discord documents it,
        the author is then the webhook itself (its id, name and avatar; by default
        ``Captain Hook``, without ``bot``), there is no ``member``, and ``webhook_id`` is set.
        """
        channel = self.channels[channel_id if channel_id is not None else self.channel.id]
        if webhook_id is not None and author is None:
            author = FakeUser(id=webhook_id, username="Captain Hook")
        author = author or self.user
        msg_id = message_id if message_id is not None else new_snowflake()
        if mentions is None:
            mentioned_ids = {int(i) for i in MENTION.findall(content)}
            mentions = [u for uid, u in self.users.items() if uid in mentioned_ids]
        reference: JSONDict | None = None
        if isinstance(message_reference, int):
            reference = {"type": 0, "message_id": message_reference, "channel_id": channel.id}
        elif message_reference is not None:
            reference = dict(message_reference)
        message = FakeMessage(
            id=msg_id,
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author=author,
            content=content,
            message_reference=reference,
            mentions=list(mentions),
            mention_everyone="@everyone" in content or "@here" in content,
            type=19 if reference is not None else 0,
            webhook_id=webhook_id,
        )
        for spec in attachments:
            if isinstance(spec, tuple):
                spec = AttachmentSpec(filename=spec[0], data=spec[1])
            attachment = self._new_attachment(
                channel.id, spec.filename, spec.data, spec.content_type, spec.description
            )
            attachment.declared_size = spec.declared_size
            attachment.served_size = spec.served_size
            message.attachments.append(attachment)
        self._store(message)
        return self.message_payload(message, gateway=True)

    async def send_user_message(
        self,
        channel_id: int | None = None,
        author: FakeUser | None = None,
        content: str = "",
        **kwargs: Any,
    ) -> JSONDict:
        """``message_create`` + ``dispatch("MESSAGE_CREATE", ...)``; returns the payload."""
        payload = self.message_create(channel_id, author, content, **kwargs)
        await self.dispatch("MESSAGE_CREATE", payload)
        return payload

    def interaction_create(
        self,
        name: str,
        options: Mapping[str, str | int | float | bool] | None = None,
        *,
        user: FakeUser | None = None,
        channel_id: int | None = None,
    ) -> JSONDict:
        """An INTERACTION_CREATE payload for an application command (type 2) and its record in
        ``interactions`` (token, callbacks, responses).

        ``options`` as ``{"question": "hi"}`` become typed options (str 3, int 4, bool 5,
        float 10). ``data.guild_id`` and the command id come from the last sync of ``name``
        (guild sync first) when there was one.
        """
        channel = self.channels[channel_id if channel_id is not None else self.channel.id]
        guild = self._guild_of(channel)
        option_list = [_option(k, v) for k, v in (options or {}).items()]
        data: JSONDict = {"name": name, "type": 1, "options": option_list}
        command_guild = guild.id if guild and (guild.id, name) in self._command_ids else None
        data["id"] = str(self._command_ids.get((command_guild, name), new_snowflake()))
        if command_guild is not None:
            data["guild_id"] = str(command_guild)
        return self._interaction(2, data, channel.id, user or self.user)

    def component_interaction_create(
        self, message_id: int, custom_id: str, *, user: FakeUser | None = None
    ) -> JSONDict:
        """An INTERACTION_CREATE payload for ``user`` clicking the button ``custom_id`` on a
        message (a message component, type 3, with the message in it), and its record in
        ``interactions``. ``LookupError`` if the message shows no such button."""
        message = self.message(message_id)
        find_button(message.components, custom_id)
        data: JSONDict = {"custom_id": custom_id, "component_type": 2}
        extra = {"message": self.message_payload(message, gateway=False)}
        return self._interaction(3, data, message.channel_id, user or self.user, extra)

    async def click_button(
        self, message_id: int, custom_id: str, *, user: FakeUser | None = None
    ) -> FakeInteraction:
        """``component_interaction_create`` + ``dispatch``; returns the interaction's record."""
        payload = self.component_interaction_create(message_id, custom_id, user=user)
        await self.dispatch("INTERACTION_CREATE", payload)
        return self.interactions[int(payload["id"])]

    def _interaction(
        self,
        kind: int,
        data: JSONDict,
        channel_id: int,
        user: FakeUser,
        extra: JSONDict | None = None,
    ) -> JSONDict:
        channel = self.channels[channel_id]
        guild = self._guild_of(channel)
        interaction_id = new_snowflake()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
        perms = str(guild.permissions() if guild else DEFAULT_PERMISSIONS)
        channel_payload = channel.to_payload()
        if guild is not None:
            channel_payload["permissions"] = perms
        payload: JSONDict = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "channel_id": str(channel.id),
            "channel": channel_payload,
            "token": token,
            "version": 1,
            "app_permissions": perms,
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
            **(extra or {}),
        }
        if guild is not None:
            payload["guild_id"] = str(guild.id)
            payload["guild"] = {"id": str(guild.id), "locale": "en-US", "features": []}
            payload["guild_locale"] = "en-US"
            payload["member"] = {**guild.member_payload(user), "permissions": perms}
            payload["context"] = 0
            payload["authorizing_integration_owners"] = {"0": str(guild.id)}
        else:
            payload["user"] = user.to_payload()
            payload["context"] = 1
            payload["authorizing_integration_owners"] = {"0": "0"}
        self.interactions[interaction_id] = FakeInteraction(
            id=interaction_id,
            token=token,
            payload=payload,
            channel_id=channel.id,
            guild_id=guild.id if guild else None,
            user=user,
            created_at=time.monotonic(),
        )
        return payload

    async def send_interaction(
        self, name: str, options: Mapping[str, Any] | None = None, **kw: Any
    ) -> FakeInteraction:
        """``interaction_create`` + ``dispatch("INTERACTION_CREATE", ...)``; returns the record."""
        payload = self.interaction_create(name, options, **kw)
        await self.dispatch("INTERACTION_CREATE", payload)
        return self.interactions[int(payload["id"])]


def _option(name: str, value: str | int | float | bool) -> JSONDict:
    if isinstance(value, bool):
        kind = 5
    elif isinstance(value, int):
        kind = 4
    elif isinstance(value, float):
        kind = 10
    else:
        kind = 3
    return {"name": name, "type": kind, "value": value}
