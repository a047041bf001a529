"""User installs and quoted messages, built by tests: what a user-installed app receives.

- ``private_channel(alice, bob)``: a DM (two users) or group DM (more) of others. The bot is no
  member there (``FakeChannel.bot_member`` False): its REST calls to the channel fail with 403
  ``50001 Missing Access`` and the gateway sends nothing from it, while an interaction from
  there and its webhook work, as on Discord.
- ``user_install_interaction``: an application command run through the invoking user's install
  (``authorizing_integration_owners`` ``{"1": user_id}``, plus ``"0"`` where the server added the
  app too), with the interaction ``context`` Discord gives it: 0 in a server, 1 in the bot's
  DM, 2 in any other DM or group DM.
- ``forward_create``: a forwarded message: no content of its own, ``message_reference`` of
  type 1 (FORWARD) to the original, and the original's content and attachments in
  ``message_snapshots`` (no ``referenced_message``, which only replies carry).
- A reply to a message the bot never saw needs no builder: ``message_create`` stores a message
  without dispatching it, and a reply to it (``message_reference=its id``) carries it in
  ``referenced_message``, as Discord sends it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tests.fakes.discord.builders import Builders
from tests.fakes.discord.constants import DM, FORWARD, GROUP_DM, JSONDict
from tests.fakes.discord.ids import iso, new_snowflake
from tests.fakes.discord.models import FakeChannel, FakeInteraction, FakeMessage, FakeUser

CONTEXT_GUILD, CONTEXT_BOT_DM, CONTEXT_PRIVATE_CHANNEL = 0, 1, 2
"""Interaction context types."""
GUILD_INSTALL, USER_INSTALL = "0", "1"
"""Application integration types, as keys of ``authorizing_integration_owners``."""
FLAG_HAS_SNAPSHOT = 1 << 14


class UserInstalls(Builders):
    """``private_channel``, ``user_install_interaction`` / ``send_user_install_interaction``,
    ``forward_create`` / ``send_forward``."""

    def private_channel(self, *members: FakeUser, name: str | None = None) -> FakeChannel:
        """A DM between two users, or a group DM of more, that the bot is not part of."""
        if len(members) < 2:
            raise ValueError("a DM of others needs at least two users")
        group = len(members) > 2
        channel = FakeChannel(
            id=new_snowflake(),
            type=GROUP_DM if group else DM,
            name=name if group else None,
            owner_id=members[0].id if group else None,
            recipients=list(members),
            bot_member=False,
        )
        self.channels[channel.id] = channel
        return channel

    def user_install_interaction(
        self,
        name: str,
        options: Mapping[str, str | int | float | bool] | None = None,
        *,
        channel_id: int,
        user: FakeUser | None = None,
    ) -> JSONDict:
        """``interaction_create`` as the user's install of the app sends it."""
        payload = self.interaction_create(name, options, user=user, channel_id=channel_id)
        channel = self.channels[channel_id]
        user = user or self.user
        owners = {USER_INSTALL: str(user.id)}
        if channel.guild_id is not None:
            context = CONTEXT_GUILD
            if channel.bot_member:  # the server added the app too
                owners = {GUILD_INSTALL: str(channel.guild_id), **owners}
        elif channel.bot_member:
            context = CONTEXT_BOT_DM
        else:
            context = CONTEXT_PRIVATE_CHANNEL
            # Outside the bot's channels the app only gets what a user install allows.
            payload["app_permissions"] = str((1 << 11) | (1 << 14) | (1 << 15) | (1 << 31))
        payload["context"] = context
        payload["authorizing_integration_owners"] = owners
        return payload

    async def send_user_install_interaction(
        self, name: str, options: Mapping[str, Any] | None = None, **kw: Any
    ) -> FakeInteraction:
        payload = self.user_install_interaction(name, options, **kw)
        await self.dispatch("INTERACTION_CREATE", payload)
        return self.interactions[int(payload["id"])]

    def forward_create(
        self,
        source: FakeMessage | int,
        channel_id: int | None = None,
        author: FakeUser | None = None,
    ) -> JSONDict:
        """Store ``author`` forwarding ``source`` (a stored message, e.g. from
        ``message_create`` in a channel the bot cannot see) to ``channel_id`` (default
        ``#general``), and return its MESSAGE_CREATE payload."""
        original = source if isinstance(source, FakeMessage) else self.message(source)
        channel = self.channels[channel_id if channel_id is not None else self.channel.id]
        reference: JSONDict = {
            "type": FORWARD,
            "message_id": original.id,
            "channel_id": original.channel_id,
        }
        if original.guild_id is not None:
            reference["guild_id"] = original.guild_id
        message = FakeMessage(
            id=new_snowflake(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author=author or self.user,
            message_reference=reference,
            flags=FLAG_HAS_SNAPSHOT,
            snapshots=[{"message": _snapshot(original)}],
        )
        self._store(message)
        return self.message_payload(message, gateway=True)

    async def send_forward(self, source: FakeMessage | int, **kw: Any) -> JSONDict:
        payload = self.forward_create(source, **kw)
        await self.dispatch("MESSAGE_CREATE", payload)
        return payload


def _snapshot(message: FakeMessage) -> JSONDict:
    """The fields of a message a snapshot keeps (no author, ids or reference)."""
    mentions: Sequence[FakeUser] = message.mentions
    return {
        "type": message.type,
        "content": message.content,
        "embeds": message.embeds,
        "attachments": [a.to_payload() for a in message.attachments],
        "timestamp": iso(message.id),
        "edited_timestamp": None if message.edited_at is None else iso(message.edited_at),
        "flags": message.flags,
        "mentions": [u.to_payload() for u in mentions],
        "mention_roles": [],
        "components": message.components,
    }
