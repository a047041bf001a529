"""Discord messages -> the core's ``Event``: keys and decisions as pure functions.

``place_of`` and ``roles`` read discord.py's objects into the plain values the rest works on.

Conversations:

- a DM channel is one conversation (``discord:dm:CHANNEL``) until ``/reset``;
- a thread is one conversation (``discord:GUILD:THREAD``), its settings those of its parent;
- in a guild channel, a mention starts a conversation keyed by that message
  (``discord:GUILD:CHANNEL:MESSAGE``), and a reply to any message of it (the bot's answers
  included) continues it: the adapter finds the conversation of the replied-to message in the
  store, walking the reply chain a bounded number of hops.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import discord

from bot.events import Author, ConversationKey, Event, EventKind

PLATFORM = "discord"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_CHAIN = 12
"""Reply-chain hops walked to find a conversation before giving up (a new one starts)."""
NOT_LOADED = (
    "-# Discord hasn't told me about this server yet, so I can't answer here. "
    "Please try again in a minute."
)
"""Said when a mention or command comes from a place ``place_of`` cannot be sure of."""


@dataclass(frozen=True, slots=True)
class Place:
    """Where a message was written, as plain ids."""

    guild_id: int | None
    channel_id: int
    parent_id: int | None = None
    """A thread's text channel."""
    is_thread: bool = False

    @property
    def is_dm(self) -> bool:
        return self.guild_id is None


def place_of(channel: Any, guild_id: int | None = None) -> Place:
    """Where ``channel`` is, as plain ids. ``guild_id`` is the payload's, when the caller has
    it. Without a guild object (discord.py has not loaded the guild yet) the channel's own
    ``guild_id`` still makes it a guild channel: only a channel with no guild id is a DM."""
    guild = getattr(channel, "guild", None)
    if guild_id is None:
        guild_id = guild.id if guild is not None else getattr(channel, "guild_id", None)
    if isinstance(channel, discord.Thread):
        return Place(
            guild_id=guild_id,
            channel_id=channel.id,
            parent_id=channel.parent_id,
            is_thread=True,
        )
    return Place(guild_id=guild_id, channel_id=channel.id)


def roles(user: discord.abc.User) -> tuple[str, ...]:
    """A guild member's role ids (for role allowlists); none in DMs.

    The ids Discord sent with the member (``Member._roles``), not the roles discord.py could
    match in its guild cache (``Member.roles``): before a guild's GUILD_CREATE, or in an
    interaction from a guild the bot is not in, that cache has none, and every role was lost.
    The list never holds the @everyone role."""
    if not isinstance(user, discord.Member):
        return ()
    return tuple(str(role_id) for role_id in user._roles)


def channel_key(place: Place) -> ConversationKey:
    """Where per-channel settings live: a thread shares its parent channel's."""
    if place.is_dm:
        return ConversationKey(PLATFORM, ("dm", str(place.channel_id)))
    channel = place.parent_id if place.is_thread and place.parent_id else place.channel_id
    return ConversationKey(PLATFORM, (str(place.guild_id), str(channel)))


def place_conversation(place: Place) -> ConversationKey | None:
    """The conversation a DM or thread is; None in a guild channel (it depends on the message)."""
    if place.is_dm:
        return ConversationKey(PLATFORM, ("dm", str(place.channel_id)))
    if place.is_thread:
        return ConversationKey(PLATFORM, (str(place.guild_id), str(place.channel_id)))
    return None


def new_conversation(place: Place, message_id: int) -> ConversationKey:
    """A conversation started by a mention (or a slash command) in a guild channel."""
    return ConversationKey(PLATFORM, (str(place.guild_id), str(place.channel_id), str(message_id)))


def scrub(text: str) -> str:
    """``text`` with each lone surrogate (a JSON ``"\\ud800"`` escape decodes to one) replaced
    by U+FFFD: UTF-8 cannot encode them, so SQLite and HTTP clients would fail on them later."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def strip_bot_mention(text: str, bot_id: int) -> str:
    out = re.sub(rf"<@!?{bot_id}>", "", text)
    return re.sub(r"[ \t]{2,}", " ", out).strip()


def message_event(
    *,
    message_id: int,
    place: Place,
    conversation: ConversationKey,
    kind: EventKind,
    author_id: int,
    author_name: str,
    author_is_bot: bool,
    content: str,
    bot_id: int,
    author_roles: tuple[str, ...] = (),
) -> Event:
    return Event(
        platform=PLATFORM,
        event_id=f"{PLATFORM}:{message_id}",
        conversation=conversation,
        channel=channel_key(place),
        kind=kind,
        author=Author(
            id=str(author_id),
            display_name=scrub(author_name),
            is_bot=author_is_bot,
            roles=author_roles,
        ),
        text=scrub(strip_bot_mention(content, bot_id)),
        workspace=str(place.guild_id) if place.guild_id else None,
    )


def command_event(
    *,
    interaction_id: int,
    place: Place,
    conversation: ConversationKey,
    user_id: int,
    user_name: str,
    name: str,
    args: str,
    user_roles: tuple[str, ...] = (),
) -> Event:
    return Event(
        platform=PLATFORM,
        event_id=f"{PLATFORM}:interaction:{interaction_id}",
        conversation=conversation,
        channel=channel_key(place),
        kind=EventKind.COMMAND,
        author=Author(id=str(user_id), display_name=user_name, roles=user_roles),
        text=scrub(args),
        command=name,
        command_args=scrub(args),
        workspace=str(place.guild_id) if place.guild_id else None,
    )


def click_event(interaction: discord.Interaction[Any], name: str) -> Event:
    """A click on a button as an event of its clicker in the channel it was made in (a
    command ``name``, so the allowlists apply to it as to anything else)."""
    if interaction.channel is not None:
        place = place_of(interaction.channel, interaction.guild_id)
    else:
        place = Place(guild_id=interaction.guild_id, channel_id=interaction.channel_id or 0)
    return command_event(
        interaction_id=interaction.id,
        place=place,
        conversation=channel_key(place),
        user_id=interaction.user.id,
        user_name=interaction.user.display_name,
        name=name,
        args="",
        user_roles=roles(interaction.user),
    )
