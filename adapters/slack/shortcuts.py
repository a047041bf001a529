"""Slack's message shortcuts: "Summarize thread" and "Translate" on any message.

- Acked at once (Slack wants it within 3 s), then run through the core (``Core.act``): claimed
  once by the click's ``trigger_id`` (a repeated delivery is not answered twice), admitted like
  a question, and only then read.
- The thread comes from the bot's own store when it takes part in it, else from
  ``conversations.replies`` (``threads.ThreadReader``: paged, bounded, cached). The language is
  the clicking user's Slack locale (``users.info`` with ``include_locale``), else English.
- The answer is for the user who clicked only: an ephemeral message where they clicked, or a
  DM when Slack will not take that (e.g. the bot is not in the channel). Never posted for
  everyone.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.common.inflight import InFlight
from adapters.common.text import split_markdown
from adapters.slack.reply import slack_error
from adapters.slack.threads import ThreadReader
from adapters.slack.translate import (
    PLATFORM,
    channel_key,
    conversation_key,
    scrub,
    slack_to_markdown,
)
from bot.actions import Action, ActionInput, ActionRequest, SourceMessage, language_of
from bot.events import Author, ConversationKey, Event, EventKind

if TYPE_CHECKING:
    from bot.core import Core

log = logging.getLogger(__name__)

SHORTCUTS = {"summarize_thread": Action.SUMMARIZE, "translate_message": Action.TRANSLATE}
"""Callback id -> action; the manifest declares the same ids (tested)."""
EPHEMERAL_CHARS = 11_000
"""Markdown per ephemeral message (Slack takes 12,000 in ``markdown_text``)."""
BOT_NAME = "assistant (me)"
LONGER_THAN_READ = (
    "The thread is longer than I can read: summarized the last {{kept}} of its first {read:,} "
    "messages."
)
_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


@dataclass(frozen=True, slots=True)
class Shortcut:
    """A message shortcut click, as plain values."""

    action: Action
    team: str
    channel: str
    user: str
    message: Mapping[str, Any]
    trigger: str

    @property
    def thread_ts(self) -> str:
        return str(self.message.get("thread_ts") or self.message["ts"])

    @property
    def in_thread(self) -> str | None:
        """The thread the clicked message is a reply in (None: a top-level message)."""
        thread = self.message.get("thread_ts")
        return str(thread) if thread and thread != self.message.get("ts") else None


def parse_shortcut(body: Mapping[str, Any]) -> Shortcut | None:
    """A ``message_action`` payload as a ``Shortcut``; None if it lacks what one needs."""
    action = SHORTCUTS.get(str(body.get("callback_id")))
    team = (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id")
    channel = (body.get("channel") or {}).get("id")
    user = (body.get("user") or {}).get("id")
    message = body.get("message")
    trigger = body.get("trigger_id") or body.get("action_ts")
    if action is None or not isinstance(message, Mapping):
        return None
    if not all(isinstance(v, str) and _ID.match(v) for v in (team, channel, user, trigger)):
        return None
    if not (isinstance(message.get("ts"), str) and _ID.match(message["ts"])):
        return None
    return Shortcut(action, str(team), str(channel), str(user), message, str(trigger))


def action_event(click: Shortcut) -> Event:
    """The clicking user's request as the core sees it. Its conversation is the click's own,
    never the thread's: a summary must not make the bot join the thread's follow-ups."""
    return Event(
        platform=PLATFORM,
        event_id=f"{PLATFORM}:action:{click.team}:{click.trigger}",
        conversation=ConversationKey(PLATFORM, (click.team, click.channel, "action")),
        channel=channel_key(click.team, click.channel),
        kind=EventKind.ACTION,
        author=Author(id=click.user, display_name=click.user),
        text="",
        workspace=click.team,
    )


def spoken(message: Mapping[str, Any]) -> SourceMessage | None:
    """A Slack message of the thread as a ``SourceMessage`` (None: nothing said in words)."""
    text = message.get("text")
    if not isinstance(text, str) or not text.strip():
        return None
    if message.get("subtype") not in (None, "thread_broadcast", "bot_message", "file_share"):
        return None
    user = message.get("user")
    if isinstance(user, str) and user:
        author = f"<@{user}>"
    else:
        profile = message.get("bot_profile") or {}
        author = str(message.get("username") or profile.get("name") or "a bot")
    return SourceMessage(author, scrub(slack_to_markdown(text)))


class MessageShortcuts:
    def __init__(
        self,
        core: Core,
        client: AsyncWebClient,
        *,
        inflight: InFlight,
        outcomes: Counter[str],
        reader: ThreadReader | None = None,
    ) -> None:
        self.core = core
        self._client = client
        self._inflight = inflight
        self._outcomes = outcomes
        self._reader = reader or ThreadReader(client)

    def register(self, app: AsyncApp) -> None:
        for callback_id in SHORTCUTS:
            app.message_shortcut(callback_id)(self.on_shortcut)

    async def on_shortcut(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()  # first: Slack shows the user an error after 3 s without it
        with self._inflight.track():
            click = parse_shortcut(body)
            if click is None:
                log.warning("slack: a message shortcut without what it needs was dropped")
                self._outcomes["ignored"] += 1
                return
            try:
                request = ActionRequest(
                    event=action_event(click),
                    action=click.action,
                    read=lambda: self._read(click),
                )

                async def tell(text: str) -> None:
                    await self._tell(click, text)

                result = await self.core.act(request, tell)
                self._outcomes[result.outcome.value] += 1
            except Exception:
                log.exception("slack: a message shortcut failed")

    async def _read(self, click: Shortcut) -> ActionInput:
        language = await self._language(click.user)
        if click.action is Action.TRANSLATE:
            clicked = spoken(click.message)
            return ActionInput([clicked] if clicked else [], language=language)
        thread = conversation_key(click.team, click.channel, click.thread_ts)
        ours = await self.core.conversations.transcript(thread, bot_name=BOT_NAME)
        if ours is not None:
            return ActionInput(ours, language=language)
        read = await self._reader.replies(click.channel, click.thread_ts)
        said = [m for m in map(spoken, read.messages) if m is not None]
        beyond = "" if read.complete else LONGER_THAN_READ.format(read=len(read.messages))
        return ActionInput(said, language=language, beyond=beyond)

    async def _language(self, user: str) -> str:
        """The user's Slack language (their client locale), English if Slack will not say."""
        try:
            info = await self._client.users_info(user=user, include_locale=True)
        except SlackApiError as exc:
            log.info("could not read a user's locale: %s", slack_error(exc))
            return "English"
        return language_of((info.get("user") or {}).get("locale"))

    async def _tell(self, click: Shortcut, text: str) -> None:
        """To the user who clicked only: ephemeral where they clicked, else in their DM."""
        pieces = split_markdown(text, EPHEMERAL_CHARS)
        try:
            for piece in pieces:
                await self._client.chat_postEphemeral(
                    channel=click.channel,
                    user=click.user,
                    thread_ts=click.in_thread,
                    markdown_text=piece,
                )
            return
        except SlackApiError as exc:
            log.info("could not answer a shortcut in the channel (%s); in a DM", slack_error(exc))
        opened = await self._client.conversations_open(users=click.user)
        dm = str(opened["channel"]["id"])
        where = f"For your request in <#{click.channel}>:\n\n"
        for index, piece in enumerate(pieces):
            await self._client.chat_postMessage(
                channel=dm, markdown_text=(where if index == 0 else "") + piece
            )
