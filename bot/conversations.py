"""What adapters may ask about conversations: the named seam between them and the store.

Adapters decide whether a platform message is for the bot and which conversation it continues;
the answers they need live in the store, which only ``bot/`` reaches. Each method is one
question an adapter asks, in the platform-neutral terms of ``ConversationKey``.
"""

from __future__ import annotations

import logging

from bot.commands import MENTION_SETTING
from bot.events import ConversationKey
from storage.base import Outcome, Store

log = logging.getLogger(__name__)


class Conversations:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def bot_takes_part(self, conversation: ConversationKey) -> bool:
        """Has the bot answered in this conversation (so an unaddressed follow-up is for it)?"""
        return await self._store.has_conversation(conversation=str(conversation))

    async def mention_required(self, channel: ConversationKey) -> bool | None:
        """``/settings mention`` for this channel: True (required), False (optional), or None
        when the channel has not set it (the platform's default applies)."""
        rule = await self._store.get_channel_setting(channel=str(channel), name=MENTION_SETTING)
        return None if rule is None else rule == "required"

    async def latest_of(self, *, user: str, channel: ConversationKey) -> ConversationKey | None:
        """The user's most recent conversation in a channel (``user`` is ``platform:id``):
        what ``/reset`` or ``/files`` typed outside a thread means."""
        latest = await self._store.latest_conversation(user_id=user, channel=str(channel))
        return ConversationKey.parse(latest) if latest else None

    async def remember_message(self, message: str, conversation: ConversationKey) -> None:
        """``message`` (a platform message id, e.g. ``discord:123``) belongs to
        ``conversation``: a reply to it later continues that conversation."""
        await self._store.set_state(key=_message_key(message), value=str(conversation))

    async def of_message(self, message: str) -> ConversationKey | None:
        """The conversation ``remember_message`` put ``message`` in, if any."""
        known = await self._store.get_state(key=_message_key(message))
        return ConversationKey.parse(known) if known else None

    async def first_to_act(self, action: str) -> bool:
        """True for the one caller, across every instance on the store, that should do
        ``action`` (e.g. ``discord:thread-for:123``: open the thread for a message); False for
        all the others. For what an adapter does before the core claims the event, when
        several instances receive the same message (unsharded Discord processes)."""
        if not await self._store.claim_event(event_id=action, conversation=action):
            return False
        try:
            await self._store.finish_event(event_id=action, outcome=Outcome.ANSWERED)
        except Exception:
            log.warning("could not close a one-time action's claim; a restart closes it")
        return True

    async def set_context_note(self, conversation: ConversationKey, note: str) -> None:
        """What the user is looking at while they talk in ``conversation`` (e.g. "The user
        is viewing the channel <#C123>."): a short note the model is given with each of the
        conversation's turns, until another replaces it."""
        await self._store.set_state(key=context_note_key(str(conversation)), value=note)

    async def recall(self, key: str) -> str | None:
        """An adapter's own small state (a greeting sent, a command set's hash)."""
        return await self._store.get_state(key=key)

    async def remember(self, key: str, value: str) -> None:
        await self._store.set_state(key=key, value=value)


def context_note_key(conversation: str) -> str:
    """Where ``set_context_note`` keeps a conversation's note (the turn reads it there)."""
    return f"context-note:{conversation}"


def _message_key(message: str) -> str:
    platform, _, ident = message.partition(":")
    return f"{platform}:message:{ident}"
