"""The JSON shapes Discord sends for a message and a guild."""

from __future__ import annotations

from tests.fakes.discord.constants import FORWARD, INTENT_GUILD_MEMBERS, JSONDict
from tests.fakes.discord.ids import iso
from tests.fakes.discord.models import FakeGuild, FakeMessage
from tests.fakes.discord.state import DiscordState


class Payloads(DiscordState):
    """``message_payload`` (gateway and REST flavours) and ``guild_create``."""

    def message_payload(self, message: FakeMessage, *, gateway: bool = True) -> JSONDict:
        """The message as Discord shows it: over the gateway with ``guild_id`` and ``member``,
        in REST responses without them."""
        payload: JSONDict = {
            "id": str(message.id),
            "channel_id": str(message.channel_id),
            "type": message.type,
            "content": message.content,
            "author": message.author.to_payload(),
            "attachments": [a.to_payload() for a in message.attachments],
            "embeds": message.embeds,
            "mentions": [u.to_payload() for u in message.mentions],
            "mention_roles": [],
            "mention_everyone": message.mention_everyone,
            "pinned": False,
            "tts": message.tts,
            "timestamp": iso(message.id),
            "edited_timestamp": None if message.edited_at is None else iso(message.edited_at),
            "flags": message.flags,
            "components": message.components,
        }
        if message.nonce is not None:
            payload["nonce"] = message.nonce
        ref = message.message_reference
        if ref is not None and ref.get("message_id") is not None:
            target_id = int(ref["message_id"])
            payload["message_reference"] = {
                "type": int(ref.get("type", 0)),
                "message_id": str(target_id),
                "channel_id": str(ref.get("channel_id", message.channel_id)),
            }
            if message.guild_id is not None:
                payload["message_reference"]["guild_id"] = str(message.guild_id)
            target = self._messages_by_id.get(target_id)
            if int(ref.get("type", 0)) == FORWARD:
                pass  # a forward carries message_snapshots instead, never referenced_message
            elif target is not None and not target.deleted and target is not message:
                inner = self.message_payload(target, gateway=False)
                inner.pop("referenced_message", None)
                payload["referenced_message"] = inner
            else:
                payload["referenced_message"] = None
        if message.snapshots:
            payload["message_snapshots"] = message.snapshots
        if message.webhook_id is not None:
            payload["webhook_id"] = str(message.webhook_id)
            if message.webhook_id == self.application_id:  # the bot's interaction webhook
                payload["application_id"] = str(self.application_id)
        if message.interaction_id is not None:
            interaction = self.interactions.get(message.interaction_id)
            if interaction is not None:
                kind = int(interaction.payload.get("type", 2))
                metadata: JSONDict = {
                    "id": str(interaction.id),
                    "type": kind,
                    "user": interaction.user.to_payload(),
                    "authorizing_integration_owners": interaction.payload.get(
                        "authorizing_integration_owners", {}
                    ),
                }
                if kind == 3:  # a click on a message's component: that message
                    metadata["interacted_message_id"] = interaction.payload["message"]["id"]
                else:
                    metadata["name"] = interaction.payload.get("data", {}).get("name")
                    metadata["command_type"] = 1
                payload["interaction_metadata"] = metadata
        if message.thread_id is not None and message.thread_id in self.channels:
            payload["thread"] = self.channels[message.thread_id].to_payload()
        guild = None if message.guild_id is None else self.guilds.get(message.guild_id)
        if gateway and guild is not None:
            payload["guild_id"] = str(guild.id)
            if message.webhook_id is None or message.interaction_id is not None:
                payload["member"] = guild.member_payload(message.author, with_user=False)
            payload["mentions"] = [
                {**u.to_payload(), "member": guild.member_payload(u, with_user=False)}
                for u in message.mentions
            ]
        return payload

    def guild_create(self, guild: FakeGuild, intents: int | None = None) -> JSONDict:
        """The GUILD_CREATE payload for ``guild`` (members limited to the bot without the
        GUILD_MEMBERS intent, as on Discord)."""
        members = guild.members
        if intents is not None and not intents & INTENT_GUILD_MEMBERS:
            members = [u for u in members if u.id == self.bot.id]
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [r.to_payload() for r in guild.roles],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "max_members": 500_000,
            "max_video_channel_users": 25,
            "incidents_data": None,
            "joined_at": iso(guild.id),
            "large": False,
            "unavailable": False,
            "lazy": True,
            "member_count": len(guild.members),
            "voice_states": [],
            "members": [guild.member_payload(u) for u in members],
            "channels": [c.to_payload(with_guild_id=False) for c in guild.channels],
            "threads": [t.to_payload() for t in guild.threads],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }
