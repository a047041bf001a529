"""Discord messages: which are for the bot, which conversation each continues, and the answer.

- Addressed: a DM, a mention, or (not addressed by name) a reply into one of the bot's
  conversations or a message in a thread it takes part in, unless that channel requires a
  mention. Without the Message Content intent such follow-ups reach the bot empty: the user is
  told to mention it instead.
- Reply chains: every message the bot reads or posts is remembered with its conversation; a
  reply continues the conversation of the nearest message up its chain (``MAX_CHAIN`` hops).
- Auto-threads (``DISCORD_AUTO_THREAD``): a mention in a text channel opens a thread, once the
  author is admitted (a new thread is visible to everyone).
- Attachments are downloaded in chunks and abandoned past MAX_FILE_MB: their declared size is
  never trusted.
- A message whose guild discord.py has not loaded (before its GUILD_CREATE, or unavailable) is
  still a guild message: its channel is looked up over REST, never taken for a DM; role ids
  come from the member in the payload, not from the guild cache.
- Quoted messages: a forward (its ``message_snapshots``) and the message a reply answers, when
  the bot never saw it (not in any of its conversations: ``referenced_message`` from the
  gateway, else one bounded REST fetch), are read with the message as marked context
  (``bot.quotes``), their files through the same attachment path. A forward's reference is
  not a reply chain: it never continues the conversation of the forwarded message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp
import discord

from adapters.common.download import read_capped
from adapters.common.inflight import InFlight
from adapters.discord.reply import NO_PINGS, DiscordReply, Editable, TypingHub, recorder
from adapters.discord.translate import (
    MAX_CHAIN,
    NOT_LOADED,
    Place,
    channel_key,
    message_event,
    new_conversation,
    place_conversation,
    place_of,
    roles,
    scrub,
    strip_bot_mention,
)
from bot.events import (
    Attachment,
    AttachmentUnavailable,
    ConversationKey,
    EventKind,
    Quote,
    QuoteKind,
)
from bot.quotes import MAX_QUOTES
from bot.results import Outcome
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.core import Core

log = logging.getLogger(__name__)

USER_MESSAGE_TYPES = frozenset({discord.MessageType.default, discord.MessageType.reply})
REFERENCE_FETCH_S = 5.0
"""Longest wait for the message a reply answers when the gateway did not include it."""
NEED_MENTION = (
    "-# I can't read replies that don't mention me here (the Message Content intent is off): "
    "keep the @mention on when you reply, or mention me."
)


class MessageHandler:
    """Turns each gateway message that is for the bot into a turn of the core, answered in
    the channel (or a new thread) by a streamed ``DiscordReply``."""

    def __init__(
        self,
        core: Core,
        settings: Settings,
        *,
        client: Callable[[], discord.Client | None],
        message_content: bool,
        cdn: aiohttp.ClientSession,
        typing: TypingHub,
        inflight: InFlight,
        outcomes: Counter[str],
    ) -> None:
        self.core = core
        self.settings = settings
        self._client = client
        """The connected client; None once the adapter closes, and messages are not taken."""
        self._message_content = message_content
        self._cdn = cdn
        """Attachment downloads (Discord's CDN needs no token; discord.py's session is private)."""
        self._typing = typing
        self._inflight = inflight
        self._outcomes = outcomes

    async def on_message(self, message: discord.Message) -> None:
        with self._inflight.track():
            await self._message(message)

    async def _message(self, message: discord.Message) -> None:
        client = self._client()
        if client is None or client.user is None:
            return
        me = client.user
        if message.author.id == me.id or message.type not in USER_MESSAGE_TYPES:
            return
        # getattr: discord.py leaves the attribute unset when a payload lacks "mentions".
        mentioned = any(user.id == me.id for user in getattr(message, "mentions", ()))
        place = await self._place_of_message(
            client, message, addressed=mentioned or message.reference is not None
        )
        if place is None:
            if mentioned and await self._first_to_act("hint", message):
                await _say(message, NOT_LOADED)
            self._outcomes[Outcome.REFUSED.value] += 1
            return
        conversation = place_conversation(place)
        kind = EventKind.DIRECT_MESSAGE if place.is_dm else EventKind.MENTION
        fetched: dict[int, discord.Message] = {}  # read over REST for this message, once each
        if conversation is None and _replies(message):
            conversation = await self._conversation_of_chain(message, fetched)
        if not (place.is_dm or mentioned):
            # Not addressed by name: a reply into one of our conversations, or a message in a
            # thread the bot takes part in, continues it; anything else is not for the bot.
            kind = EventKind.THREAD_FOLLOW_UP
            follows_up = conversation is not None and (
                not place.is_thread or await self.core.conversations.bot_takes_part(conversation)
            )
            if follows_up and place.is_thread:
                required = await self.core.conversations.mention_required(channel_key(place))
                follows_up = required is not True
            if not follows_up:
                self._outcomes[Outcome.IGNORED.value] += 1
                return
        event = message_event(
            message_id=message.id,
            place=place,
            conversation=conversation or new_conversation(place, message.id),
            kind=kind,
            author_id=message.author.id,
            author_name=message.author.display_name,
            # A webhook's message (a channel webhook, a followed channel's crosspost) has no
            # person behind it, and its author need not carry the bot flag.
            author_is_bot=message.author.bot or message.webhook_id is not None,
            content=message.content,
            bot_id=me.id,
            author_roles=roles(message.author),
        )

        in_dm = place.is_dm

        async def tell_privately(content: str) -> Any:
            if in_dm:
                return await message.channel.send(content, allowed_mentions=NO_PINGS)
            return await message.author.send(content, allowed_mentions=NO_PINGS)

        if (
            kind is EventKind.THREAD_FOLLOW_UP
            and not self._message_content
            and not message.content
            and not message.attachments
            and not message.message_snapshots
        ):
            # Discord hides this message's text from a bot without the intent.
            if (
                not place.is_thread
                and self.core.allows(event)
                and await self._first_to_act("hint", message)
            ):
                await _say(message, NEED_MENTION)
            self._outcomes[Outcome.IGNORED.value] += 1
            return
        target: discord.abc.Messageable = message.channel
        admitted = False
        if (
            conversation is None
            and self.settings.discord_auto_thread
            and isinstance(message.channel, discord.TextChannel)
        ):
            # One thread, whichever instances receive the message (unsharded processes, a
            # gateway replay): only the first opens it; for the others it is a duplicate.
            if not await self._first_to_act("thread", message):
                self._outcomes[Outcome.DUPLICATE.value] += 1
                return
            # A new thread is visible to everyone: the author is checked before it opens.
            if await self.core.admit(event, tell_privately) is not None:
                self._outcomes[Outcome.REFUSED.value] += 1
                return
            admitted = True
            thread = await message.create_thread(name=_thread_name(message, me.id))
            target = thread
            place = place_of(thread)
            conversation = place_conversation(place)
        if conversation is None:
            conversation = new_conversation(place, message.id)
        event = dataclasses.replace(
            event, conversation=conversation
        )  # a thread's channel key is its parent's
        quotes, quoted_files = await self._quoted(message, fetched)
        files = [*message.attachments, *quoted_files]
        if files:
            event = dataclasses.replace(
                event, attachments=tuple(self._attachment(a) for a in files)
            )
        if quotes:
            event = dataclasses.replace(event, quotes=quotes)
        address: dict[str, int] = {"channel": _channel_id(target, message)}
        if target is message.channel:
            address["message"] = message.id
        event = dataclasses.replace(event, address=json.dumps(address))
        await self.core.conversations.remember_message(f"discord:{message.id}", conversation)
        reply = self._reply_to(message, target, conversation, tell_privately)
        result = await self.core.handle(event, reply, admitted=admitted)
        self._outcomes[result.outcome.value] += 1

    async def _place_of_message(
        self, client: discord.Client, message: discord.Message, *, addressed: bool
    ) -> Place | None:
        """Where ``message`` was written; None if that cannot be known for sure. ``addressed``:
        it mentions the bot or replies to a message."""
        channel = message.channel
        if not isinstance(channel, discord.PartialMessageable):
            return place_of(channel)
        # discord.py has not loaded this channel: its guild's GUILD_CREATE has not come yet
        # (or the guild is unavailable), or the thread is not cached. The payload's guild_id
        # (kept on the partial channel) makes it a guild message; Discord's REST says whether
        # it is a thread, and of which channel, which the conversation and settings keys need.
        place = place_of(channel)
        as_thread = place_conversation(dataclasses.replace(place, is_thread=True))
        if not addressed and (
            as_thread is None or not await self.core.conversations.bot_takes_part(as_thread)
        ):
            # Neither addressed to the bot nor in a thread it takes part in: ignored whatever
            # the channel is, so REST is not asked (with Message Content on, every message of
            # a guild still loading would be one request).
            return place
        try:
            fetched = await client.fetch_channel(channel.id)
        except Exception as exc:  # HTTP errors, or an answer discord.py cannot build
            log.warning(
                "discord: could not look up a channel of a guild not loaded yet (%s)",
                type(exc).__name__,
            )
            return None
        place = place_of(fetched)
        if place.guild_id != channel.guild_id:
            log.warning("discord: the gateway and REST disagree on a channel's guild")
            return None
        return place

    async def _first_to_act(self, action: str, message: discord.Message) -> bool:
        """Is this instance the one to do ``action`` for ``message`` before the core claims it?
        Every unsharded process receives every message; a store that does not answer lets
        this one act (a second hint is better than none)."""
        try:
            return await self.core.conversations.first_to_act(f"discord:{action}:{message.id}")
        except Exception:
            log.exception("could not record a one-time action; acting anyway")
            return True

    def _reply_to(
        self,
        message: discord.Message,
        target: discord.abc.Messageable,
        conversation: ConversationKey,
        tell_privately: Any,
    ) -> DiscordReply:
        async def send_first(content: str) -> Editable:
            if target is message.channel:
                return await _reply(message, content)
            return await target.send(content, allowed_mentions=NO_PINGS)

        async def send_more(content: str) -> Editable:
            return await target.send(content, allowed_mentions=NO_PINGS)

        async def send_question(
            content: str, view: discord.ui.View, mentions: discord.AllowedMentions
        ) -> Editable:
            return await target.send(content, view=view, allowed_mentions=mentions)

        return DiscordReply(
            send_first=send_first,
            send_more=send_more,
            send_private=tell_privately,
            send_question=send_question,
            sent=recorder(self.core.conversations, conversation),
            typing=(self._typing, target, _channel_id(target, message)),
            interval_s=1.5,
        )

    async def _quoted(
        self, message: discord.Message, fetched: dict[int, discord.Message]
    ) -> tuple[tuple[Quote, ...], list[discord.Attachment]]:
        """The messages ``message`` brings along (what it forwards; what it replies to, if the
        bot never saw that) as quotes, and their files."""
        quotes: list[Quote] = []
        files: list[discord.Attachment] = []
        for snapshot in message.message_snapshots[:MAX_QUOTES]:
            quotes.append(Quote(QuoteKind.FORWARDED, scrub(snapshot.content)))
            files.extend(snapshot.attachments)
        replied = await self._unseen_replied_to(message, fetched)
        if replied is not None:
            author = scrub(replied.author.display_name)
            quotes.append(Quote(QuoteKind.REPLIED_TO, scrub(replied.content), author=author))
            files.extend(replied.attachments)
        return tuple(quotes), files

    async def _unseen_replied_to(
        self, message: discord.Message, fetched: dict[int, discord.Message]
    ) -> discord.Message | None:
        """The message ``message`` replies to, if the bot never saw it (a message it saw is in
        one of its conversations already, history and all)."""
        reference = message.reference
        if not _replies(message) or reference is None or reference.message_id is None:
            return None
        if await self.core.conversations.of_message(f"discord:{reference.message_id}"):
            return None
        resolved = reference.resolved
        if isinstance(resolved, discord.Message):
            return resolved
        if isinstance(resolved, discord.DeletedReferencedMessage):
            return None
        return await _fetch(message.channel, reference.message_id, fetched)

    async def _conversation_of_chain(
        self, message: discord.Message, fetched: dict[int, discord.Message]
    ) -> ConversationKey | None:
        """The conversation of the nearest message up the reply chain that belongs to one."""
        current: discord.Message | None = message
        for _ in range(MAX_CHAIN):
            reference = current.reference if current is not None else None
            if reference is None or reference.message_id is None:
                return None
            known = await self.core.conversations.of_message(f"discord:{reference.message_id}")
            if known is not None:
                return known
            resolved = reference.resolved
            if isinstance(resolved, discord.Message):
                current = resolved
                continue
            current = await _fetch(message.channel, reference.message_id, fetched)
            if current is None:
                return None
        return None

    def _attachment(self, attachment: discord.Attachment) -> Attachment:
        url, max_mb, cdn = attachment.url, self.settings.max_file_mb, self._cdn

        async def fetch() -> bytes:
            if cdn.closed:
                raise AttachmentUnavailable("I am shutting down")
            return await _download(cdn, url, max_mb)

        return Attachment(
            name=scrub(attachment.filename),
            declared_type=attachment.content_type or "application/octet-stream",
            size=attachment.size,
            fetch=fetch,
        )


async def _fetch(
    channel: discord.abc.Messageable, message_id: int, fetched: dict[int, discord.Message]
) -> discord.Message | None:
    """The message ``message_id`` of ``channel`` over REST (once per id in ``fetched``, within
    ``REFERENCE_FETCH_S``); None if it cannot be read. For a reply whose referenced message the
    gateway left out (it does past a depth of references, or when it could not load it)."""
    if message_id in fetched:
        return fetched[message_id]
    try:
        async with asyncio.timeout(REFERENCE_FETCH_S):
            fetched[message_id] = await channel.fetch_message(message_id)
    except (discord.HTTPException, TimeoutError) as exc:
        log.info("discord: could not read a message a reply refers to (%s)", exc)
        return None
    return fetched[message_id]


def _replies(message: discord.Message) -> bool:
    """Is ``message`` a reply (a forward's reference is not one)?"""
    reference = message.reference
    return reference is not None and reference.type is not discord.MessageReferenceType.forward


async def _say(message: discord.Message, text: str) -> None:
    try:
        await _reply(message, text)
    except discord.HTTPException as exc:
        log.info("could not reply with a hint: %s", exc.status)


async def _reply(message: discord.Message, content: str) -> discord.Message:
    """A reply to ``message`` that is still posted if the user deleted it meanwhile (Discord
    then drops the reference instead of refusing with "Unknown message")."""
    return await message.channel.send(
        content,
        reference=message.to_reference(fail_if_not_exists=False),
        mention_author=False,
        allowed_mentions=NO_PINGS,
    )


def _channel_id(target: discord.abc.Messageable, message: discord.Message) -> int:
    """The id of the channel an answer goes to (a new auto-thread, or the message's channel)."""
    channel_id = getattr(target, "id", None)
    return int(channel_id) if isinstance(channel_id, int) else message.channel.id


def _thread_name(message: discord.Message, bot_id: int) -> str:
    text = strip_bot_mention(message.content, bot_id) or "Conversation"
    return text[:90]


async def _download(http: aiohttp.ClientSession, url: str, max_mb: float) -> bytes:
    """The file at ``url``, abandoned past ``max_mb`` whatever size the payload claimed."""
    async with http.get(url) as resp:
        if resp.status != 200:
            raise AttachmentUnavailable(f"Discord answered {resp.status} for it")
        return await read_capped(resp, int(max_mb * 1024 * 1024))
