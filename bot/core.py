"""The one core handler: every platform's events come here and are answered through ``Reply``.

A message turn: is it for the bot -> claimed once in the store (a redelivery or a restart never
answers twice) -> "working" shown at once -> the conversation's lock (its messages are answered in
order; other conversations run concurrently, up to a global limit) -> history fitted to the
model's context -> the agent run, streamed -> the turn's items, usage and outcome written in one
transaction. A failed turn writes no history, and the user gets one short line.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import unicodedata
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from agents import Agent, RunConfig, Runner
from agents.models.interface import Model
from openai.types.responses import ResponseTextDeltaEvent

from bot.access import REFUSAL, allowed
from bot.agent import ModelFactory
from bot.attachments import ImageInput, read_attachments
from bot.budgets import DAY_S, budgets_for, day_start
from bot.commands import CommandContext, run_command
from bot.context import ToolCallBudget, ToolConfig, TurnContext
from bot.conversations import Conversations
from bot.documents import PDF_MIME
from bot.errors import ErrorKind, failure_line, turn_failure, user_message
from bot.events import Event, EventKind
from bot.metrics import Metrics
from bot.models import TURN_STATS, TurnStats
from bot.reply import Reply, Undeliverable
from bot.settings import Settings
from bot.tokens import estimate_tokens_off_loop, history_budget, supports_vision
from bot.tools import describe_tool_call
from bot.tools.guards import tool_not_found_message
from storage.base import NewItem, ObservedMessage, Outcome, Store, UnfinishedEvent, UsageRecord

log = logging.getLogger(__name__)

TellAuthor = Callable[[str], Awaitable[None]]
"""Shows a line to the event's author only (Slack: ephemeral; Discord: ephemeral or a DM)."""

MODEL_SETTING = "model"
PROMPT_SETTING = "prompt"
RESTART_LINE = (
    "Sorry, I was restarted while answering this, so the answer was lost. Please ask again."
)
"""Told after a restart for each message whose turn a killed process never finished."""
SHUTDOWN_LINE = (
    "Sorry, I'm restarting and couldn't finish this answer. Please ask again in a minute."
)
"""Told at shutdown for each turn the grace period (``BOT_SHUTDOWN_GRACE``) cut short."""
SHUTDOWN_TELL_S = 2.0
RECOVERY_RETRY_DELAYS_S = (5.0, 30.0, 120.0)
"""After a restart, telling users about cut turns is retried after these pauses while the
platform fails (e.g. it is down too); the rest waits for the next start."""
LOGGED_CHARS = 2_000
"""With ``LOG_CONTENT=true``, how much of a question and of its answer the turn's log line keeps."""
IMAGE_TOKENS = 1_500
"""What an image is counted as when fitting history (a high-detail image is ~1,100 tokens)."""
OBSERVED_TEXT_CHARS = 4_000
"""Of an unaddressed thread message, at most this much is kept as context."""
EMPTY_MESSAGE_REPLY = (
    "Hi! Ask me anything — for example “What's the weather in Lisbon?”. "
    "Type /help to see what I can do."
)


class RateLimiter:
    """At most ``limit`` events per ``window_s`` per key, over a sliding window; memory is
    bounded by the keys active in the last window."""

    def __init__(self, limit: int, window_s: float = 60.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = {}
        self._last_sweep = 0.0

    def retry_after(self, key: str, now: float | None = None) -> float:
        """0 if ``key`` may go on (and count it); else seconds until it may."""
        if self.limit <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        self._sweep(now)
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if len(hits) >= self.limit:
            return hits[0] + self.window_s - now
        hits.append(now)
        return 0.0

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < self.window_s:
            return
        self._last_sweep = now
        for key in [
            k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self.window_s
        ]:
            del self._hits[key]


class KeyedLocks:
    """One lock per key, dropped when nobody holds or waits for it (no growth per conversation)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


@dataclass(slots=True)
class TurnResult:
    """What a turn did, for logs, tests and benchmarks."""

    outcome: Outcome
    text: str = ""
    error: ErrorKind | None = None
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    tools: list[str] = field(default_factory=list)


class Core:
    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        agent: Agent[TurnContext],
        model_factory: ModelFactory,
        tool_config: ToolConfig,
    ) -> None:
        self.settings = settings
        self.store = store
        self.agent = agent
        self._model_factory = model_factory
        self._tool_config = tool_config
        self._models: dict[str, Model] = {}
        self._tool_errors = tool_not_found_message([tool.name for tool in agent.tools])
        self.locks = KeyedLocks()
        self.rate = RateLimiter(settings.user_rate_limit)
        self._turn_slots = asyncio.Semaphore(settings.max_concurrent_turns)
        self.started_at = time.time()
        """Events claimed before this are a previous process's (see ``recover``)."""
        self.stopping = False
        """Set at shutdown: a turn cancelled now tells its user it was cut."""
        self.waiting = 0
        """Turns waiting for their conversation's lock or a model slot (queue depth)."""
        self.running = 0
        """Turns holding a slot now."""
        self.conversations = Conversations(store)
        """What adapters ask about conversations (they never reach the store themselves)."""
        self.health: dict[str, Callable[[], bool]] = {}
        """Each platform's "connected and taking events" (``/healthz``), by platform name."""
        self.metrics = Metrics()
        self.metrics.watch(lambda: self.waiting, lambda: self.running)

    def healthy(self) -> bool:
        """Every platform registered in ``health`` is up (and at least one is)."""
        return bool(self.health) and all(check() for check in self.health.values())

    def model(self, name: str) -> Model:
        model = self._models.get(name)
        if model is None:
            if len(self._models) >= 64:  # channel overrides are few; never grow without bound
                self._models.pop(next(iter(self._models)))
            model = self._models[name] = self._model_factory(name)
        return model

    async def close(self) -> None:
        for model in self._models.values():
            await model.close()
        self._models.clear()

    async def recover(
        self,
        platform: str,
        tell: Callable[[str, str], Awaitable[None]],
        *,
        retry_delays: Sequence[float] = RECOVERY_RETRY_DELAYS_S,
    ) -> int:
        """Tell the users whose messages a previous process claimed but never finished (it was
        killed mid-turn): ``tell(address, line)`` for each, then mark it failed. It is never
        re-answered (its partial answer may be on screen). A ``tell`` that fails for good
        (``Undeliverable``: the channel is gone) closes the claim; any other failure (the
        platform is down) is retried after each of ``retry_delays``, and what is still untold
        stays claimed for the next start. Returns how many were told."""
        try:
            waiting = await self.store.unfinished_events(
                prefix=f"{platform}:", before=self.started_at
            )
        except Exception:
            log.exception("could not list the turns a previous run left unfinished")
            return 0
        cut, told = len(waiting), 0
        for delay in (0.0, *retry_delays):
            if not waiting:
                break
            await asyncio.sleep(delay)
            untold: list[UnfinishedEvent] = []
            for event in waiting:
                try:
                    if event.address:
                        await tell(event.address, RESTART_LINE)
                        told += 1
                except Undeliverable as exc:
                    log.info("a user whose turn was cut cannot be told: %s", exc)
                except Exception as exc:
                    log.warning(
                        "could not tell a user their turn was cut by a restart (%s)",
                        type(exc).__name__,
                        extra={"event_id": event.event_id},
                    )
                    untold.append(event)
                    continue
                await self._finish(event.event_id, Outcome.FAILED)
            waiting = untold
        if cut:
            log.info("%s: %d turn(s) cut by the last shutdown, %d told", platform, cut, told)
        if waiting:
            log.warning(
                "%s: %d user(s) not told yet; the next start tries again", platform, len(waiting)
            )
        return told

    async def channel_model(self, event: Event) -> str:
        chosen = await self.store.get_channel_setting(
            channel=str(event.channel), name=MODEL_SETTING
        )
        return chosen or self.settings.bot_model

    async def handle(self, event: Event, reply: Reply, *, admitted: bool = False) -> TurnResult:
        """Answer one event. Never raises: every failure ends in ``reply.fail`` (or, for a
        refusal, ``reply.refuse``) and a log line. ``admitted``: the adapter already let it
        through ``admit`` (before posting something visible for it), so it is not checked or
        counted against the rate limit twice."""
        result = await self._handle(event, reply, admitted=admitted)
        self._count(event, result)
        return result

    async def admit(self, event: Event, tell_author: TellAuthor) -> TurnResult | None:
        """May ``event`` be answered? ``None`` when it may (a question is counted against its
        author's rate limit); otherwise its author alone is told why (``tell_author``: an
        ephemeral or private line) and the refusal's result comes back.

        For adapters that must post something visible before the turn (``/ask``'s echo, a
        new thread): call this first, then ``handle(event, reply, admitted=True)``."""
        result = await self._admission(event)
        if result is not None:
            await _safe(tell_author(result.text))
            self._count(event, result)
        return result

    def allows(self, event: Event) -> bool:
        """Do the allowlists let ``event``'s author use the bot there (e.g. before a hint)?"""
        return allowed(self.settings, event)

    def _count(self, event: Event, result: TurnResult) -> None:
        metrics = self.metrics
        metrics.events.labels(event.platform, result.outcome).inc()
        if result.error is not None:
            metrics.errors.labels(result.error.value).inc()
        if result.input_tokens or result.output_tokens:
            metrics.tokens.labels("input").inc(result.input_tokens)
            metrics.tokens.labels("output").inc(result.output_tokens)
        if result.cost_usd:
            metrics.cost.inc(result.cost_usd)

    async def _handle(self, event: Event, reply: Reply, *, admitted: bool) -> TurnResult:
        if event.author.is_bot and not self.settings.allow_bots:
            log.debug("ignoring a bot's message", extra={"event_id": event.event_id})
            return TurnResult(Outcome.IGNORED)
        try:
            claimed = await self.store.claim_event(
                event_id=event.event_id,
                conversation=str(event.conversation),
                address=event.address,
            )
        except Exception:
            log.exception("could not record the event; not answering to stay exactly-once")
            await _safe(reply.fail(user_message(ErrorKind.INTERNAL)))
            return TurnResult(Outcome.FAILED, error=ErrorKind.INTERNAL)
        if not claimed:
            log.info("duplicate event ignored", extra={"event_id": event.event_id})
            return TurnResult(Outcome.DUPLICATE)
        if not admitted:
            refused = await self._admission(event)
            if refused is not None:
                await _safe(reply.refuse(refused.text))
                await self._finish_event(event, Outcome.FAILED)
                return refused
        if event.kind is EventKind.COMMAND and event.command != "ask":
            return await self._command(event, reply)
        return await self._turn(event, reply)

    async def _admission(self, event: Event) -> TurnResult | None:
        """The allowlists, then (questions only: commands are exempt) the user's rate limit
        and the daily budgets. ``None``: answer it; else the refusal, not yet told."""
        if not allowed(self.settings, event):
            log.info("refused by the allowlists", extra={"event_id": event.event_id})
            return TurnResult(Outcome.REFUSED, text=REFUSAL)
        if event.kind is EventKind.COMMAND and event.command != "ask":
            return None
        wait = self.rate.retry_after(_user_key(event))
        if wait > 0:
            log.info("user over the rate limit", extra={"retry_after_s": round(wait, 1)})
            line = (
                f"You're sending messages faster than I can take them ({self.rate.limit} a "
                f"minute). Please try again in {math.ceil(wait)} s."
            )
            return TurnResult(Outcome.FAILED, error=ErrorKind.USER_RATE_LIMIT, text=line)
        try:
            over = await self._over_budget(event)
        except Exception:
            log.exception("could not read today's usage; answering without the budget check")
            over = None
        if over is not None:
            log.info("over the daily budget", extra={"event_id": event.event_id})
            return TurnResult(Outcome.FAILED, error=ErrorKind.BUDGET, text=over)
        return None

    async def _over_budget(self, event: Event) -> str | None:
        """A line saying which daily budget is spent and when it resets, or None."""
        budgets = budgets_for(self.settings, event)
        if not budgets:
            return None
        now = time.time()
        today = day_start(now)
        for budget in budgets:
            totals = await self.store.usage_totals(since=today, **budget.filters)
            if budget.tokens and totals.input_tokens + totals.output_tokens >= budget.tokens:
                limit = f"{budget.tokens:,} tokens"
            elif budget.usd and totals.cost_usd >= budget.usd:
                limit = f"${budget.usd:,.2f} of model usage"
            else:
                continue
            has = "have" if budget.subject == "You" else "has"
            return (
                f"{budget.subject} {has} reached today's limit of {limit} with me. It resets at "
                f"midnight UTC, in {_duration(today + DAY_S - now)}."
            )
        return None

    async def observe(self, event: Event) -> None:
        """Remember a message that was not for the bot, so that a mention later in the same
        thread sees what was said before it. Never raises."""
        keep = self.settings.thread_context_messages
        text = event.text.strip()
        if not keep or not text:
            return
        try:
            await self.store.observe_message(
                conversation=str(event.conversation),
                message_id=event.event_id,
                author=event.author.id,
                text=text[:OBSERVED_TEXT_CHARS],
                keep=keep,
            )
        except Exception:
            log.exception("could not remember a thread message")

    async def _command(self, event: Event, reply: Reply) -> TurnResult:
        ctx = CommandContext(settings=self.settings, store=self.store, event=event)
        try:
            text = await run_command(ctx, self.channel_model)
            await reply.stream(text)
            await reply.finish()
        except Exception:
            log.exception("command failed", extra={"command": event.command})
            await _safe(reply.fail(user_message(ErrorKind.INTERNAL)))
            await self._finish_event(event, Outcome.FAILED)
            return TurnResult(Outcome.FAILED, error=ErrorKind.INTERNAL)
        await self._finish_event(event, Outcome.ANSWERED)
        return TurnResult(Outcome.COMMAND, text=text)

    async def _finish_event(self, event: Event, outcome: Outcome) -> None:
        await self._finish(event.event_id, outcome)

    async def withdrawn(self, event: Event) -> None:
        """Its author cancelled the turn (Ctrl-C in the terminal): no history was written, so
        only its claim is closed, as failed (a restart must not tell them it was cut)."""
        await self._finish(event.event_id, Outcome.FAILED)

    async def _finish(self, event_id: str, outcome: Outcome) -> None:
        try:
            await self.store.finish_event(event_id=event_id, outcome=outcome)
        except Exception:
            log.exception("could not record the event's outcome")

    async def _turn(self, event: Event, reply: Reply) -> TurnResult:
        started = time.perf_counter()
        try:
            await reply.start()
            self.waiting += 1
            queued = True
            try:
                async with self.locks.hold(str(event.conversation)), self._turn_slots:
                    self.waiting, self.running, queued = self.waiting - 1, self.running + 1, False
                    try:
                        result = await self._run(event, reply)
                    finally:
                        self.running -= 1
            finally:
                if queued:  # cancelled or failed while waiting
                    self.waiting -= 1
        except asyncio.CancelledError:
            if self.stopping:
                await self._tell_cut(event, reply)
            raise
        except Undeliverable as exc:
            log.warning("the answer could not be delivered: %s", exc)
            result = TurnResult(Outcome.FAILED, error=ErrorKind.UNDELIVERABLE)
        except Exception:  # the reply itself failed (platform down) or a bug
            log.exception("turn failed outside the model run")
            await _safe(reply.fail(user_message(ErrorKind.INTERNAL)))
            result = TurnResult(Outcome.FAILED, error=ErrorKind.INTERNAL)
        if result.outcome != Outcome.ANSWERED:
            await self._finish_event(event, Outcome.FAILED)
        self.metrics.turn_seconds.observe(time.perf_counter() - started)
        fields: dict[str, Any] = {
            "conversation": str(event.conversation),
            "outcome": result.outcome,
            "error": result.error,
            "model": result.model,
            "input_tokens": result.input_tokens,
            "output_tokens": result.output_tokens,
            # Float sums print as 0.0009015000000000001: nine decimals are a millionth of a cent.
            "cost_usd": round(result.cost_usd, 9) if result.cost_usd is not None else None,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            "tools": result.tools,
            "chars_in": len(event.text),
            "chars_out": len(result.text),
        }
        if self.settings.log_content:  # off by default: people's messages stay out of logs
            fields["text"] = event.text[:LOGGED_CHARS]
            fields["answer"] = result.text[:LOGGED_CHARS]
        log.info("turn", extra=fields)
        return result

    async def _tell_cut(self, event: Event, reply: Reply) -> None:
        """Shutdown cut this turn: say so, and mark it failed once the user was told (if the
        telling fails, the claim stays open and the next start tells them instead)."""
        try:
            async with asyncio.timeout(SHUTDOWN_TELL_S):
                await reply.fail(SHUTDOWN_LINE)
                await self.store.finish_event(event_id=event.event_id, outcome=Outcome.FAILED)
        except Exception as exc:
            log.warning("could not tell a user their turn was cut (%s)", type(exc).__name__)

    async def _run(self, event: Event, reply: Reply) -> TurnResult:
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
        text = "\n\n".join(
            part for part in (_visible(event.text), files.text, "\n".join(named)) if part
        )
        observed = (
            await self.store.observed_messages(conversation=key)
            if self.settings.thread_context_messages
            else []
        )
        if text and observed:
            text = f"{_earlier_messages(observed)}\n\n{text}"
        if not text:
            await reply.stream(EMPTY_MESSAGE_REPLY)
            await reply.finish()
            await self._finish_event(event, Outcome.ANSWERED)
            return TurnResult(Outcome.ANSWERED, text=EMPTY_MESSAGE_REPLY)

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

        stats = TurnStats()
        stats_token = TURN_STATS.set(stats)
        context = TurnContext(
            tools=self._tool_config,
            conversation=key,
            user_id=_user_key(event),
            channel=str(event.channel),
            model=model_name,
            channel_instructions=channel_settings.get(PROMPT_SETTING, ""),
            tool_calls=ToolCallBudget(
                per_response=self.settings.max_tool_calls_per_response,
                per_turn=self.settings.max_tool_calls_per_turn,
            ),
        )
        run = Runner.run_streamed(
            self.agent,
            input_items,
            context=context,
            max_turns=self.settings.max_tool_rounds,
            run_config=RunConfig(
                model=self.model(model_name),
                tracing_disabled=not self.settings.tracing,
                # A call to a tool we lack is answered to the model, not a failed turn.
                tool_not_found_behavior="return_error_to_model",
                tool_error_formatter=self._tool_errors,
            ),
        )
        result = TurnResult(Outcome.FAILED, model=model_name)
        shown: list[str] = []
        break_before_text = False
        deadline = asyncio.timeout(self.settings.turn_timeout_s)
        try:
            async with deadline:
                async for ev in run.stream_events():
                    if ev.type == "raw_response_event" and isinstance(
                        ev.data, ResponseTextDeltaEvent
                    ):
                        if not ev.data.delta:
                            continue
                        if break_before_text:
                            await reply.stream("\n\n")
                            shown.append("\n\n")
                            break_before_text = False
                        await reply.stream(ev.data.delta)
                        shown.append(ev.data.delta)
                    elif ev.type == "run_item_stream_event" and ev.name == "tool_called":
                        raw = ev.item.raw_item
                        name = str(getattr(raw, "name", "") or "tool")
                        result.tools.append(name)
                        await reply.progress(
                            describe_tool_call(name, getattr(raw, "arguments", ""))
                        )
                        break_before_text = bool(shown)
        except BaseException as exc:
            run.cancel()
            TURN_STATS.reset(stats_token)
            self._observe_model(stats)
            if not isinstance(exc, Exception):
                raise
            # Only the deadline knows it fired: inside, a turn cap and a model that went
            # silent both surface as a TimeoutError.
            kind = self._failure_kind(exc, shown_text=bool(shown), turn_cap=deadline.expired())
            self._fill_usage(result, run, stats)
            await self._record_failed_usage(event, result)
            await _safe(reply.fail(failure_line(kind, shown_text=bool(shown))))
            result.error = kind
            result.text = "".join(shown)
            return result
        TURN_STATS.reset(stats_token)
        self._observe_model(stats)

        answer = "".join(shown)
        await stats.wait_for_costs(run.context_wrapper.usage.requests, timeout_s=0.25)
        self._fill_usage(result, run, stats)
        if not answer.strip():
            log.warning("model returned an empty answer", extra={"model": result.model})
            await self._record_failed_usage(event, result)
            await _safe(reply.fail("The model returned an empty answer. Please try again."))
            result.error = ErrorKind.PROVIDER
            return result

        new_items: list[dict[str, Any]] = [user_item]
        new_items.extend(item.to_input_item() for item in run.new_items)  # type: ignore[misc]
        rows = [NewItem(item=user_item, tokens=user_tokens, turn_start=True)]
        for item in new_items[1:]:
            rows.append(NewItem(item=item, tokens=await estimate_tokens_off_loop(item)))
        await self.store.complete_turn(
            conversation=key,
            items=rows,
            usage=self._usage_record(event, result),
            event_id=event.event_id,
            observed_upto=observed[-1].id if observed else None,
        )
        result.outcome = Outcome.ANSWERED
        result.text = answer
        await reply.finish()
        return result

    def _observe_model(self, stats: TurnStats) -> None:
        for seconds, ok in stats.calls:
            self.metrics.model_seconds.labels("ok" if ok else "error").observe(seconds)
        for kind in stats.errors:
            self.metrics.model_errors.labels(kind).inc()

    @staticmethod
    def _failure_kind(exc: Exception, *, shown_text: bool, turn_cap: bool) -> ErrorKind:
        kind = turn_failure(exc, shown_text=shown_text, turn_timed_out=turn_cap)
        if kind is ErrorKind.INTERNAL:
            log.error("turn failed", exc_info=exc)
        else:
            log.warning("turn failed: %s (%s)", kind.value, type(exc).__name__)
        return kind

    @staticmethod
    def _fill_usage(result: TurnResult, run: Any, stats: TurnStats) -> None:
        usage = run.context_wrapper.usage
        result.input_tokens = int(usage.input_tokens)
        result.output_tokens = int(usage.output_tokens)
        result.cost_usd = stats.cost_usd
        if stats.model:
            result.model = stats.model

    def _usage_record(self, event: Event, result: TurnResult) -> UsageRecord:
        return UsageRecord(
            conversation=str(event.conversation),
            channel=str(event.channel),
            user_id=_user_key(event),
            model=result.model or self.settings.bot_model,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
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


def _duration(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def _user_key(event: Event) -> str:
    return f"{event.platform}:{event.author.id}"


async def _safe(awaitable: Any) -> None:
    """Await a reply call whose failure must not hide the original problem."""
    try:
        await awaitable
    except Exception:
        log.exception("could not deliver a failure message")
