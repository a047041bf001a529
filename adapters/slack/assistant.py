"""Slack's AI-app surfaces around the bot's DM: the greeting, suggested prompts, each thread's
title, and which channel the user is viewing.

Two views exist, and the manifest picks one:

- the **agent view** (``features.agent_view``, our manifest's): opening the DM sends
  ``app_home_opened`` with tab ``messages``; suggested prompts are set for the DM itself, with
  ``assistant.threads.setSuggestedPrompts`` and NO ``thread_ts`` (Slack's docs: with one, an
  agent app's call silently does nothing). Each top-level message is its own thread.
- the **legacy assistant view** (``features.assistant_view``): each new thread sends
  ``assistant_thread_started``, and the prompts are set on that thread (``thread_ts``).

In both, a thread's first question becomes its title (``assistant.threads.setTitle``, once,
shortened), and ``assistant_thread_context_changed`` (and the context a thread starts with)
is kept through the core as the thread's context note: the model is told which channel the
user is viewing with each of the thread's turns.

The tab ``home`` of ``app_home_opened`` goes to ``HomeTab`` (bolt runs one listener per event).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.common.inflight import InFlight
from adapters.slack.home import HomeTab
from adapters.slack.reply import slack_error
from adapters.slack.translate import command_event, conversation_key, team_of
from bot.events import Event, EventKind
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.core import Core

log = logging.getLogger(__name__)

GREETING = (
    "Hi! I'm your team's assistant. Ask me anything here, or mention me in a channel and I'll "
    "answer in the thread. I can check the weather and the time anywhere, and read the text "
    "files you send me. Type `/help` for more."
)
PROMPTS_TITLE = "Try asking"
TITLE_MAX = 60
"""A thread's title: its first question's first line, cut at a word to this many characters."""
_ID = re.compile(r"^[A-Z0-9]+$")


def thread_title(question: str) -> str:
    """A short title from a question: its first non-empty line, spaces collapsed, cut at a
    word boundary to ``TITLE_MAX`` characters (with an ellipsis)."""
    line = next((ln for ln in question.splitlines() if ln.strip()), "")
    line = " ".join(line.split())
    if len(line) <= TITLE_MAX:
        return line
    cut = line[: TITLE_MAX - 1]
    if " " in cut[TITLE_MAX // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.-") + "…"


def viewing_note(channel: str | None) -> str:
    """What the model is told of the channel the user is viewing (nothing when none)."""
    if not channel or not _ID.match(channel):
        return ""
    return (
        f"The user is viewing the Slack channel <#{channel}> while talking to you. Write it "
        f"as <#{channel}> to name it."
    )


class AssistantThreads:
    def __init__(
        self,
        core: Core,
        settings: Settings,
        client: AsyncWebClient,
        *,
        home: HomeTab,
        inflight: InFlight,
    ) -> None:
        self.core = core
        self.settings = settings
        self._client = client
        self._home = home
        self._inflight = inflight
        self._prompts = [p.model_dump() for p in settings.suggested_prompts]

    def register(self, app: AsyncApp) -> None:
        app.event("app_home_opened")(self.on_home_opened)
        app.event("assistant_thread_started")(self.on_thread_started)
        app.event("assistant_thread_context_changed")(self.on_context_changed)

    async def on_home_opened(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        team, user = team_of(body, event), str(event.get("user") or "")
        if not (team and user):
            return
        with self._inflight.track():
            if event.get("tab") == "home":
                await self._home.opened(team, user)
            elif event.get("tab") == "messages":
                await self._dm_opened(team, user, str(event.get("channel") or ""))

    async def _dm_opened(self, team: str, user: str, channel: str) -> None:
        """Agent view: greet once, and show the suggested prompts above the composer."""
        if not channel:
            return
        probe = command_event({"team_id": team, "channel_id": channel, "user_id": user})
        if not self.core.allows(probe):
            return  # no greeting inviting questions that the allowlists would refuse
        key = f"slack:greeted:{team}:{user}"
        try:
            if not await self.core.conversations.recall(key):
                await self.core.conversations.remember(key, "1")  # greet once, not each open
                await self._client.chat_postMessage(channel=channel, markdown_text=GREETING)
            # The agent view: the DM's prompts, set WITHOUT thread_ts (with one, Slack
            # silently ignores an agent app's call).
            await self._client.assistant_threads_setSuggestedPrompts(
                channel_id=channel, title=PROMPTS_TITLE, prompts=self._prompts
            )
        except SlackApiError as exc:
            log.info("could not greet in a DM: %s", slack_error(exc))

    async def on_thread_started(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        """The legacy assistant view: prompts on the new thread (its ``thread_ts``)."""
        thread = _thread(event)
        if thread is None:
            return
        channel, thread_ts, context_channel = thread
        with self._inflight.track():
            await self._keep_context(body, event, context_channel)
            try:
                await self._client.assistant_threads_setSuggestedPrompts(
                    channel_id=channel,
                    thread_ts=thread_ts,
                    title=PROMPTS_TITLE,
                    prompts=self._prompts,
                )
            except SlackApiError as exc:
                log.info("could not set suggested prompts: %s", slack_error(exc))

    async def on_context_changed(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        thread = _thread(event)
        if thread is not None:
            with self._inflight.track():
                await self._keep_context(body, event, thread[2])

    async def _keep_context(
        self, body: dict[str, Any], event: dict[str, Any], context_channel: str | None
    ) -> None:
        thread = _thread(event)
        team = team_of(body, event)
        if thread is None or not _ID.match(team):
            return
        channel, thread_ts, _ = thread
        try:
            await self.core.conversations.set_context_note(
                conversation_key(team, channel, thread_ts), viewing_note(context_channel)
            )
        except Exception:
            log.exception("could not keep an assistant thread's context")

    async def first_question(self, event: Event) -> None:
        """Title a DM thread after its first question, once (across instances too). Never
        raises."""
        text = thread_title(event.text)
        conversation = event.conversation
        if not text or event.kind is not EventKind.DIRECT_MESSAGE or not self.core.allows(event):
            return
        try:
            if await self.core.conversations.bot_takes_part(conversation):
                return  # answered before: not its first question
            if not await self.core.conversations.first_to_act(f"slack:title:{conversation}"):
                return
            _, channel, thread_ts = conversation.parts
            await self._client.assistant_threads_setTitle(
                channel_id=channel, thread_ts=thread_ts, title=text
            )
        except SlackApiError as exc:
            log.info("could not title an assistant thread: %s", slack_error(exc))
        except Exception:
            log.exception("could not title an assistant thread")


def _thread(event: dict[str, Any]) -> tuple[str, str, str | None] | None:
    """An assistant thread event's DM channel, thread and the channel the user is viewing."""
    thread = event.get("assistant_thread")
    if not isinstance(thread, dict):
        return None
    channel, thread_ts = thread.get("channel_id"), thread.get("thread_ts")
    if not (isinstance(channel, str) and isinstance(thread_ts, str) and channel and thread_ts):
        return None
    if ":" in channel + thread_ts:
        return None
    context = thread.get("context")
    viewing = context.get("channel_id") if isinstance(context, dict) else None
    return channel, thread_ts, viewing if isinstance(viewing, str) else None
