"""One turn of the agent for one admitted event: prepare, run (streamed), record.

- **prepare**: the channel's model and instructions, the attachments read (notices for the
  skipped ones), the thread's earlier messages, the history fitted to the model's context;
- **run**: the agent streamed into the reply (text deltas, tool progress, "Thinking…" while a
  reasoning model reasons; its reasoning is never shown), under the turn's time limit;
- **record**: the turn's items, its usage and "answered" in one transaction; a failed turn
  writes no history (its usage still counts).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import unicodedata
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agents import (
    Agent,
    ModelSettings,
    RunConfig,
    Runner,
    RunResultStreaming,
    RunState,
    ToolApprovalItem,
)
from agents.models.interface import Model
from openai.types.responses import (
    ResponseReasoningSummaryTextDeltaEvent,
    ResponseReasoningTextDeltaEvent,
    ResponseTextDeltaEvent,
)

from bot import web_search
from bot.approvals import DENIED_TO_MODEL, Approvals
from bot.attachments import ImageInput, read_attachments
from bot.commands import MODEL_SETTING, PROMPT_SETTING, REASONING_SETTING
from bot.context import ToolCallBudget, ToolConfig, TurnContext
from bot.conversations import context_note_key
from bot.documents import PDF_MIME
from bot.errors import ErrorKind, failure_line, turn_failure
from bot.events import Event
from bot.feedback import Feedback
from bot.metrics import Metrics
from bot.quotes import quoted_context
from bot.reply import Reply, Step, StepState, Verdict
from bot.results import TurnResult, user_key
from bot.settings import Settings
from bot.tokens import estimate_tokens_off_loop, history_budget, supports_vision
from bot.tools import describe_tool_call
from bot.tools.guards import tool_not_found_message
from bot.turn_stats import TURN_STATS, TurnStats
from storage.base import NewItem, ObservedMessage, Outcome, Store, UsageRecord

if TYPE_CHECKING:
    from bot.redact import Redaction  # loads phonenumbers: only where redaction is on

# The turn's lines keep the logger they had before the turn left bot/core.py: operators filter
# and alert on "bot.core".
log = logging.getLogger("bot.core")

IMAGE_TOKENS = 1_500
"""What an image is counted as when fitting history (a high-detail image is ~1,100 tokens)."""
FreeSlot = Callable[[], AbstractAsyncContextManager[None]]
"""The turn's model slot, freed for the ``async with`` (``Core``'s ``BOT_MAX_CONCURRENT_TURNS``)."""
THINKING_TITLE = "Thinking"
"""The step shown while a reasoning model reasons, before its text or its next tool call."""
"""The status while a reasoning model reasons (its reasoning itself is never shown)."""
_REASONING_DELTAS = (ResponseReasoningTextDeltaEvent, ResponseReasoningSummaryTextDeltaEvent)
EMPTY_MESSAGE_REPLY = (
    "Hi! Ask me anything — for example “What's the weather in Lisbon?”. "
    "Type /help to see what I can do."
)


@dataclass(slots=True)
class Prepared:
    """What the model is given for one turn, and what the record step needs of it."""

    conversation: str
    model: str
    instructions: str
    user_item: dict[str, Any]
    user_tokens: int
    input_items: list[Any]
    observed: list[ObservedMessage] = field(default_factory=list)
    context_note: str = ""
    reasoning_effort: str | None = None
    """The channel's ``/settings reasoning``, else ``BOT_REASONING_EFFORT``; None: the
    model's own default."""
    web_search: bool = False
    """The model calls carry OpenRouter's web plugin (``BOT_WEB_SEARCH``, ``/settings web``)."""


class TurnRunner:
    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        agent: Agent[TurnContext],
        models: Callable[[str], Model],
        agent_for: Callable[[str], Agent[TurnContext]] | None = None,
        mcp_tools: Callable[[str], dict[str, str]] | None = None,
        tool_config: ToolConfig,
        metrics: Metrics,
        feedback: Feedback,
        approvals: Approvals,
        redaction: Redaction | None = None,
    ) -> None:
        self.settings = settings
        self._redaction = redaction
        self.store = store
        self.agent = agent
        self._agent_for = agent_for or (lambda channel: agent)
        self._mcp_tools = mcp_tools or (lambda channel: {})
        """Channel -> the MCP tools offered there now (name -> server): servers come and go."""
        self._models = models
        self._tool_config = tool_config
        self._metrics = metrics
        self._feedback = feedback
        self._approvals = approvals

    async def run(
        self, event: Event, reply: Reply, *, free_slot: FreeSlot | None = None
    ) -> TurnResult:
        """Never raises for a model or tool failure (the reply is failed with its line); a
        failure of the reply itself propagates to the core. ``free_slot``: the turn's model
        slot given up while it waits for a person (an approval), and taken back after."""
        prepared = await self._prepare(event, reply)
        if prepared is None:  # nothing to answer: the hint instead, no model call
            await reply.stream(EMPTY_MESSAGE_REPLY)
            await reply.finish()
            try:
                await self.store.finish_event(event_id=event.event_id, outcome=Outcome.ANSWERED)
            except Exception:
                log.exception("could not record the event's outcome")
            return TurnResult(Outcome.ANSWERED, text=EMPTY_MESSAGE_REPLY)
        result = await self._stream(event, reply, prepared, free_slot)
        if result.error is None:
            await self._record(event, prepared, result)
            await reply.finish(
                self._feedback.finished(event, result.model or prepared.model),
                sources=result.sources,
            )
        return result

    # ------------------------------------------------------------------ prepare

    async def _prepare(self, event: Event, reply: Reply) -> Prepared | None:
        key = str(event.conversation)
        channel_settings = await self.store.channel_settings(channel=str(event.channel))
        model_name = channel_settings.get(MODEL_SETTING) or self.settings.bot_model
        files = await read_attachments(
            event.attachments,
            self.settings,
            vision=supports_vision(model_name) if event.attachments else None,
            model=model_name,
        )
        for remark in files.notices:
            await reply.notice(remark)
        for pdf in files.pdfs:
            await self.store.save_file(
                conversation=key, name=pdf.name, mime_type=PDF_MIME, data=pdf.data
            )
        named = [f"[Attached document: {pdf.name}]" for pdf in files.pdfs]
        named += [f"[Attached image: {image.name}]" for image in files.images]
        parts = (quoted_context(event.quotes), _visible(event.text), files.text, "\n".join(named))
        text = "\n\n".join(part for part in parts if part)
        observed = (
            await self.store.observed_messages(conversation=key)
            if self.settings.thread_context_messages
            else []
        )
        if text and observed:
            text = f"{_earlier_messages(observed)}\n\n{text}"
        if not text:
            return None
        if self._redaction is not None:
            # All of it: the message, the files' text, their names, the thread's messages
            # (stored redacted already, unless observed before redaction was on). What is
            # stored as the turn's history below is this redacted text.
            text = await self._redaction.text(key, text)
            note = await self._redaction.first_note(key)
            if note:
                await reply.notice(note)

        # History keeps the text (images named, not their bytes); only this turn sends them.
        user_item: dict[str, Any] = {"role": "user", "content": text}
        user_tokens = await estimate_tokens_off_loop(user_item)
        budget = history_budget(
            model_name,
            self.settings.history_max_tokens,
            user_tokens + IMAGE_TOKENS * len(files.images),
        )
        history = await self.store.load_history(
            conversation=key, max_items=self.settings.history_max_items, max_tokens=budget
        )
        input_items: list[Any] = [h.item for h in history]
        input_items.append(_with_images(user_item, files.images))
        return Prepared(
            conversation=key,
            model=model_name,
            instructions=channel_settings.get(PROMPT_SETTING, ""),
            user_item=user_item,
            user_tokens=user_tokens,
            input_items=input_items,
            observed=observed,
            context_note=await self.store.get_state(key=context_note_key(key)) or "",
            reasoning_effort=(
                channel_settings.get(REASONING_SETTING) or self.settings.reasoning_effort
            ),
            web_search=web_search.enabled(self.settings, channel_settings),
        )

    # ------------------------------------------------------------------ run

    async def _stream(
        self, event: Event, reply: Reply, prepared: Prepared, free_slot: FreeSlot | None
    ) -> TurnResult:
        stats = TurnStats()
        stats_token = TURN_STATS.set(stats)
        context = TurnContext(
            tools=self._tool_config,
            conversation=prepared.conversation,
            user_id=user_key(event),
            channel=str(event.channel),
            model=prepared.model,
            channel_instructions=prepared.instructions,
            context_note=prepared.context_note,
            tool_calls=ToolCallBudget(
                per_response=self.settings.max_tool_calls_per_response,
                per_turn=self.settings.max_tool_calls_per_turn,
            ),
        )
        # The agent and the MCP tools named in progress lines and in the tool-not-found
        # message are taken together (no await between): servers that are down are left out.
        agent = self._agent_for(str(event.channel))
        mcp_tools = self._mcp_tools(str(event.channel))
        own_tools = [tool.name for tool in self.agent.tools]
        config = RunConfig(
            model=self._models(prepared.model),
            tracing_disabled=not self.settings.tracing,
            # A call to a tool we lack is answered to the model, not a failed turn.
            tool_not_found_behavior="return_error_to_model",
            tool_error_formatter=tool_not_found_message(own_tools + sorted(mcp_tools)),
            model_settings=_run_settings(self.settings, prepared),
        )
        run = Runner.run_streamed(
            agent,
            prepared.input_items,
            context=context,
            max_turns=self.settings.max_tool_rounds,
            run_config=config,
        )
        result = TurnResult(Outcome.FAILED, model=prepared.model)
        steps = _Steps(set(own_tools), mcp_tools)
        shown: list[str] = []
        break_before_text = False
        # Shown while the model searches or reasons, until its text or a tool call.
        thinking: Step | None = None
        thoughts = 0
        if prepared.web_search:
            thinking = Step("web-search", web_search.SEARCHING, StepState.RUNNING)
            await reply.progress(thinking)

        async def thought() -> None:
            nonlocal thinking
            if thinking is not None:
                await reply.progress(dataclasses.replace(thinking, state=StepState.COMPLETE))
                thinking = None

        async def consume(run: RunResultStreaming) -> None:
            """Show one run's events: its text, its steps, its thinking."""
            nonlocal break_before_text, thinking, thoughts
            async for ev in run.stream_events():
                if ev.type == "raw_response_event" and isinstance(ev.data, ResponseTextDeltaEvent):
                    if not ev.data.delta:
                        continue
                    if break_before_text:
                        await reply.stream("\n\n")
                        shown.append("\n\n")
                        break_before_text = False
                    await thought()
                    await reply.stream(ev.data.delta)
                    shown.append(ev.data.delta)
                elif ev.type == "raw_response_event" and isinstance(ev.data, _REASONING_DELTAS):
                    if thinking is None and ev.data.delta:  # once until text or a tool
                        thoughts += 1
                        thinking = Step(f"thinking-{thoughts}", THINKING_TITLE, StepState.RUNNING)
                        await reply.progress(thinking)
                elif ev.type == "run_item_stream_event" and ev.name == "tool_called":
                    await thought()
                    step, name = steps.called(ev.item.raw_item)
                    result.tools.append(name)
                    await reply.progress(step)
                    break_before_text = bool(shown)
                elif (
                    ev.type == "run_item_stream_event"
                    and ev.name == "tool_output"
                    and (done := steps.returned(ev.item.raw_item, context)) is not None
                ):
                    await reply.progress(done)

        deadline = asyncio.timeout(self.settings.turn_timeout_s)
        try:
            async with deadline:
                await consume(run)
                while run.interruptions:
                    # Tool calls that need a person's approval: the run paused before them.
                    state = run.to_state()
                    for item in run.interruptions:
                        async with free_slot() if free_slot else contextlib.nullcontext():
                            await self._approve(event, reply, item, state, deadline, context)
                    run = Runner.run_streamed(
                        agent, state, max_turns=self.settings.max_tool_rounds, run_config=config
                    )
                    await consume(run)
        except BaseException as exc:
            run.cancel()
            TURN_STATS.reset(stats_token)
            self._observe_model(stats)
            if not isinstance(exc, Exception):
                raise
            if isinstance(exc, NotApproved):
                kind, line = ErrorKind.NOT_APPROVED, exc.line
            else:
                # Only the deadline knows it fired: inside, a turn cap and a model that went
                # silent both surface as a TimeoutError.
                kind = _failure_kind(exc, shown_text=bool(shown), turn_cap=deadline.expired())
                line = failure_line(kind, shown_text=bool(shown))
            _fill_usage(result, run, stats)
            await self._record_failed_usage(event, result)
            await _safe(reply.fail(line))
            result.error = kind
            result.text = "".join(shown)
            return result
        TURN_STATS.reset(stats_token)
        self._observe_model(stats)

        await stats.wait_for_costs(run.context_wrapper.usage.requests, timeout_s=0.25)
        _fill_usage(result, run, stats)
        result.text = "".join(shown)
        result.new_items = [
            item.to_input_item()
            for item in run.new_items
            if not isinstance(item, ToolApprovalItem)  # the pause itself, not history
        ]
        result.sources = web_search.sources_of(result.new_items)
        if not result.text.strip():
            log.warning("model returned an empty answer", extra={"model": result.model})
            await self._record_failed_usage(event, result)
            await _safe(reply.fail("The model returned an empty answer. Please try again."))
            result.error = ErrorKind.PROVIDER
        return result

    async def _approve(
        self,
        event: Event,
        reply: Reply,
        item: ToolApprovalItem,
        state: RunState[TurnContext],
        deadline: asyncio.Timeout,
        context: TurnContext,
    ) -> None:
        """Ask the asker about one paused tool call and apply the decision to ``state``; the
        turn's time limit stands still meanwhile. Raises ``NotApproved`` when nobody answered."""
        name = item.tool_name or "tool"
        origin = item.tool_origin
        server = (origin.mcp_server_name if origin else None) or self._mcp_tools(
            str(event.channel)
        ).get(name)
        tool = f"{server}.{name}" if server else name
        raw = item.raw_item
        arguments = raw.get("arguments") if isinstance(raw, dict) else getattr(raw, "arguments", "")
        call_id = raw.get("call_id") if isinstance(raw, dict) else getattr(raw, "call_id", None)
        loop = asyncio.get_running_loop()
        when = deadline.when()
        left = None if when is None else when - loop.time()
        deadline.reschedule(None)
        try:
            verdict = await self._approvals.ask(
                event, reply, tool=tool, arguments=str(arguments or "")
            )
        finally:
            deadline.reschedule(None if left is None else loop.time() + left)
        if verdict is Verdict.APPROVED:
            state.approve(item)
            return
        if verdict is Verdict.DENIED:
            state.reject(item, rejection_message=DENIED_TO_MODEL)
            context.failed_calls.add(str(call_id))
            return
        minutes = max(1, round(self.settings.approval_timeout_s / 60))
        raise NotApproved(
            f"Nobody answered the request to run `{tool}` within {minutes} minute"
            f"{'s' if minutes != 1 else ''}, so I cancelled it and stopped here. "
            "Ask again when you can answer it."
        )

    def _observe_model(self, stats: TurnStats) -> None:
        for seconds, ok in stats.calls:
            self._metrics.model_seconds.labels("ok" if ok else "error").observe(seconds)
        for kind in stats.errors:
            self._metrics.model_errors.labels(kind).inc()

    # ------------------------------------------------------------------ record

    async def _record(self, event: Event, prepared: Prepared, result: TurnResult) -> None:
        """The turn's items, usage and "answered", in one transaction."""
        rows = [NewItem(item=prepared.user_item, tokens=prepared.user_tokens, turn_start=True)]
        for item in result.new_items:
            rows.append(NewItem(item=item, tokens=await estimate_tokens_off_loop(item)))
        await self.store.complete_turn(
            conversation=prepared.conversation,
            items=rows,
            usage=self._usage_record(event, result),
            event_id=event.event_id,
            observed_upto=prepared.observed[-1].id if prepared.observed else None,
        )
        result.outcome = Outcome.ANSWERED

    def _usage_record(self, event: Event, result: TurnResult) -> UsageRecord:
        return UsageRecord(
            conversation=str(event.conversation),
            channel=str(event.channel),
            user_id=user_key(event),
            model=result.model or self.settings.bot_model,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            reasoning_tokens=result.reasoning_tokens,
            cost_usd=result.cost_usd,
            created_at=time.time(),
            workspace=event.workspace,
        )

    async def _record_failed_usage(self, event: Event, result: TurnResult) -> None:
        """Tokens spent by a turn that failed still count towards /usage and budgets."""
        if not (result.input_tokens or result.output_tokens or result.cost_usd):
            return
        try:
            await self.store.record_usage(self._usage_record(event, result))
        except Exception:
            log.exception("could not record usage of a failed turn")


class NotApproved(Exception):
    """A tool call's approval expired: the turn ends with ``line``."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line


class _Steps:
    """The turn's tool calls as steps people see: running when called, then complete, or
    failed when the tool said so (``bot.tools.failure``), was refused by the caps or does not
    exist."""

    def __init__(self, tools: set[str], mcp_tools: dict[str, str] | None = None) -> None:
        self._tools = tools | set(mcp_tools or ())
        self._mcp_tools = mcp_tools or {}
        """MCP tool name -> its server's name, for the step's title."""
        self._running: dict[str, list[Step]] = {}
        """Call id -> its steps still running (some providers reuse ids across responses)."""
        self._unknown: set[str] = set()
        self._count = 0

    def called(self, raw: Any) -> tuple[Step, str]:
        """The step of a tool call, and the tool's name."""
        name = str(getattr(raw, "name", "") or "tool")
        call_id = str(getattr(raw, "call_id", "") or getattr(raw, "id", "") or "")
        self._count += 1
        # A step's id is unique in the turn, even where the model's call ids are not: Slack
        # updates a task card by its id.
        step_id = f"{call_id or 'step'}-{self._count}"
        server = self._mcp_tools.get(name)
        if server is not None:
            title = f"Calling {server}.{name}"
        else:
            title = describe_tool_call(name, getattr(raw, "arguments", ""))
        step = Step(step_id, title, StepState.RUNNING)
        self._running.setdefault(call_id, []).append(step)
        if name not in self._tools:
            self._unknown.add(step_id)  # nothing runs: the model is told which tools exist
        return step, name

    def returned(self, raw: Any, context: TurnContext) -> Step | None:
        """The step of a call whose result came back, in its final state."""
        call_id = raw.get("call_id") if isinstance(raw, dict) else getattr(raw, "call_id", None)
        running = self._running.get(str(call_id or ""))
        if not running:
            return None
        step = running.pop(0)
        call_id = str(call_id)
        failed = (
            step.id in self._unknown
            or call_id in context.failed_calls
            or call_id in context.tool_calls.refused
        )
        context.failed_calls.discard(call_id)
        return Step(step.id, step.title, StepState.ERROR if failed else StepState.COMPLETE)


def _failure_kind(exc: Exception, *, shown_text: bool, turn_cap: bool) -> ErrorKind:
    kind = turn_failure(exc, shown_text=shown_text, turn_timed_out=turn_cap)
    if kind is ErrorKind.INTERNAL:
        log.error("turn failed", exc_info=exc)
    else:
        log.warning("turn failed: %s (%s)", kind.value, type(exc).__name__)
    return kind


def _fill_usage(result: TurnResult, run: Any, stats: TurnStats) -> None:
    usage = run.context_wrapper.usage
    result.input_tokens = int(usage.input_tokens)
    result.output_tokens = int(usage.output_tokens)
    result.reasoning_tokens = int(usage.output_tokens_details.reasoning_tokens or 0)
    result.cost_usd = stats.cost_usd
    if stats.model:
        result.model = stats.model


def _run_settings(settings: Settings, prepared: Prepared) -> ModelSettings | None:
    """The run's settings over the agent's: OpenRouter's unified ``reasoning`` field, as an
    extra body key so both model clients send it the same (litellm would send its own
    ``reasoning_effort`` for ``ModelSettings.reasoning``), and the web plugin when the channel
    searches."""
    effort = prepared.reasoning_effort
    extra_args = {"reasoning": {"effort": effort}} if effort is not None else None
    extra_body = web_search.request_extras(settings) if prepared.web_search else None
    if extra_args is None and extra_body is None:
        return None
    return ModelSettings(extra_args=extra_args, extra_body=extra_body)


def _with_images(user_item: dict[str, Any], images: list[ImageInput]) -> dict[str, Any]:
    if not images:
        return user_item
    parts: list[dict[str, Any]] = [{"type": "input_text", "text": user_item["content"]}]
    parts.extend(
        {"type": "input_image", "image_url": image.data_url, "detail": "auto"} for image in images
    )
    return {"role": "user", "content": parts}


def _earlier_messages(observed: list[ObservedMessage]) -> str:
    lines = "\n".join(f"<@{m.author}>: {m.text}" for m in observed)
    return (
        "[Earlier messages in this thread, not addressed to you, for context]\n"
        f"{lines}\n[End of earlier messages]"
    )


def _visible(text: str) -> str:
    """``text`` stripped, or "" when nothing in it is visible (only spaces, zero-width and
    direction marks, control characters): such a message is treated as empty."""
    text = text.strip()
    if all(ch.isspace() or unicodedata.category(ch) in ("Cf", "Cc") for ch in text):
        return ""
    return text


async def _safe(awaitable: Any) -> None:
    """Await a reply call whose failure must not hide the original problem."""
    try:
        await awaitable
    except Exception:
        log.exception("could not deliver a failure message")
