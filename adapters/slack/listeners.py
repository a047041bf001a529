"""Slack's events: messages for the bot answered in their thread (the DM's greeting, prompts
and thread titles are ``assistant``'s).

- Bolt acks every event before its listener runs, so a slow model never makes Slack retry; the
  retries that come anyway (and the ``message`` twin of every ``app_mention``) are claimed once
  by the core.
- A message not addressed to the bot is still shown to the core (``observe``): it is context
  for a later question in the same thread.
- Thread follow-ups need a mention where ``/settings mention`` (else ``SLACK_REQUIRE_MENTION``)
  says so, and only continue threads the bot takes part in.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from adapters.common.inflight import InFlight
from adapters.slack.files import slack_attachments
from adapters.slack.reply import NativeStreaming, SlackReply
from adapters.slack.translate import route_message
from bot.events import Event, EventKind
from bot.results import Outcome
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.core import Core
    from bot.results import TurnResult

log = logging.getLogger(__name__)


class EventListeners:
    """The bolt listeners for Slack's events, each translating in and handing on to the core."""

    def __init__(
        self,
        core: Core,
        settings: Settings,
        client: AsyncWebClient,
        *,
        http: Callable[[], aiohttp.ClientSession],
        token: str,
        inflight: InFlight,
        outcomes: Counter[str],
        first_question: Callable[[Event], Awaitable[None]] | None = None,
    ) -> None:
        self.core = core
        self.settings = settings
        self._client = client
        self._http = http
        """The pooled session for file downloads; raises once the adapter has closed."""
        self._token = token
        """File downloads send it, only to the hosts in ``Settings.slack_token_hosts``."""
        self._native = NativeStreaming(settings.slack_native_streaming)
        self._inflight = inflight
        self._outcomes = outcomes
        self._first_question = first_question
        """Called with each DM question beside its answer (the assistant thread's title)."""

    def register(self, app: AsyncApp) -> None:
        app.event("app_mention")(self.on_message)
        app.event("message")(self.on_message)

    async def on_message(
        self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        with self._inflight.track():
            await self._message(body, event, context)

    async def _message(
        self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        incoming = route_message(
            body,
            event,
            bot_user_id=str(context.bot_user_id or ""),
        )
        if incoming is None:
            self._outcomes[Outcome.IGNORED.value] += 1
            return
        if not incoming.addressed or (
            incoming.needs_membership
            and (
                await self._mention_required(incoming.event)
                or not await self.core.conversations.bot_takes_part(incoming.event.conversation)
            )
        ):
            await self.core.observe(incoming.event)
            self._outcomes[Outcome.IGNORED.value] += 1
            return
        normalized = incoming.event
        if incoming.files:
            attachments = slack_attachments(
                incoming.files,
                http=self._http(),
                token=self._token,
                hosts=self.settings.slack_token_hosts,
                max_bytes=int(self.settings.max_file_mb * 1024 * 1024),
            )
            normalized = dataclasses.replace(normalized, attachments=tuple(attachments))
        thread_ts = normalized.conversation.parts[2]
        if self._first_question is not None and normalized.kind is EventKind.DIRECT_MESSAGE:
            await asyncio.gather(
                self._first_question(normalized), self.answer(normalized, thread_ts=thread_ts)
            )
            return
        await self.answer(normalized, thread_ts=thread_ts)

    async def _mention_required(self, event: Event) -> bool:
        """Do thread follow-ups need a mention here? ``/settings mention``, else
        ``SLACK_REQUIRE_MENTION``."""
        rule = await self.core.conversations.mention_required(event.channel)
        return self.settings.slack_require_mention if rule is None else rule

    async def answer(self, event: Event, *, thread_ts: str, admitted: bool = False) -> TurnResult:
        """A turn of the core, streamed into ``thread_ts``; its address (for telling the user
        after a crash) is that thread."""
        channel = event.channel.parts[1]
        event = dataclasses.replace(
            event, address=json.dumps({"channel": channel, "thread_ts": thread_ts})
        )
        reply = SlackReply(
            self._client,
            channel=channel,
            thread_ts=thread_ts,
            user=event.author.id,
            team=event.workspace or event.channel.parts[0],
            native=self._native,
            interval_s=self.settings.slack_stream_interval_s,
        )
        result = await self.core.handle(event, reply, admitted=admitted)
        self._outcomes[result.outcome.value] += 1
        return result
