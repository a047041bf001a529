"""The one core handler: every platform's events come here and are answered through ``Reply``.

``Core.handle`` reads as the turn's steps, each in its own module:

1. **claim** the event once in the store (a redelivery or a restart never answers twice);
2. **admit** it (``bot.admission``: allowlists, the user's rate limit, the daily budgets);
3. commands are answered at once (``bot.commands``); a question waits for its conversation's
   lock, the agent stack (still loading in the first seconds after start) and a model slot
   (``bot.limits``), then
4. **runs** (``bot.turn``: prepare the input, stream the agent, record the turn).

Each instance on the store holds a lease (``bot.instance``); when one dies, another tells the
users whose turns it cut (``watch_orphans``, ``bot.recovery``).

The core is built at once, without the Agents SDK: ``stack`` may be an awaitable that loads it
(``bot.wiring.start_core``), so the platforms take events while it loads; claims, admission and
commands need none of it, and a question waits for it like for a model slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bot.actions import (
    NOTHING_TO_READ,
    ActionRequest,
    SourceUnavailable,
    bound,
    instructions_for,
    model_input,
    with_note,
)
from bot.admission import Admission
from bot.approvals import Approvals, Decided
from bot.commands import MODEL_SETTING, CommandContext, ToolsHere, run_command
from bot.conversations import Conversations
from bot.errors import ErrorKind, failure_line, user_message
from bot.events import ConversationKey, Event, EventKind
from bot.feedback import Feedback, Vote, Voted
from bot.home import ChannelSettings, Home, change_channel_settings, channel_settings, home_for
from bot.instance import Instance
from bot.limits import KeyedLocks
from bot.metrics import Metrics
from bot.recovery import RECOVERY_RETRY_DELAYS_S, Tell, recover
from bot.reply import Reply, Undeliverable
from bot.results import TurnResult, user_key
from bot.settings import Settings
from storage.base import Outcome, Store, UsageRecord

if TYPE_CHECKING:
    from bot.action_runner import ActionRunner
    from bot.agent import AgentStack
    from bot.redact import Redaction
    from bot.turn import TurnRunner

log = logging.getLogger(__name__)

TellAuthor = Callable[[str], Awaitable[None]]
"""Shows a line to the event's author only (Slack: ephemeral; Discord: ephemeral or a DM)."""

SHUTDOWN_LINE = (
    "Sorry, I'm restarting and couldn't finish this answer. Please ask again in a minute."
)
"""Told at shutdown for each turn the grace period (``BOT_SHUTDOWN_GRACE``) cut short."""
SHUTDOWN_TELL_S = 2.0
LOGGED_CHARS = 2_000
"""With ``LOG_CONTENT=true``, how much of a question and of its answer the turn's log line keeps."""
OBSERVED_TEXT_CHARS = 4_000
"""Of an unaddressed thread message, at most this much is kept as context."""
CHANGES_SETTINGS = frozenset({"model", "settings"})
"""Commands that change a channel's settings when given a value."""
LOCK_MARGIN_S = 60.0
"""A conversation lock older than ``BOT_TURN_TIMEOUT`` (plus ``BOT_APPROVAL_TIMEOUT``, which a
turn may wait on) and this lost its release."""


class StackUnavailable(Exception):
    """The agent stack failed to load: no question can be answered (logged once, at load)."""


class Core:
    def __init__(
        self, *, settings: Settings, store: Store, stack: AgentStack | Awaitable[AgentStack]
    ) -> None:
        self.settings = settings
        self.store = store
        self._stack: asyncio.Future[AgentStack] = _future(stack)
        """The agent stack, or its loading; see ``loaded``."""
        self._turns: TurnRunner | None = None
        self._actions: ActionRunner | None = None
        self.instance = Instance(
            store,
            instance_id=settings.instance_id,
            lease_s=settings.lease_s,
            longest_turn_s=settings.turn_timeout_s + settings.approval_timeout_s + LOCK_MARGIN_S,
        )
        """This process among the instances on the store: its lease, its turns' locks."""
        self.locks = KeyedLocks()
        self.admission = Admission(settings, store)
        self.rate = self.admission.rate
        self._turn_slots = asyncio.Semaphore(settings.max_concurrent_turns)
        self.started_at = time.time()
        """Events claimed without an owner before this are a previous version's."""
        self.stopping = False
        """Set at shutdown: a turn cancelled now tells its user it was cut."""
        self.waiting = 0
        """Turns waiting for their conversation's lock, the agent stack or a model slot."""
        self.running = 0
        """Turns holding a slot now."""
        self.conversations = Conversations(store)
        """What adapters ask about conversations (they never reach the store themselves)."""
        self.redaction: Redaction | None = None
        """``BOT_REDACT_PII``: what reaches the model (and the store's copy of it) is redacted."""
        if settings.redact_pii:
            from bot.redact import Redaction  # loads phonenumbers: only when it is wanted

            self.redaction = Redaction(store, region=settings.redact_phone_region)
        self.settings_changed: list[Callable[[Event], Awaitable[None]]] = []
        """Called with the event (its channel, its author) after a channel's settings may have
        changed (``/model``, ``/settings`` with a value, a settings form): the platforms
        refresh what shows them (Slack's Home tab)."""
        self.health: dict[str, Callable[[], bool]] = {}
        """Each platform's "connected and taking events" (``/healthz``), by platform name."""
        self.metrics = Metrics()
        self.feedback = Feedback(store, self.admission, self.metrics)
        """Answers' feedback buttons: what a click is tied to, and the votes."""
        self.approvals = Approvals(
            store, settings, self.admission, self.metrics, instance_id=self.instance.id
        )
        """Tool calls waiting for their asker's approval, and the clicks that decide them."""
        self.metrics.watch(
            lambda: self.waiting,
            lambda: self.running,
            self.instance.id,
            lambda: self.instance.lease_left(),
        )

    def healthy(self) -> bool:
        """Every platform registered in ``health`` is up (and at least one is). Events are
        taken while the agent stack still loads: they are answered once it has (``ready``)."""
        return bool(self.health) and all(check() for check in self.health.values())

    @property
    def ready(self) -> bool:
        """The agent stack has loaded: questions are answered without waiting for it."""
        return self._stack.done() and not self._stack.cancelled() and not self._stack.exception()

    async def loaded(self) -> None:
        """Wait until the agent stack has loaded; raises what its loading raised, if it failed."""
        await asyncio.shield(self._stack)

    async def _turn_runner(self) -> TurnRunner:
        if self._turns is None:
            try:
                # Shielded: a turn cancelled while it waits (shutdown, Ctrl-C) leaves the load.
                stack = await asyncio.shield(self._stack)
            except Exception as exc:  # (a cancellation is no Exception: it goes on up)
                raise StackUnavailable from exc
            if self._turns is None:
                from bot.turn import TurnRunner  # imported already, by the stack's loading

                self._turns = TurnRunner(
                    settings=self.settings,
                    store=self.store,
                    agent=stack.agent,
                    models=stack.model,
                    agent_for=stack.agent_for,
                    mcp_tools=stack.mcp_tools,
                    tool_config=stack.tool_config,
                    metrics=self.metrics,
                    feedback=self.feedback,
                    approvals=self.approvals,
                    redaction=self.redaction,
                )
        return self._turns

    async def _action_runner(self) -> ActionRunner:
        if self._actions is None:
            try:
                stack = await asyncio.shield(self._stack)
            except Exception as exc:
                raise StackUnavailable from exc
            from bot.action_runner import ActionRunner

            self._actions = ActionRunner(settings=self.settings, models=stack.model)
        return self._actions

    async def close(self) -> None:
        if not self._stack.done():
            self._stack.cancel()  # a load still in its worker thread finishes there, unused
            await asyncio.gather(self._stack, return_exceptions=True)
        elif self.ready:
            await self._stack.result().close()
        await self.instance.close()

    async def recover(
        self,
        platform: str,
        tell: Tell,
        *,
        retry_delays: Sequence[float] = RECOVERY_RETRY_DELAYS_S,
    ) -> int:
        """Tell the users whose turns a dead instance (this one's previous run, or another)
        left unfinished on ``platform`` (see ``bot.recovery``); how many were told."""
        await self.instance.start()
        return await recover(
            self.store,
            platform,
            tell,
            instance=self.instance.id,
            unowned_before=self.started_at,
            retry_delays=retry_delays,
        )

    async def watch_orphans(self, platform: str, tell: Tell) -> None:
        """``recover`` now, then at every lease renewal, for as long as the platform runs: an
        instance that dies is noticed within its lease and a renewal. Never returns."""
        while True:
            try:
                await self.recover(platform, tell)
            except Exception:
                log.exception("could not look for turns cut by a dead instance")
            await asyncio.sleep(self.instance.tick_s)

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
        result = await self.admission.refusal(event)
        if result is not None:
            await _safe(tell_author(result.text))
            self._count(event, result)
        return result

    async def home(self, event: Event) -> Home:
        """``event``'s author's home page: what the bot can do, their use of today's budget,
        the channels' settings (``bot.home``)."""
        return await home_for(self.settings, self.store, event)

    async def channel_settings(self, channel: ConversationKey) -> ChannelSettings:
        return await channel_settings(self.store, channel)

    async def change_channel_settings(
        self, event: Event, values: Mapping[str, str]
    ) -> dict[str, str]:
        """Set ``event.channel``'s settings as ``/settings`` would (``bot.home``): the problems
        by setting name, nothing saved, when any is refused; else ``{}`` and the change is
        announced to ``settings_changed``."""
        problems = await change_channel_settings(
            self.settings, self.store, event, values, self.channel_model
        )
        if not problems:
            await self._settings_changed(event)
        return problems

    async def _settings_changed(self, event: Event) -> None:
        for listener in self.settings_changed:
            try:
                await listener(event)
            except Exception:
                log.exception("a settings-change listener failed")

    async def vote(self, click: Event, *, message_id: str, value: Vote) -> Voted:
        """A click on an answer's feedback button (``message_id``: the message clicked, as
        the adapter named it when the answer was posted); ``Voted.text`` is for the clicker
        alone. Never raises."""
        return await self.feedback.vote(click, message_id=message_id, value=value)

    async def decide_approval(self, click: Event, *, approval_id: str, approve: bool) -> Decided:
        """A click on a tool call's Approve or Deny button (``approval_id``: the request's id,
        from the button); ``Decided.text`` is for the clicker alone. Never raises."""
        return await self.approvals.decide(click, approval_id=approval_id, approve=approve)

    def allows(self, event: Event) -> bool:
        """Do the allowlists let ``event``'s author use the bot there (e.g. before a hint)?"""
        return self.admission.allows(event)

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
            await self.instance.start()  # the claim is this instance's: its lease must hold
            claimed = await self.store.claim_event(
                event_id=event.event_id,
                conversation=str(event.conversation),
                address=event.address,
                owner=self.instance.id,
            )
        except Exception:
            log.exception("could not record the event; not answering to stay exactly-once")
            await _safe(reply.fail(user_message(ErrorKind.INTERNAL)))
            return TurnResult(Outcome.FAILED, error=ErrorKind.INTERNAL)
        if not claimed:
            log.info("duplicate event ignored", extra={"event_id": event.event_id})
            return TurnResult(Outcome.DUPLICATE)
        if not admitted:
            refused = await self.admission.refusal(event)
            if refused is not None:
                await _safe(reply.refuse(refused.text))
                await self._finish_event(event, Outcome.FAILED)
                return refused
        if event.kind is EventKind.COMMAND and event.command != "ask":
            return await self._command(event, reply)
        return await self._turn(event, reply)

    async def act(self, request: ActionRequest, tell: TellAuthor) -> TurnResult:
        """Run an action on a message (``bot.actions``) for the user who asked: claimed once
        (a redelivered click is not run again), admitted like a question (allowlists, rate
        limit, budgets), then read, one model call, its usage recorded like a turn's. The
        answer, a refusal or a failure line goes to that user alone (``tell``). Never raises."""
        result = await self._act(request, tell)
        self._count(request.event, result)
        return result

    async def _act(self, request: ActionRequest, tell: TellAuthor) -> TurnResult:
        event = request.event
        started = time.perf_counter()
        try:
            await self.instance.start()
            claimed = await self.store.claim_event(
                event_id=event.event_id,
                conversation=str(event.conversation),
                owner=self.instance.id,
            )
        except Exception:
            log.exception("could not record the action; not running it to stay exactly-once")
            await _safe(tell(user_message(ErrorKind.INTERNAL)))
            return TurnResult(Outcome.FAILED, error=ErrorKind.INTERNAL)
        if not claimed:
            log.info("duplicate action ignored", extra={"event_id": event.event_id})
            return TurnResult(Outcome.DUPLICATE)
        refused = await self.admission.refusal(event)
        if refused is not None:
            await _safe(tell(refused.text))
            await self._finish_event(event, Outcome.FAILED)
            return refused
        try:
            source = await request.read()
        except SourceUnavailable as exc:
            await _safe(tell(str(exc)))
            await self._finish_event(event, Outcome.FAILED)
            return TurnResult(Outcome.FAILED, error=ErrorKind.UNDELIVERABLE, text=str(exc))
        except Exception:
            log.exception("could not read the messages of an action")
            await _safe(tell(user_message(ErrorKind.INTERNAL)))
            await self._finish_event(event, Outcome.FAILED)
            return TurnResult(Outcome.FAILED, error=ErrorKind.INTERNAL)
        bounded = bound(request.action, source)
        if not bounded.messages:
            line = NOTHING_TO_READ[request.action]
            await _safe(tell(line))
            await self._finish_event(event, Outcome.ANSWERED)
            return TurnResult(Outcome.ANSWERED, text=line)
        model = await self.channel_model(event)
        try:
            runner = await self._action_runner()
            async with self._turn_slots:
                self.running += 1
                try:
                    out = await runner.run(
                        model=model,
                        instructions=instructions_for(request.action, source.language),
                        text=model_input(request.action, bounded),
                    )
                finally:
                    self.running -= 1
        except StackUnavailable:
            await _safe(tell(user_message(ErrorKind.INTERNAL)))
            await self._finish_event(event, Outcome.FAILED)
            return TurnResult(Outcome.FAILED, error=ErrorKind.INTERNAL)
        result = TurnResult(
            Outcome.FAILED,
            model=out.model,
            input_tokens=out.input_tokens,
            output_tokens=out.output_tokens,
            cost_usd=out.cost_usd,
            error=out.error,
        )
        delivered = False
        if out.error is not None:
            await _safe(tell(failure_line(out.error)))
        else:
            result.text = with_note(out.text, bounded.note)
            try:
                await tell(result.text)
                delivered = True
            except Exception as exc:
                log.warning("the action's answer could not be delivered: %s", exc)
                result.error = ErrorKind.UNDELIVERABLE
        usage = None
        if delivered or out.input_tokens or out.output_tokens or out.cost_usd:
            usage = UsageRecord(
                conversation=str(event.conversation),
                channel=str(event.channel),
                user_id=user_key(event),
                model=out.model or model,
                input_tokens=out.input_tokens,
                output_tokens=out.output_tokens,
                cost_usd=out.cost_usd,
                created_at=time.time(),
                workspace=event.workspace,
            )
        try:
            if delivered:  # usage and "answered" in one transaction, as a turn's
                await self.store.complete_turn(
                    conversation=str(event.conversation),
                    items=[],
                    usage=usage,
                    event_id=event.event_id,
                )
                result.outcome = Outcome.ANSWERED
            else:
                if usage is not None:
                    await self.store.record_usage(usage)
                await self._finish_event(event, Outcome.FAILED)
        except Exception:
            log.exception("could not record the action's usage")
        fields: dict[str, Any] = {
            "conversation": str(event.conversation),
            "action": request.action.value,
            "outcome": result.outcome,
            "error": result.error,
            "model": result.model,
            "messages": len(bounded.messages),
            "input_tokens": result.input_tokens,
            "output_tokens": result.output_tokens,
            "cost_usd": round(result.cost_usd, 9) if result.cost_usd is not None else None,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        }
        log.info("action", extra=fields)
        return result

    async def observe(self, event: Event) -> None:
        """Remember a message that was not for the bot, so that a mention later in the same
        thread sees what was said before it. Never raises."""
        keep = self.settings.thread_context_messages
        text = event.text.strip()
        if not keep or not text:
            return
        text = text[:OBSERVED_TEXT_CHARS]
        try:
            if self.redaction is not None:  # kept as the model will see it
                text = await self.redaction.text(str(event.conversation), text)
            await self.store.observe_message(
                conversation=str(event.conversation),
                message_id=event.event_id,
                author=event.author.id,
                text=text,
                keep=keep,
            )
        except Exception:
            log.exception("could not remember a thread message")

    async def _command(self, event: Event, reply: Reply) -> TurnResult:
        # /help lists the channel's tools, known once the agent stack has loaded (seconds
        # after start); it is answered at once all the same.
        tools = (
            self._stack.result().tools_here(str(event.channel))
            if self.ready
            else ToolsHere(own=(), loading=True)
        )
        ctx = CommandContext(settings=self.settings, store=self.store, event=event, tools=tools)
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
        if event.command in CHANGES_SETTINGS and event.command_args.strip():
            await self._settings_changed(event)
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
                key = str(event.conversation)
                # This process's turns of the conversation queue here; then one instance's.
                async with self.locks.hold(key), self.instance.conversation(key):
                    turns = await self._turn_runner()  # loading still, in the first seconds
                    await self._turn_slots.acquire()
                    self.waiting, self.running = self.waiting - 1, self.running + 1
                    queued = False
                    slot = _HeldSlot(self)
                    try:
                        result = await turns.run(event, reply, free_slot=slot.freed)
                    finally:
                        slot.release()
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
        except StackUnavailable:
            await _safe(reply.fail(user_message(ErrorKind.INTERNAL)))
            result = TurnResult(Outcome.FAILED, error=ErrorKind.INTERNAL)
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


def _future(stack: AgentStack | Awaitable[AgentStack]) -> asyncio.Future[AgentStack]:
    """The stack as a future: done already, or its loading as a task whose failure is logged
    once, when it happens."""
    if not inspect.isawaitable(stack):
        done: asyncio.Future[AgentStack] = asyncio.get_running_loop().create_future()
        done.set_result(stack)
        return done
    loading = asyncio.ensure_future(stack)
    loading.add_done_callback(_log_failed_load)
    return loading


def _log_failed_load(loading: asyncio.Future[AgentStack]) -> None:
    if not loading.cancelled() and (exc := loading.exception()) is not None:
        log.error(
            "the agent stack failed to load: no question can be answered",
            exc_info=(type(exc), exc, exc.__traceback__),
        )


async def _safe(awaitable: Any) -> None:
    """Await a reply call whose failure must not hide the original problem."""
    try:
        await awaitable
    except Exception:
        log.exception("could not deliver a failure message")


class _HeldSlot:
    """A turn's model slot (``BOT_MAX_CONCURRENT_TURNS``): held while the turn runs, given to
    other turns while it waits for a person (an approval), taken back before it goes on."""

    def __init__(self, core: Core) -> None:
        self._core = core
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._core.running -= 1
            self._core._turn_slots.release()

    @contextlib.asynccontextmanager
    async def freed(self) -> AsyncIterator[None]:
        self.release()
        try:
            yield
        finally:
            # Cancelled while waiting for a slot again: not held, so nothing is released twice.
            self._core.waiting += 1
            try:
                await self._core._turn_slots.acquire()
            finally:
                self._core.waiting -= 1
            self._held = True
            self._core.running += 1
