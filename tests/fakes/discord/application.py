"""The application: who the bot is, command sync, interaction callbacks and their webhooks."""

from __future__ import annotations

import hashlib
import time

from aiohttp import web

from tests.fakes.discord.constants import (
    CB_DEFERRED_MESSAGE,
    CB_MESSAGE,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    INTERACTION_TIMEOUT,
    JSONDict,
)
from tests.fakes.discord.ids import new_snowflake
from tests.fakes.discord.messages import Messages
from tests.fakes.discord.models import FakeInteraction, FakeMessage
from tests.fakes.discord.records import CommandSync
from tests.fakes.discord.wire import ApiError, Ctx, form_error, json_response, unknown


class Application(Messages):
    """Login identity, ``PUT`` of commands, and answering interactions."""

    # ----------------------------------------------------------------- identity

    async def _get_me(self, ctx: Ctx) -> web.Response:
        payload = {
            **self.bot.to_payload(),
            "verified": True,
            "mfa_enabled": False,
            "locale": "en-US",
            "flags": 0,
            "email": None,
            "banner": None,
            "accent_color": None,
        }
        return json_response(payload)

    async def _get_application(self, ctx: Ctx) -> web.Response:
        owner = self.user
        return json_response(
            {
                "id": str(self.application_id),
                "name": self.bot.username,
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "bot": self.bot.to_payload(),
                "owner": owner.to_payload(),
                "team": None,
                "verify_key": hashlib.sha256(self.token.encode()).hexdigest(),
                "flags": self.application_flags,
                "hook": True,
                "is_monetized": False,
                "interactions_endpoint_url": None,
                "redirect_uris": [],
                "tags": [],
                "approximate_guild_count": len(self.guilds),
                "integration_types_config": {"0": {}},
            }
        )

    # ----------------------------------------------------------------- commands

    def _check_application(self, ctx: Ctx) -> int | None:
        if ctx.param("application_id") != str(self.application_id):
            raise ApiError(403, 50001, "Missing Access")
        if "guild_id" not in ctx.request.match_info:
            return None
        guild_id = ctx.int_param("guild_id")
        if guild_id not in self.guilds:
            raise ApiError(403, 50001, "Missing Access")
        return guild_id

    async def _put_commands(self, ctx: Ctx) -> web.Response:
        guild_id = self._check_application(ctx)
        if not isinstance(ctx.body, list):
            raise ApiError(400, 50035, "Invalid Form Body")
        registered: list[JSONDict] = []
        for index, command in enumerate(ctx.body):
            if not isinstance(command, dict) or not command.get("name"):
                raise form_error(f"{index}.name", "BASE_TYPE_REQUIRED", "This field is required")
            name = str(command["name"])
            command_id = self._command_ids.setdefault((guild_id, name), new_snowflake())
            stored: JSONDict = {
                "type": 1,
                "description": "",
                "options": [],
                "default_member_permissions": None,
                "nsfw": False,
                **command,
                "id": str(command_id),
                "application_id": str(self.application_id),
                "version": str(new_snowflake()),
            }
            if guild_id is not None:
                stored["guild_id"] = str(guild_id)
            registered.append(stored)
        names = {c["name"] for c in registered}
        for key in [k for k in self._command_ids if k[0] == guild_id and k[1] not in names]:
            del self._command_ids[key]
        self.commands[guild_id] = registered
        self.command_syncs.append(CommandSync(guild_id, registered, time.time()))
        return json_response(registered)

    # ----------------------------------------------------------------- interactions

    def _interaction_by_token(self, ctx: Ctx) -> FakeInteraction:
        if ctx.param("webhook_id") != str(self.application_id):
            raise unknown("Webhook", 10015)
        token = ctx.param("webhook_token")
        for interaction in self.interactions.values():
            if interaction.token == token and interaction.acknowledged:
                return interaction
        raise unknown("Webhook", 10015)

    async def _interaction_callback(self, ctx: Ctx) -> web.Response:
        interaction = self.interactions.get(ctx.int_param("interaction_id"))
        if interaction is None or interaction.token != ctx.param("interaction_token"):
            raise ApiError(404, 10062, "Unknown interaction")
        if interaction.acknowledged:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        if time.monotonic() - interaction.created_at > INTERACTION_TIMEOUT:
            raise ApiError(404, 10062, "Unknown interaction")
        body = ctx.json_object()
        callback_type = body.get("type")
        data = body.get("data") or {}
        if not isinstance(callback_type, int) or not isinstance(data, dict):
            raise form_error("type", "BASE_TYPE_REQUIRED", "This field is required")
        channel = self._channel(interaction.channel_id)
        ephemeral = bool(int(data.get("flags") or 0) & FLAG_EPHEMERAL)
        message: FakeMessage | None = None
        if callback_type == CB_MESSAGE:
            message = self._new_bot_message(
                channel,
                data,
                error_prefix="data.",
                message_type=20,
                webhook=True,
                interaction=interaction,
                flags=FLAG_EPHEMERAL if ephemeral else 0,
            )
        elif callback_type == CB_DEFERRED_MESSAGE:
            message = self._new_bot_message(
                channel,
                {},
                allow_empty=True,
                message_type=20,
                webhook=True,
                interaction=interaction,
                flags=FLAG_LOADING | (FLAG_EPHEMERAL if ephemeral else 0),
            )
        interaction.callbacks.append(body)
        interaction.response_type = callback_type
        interaction.ephemeral = ephemeral
        if message is not None:
            interaction.original_message_id = message.id
            if not message.ephemeral:
                await self._dispatch_if_connected("MESSAGE_CREATE", self.message_payload(message))
        if ctx.request.query.get("with_response") not in ("1", "true", "True"):
            return web.Response(status=204)
        callback: JSONDict = {
            "id": str(interaction.id),
            "type": 2,
            "response_message_loading": callback_type == CB_DEFERRED_MESSAGE,
            "response_message_ephemeral": ephemeral,
        }
        resource: JSONDict = {"type": callback_type}
        if message is not None:
            callback["response_message_id"] = str(message.id)
            resource["message"] = self.message_payload(message, gateway=False)
        return json_response({"interaction": callback, "resource": resource})

    async def _execute_webhook(self, ctx: Ctx) -> web.Response:
        interaction = self._interaction_by_token(ctx)
        body = ctx.json_object()
        wait = ctx.request.query.get("wait") in ("1", "true", "True")
        original = (
            None
            if interaction.original_message_id is None
            else self._messages_by_id.get(interaction.original_message_id)
        )
        if (
            interaction.response_type == CB_DEFERRED_MESSAGE
            and original is not None
            and original.loading
            and not interaction.followup_ids
        ):
            # Discord: the first follow-up after a deferred "thinking" response edits the
            # loading message (keeping the ephemerality chosen at defer time).
            self._edit(original, {k: v for k, v in body.items() if k != "flags"})
            interaction.followup_ids.append(original.id)
            if not original.ephemeral:
                await self._dispatch_if_connected("MESSAGE_UPDATE", self.message_payload(original))
            message = original
        else:
            ephemeral = bool(int(body.get("flags") or 0) & FLAG_EPHEMERAL)
            message = self._new_bot_message(
                self._channel(interaction.channel_id),
                body,
                webhook=True,
                interaction=interaction,
                flags=FLAG_EPHEMERAL if ephemeral else 0,
            )
            interaction.followup_ids.append(message.id)
            if not message.ephemeral:
                await self._dispatch_if_connected("MESSAGE_CREATE", self.message_payload(message))
        if not wait:
            return web.Response(status=204)
        return json_response(self.message_payload(message, gateway=False))

    def _webhook_message(self, ctx: Ctx, interaction: FakeInteraction) -> FakeMessage:
        raw = ctx.param("message_id")
        if raw == "@original":
            if interaction.original_message_id is None:
                raise unknown("Message", 10008)
            message_id = interaction.original_message_id
        else:
            message_id = ctx.int_param("message_id")
            if message_id not in (interaction.original_message_id, *interaction.followup_ids):
                raise unknown("Message", 10008)
        message = self._messages_by_id.get(message_id)
        if message is None or message.deleted:
            raise unknown("Message", 10008)
        return message

    async def _edit_webhook_message(self, ctx: Ctx) -> web.Response:
        message = self._webhook_message(ctx, self._interaction_by_token(ctx))
        self._edit(message, ctx.json_object())
        if not message.ephemeral:
            await self._dispatch_if_connected("MESSAGE_UPDATE", self.message_payload(message))
        return json_response(self.message_payload(message, gateway=False))
