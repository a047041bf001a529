"""Slack traffic for the world: signed mentions to the bot's request URL, and the fake's
records read back into answers (which Web API call belongs to which thread, when the answer's
first text and its final text arrived)."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bench.load.world.fakes import SECRET
from tests.fakes.slack import ApiCall, FakeSlack, app_mention

JSONDict = dict[str, Any]
TEXT_METHODS = ("chat.postMessage", "chat.startStream", "chat.appendStream", "chat.stopStream")


def squeeze(text: str) -> str:
    """``text`` with its whitespace runs as single spaces: an answer split over messages
    loses or keeps the line break at the cut, and is the same answer either way."""
    return " ".join(text.split())


@dataclass
class SlackThread:
    """One mention, its thread, and what the fake saw for it."""

    channel: str
    ts: str
    expected: str
    event: JSONDict
    started: float = 0.0
    """``time.monotonic()`` as its delivery started."""
    calls: list[ApiCall] = field(default_factory=list)

    @property
    def final(self) -> ApiCall | None:
        """The last ``chat.*`` call for this thread (the one that completes the answer)."""
        for call in reversed(self.calls):
            if call.method.startswith("chat."):
                return call
        return None

    def first_text(self) -> ApiCall | None:
        """The first accepted call that put some of the answer on screen."""
        for call in self.calls:
            if call.method in TEXT_METHODS and call.ok and call.params.get("markdown_text"):
                return call
        return None


def channel_ids(count: int, prefix: str = "CBENCH") -> list[str]:
    return [f"{prefix}{i:03d}" for i in range(count)]


def mention_thread(
    slack: FakeSlack, channel: str, question: str, expected: str | None = None
) -> SlackThread:
    """A top-level @mention in ``channel`` (its own thread), not yet delivered."""
    event = app_mention(f"<@{slack.bot_user_id}> {question}", channel=channel)
    return SlackThread(channel, str(event["ts"]), expected or f"echo: {question}", event)


@dataclass
class Ack:
    status: int
    seconds: float


async def deliver(
    slack: FakeSlack, url: str, event: JSONDict, thread: SlackThread | None, acks: list[Ack]
) -> None:
    """One signed delivery; ``thread.started`` is when it began."""
    started = time.monotonic()
    if thread is not None:
        thread.started = started
    status, _ = await slack.deliver_event(url, SECRET, event)
    acks.append(Ack(status, time.monotonic() - started))


class SlackWatch:
    """Gives the fake's Web API calls to their threads as they come (by ``thread_ts``, or by
    the ``ts`` of a message a thread's earlier call created: appendStream, stopStream, update)
    and tells which threads are answered, looking only at those a new call touched."""

    def __init__(self, slack: FakeSlack, threads: list[SlackThread], *, since: int = 0) -> None:
        self.slack = slack
        self.threads = threads
        self.calls: list[ApiCall] = []
        """Every call since ``since``, attributed or not."""
        self._by_key = {(t.channel, t.ts): t for t in threads}
        self._by_message: dict[tuple[str, str], SlackThread] = {}
        self._seen = since
        self.waiting = {id(t): t for t in threads}

    def poll(self) -> None:
        fresh = self.slack.api_calls[self._seen :]
        self._seen += len(fresh)
        self.calls += fresh
        touched: dict[int, SlackThread] = {}
        for call in fresh:
            channel = str(call.params.get("channel") or call.params.get("channel_id") or "")
            thread_ts = call.params.get("thread_ts")
            if thread_ts:
                thread = self._by_key.get((channel, str(thread_ts)))
                if thread is not None and call.ok and "ts" in call.response:
                    self._by_message[(channel, str(call.response["ts"]))] = thread
            else:
                thread = self._by_message.get((channel, str(call.params.get("ts") or "")))
            if thread is not None:
                thread.calls.append(call)
                touched[id(thread)] = thread
        for key, thread in touched.items():
            if key in self.waiting and self.answered(thread):
                del self.waiting[key]

    def answered(self, thread: SlackThread) -> bool:
        """The whole expected answer is on screen, no native stream of it left open."""
        for call in thread.calls:
            if call.method == "chat.startStream" and call.ok:
                ts = str(call.response.get("ts") or "")
                if self.slack.stream(thread.channel, ts).state == "in_progress":
                    return False
        return squeeze(bot_text(self.slack, thread)) == squeeze(thread.expected)

    async def until_answered(self, deadline: float, poll_s: float = 0.02) -> bool:
        """Wait until every thread is answered; False at the deadline."""
        while True:
            self.poll()
            if not self.waiting:
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(poll_s)


def bot_text(slack: FakeSlack, thread: SlackThread) -> str:
    """The bot's messages in the thread, joined, as the fake stores them now."""
    return "\n".join(
        str(m.get("text") or "")
        for m in slack.thread(thread.channel, thread.ts)
        if m.get("bot_id") and m.get("ts") != thread.ts
    )


@dataclass
class ThreadCheck:
    duplicate_threads: int = 0
    wrong_text: int = 0
    streams_open: int = 0


def check_threads(slack: FakeSlack, threads: list[SlackThread]) -> ThreadCheck:
    """Bot messages per thread (more than one: a duplicate), the answer's text, streams left
    open."""
    check = ThreadCheck()
    ours = {(t.channel, t.ts): t for t in threads}
    per_thread: dict[tuple[str, str], list[JSONDict]] = defaultdict(list)
    for channel in {t.channel for t in threads}:
        for message in slack.bot_messages(channel):
            key = (channel, str(message.get("thread_ts") or ""))
            if key in ours:
                per_thread[key].append(message)
        for stream in slack.streams(channel):
            if (channel, stream.thread_ts or "") in ours and stream.state != "completed":
                check.streams_open += 1
    for key, thread in ours.items():
        messages = per_thread.get(key, [])
        if len(messages) > 1:
            check.duplicate_threads += 1
        if "\n".join(str(m.get("text") or "") for m in messages) != thread.expected:
            check.wrong_text += 1
    return check
