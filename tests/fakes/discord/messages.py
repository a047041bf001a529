"""Channels and messages over REST: send, fetch, edit, typing, a thread from a message, DMs."""

from __future__ import annotations

import time

from aiohttp import web

from tests.fakes.discord.cdn import Cdn
from tests.fakes.discord.components import validate_components
from tests.fakes.discord.constants import (
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    MAX_CONTENT,
    MENTION,
    PUBLIC_THREAD,
    TEXT,
    JSONDict,
)
from tests.fakes.discord.gateway import Gateway
from tests.fakes.discord.ids import new_snowflake
from tests.fakes.discord.models import (
    FakeChannel,
    FakeInteraction,
    FakeMessage,
    FakeUser,
)
from tests.fakes.discord.rest import Rest
from tests.fakes.discord.wire import ApiError, Ctx, form_error, json_response, unknown


class Messages(Rest, Gateway, Cdn):
    """What the bot posts is stored and dispatched back over the gateway."""

    async def _get_channel(self, ctx: Ctx) -> web.Response:
        channel = self._channel(ctx.int_param("channel_id"))
        return json_response(channel.to_payload())

    async def _get_message(self, ctx: Ctx) -> web.Response:
        message = self._message_in(ctx.int_param("channel_id"), ctx.int_param("message_id"))
        return json_response(self.message_payload(message, gateway=False))

    async def _post_message(self, ctx: Ctx) -> web.Response:
        channel = self._channel(ctx.int_param("channel_id"))
        body = ctx.json_object()
        message = self._new_bot_message(channel, body)
        await self._dispatch_if_connected("MESSAGE_CREATE", self.message_payload(message))
        return json_response(self.message_payload(message, gateway=False))

    def _new_bot_message(
        self,
        channel: FakeChannel,
        body: JSONDict,
        *,
        error_prefix: str = "",
        allow_empty: bool = False,
        message_type: int | None = None,
        webhook: bool = False,
        interaction: FakeInteraction | None = None,
        flags: int | None = None,
    ) -> FakeMessage:
        _validate_message(body, prefix=error_prefix, allow_empty=allow_empty)
        reference = body.get("message_reference")
        target: FakeMessage | None = None
        if isinstance(reference, dict) and reference.get("message_id") is not None:
            target = self._messages_by_id.get(int(reference["message_id"]))
            if (target is None or target.deleted) and reference.get("fail_if_not_exists", True):
                raise form_error(
                    f"{error_prefix}message_reference", "REPLIES_UNKNOWN_MESSAGE", "Unknown message"
                )
        message = FakeMessage(
            id=new_snowflake(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author=self.bot,
            content=str(body.get("content") or ""),
            embeds=list(body.get("embeds") or []),
            allowed_mentions=body.get("allowed_mentions"),
            message_reference=reference if isinstance(reference, dict) else None,
            components=list(body.get("components") or []),
            tts=bool(body.get("tts", False)),
            nonce=None if body.get("nonce") is None else str(body["nonce"]),
            flags=int(body.get("flags") or 0) if flags is None else flags,
            webhook_id=self.application_id if webhook else None,
            interaction_id=interaction.id if interaction else None,
        )
        if message_type is not None:
            message.type = message_type
        elif message.message_reference is not None:
            message.type = 19
        message.mentions, message.mention_everyone = self._resolve_mentions(message, target)
        return self._store(message)

    def _resolve_mentions(
        self, message: FakeMessage, target: FakeMessage | None
    ) -> tuple[list[FakeUser], bool]:
        """Who is pinged: ``<@id>`` in content, filtered by ``allowed_mentions``; the replied-to
        author only with ``replied_user``. ``@everyone``/``@here`` only if parse has it."""
        allowed = message.allowed_mentions
        parse = ["users", "roles", "everyone"] if allowed is None else allowed.get("parse") or []
        listed_users = set() if allowed is None else {int(u) for u in allowed.get("users") or []}
        mentioned_ids = [int(i) for i in MENTION.findall(message.content)]
        users = [
            self.users[i]
            for i in dict.fromkeys(mentioned_ids)
            if i in self.users and ("users" in parse or i in listed_users)
        ]
        replied = allowed is None or bool(allowed.get("replied_user", False))
        if target is not None and replied and target.author not in users:
            users.append(target.author)
        everyone = "everyone" in parse and (
            "@everyone" in message.content or "@here" in message.content
        )
        return users, everyone

    def _edit(self, message: FakeMessage, body: JSONDict) -> None:
        _validate_message(body, prefix="", allow_empty=True)
        if "content" in body:
            message.content = str(body["content"] or "")
        if "embeds" in body:
            message.embeds = list(body["embeds"] or [])
        if "allowed_mentions" in body:
            message.allowed_mentions = body["allowed_mentions"]
        if "components" in body:
            message.components = list(body["components"] or [])
        if "flags" in body and body["flags"] is not None:
            keep = message.flags & FLAG_EPHEMERAL
            message.flags = (int(body["flags"]) & ~FLAG_LOADING) | keep
        target = None if message.reply_to is None else self._messages_by_id.get(message.reply_to)
        message.mentions, message.mention_everyone = self._resolve_mentions(message, target)
        message.flags &= ~FLAG_LOADING
        message.edits.append(body)
        message.edited_at = time.time()

    async def _patch_message(self, ctx: Ctx) -> web.Response:
        message = self._message_in(ctx.int_param("channel_id"), ctx.int_param("message_id"))
        if message.author.id != self.bot.id or message.webhook_id is not None:
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        self._edit(message, ctx.json_object())
        await self._dispatch_if_connected("MESSAGE_UPDATE", self.message_payload(message))
        return json_response(self.message_payload(message, gateway=False))

    async def delete_by_user(self, message_id: int) -> None:
        """The author deletes their message in the client (MESSAGE_DELETE is dispatched)."""
        await self._mark_deleted(self.message(message_id))

    async def _mark_deleted(self, message: FakeMessage) -> None:
        message.deleted = True
        if message.ephemeral:
            return
        data: JSONDict = {"id": str(message.id), "channel_id": str(message.channel_id)}
        if message.guild_id is not None:
            data["guild_id"] = str(message.guild_id)
        await self._dispatch_if_connected("MESSAGE_DELETE", data)

    async def _typing(self, ctx: Ctx) -> web.Response:
        self._channel(ctx.int_param("channel_id"))
        return web.Response(status=204)

    async def _thread_from_message(self, ctx: Ctx) -> web.Response:
        channel = self._channel(ctx.int_param("channel_id"))
        message = self._message_in(channel.id, ctx.int_param("message_id"))
        if channel.type != TEXT or channel.guild_id is None:
            raise ApiError(400, 50024, "Cannot execute action on this channel type")
        if message.thread_id is not None:
            raise ApiError(400, 160004, "A thread has already been created for this message")
        body = ctx.json_object()
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise form_error("name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        thread = FakeChannel(
            id=message.id,  # Discord gives a thread started from a message that message's id
            type=PUBLIC_THREAD,
            name=name,
            guild_id=channel.guild_id,
            parent_id=channel.id,
            owner_id=self.bot.id,
            auto_archive_duration=int(body.get("auto_archive_duration") or 1440),
        )
        self.channels[thread.id] = thread
        guild = self._guild_of(channel)
        if guild is not None:
            guild.threads.append(thread)
        message.thread_id = thread.id
        await self._dispatch_if_connected(
            "THREAD_CREATE", {**thread.to_payload(), "newly_created": True}
        )
        return json_response(thread.to_payload())

    async def _create_dm(self, ctx: Ctx) -> web.Response:
        body = ctx.json_object()
        try:
            user = self.users[int(body.get("recipient_id", 0))]
        except (KeyError, TypeError, ValueError):
            raise unknown("User", 10013) from None
        return json_response(self.dm_channel_for(user).to_payload())


def _validate_message(body: JSONDict, *, prefix: str, allow_empty: bool) -> None:
    content = body.get("content")
    if content is not None and not isinstance(content, str):
        raise form_error(f"{prefix}content", "BASE_TYPE_STRING", "Must be a string.")
    if content is not None and len(content) > MAX_CONTENT:
        raise form_error(
            f"{prefix}content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length."
        )
    if body.get("components") is not None:
        validate_components(body["components"], prefix=prefix)
    has_something = bool(
        content
        or body.get("embeds")
        or body.get("sticker_ids")
        or body.get("components")
        or body.get("poll")
        or body.get("attachments")
    )
    if not allow_empty and not has_something:
        raise ApiError(400, 50006, "Cannot send an empty message")
