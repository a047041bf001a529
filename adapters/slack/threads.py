"""Reading a thread back from Slack, sparingly: ``conversations.replies``, paged, bounded and
cached for a minute.

Slack limits this method hard for some apps (commercially distributed non-Marketplace apps
created after 2025-05-29: about one request a minute, 15 messages), so the bot reads its own
store first (``Conversations.transcript``) and comes here only for threads it has no history
of. A 429 is waited for (the web client's retry handler honours ``Retry-After``); when Slack
keeps refusing, the user is told to try again later rather than answered from half a thread.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.reply import slack_error
from bot.actions import SourceUnavailable

log = logging.getLogger(__name__)

PAGE_SIZE = 200
"""Messages per ``conversations.replies`` page (Slack recommends no more than 200)."""
MAX_READ_MESSAGES = 1_000
"""A thread is read up to this many messages (its first ones): five pages at most."""
CACHE_S = 60.0
CACHE_ENTRIES = 64

CANNOT_READ = {
    "not_in_channel": "I can't read this channel. Add me to it first (`/invite @me`).",
    "channel_not_found": "I can't read this channel. Add me to it first (`/invite @me`).",
    "thread_not_found": "I can't find that thread any more.",
    "missing_scope": "I'm not allowed to read this kind of conversation.",
    "ratelimited": "Slack is limiting how often I may read threads right now. "
    "Please try again in a minute.",
}
"""What the user is told when Slack will not give the thread, by Slack's error."""


@dataclass(frozen=True, slots=True)
class Thread:
    messages: list[Mapping[str, Any]]
    """Oldest first, each once (by ``ts``)."""
    complete: bool
    """False when the thread is longer than ``MAX_READ_MESSAGES``."""


class ThreadReader:
    def __init__(
        self, client: AsyncWebClient, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._clock = clock
        self._cache: OrderedDict[tuple[str, str], tuple[float, Thread]] = OrderedDict()

    async def replies(self, channel: str, thread_ts: str) -> Thread:
        """The thread's messages; ``SourceUnavailable`` with a line for the user if Slack
        will not give them."""
        key = (channel, thread_ts)
        cached = self._cache.get(key)
        now = self._clock()
        if cached is not None and now - cached[0] < CACHE_S:
            return cached[1]
        thread = await self._read(channel, thread_ts)
        self._cache[key] = (now, thread)
        self._cache.move_to_end(key)
        while len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)
        return thread

    async def _read(self, channel: str, thread_ts: str) -> Thread:
        seen: dict[str, Mapping[str, Any]] = {}
        cursor: str | None = None
        complete = False
        while len(seen) < MAX_READ_MESSAGES:
            try:
                page = await self._client.conversations_replies(
                    channel=channel, ts=thread_ts, limit=PAGE_SIZE, cursor=cursor
                )
            except SlackApiError as exc:
                error = slack_error(exc)
                log.info("could not read a thread: %s", error)
                raise SourceUnavailable(
                    CANNOT_READ.get(error, f"Slack would not give me that thread ({error}).")
                ) from exc
            for message in page.get("messages") or ():
                ts = message.get("ts") if isinstance(message, Mapping) else None
                if isinstance(ts, str):
                    seen.setdefault(ts, message)  # each page may repeat the root
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not page.get("has_more") or not cursor:
                complete = True
                break
        ordered = sorted(seen.values(), key=lambda m: float(m.get("ts") or 0))
        return Thread(ordered[:MAX_READ_MESSAGES], complete)
