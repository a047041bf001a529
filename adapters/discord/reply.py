"""``Reply`` for Discord: typing while working, the answer streamed by editing its message.

- One edit in flight per answer; text that arrives meanwhile is coalesced into the next edit;
  at most one edit per ``interval`` per message. The first text goes out at once, and the final
  edit is never held back by the interval (discord.py still waits out a 429's retry-after).
- Past 2,000 characters the message is sealed at a paragraph or line boundary (code fences
  closed, then reopened with their language in the next message) and the answer goes on in a
  new message: never truncated.
- Tool steps show as one small line under the text that ticks as they end
  (``-# ✅ Checking the weather in Tokyo · ⏳ Looking up the time in Paris…``), until the next
  text arrives. The final render never carries it: no step list is left behind, whether the
  answer completes, fails or is cut.
- Every message is sent with no mentions allowed: model output never pings anyone.
- A tool call that needs approval posts its question, with Approve / Deny buttons, below the
  answer so far (``approvals``); the answer goes on in its own message once it is decided.
- A model's finished answer gets the feedback buttons (``feedback``) under its last message,
  in the final edit, once the core knows the answer's messages (``FinishedAnswer.posted``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import discord

from adapters.common.sources import discord_sources
from adapters.common.text import cut_markdown
from adapters.discord.approvals import asker_only, closed_content, question_content, question_view
from adapters.discord.feedback import feedback_view
from bot.reply import ApprovalRequest, Step, StepState, Undeliverable, Verdict
from bot.web_search import Source

if TYPE_CHECKING:
    from bot.conversations import Conversations
    from bot.events import ConversationKey
    from bot.feedback import FinishedAnswer

log = logging.getLogger(__name__)

LIMIT = 2000
NO_PINGS = discord.AllowedMentions.none()
STEP_MARKS: dict[StepState, str] = {
    StepState.RUNNING: "⏳",
    StepState.COMPLETE: "✅",
    StepState.ERROR: "❌",
}
STEPS_SHOWN = 4
"""The latest steps on the line; earlier ones are counted ("+3 ·")."""


class Editable(Protocol):
    id: int

    async def edit(
        self,
        *,
        content: str,
        allowed_mentions: discord.AllowedMentions,
        view: discord.ui.View | None = ...,
    ) -> Any: ...


SendFirst = Callable[[str], Awaitable[Editable]]
"""Post the first message of an answer (a reply, a thread message, an interaction follow-up)."""
SendMore = Callable[[str], Awaitable[Editable]]
"""Post a further message of the same answer."""
Sent = Callable[[int], Awaitable[None]]
"""Told the id of every message the answer posted (to map replies back to the conversation)."""
SendQuestion = Callable[[str, discord.ui.View, discord.AllowedMentions], Awaitable[Editable]]
"""Post a question with buttons where the answer goes (content, its view, who it may ping)."""
SendPrivate = Callable[[str], Awaitable[Any]]
"""Tell the author alone (an ephemeral follow-up, or a DM): refusals never go in the channel."""


def recorder(conversations: Conversations, conversation: ConversationKey) -> Sent:
    """The ``Sent`` of an answer in ``conversation``: each message it posts is remembered
    there, so that a reply to any of them continues the conversation."""

    async def sent(message_id: int) -> None:
        await conversations.remember_message(f"discord:{message_id}", conversation)

    return sent


class TypingHub:
    """One typing indicator per channel, however many answers are being written there: N
    waiting answers in a busy channel must not mean N typing requests every few seconds."""

    def __init__(self) -> None:
        self._channels: dict[int, tuple[asyncio.Task[None], asyncio.Event, int]] = {}

    def hold(self, channel: discord.abc.Messageable, channel_id: int) -> None:
        task, stop, users = self._channels.get(channel_id, (None, None, 0))
        if task is None or stop is None:
            stop = asyncio.Event()
            task = asyncio.create_task(self._keep_typing(channel, stop))
        self._channels[channel_id] = (task, stop, users + 1)

    async def release(self, channel_id: int) -> None:
        entry = self._channels.get(channel_id)
        if entry is None:
            return
        task, stop, users = entry
        if users > 1:
            self._channels[channel_id] = (task, stop, users - 1)
            return
        del self._channels[channel_id]
        stop.set()
        await task

    def __len__(self) -> int:
        return len(self._channels)

    @staticmethod
    async def _keep_typing(channel: discord.abc.Messageable, stop: asyncio.Event) -> None:
        try:
            async with channel.typing():  # re-sent every few seconds by discord.py
                await stop.wait()
        except discord.HTTPException as exc:
            log.info("no typing indicator here (%s)", exc.status)


class DiscordReply:
    def __init__(
        self,
        *,
        send_first: SendFirst,
        send_more: SendMore,
        send_private: SendPrivate,
        send_question: SendQuestion | None = None,
        sent: Sent | None = None,
        typing: tuple[TypingHub, discord.abc.Messageable, int] | None = None,
        interval_s: float = 1.5,
    ) -> None:
        self._send_first = send_first
        self._send_private = send_private
        self._send_more = send_more
        self._send_question = send_question
        self._questions: dict[str, Editable] = {}
        """Requests for approval shown and not closed yet, by id."""
        self._sent = sent
        self._typing = typing
        """The hub, the channel and its id: typing shows there while this answer is written."""
        self._typing_held = False
        self._interval = interval_s
        self._text = ""
        """Answer text not yet sealed into a finished message."""
        self._steps: dict[str, Step] = {}
        """The steps since the last text, in the order they started, each in its latest state."""
        self._message: Editable | None = None
        self._shown = ""
        self._last_edit = 0.0
        self._changed = asyncio.Event()
        self._closing = asyncio.Event()
        """Set once the answer ends (finish, fail or refuse): later calls change nothing, and
        the pump leaves what is pending to the final render."""
        self._opened = False
        """The answer's first message was sent (notices do not count)."""
        self._pump: asyncio.Task[None] | None = None
        self.messages: list[int] = []
        """Every message this answer posted (notices included), in order."""
        self._parts: list[int] = []
        """The messages holding the answer's text."""

    # ------------------------------------------------------------------ the Reply protocol

    async def start(self) -> None:
        if self._typing is not None:
            hub, channel, channel_id = self._typing
            hub.hold(channel, channel_id)
            self._typing_held = True

    async def stream(self, delta: str) -> None:
        if self._closing.is_set() or not delta:
            return
        self._text += delta
        self._steps.clear()
        self._poke()

    async def progress(self, step: Step) -> None:
        if self._closing.is_set():
            return
        self._steps[step.id] = step
        self._poke()

    async def notice(self, text: str) -> None:
        try:
            message = await self._send_more(f"-# {text}")
            await self._record(message)
        except discord.HTTPException as exc:
            log.warning("could not post a notice: %s", exc.status)

    async def finish(
        self, answer: FinishedAnswer | None = None, sources: Sequence[Source] = ()
    ) -> None:
        if not self._closing.is_set():
            self._text += discord_sources(sources)
        await self._close(answer)

    async def fail(self, message: str) -> None:
        if self._closing.is_set():
            return
        self._text += ("\n\n" if self._text.strip() or self._opened else "") + f"*{message}*"
        await self._close()

    async def ask_approval(self, request: ApprovalRequest) -> bool:
        if self._send_question is None:
            return False
        message = await self._send_question(
            question_content(request), question_view(request), asker_only(request)
        )
        self._questions[request.id] = message
        await self._record(message)
        return True

    async def approval_closed(
        self, request: ApprovalRequest, verdict: Verdict, by: str | None
    ) -> None:
        message = self._questions.pop(request.id, None)
        if message is None:
            return
        try:
            await message.edit(
                content=closed_content(request, verdict, by), allowed_mentions=NO_PINGS, view=None
            )
        except discord.HTTPException as exc:
            log.warning("could not show an approval's outcome: %s", exc.status)

    async def refuse(self, message: str) -> None:
        if self._closing.is_set():
            return
        self._closing.set()
        try:
            await self._send_private(f"*{message}*")
        except discord.HTTPException as exc:  # e.g. 50007: the user takes no DMs
            log.info("could not tell a user why they were refused: %s", exc.status)

    # ------------------------------------------------------------------ internals

    def _poke(self) -> None:
        self._changed.set()
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._run_pump())

    async def _run_pump(self) -> None:
        while not self._closing.is_set():
            await self._changed.wait()
            wait = self._last_edit + self._interval - time.monotonic()
            if wait > 0 and self._message is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), wait)
            if self._closing.is_set():
                return  # the final render sends the rest, at once
            self._changed.clear()
            try:
                await self._render(final=False)
            except discord.HTTPException as exc:
                log.warning("could not stream to Discord: %s", exc.status)

    async def _close(self, answer: FinishedAnswer | None = None) -> None:
        if self._closing.is_set():
            return
        self._closing.set()
        self._changed.set()
        if self._pump is not None:
            with contextlib.suppress(Exception):
                await self._pump
        try:
            await self._render(final=True, answer=answer)
        except (discord.Forbidden, discord.NotFound) as exc:
            raise Undeliverable(
                f"Discord answered {exc.status} ({exc.text or 'no reason'})"
            ) from exc
        finally:
            if self._typing is not None and self._typing_held:
                self._typing_held = False
                await self._typing[0].release(self._typing[2])

    async def _render(self, *, final: bool, answer: FinishedAnswer | None = None) -> None:
        """Show the text (and the step line) in the current message; seal full messages as it
        goes. ``final`` drops the step line; with ``answer``, the last message gets the
        feedback buttons."""
        while True:
            body = self._text
            status = f"\n{self._step_line()}" if self._steps and not final else ""
            if len(body) + len(status) <= LIMIT:
                if self._opened and self._message is None and not body.strip():
                    # The last message was sealed full: a message holding nothing but the step
                    # line would outlive the answer if no more text came.
                    return
                content = (body + status).strip("\n")
                if content and answer is not None:
                    await self._show_with_buttons(content, answer)
                elif content and content != self._shown:
                    await self._show(content)
                return
            head, tail = cut_markdown(body, LIMIT)
            await self._show(head)
            self._message, self._shown = None, ""  # sealed: the rest goes in a new message
            self._text = tail + self._text[len(body) :]

    def _step_line(self) -> str:
        steps = list(self._steps.values())
        shown = [
            f"{STEP_MARKS[s.state]} {s.title}{'…' if s.state is StepState.RUNNING else ''}"
            for s in steps[-STEPS_SHOWN:]
        ]
        if len(steps) > STEPS_SHOWN:
            shown.insert(0, f"+{len(steps) - STEPS_SHOWN}")
        return "-# " + " · ".join(shown)

    async def _show_with_buttons(self, content: str, answer: FinishedAnswer) -> None:
        """The answer's last text in its message, the buttons under it: one edit when the
        message is there already (the usual case: it streamed), else a send and an edit."""
        if self._message is None:
            await self._show(content)
        message = self._message
        assert message is not None
        if not await answer.posted([str(part) for part in self._parts]):
            if content != self._shown:
                await self._show(content)
            return
        await message.edit(
            content=content, allowed_mentions=NO_PINGS, view=feedback_view(message.id)
        )
        self._last_edit, self._shown = time.monotonic(), content

    async def _show(self, content: str) -> None:
        if self._message is None:
            send = self._send_more if self._opened else self._send_first
            message = await send(content)
            self._opened, self._message = True, message
            self._parts.append(message.id)
            await self._record(message)
        else:
            await self._message.edit(content=content, allowed_mentions=NO_PINGS)
        # Counted from when the call returned: a 429's wait (discord.py sleeps it out inside
        # the call) pushes the next edit back too.
        self._last_edit = time.monotonic()
        self._shown = content

    async def _record(self, message: Editable) -> None:
        self.messages.append(message.id)
        if self._sent is not None:
            try:
                await self._sent(message.id)
            except Exception:
                log.exception("could not record an answer message")
