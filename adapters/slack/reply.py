"""``Reply`` for Slack: status while working, the answer streamed into the thread, never lost.

Streaming is single-flight and coalesced: one Web API call at a time per answer, the text that
arrived meanwhile sent together, at most one update per ``interval``; the first text goes out at
once and a finished answer is never held back by the interval.

- While the model thinks, the thread's status ("is thinking…", with ``LOADING_MESSAGES``
  rotating under it) shows through ``assistant.threads.setStatus``; Slack clears it when the
  answer's first message arrives.
- Native streaming (``chat.startStream`` / ``appendStream`` / ``stopStream``) in threads, with
  the recipient user and team. A stream is closed and a new message continued before it reaches
  ``STREAM_BUDGET`` characters, cut at a paragraph or code-fence boundary. Each tool step is a
  ``task_update`` chunk in the stream (the "timeline" display: a task card between the text
  written before and after it), in progress, then complete or error; a step still running when
  the answer ends is closed with it, never left spinning.
- Where native streaming is refused (an old workspace, a missing scope, an expired stream), the
  rest of the answer goes out as a posted message updated in place (``chat.update``), kept under
  ``UPDATE_BUDGET`` because ``chat.update`` fails with ``msg_too_long`` a little above 4,000.
  A running step shows there as the thread's status line ("Checking the weather in Tokyo…").
- An answer that is complete before anything was sent is posted in one call per
  ``POST_BUDGET`` characters.
- A model's finished answer gets feedback buttons under its last message (``blocks``): on the
  stream's ``chat.stopStream``, on the last ``chat.update``, or on the last post. The answer's
  messages are given to the core first (``FinishedAnswer.posted``), so a click finds it; a
  message posted whole only has its ts once Slack answers, so it is given right after.

Slack's answer to a call decides what counts as sent: text in a call that Slack refused is sent
again in the next message; text in a call Slack accepted never is. 429s are retried by the web
client's retry handler, honouring ``Retry-After``. Which text goes into which message, and where
a message ends, is decided in ``outbox``; this module decides when to call Slack and with what.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any, Literal

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.common.sources import slack_sources
from adapters.common.text import split_markdown
from adapters.slack.blocks import (
    answer_blocks,
    answer_message_id,
    button_blocks,
    closed_blocks,
    escape,
    outcome_text,
    question_blocks,
)
from adapters.slack.outbox import Outbox, Piece
from adapters.slack.translate import defuse_broadcasts
from bot.feedback import FinishedAnswer
from bot.reply import ApprovalRequest, Step, StepState, Undeliverable, Verdict
from bot.web_search import Source

log = logging.getLogger(__name__)

STREAM_BUDGET = 11_000
"""Characters per natively streamed message (a markdown block holds 12,000)."""
UPDATE_BUDGET = 3_800
"""Characters per message that is posted and then updated."""
POST_BUDGET = 11_000
"""Characters per message posted whole."""
FIRST_TEXT_DELAY = 0.05
"""The first text waits this long for more: an answer complete by then is one plain post
instead of a stream's start and stop (half the calls against Slack's per-channel limits).
Short enough that nobody sees it: first visible text within 50 ms of the model's first token."""
THINKING = "is thinking…"
LOADING_MESSAGES = ("Thinking…", "Reading your message…", "Working on an answer…")
"""Rotated under the status while the model thinks (Slack takes at most 10)."""
TASK_DISPLAY_MODE = "timeline"
"""Each task card in the stream where it happened, between the text before and after it (the
other mode, "plan", gathers them in one block)."""
_TASK_STATUS: dict[StepState, str] = {
    StepState.RUNNING: "in_progress",
    StepState.COMPLETE: "complete",
    StepState.ERROR: "error",
}

# Errors after which native streaming is not tried again by this process.
_NATIVE_UNAVAILABLE = frozenset(
    {"unknown_method", "missing_scope", "not_allowed_token_type", "feature_not_enabled"}
)


UNDELIVERABLE_ERRORS = frozenset(
    {"channel_not_found", "not_in_channel", "is_archived", "restricted_action", "thread_not_found"}
)
"""Slack errors that mean this answer cannot be posted where it belongs (not a bug)."""


def raise_if_undeliverable(exc: SlackApiError) -> None:
    error = slack_error(exc)
    if error in UNDELIVERABLE_ERRORS:
        raise Undeliverable(f"Slack answered {error}") from exc


def slack_error(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or "unknown_error")
    return type(exc).__name__


class NativeStreaming:
    """Process-wide: whether Slack's native streaming is worth trying (off after a hard refusal)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def refused(self, error: str) -> None:
        if error in _NATIVE_UNAVAILABLE and self.enabled:
            log.warning("Slack refused native streaming (%s): posting and updating instead", error)
            self.enabled = False


class SlackReply:
    """One answer to one message, in the thread ``thread_ts`` of ``channel``."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        channel: str,
        thread_ts: str,
        user: str,
        team: str,
        native: NativeStreaming,
        interval_s: float = 1.0,
        show_status: bool = True,
    ) -> None:
        self._client = client
        self._channel = channel
        self._thread_ts = thread_ts
        self._user = user
        self._team = team
        self._native = native
        self._interval = interval_s
        self._show_status = show_status
        self._mode: Literal["stream", "update"] = "stream" if native.enabled else "update"
        self._outbox = Outbox()
        self._last_send = 0.0
        self._pump: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        """Set once the answer ends (finish, fail or refuse): later calls change nothing, and
        the pump leaves what is pending to the final send."""
        self._status_shown = False
        self._sending = asyncio.Lock()
        """One Web API call that shows answer content at a time (the pump, a step, the end)."""
        self._running_tasks: dict[str, Step] = {}
        """Steps shown as running task cards in the current stream."""
        self._starting: asyncio.Task[None] | None = None
        self._ends_with_lt = False
        self.posted: list[str] = []
        """ts of every message this answer posted, in order."""
        self._answer: FinishedAnswer | None = None
        """Set by ``finish`` for a model's answer: its last message gets the feedback buttons."""
        self._questions: dict[str, str] = {}
        """Requests for approval shown and not closed yet: their id -> the question's ts."""

    # ------------------------------------------------------------------ the Reply protocol

    async def start(self) -> None:
        # In the background: the model call need not wait a Slack round trip (or a 429's
        # Retry-After) for the status. Every later call to Slack waits for it first, so the
        # status still comes before anything else.
        self._starting = asyncio.create_task(
            self._set_status(THINKING, loading_messages=LOADING_MESSAGES)
        )

    async def _started(self) -> None:
        if self._starting is not None and not self._starting.done():
            await self._starting

    async def progress(self, step: Step) -> None:
        if self._closing.is_set():
            return
        await self._started()
        if self._mode == "stream":
            async with self._sending:
                if self._closing.is_set() or await self._send_task(step):
                    return
        # Post-and-update (or the stream refused the task): the status line shows the step.
        if step.state is StepState.RUNNING:
            await self._set_status(f"{step.title}…")

    async def stream(self, delta: str) -> None:
        if self._closing.is_set() or not delta:
            return
        # Model output never pings a channel; "<" and "!" may arrive in two deltas.
        if self._ends_with_lt and delta.startswith("!"):
            delta = "\u200b" + delta
        delta = defuse_broadcasts(delta)
        self._ends_with_lt = delta.endswith("<")
        if not self._outbox.pending and self._pump is None:
            # Schedule the first send FIRST_TEXT_DELAY from now (the pump waits for the interval).
            self._last_send = (
                time.monotonic() - self._interval + min(FIRST_TEXT_DELAY, self._interval)
            )
        self._outbox.add(delta)
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._run_pump())

    async def notice(self, text: str) -> None:
        await self._started()
        try:
            await self._client.chat_postMessage(
                channel=self._channel, thread_ts=self._thread_ts, markdown_text=f"_{text}_"
            )
        except Exception as exc:
            log.warning("could not post a notice: %s", slack_error(exc))

    async def finish(
        self, answer: FinishedAnswer | None = None, sources: Sequence[Source] = ()
    ) -> None:
        if not self._closing.is_set():
            self._answer = answer
            if sources:
                # Escaped already, so not through stream(): its defusing would break the links.
                self._outbox.add(slack_sources(sources))
        try:
            await self._close()
        except SlackApiError as exc:
            raise_if_undeliverable(exc)
            raise

    async def fail(self, message: str) -> None:
        if self._closing.is_set():
            return
        shown = bool(self._outbox.pending or self.posted)
        self._outbox.add(("\n\n" if shown else "") + f"_{message}_")
        try:
            await self._close(clear_status=True)  # never leave "is thinking…" after an error
        except Exception as exc:
            await self._set_status("")
            if isinstance(exc, SlackApiError):
                raise_if_undeliverable(exc)
            raise

    async def ask_approval(self, request: ApprovalRequest) -> bool:
        await self._started()
        async with self._sending:
            await self._send(final=False)  # the text written before the call goes above it
        response = await self._client.chat_postMessage(
            channel=self._channel,
            thread_ts=self._thread_ts,
            text=f"Approval needed: {escape(request.question)}",
            blocks=question_blocks(request),
        )
        self._questions[request.id] = str(response["ts"])
        return True

    async def approval_closed(
        self, request: ApprovalRequest, verdict: Verdict, by: str | None
    ) -> None:
        ts = self._questions.pop(request.id, None)
        if ts is None:
            return
        try:
            await self._client.chat_update(
                channel=self._channel,
                ts=ts,
                text=outcome_text(verdict, by),
                blocks=closed_blocks(request, verdict, by),
            )
        except SlackApiError as exc:
            log.warning("could not show an approval's outcome: %s", slack_error(exc))

    async def refuse(self, message: str) -> None:
        """Only the author sees why the bot will not answer: the channel sees nothing."""
        if self._closing.is_set():
            return
        self._closing.set()
        try:
            await self._client.chat_postEphemeral(
                channel=self._channel,
                user=self._user,
                thread_ts=self._thread_ts,
                text=f"_{message}_",
            )
        except SlackApiError as exc:
            log.info("could not tell a user why they were refused: %s", slack_error(exc))

    # ------------------------------------------------------------------ internals

    async def _close(self, *, clear_status: bool = False) -> None:
        if self._closing.is_set():
            return
        self._closing.set()
        await self._started()
        if self._pump is not None:
            await self._pump
        async with self._sending:
            await self._send(final=True, failed=clear_status)
        if self._status_shown or clear_status:
            await self._set_status("")

    async def _set_status(self, status: str, *, loading_messages: tuple[str, ...] = ()) -> None:
        if not self._show_status:
            return
        try:
            await self._client.assistant_threads_setStatus(
                channel_id=self._channel,
                thread_ts=self._thread_ts,
                status=status,
                loading_messages=list(loading_messages) or None,
            )
            self._status_shown = bool(status)
        except Exception as exc:
            # A status is a courtesy: without it (no assistant scope, a channel where Slack
            # refuses it) the answer still comes.
            log.info("no status in this thread (%s)", slack_error(exc))
            self._show_status = False

    async def _run_pump(self) -> None:
        """Send pending text, one call at a time, no more often than the interval."""
        await self._started()
        while self._outbox.pending and not self._closing.is_set():
            wait = self._last_send + self._interval - time.monotonic()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), wait)
                if self._closing.is_set():
                    return  # finish() sends the rest in its final call
            try:
                async with self._sending:
                    await self._send(final=False)
            except Exception as exc:
                # Slack is unreachable for now: keep the text; finish() tries again.
                log.warning("could not stream to Slack: %s", slack_error(exc))
                self._last_send = time.monotonic()

    async def _send(self, *, final: bool, failed: bool = False) -> None:
        """Send what is pending; with ``final``, also close the current message (its steps
        still running closed as failed, with ``failed``, else as complete)."""
        while True:
            self._last_send = time.monotonic()
            if self._outbox.message is None and final:
                # Complete before anything was shown (or the last message was full): plain
                # posts, which later updates need not fit under UPDATE_BUDGET.
                snapshot = self._outbox.pending
                await self._post_whole(snapshot)
                self._outbox.posted(snapshot)
                return
            if self._mode == "stream":
                done = await self._send_stream(final, failed=failed)
            else:
                done = await self._send_update(final)
            if done:
                return
            # A message was filled and closed, or the mode changed: go on with the rest.

    async def _send_stream(self, final: bool, *, failed: bool = False) -> bool:
        """Native streaming; True when all pending text is sent."""
        message = self._outbox.message
        if message is None:
            piece = self._outbox.take(STREAM_BUDGET)
            if not piece.head:
                return True  # only a partial line so far
            try:
                response = await self._start_stream(markdown_text=piece.head)
            except SlackApiError as exc:
                self._fall_back(slack_error(exc))
                return False
            return self._opened(str(response["ts"]), piece)
        piece = self._outbox.take(STREAM_BUDGET, final=final)
        closing = final or piece.full
        try:
            if closing:
                ending = self._end_tasks(failed) if final else []
                last = final and not piece.tail
                await self._client.chat_stopStream(
                    channel=self._channel,
                    ts=message.ts,
                    blocks=button_blocks() if last and await self._buttons_here() else None,
                    **_content(piece.head, ending),
                )
            elif piece.head:
                await self._client.chat_appendStream(
                    channel=self._channel, ts=message.ts, markdown_text=piece.head
                )
        except SlackApiError as exc:
            # Refused, so not shown: the text goes into the next message.
            error = slack_error(exc)
            log.info("Slack stream refused (%s): continuing in a new message", error)
            self._outbox.refused()
            if error != "msg_too_long":
                self._fall_back(error)
            return False
        return self._outbox.placed(piece, close=closing)

    async def _send_update(self, final: bool) -> bool:
        """Post-and-update mode; True when all pending text is in a message."""
        message = self._outbox.message
        if message is None:
            piece = self._outbox.take(UPDATE_BUDGET)
            if not piece.head:
                return True  # only a partial line so far
            response = await self._post(piece.head)
            return self._opened(str(response["ts"]), piece)
        piece = self._outbox.take(UPDATE_BUDGET, final=final)
        buttons = final and not piece.tail and await self._buttons_here()
        if piece.head or buttons:
            text = message.text + piece.head
            try:
                if buttons:
                    await self._client.chat_update(
                        channel=self._channel, ts=message.ts, text=text, blocks=answer_blocks(text)
                    )
                else:
                    await self._client.chat_update(
                        channel=self._channel, ts=message.ts, markdown_text=text
                    )
            except SlackApiError as exc:
                # msg_too_long or an edit window: leave that message as it is, continue below it.
                log.info(
                    "Slack refused an update (%s): continuing in a new message", slack_error(exc)
                )
                self._outbox.refused()
                return False
        return self._outbox.placed(piece, close=piece.full)

    def _opened(self, ts: str, piece: Piece) -> bool:
        """A new message holds ``piece.head``. True when nothing is left."""
        self.posted.append(ts)
        self._status_shown = False  # Slack clears the status when the app replies
        return self._outbox.opened(ts, piece)

    def _fall_back(self, error: str) -> None:
        self._native.refused(error)
        self._mode = "update"
        self._running_tasks.clear()

    async def _send_task(self, step: Step) -> bool:
        """Show ``step`` as a task card in the stream, below the text so far (a stream opened
        for it if none is). False when Slack refused it: the caller shows a status instead."""
        await self._send(final=False)  # the text written before the step goes above its card
        if self._mode != "stream":
            return False  # Slack refused the stream meanwhile
        chunk = _task_chunk(step)
        message = self._outbox.message
        try:
            if message is None:
                response = await self._start_stream(chunks=[chunk])
                self._opened(str(response["ts"]), Piece("", "", "", full=False))
            else:
                await self._client.chat_appendStream(
                    channel=self._channel, ts=message.ts, chunks=[chunk]
                )
        except SlackApiError as exc:
            error = slack_error(exc)
            log.info("Slack refused a task update (%s): showing steps as a status", error)
            if message is not None:
                self._outbox.refused()
            self._fall_back(error)
            return False
        if step.state is StepState.RUNNING:
            self._running_tasks[step.id] = step
        else:
            self._running_tasks.pop(step.id, None)
        return True

    async def _start_stream(self, **content: Any) -> Any:
        """``chat.startStream`` in this answer's thread, for its user, with ``content``."""
        return await self._client.chat_startStream(
            channel=self._channel,
            thread_ts=self._thread_ts,
            recipient_user_id=self._user,
            recipient_team_id=self._team,
            task_display_mode=TASK_DISPLAY_MODE,
            **content,
        )

    def _end_tasks(self, failed: bool) -> list[dict[str, str]]:
        """Task updates that close the steps still running in the stream about to stop."""
        state = StepState.ERROR if failed else StepState.COMPLETE
        ending = [_task_chunk(Step(s.id, s.title, state)) for s in self._running_tasks.values()]
        self._running_tasks.clear()
        return ending

    async def _post_whole(self, text: str) -> None:
        chunks = split_markdown(text, POST_BUDGET) if text else []
        for n, chunk in enumerate(chunks):
            await self._post_chunk(chunk, POST_BUDGET, last=n == len(chunks) - 1)

    async def _post_chunk(self, chunk: str, budget: int, *, last: bool = False) -> None:
        """Post ``chunk``; ``last``: the answer's last message, which gets the buttons."""
        buttons = last and self._answer is not None
        try:
            response = await self._post(chunk, buttons=buttons)
        except SlackApiError as exc:
            smaller = min(budget, len(chunk)) // 2
            if slack_error(exc) not in ("msg_too_long", "msg_blocks_too_long") or smaller < 500:
                raise
            pieces = split_markdown(chunk, smaller)
            for n, piece in enumerate(pieces):
                await self._post_chunk(piece, smaller, last=last and n == len(pieces) - 1)
            return
        self.posted.append(str(response["ts"]))
        self._status_shown = False
        if buttons:
            await self._buttons_here()

    async def _post(self, text: str, *, buttons: bool = False) -> Any:
        if buttons:
            return await self._client.chat_postMessage(
                channel=self._channel,
                thread_ts=self._thread_ts,
                text=text,
                blocks=answer_blocks(text),
            )
        return await self._client.chat_postMessage(
            channel=self._channel, thread_ts=self._thread_ts, markdown_text=text
        )

    async def _buttons_here(self) -> bool:
        """Give the core the answer's messages so far, the last one about to carry the
        buttons: True if a click on them will find the answer."""
        if self._answer is None:
            return False
        ids = [answer_message_id(self._channel, ts) for ts in self.posted]
        return await self._answer.posted(ids)


def _task_chunk(step: Step) -> dict[str, str]:
    return {
        "type": "task_update",
        "id": step.id,
        "title": step.title,
        "status": _TASK_STATUS[step.state],
    }


def _content(text: str, tasks: list[dict[str, str]]) -> dict[str, Any]:
    """A stream call's content: ``markdown_text`` alone, or, with task updates, every part as
    a chunk in the order shown (as Slack's own stream helper sends them)."""
    if not tasks:
        return {"markdown_text": text or None}
    chunks: list[dict[str, str]] = [*tasks]
    if text:
        chunks.append({"type": "markdown_text", "text": text})
    return {"chunks": chunks}
