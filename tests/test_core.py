"""The core handler with a scripted model (agents.testing.ScriptedModel) and a recording Reply."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from agents import Usage
from agents.models.interface import Model
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call

from bot.access import REFUSAL
from bot.agent import AgentStack, build_agent, resilient_models
from bot.context import ToolConfig
from bot.core import Core
from bot.errors import ErrorKind, user_message
from bot.limits import KeyedLocks
from bot.recovery import RESTART_LINE
from bot.reply import Undeliverable
from bot.settings import Settings
from bot.turn import EMPTY_MESSAGE_REPLY
from storage import open_store
from storage.base import Store, UsageRecord
from tests.conftest import make_settings
from tests.helpers import (
    RecordingReply,
    bytes_attachment,
    command,
    count_items,
    eventually,
    message,
    pending,
)


class StatusError(Exception):
    """Looks like an HTTP error from a provider to the classifier (status_code attribute)."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


def text_step(text: str, *, input_tokens: int = 10, output_tokens: int = 5) -> ModelStep:
    return ModelStep(
        output=[assistant_message(text)],
        usage=Usage(
            requests=1,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens,
        ),
    )


CoreFactory = Callable[..., Any]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def make_core(
    tmp_path: Path, store: Store, http: aiohttp.ClientSession
) -> AsyncIterator[Callable[..., Core]]:
    cores: list[Core] = []

    def factory(model: Model, *, settings: Settings | None = None, **values: Any) -> Core:
        s = settings or make_settings(tmp_path, **values)
        factory = resilient_models(s, lambda name: model)
        stack = AgentStack(
            agent=build_agent(s, factory(s.bot_model)),
            model_factory=factory,
            tool_config=ToolConfig(
                http=http,
                open_meteo_url=s.open_meteo_url,
                geocoding_url=s.open_meteo_geocoding_url,
                http_timeout_s=2,
            ),
        )
        core = Core(settings=s, store=store, stack=stack)
        cores.append(core)
        return core

    yield factory
    for core in cores:
        await core.close()


def user_texts(call_input: Any) -> list[str]:
    return [i["content"] for i in call_input if isinstance(i, dict) and i.get("role") == "user"]


async def test_answer_streams_persists_and_records_usage(make_core: Any, store: Store) -> None:
    model = ScriptedModel([text_step("Hello there!", input_tokens=12, output_tokens=3)])
    core = make_core(model)
    reply = RecordingReply()

    result = await core.handle(message("hi"), reply)

    assert result.outcome == "answered"
    assert reply.calls[0] == ("start", "")
    assert reply.text == "Hello there!"
    assert reply.calls[-1] == ("finish", "")
    history = await store.load_history(
        conversation="test:T1:C1:100.1", max_items=10, max_tokens=10_000
    )
    assert history[0].item == {"role": "user", "content": "hi"}
    assert history[0].turn_start and not history[1].turn_start
    assert history[1].item["role"] == "assistant"
    assert history[1].item["content"][0]["text"] == "Hello there!"
    totals = await store.usage_totals(user_id="test:U1")
    assert (totals.turns, totals.input_tokens, totals.output_tokens) == (1, 12, 3)
    assert await pending(store) == []


async def test_follow_up_sees_history_and_other_conversations_do_not(make_core: Any) -> None:
    model = ScriptedModel([text_step("one"), text_step("two"), text_step("three")])
    core = make_core(model)
    await core.handle(message("first"), RecordingReply())
    await core.handle(message("second"), RecordingReply())
    await core.handle(message("elsewhere", conversation="test:T1:C1:200.2"), RecordingReply())

    assert user_texts(model.calls[1].input) == ["first", "second"]
    assert user_texts(model.calls[2].input) == ["elsewhere"]


async def test_duplicate_event_is_answered_once_even_after_restart(
    make_core: Any, tmp_path: Path
) -> None:
    model = ScriptedModel([text_step("only once")])
    core = make_core(model)
    event = message("hello", event_id="slack:T1:C1:1700.1")
    first, second = RecordingReply(), RecordingReply()

    results = await asyncio.gather(core.handle(event, first), core.handle(event, second))

    assert sorted(r.outcome for r in results) == ["answered", "duplicate"]
    assert [first.text, second.text].count("only once") == 1
    assert model.remaining_steps == 0

    # A restart: a new store on the same file still knows the event.
    reopened = await open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        assert not await reopened.claim_event(event_id=event.event_id, conversation="x")
    finally:
        await reopened.close()


async def test_tool_call_shows_progress_and_feeds_the_result_back(make_core: Any) -> None:
    model = ScriptedModel(
        [
            ModelStep(output=[function_call("get_current_time", {"place": "UTC"}, call_id="c1")]),
            text_step("It is noon."),
        ]
    )
    core = make_core(model)
    reply = RecordingReply()

    result = await core.handle(message("what time is it in UTC?"), reply)

    assert result.outcome == "answered"
    assert result.tools == ["get_current_time"]
    assert reply.of("progress") == [
        "in_progress: Looking up the time in UTC",
        "complete: Looking up the time in UTC",
    ]
    assert reply.steps[0].id == reply.steps[1].id
    tool_outputs = [i for i in model.calls[1].input if i.get("type") == "function_call_output"]
    assert len(tool_outputs) == 1 and "UTC" in tool_outputs[0]["output"]


async def test_each_step_ends_complete_or_failed_under_an_id_of_its_own(make_core: Any) -> None:
    model = ScriptedModel(
        [
            ModelStep(
                output=[
                    function_call("get_current_time", {"place": "UTC"}, call_id="c1"),
                    # No document reader in this setup: the tool says it failed.
                    function_call("read_document", {"question": "q", "document": ""}, call_id="c2"),
                    function_call("get_stock_price", {"symbol": "ACME"}, call_id="c3"),
                ]
            ),
            # The turn's cap of 2 refuses this call.
            ModelStep(output=[function_call("get_current_time", {"place": "UTC"}, call_id="c4")]),
            text_step("Done."),
        ]
    )
    core = make_core(model, BOT_MAX_TOOL_CALLS_PER_TURN=2)
    reply = RecordingReply()

    result = await core.handle(message("time, report and stock?"), reply)

    assert result.outcome == "answered"
    started = [s for s in reply.steps if s.state == "in_progress"]
    ended = {s.id: (s.title, s.state.value) for s in reply.steps if s.state != "in_progress"}
    assert len({s.id for s in started}) == 4
    assert [ended[s.id] for s in started] == [
        ("Looking up the time in UTC", "complete"),
        ("Reading the documents", "error"),
        ("Running get_stock_price", "error"),
        ("Looking up the time in UTC", "error"),
    ]
    # Every step ended before the answer's text began.
    kinds = [kind for kind, _ in reply.calls]
    assert kinds.index("stream") > max(i for i, k in enumerate(kinds) if k == "progress")


async def test_failure_leaves_history_untouched_and_tells_the_user(
    make_core: Any, store: Store
) -> None:
    model = ScriptedModel([text_step("kept"), StatusError(401)])
    core = make_core(model)
    await core.handle(message("first"), RecordingReply())
    reply = RecordingReply()

    result = await core.handle(message("second"), reply)

    assert result.outcome == "failed" and result.error is ErrorKind.AUTH
    assert reply.of("fail") == [user_message(ErrorKind.AUTH)]
    assert "sk-or" not in reply.of("fail")[0]
    assert await count_items(store, conversation="test:T1:C1:100.1") == 2
    assert await pending(store) == []


async def test_rate_limit_is_retried_then_answered(make_core: Any) -> None:
    model = ScriptedModel([StatusError(429), StatusError(503), text_step("made it")])
    core = make_core(model, BOT_MODEL_RETRIES=2)
    reply = RecordingReply()

    result = await core.handle(message("hi"), reply)

    assert result.outcome == "answered" and reply.text == "made it"
    assert reply.of("fail") == []
    metrics = core.metrics.render().decode()
    assert 'bot_model_errors_total{kind="rate_limit"} 1.0' in metrics
    assert 'bot_model_errors_total{kind="provider"} 1.0' in metrics
    assert 'bot_model_call_seconds_count{outcome="error"} 2.0' in metrics
    assert 'bot_model_call_seconds_count{outcome="ok"} 1.0' in metrics
    assert 'bot_events_total{outcome="answered",platform="test"} 1.0' in metrics


async def test_retries_exhausted_gives_one_failure_line(make_core: Any) -> None:
    model = ScriptedModel([StatusError(500)] * 3)
    core = make_core(model, BOT_MODEL_RETRIES=2)
    reply = RecordingReply()

    result = await core.handle(message("hi"), reply)

    assert result.error is ErrorKind.PROVIDER
    assert reply.of("fail") == [user_message(ErrorKind.PROVIDER)]
    assert model.remaining_steps == 0
    metrics = core.metrics.render().decode()
    assert 'bot_errors_total{kind="provider"} 1.0' in metrics
    assert 'bot_events_total{outcome="failed",platform="test"} 1.0' in metrics
    assert "bot_turns_waiting 0.0" in metrics and "bot_turns_running 0.0" in metrics


async def test_messages_of_one_conversation_are_answered_in_order(make_core: Any) -> None:
    order: list[str] = []
    gate = asyncio.Event()

    async def slow_first(call: Any) -> Any:
        text = user_texts(call.input)[-1]
        if text == "first":
            await gate.wait()
        order.append(text)
        return text_step(f"re: {text}")

    model = ScriptedModel([ModelStep.respond(slow_first), ModelStep.respond(slow_first)])
    core = make_core(model)
    first = asyncio.create_task(core.handle(message("first"), RecordingReply()))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(core.handle(message("second"), RecordingReply()))
    await asyncio.sleep(0.05)
    assert order == []  # the second waits for the first even though the first is stuck
    gate.set()
    await asyncio.gather(first, second)

    assert order == ["first", "second"]
    assert user_texts(model.calls[1].input) == ["first", "second"]
    assert len(core.locks) == 0


async def test_global_limit_caps_concurrent_turns(make_core: Any) -> None:
    running = peak = 0

    async def counted(call: Any) -> Any:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        return text_step("ok")

    model = ScriptedModel([ModelStep.respond(counted) for _ in range(8)])
    core = make_core(model, BOT_MAX_CONCURRENT_TURNS=3)
    events = [message("hi", conversation=f"test:T1:C1:{i}.0") for i in range(8)]
    await asyncio.gather(*(core.handle(e, RecordingReply()) for e in events))

    assert peak == 3


async def test_history_is_trimmed_to_the_token_budget_at_turn_boundaries(
    make_core: Any, store: Store
) -> None:
    words = "lorem ipsum dolor sit amet " * 150  # ~750 tokens a turn
    model = ScriptedModel([text_step(f"answer {i} " + words) for i in range(6)])
    core = make_core(model, BOT_HISTORY_MAX_TOKENS=3_000)
    for i in range(6):
        await core.handle(message(f"question {i} " + words), RecordingReply())

    last_input = model.calls[-1].input
    texts = user_texts(last_input)
    assert texts[-1].startswith("question 5")
    assert 1 < len(texts) < 6  # older turns dropped, recent ones kept
    assert last_input[0]["role"] == "user"  # cut before a user message, never mid-turn
    assert await count_items(store, conversation="test:T1:C1:100.1") == 12


async def test_empty_mention_gets_a_greeting_without_a_model_call(make_core: Any) -> None:
    model = ScriptedModel([])
    core = make_core(model)
    reply = RecordingReply()
    result = await core.handle(message("   "), reply)
    assert result.outcome == "answered"
    assert reply.text == EMPTY_MESSAGE_REPLY
    assert model.calls == ()


async def test_bot_authors_are_ignored_unless_allowed(make_core: Any) -> None:
    model = ScriptedModel([text_step("hello bot")])
    core = make_core(model)
    reply = RecordingReply()
    assert (await core.handle(message("hi", is_bot=True), reply)).outcome == "ignored"
    assert reply.calls == []

    allowed = make_core(model, BOT_ALLOW_BOTS=True)
    assert (
        await allowed.handle(message("hi", is_bot=True), RecordingReply())
    ).outcome == "answered"


async def test_text_attachment_is_read_and_others_are_reported(make_core: Any) -> None:
    model = ScriptedModel([text_step("read it")])
    core = make_core(model)
    reply = RecordingReply()
    files = (
        bytes_attachment("notes.md", "# Plan\nShip on Friday — café".encode()),
        bytes_attachment("photo.heic", b"\x00\x01binary", "image/heic"),
        bytes_attachment("latin.txt", "naïve façade".encode("latin-1")),
    )
    await core.handle(message("summarise", attachments=files), reply)

    sent = user_texts(model.calls[0].input)[0]
    assert "summarise" in sent and "Ship on Friday — café" in sent and "naïve façade" in sent
    assert "photo.heic" not in sent
    notices = reply.of("notice")
    assert len(notices) == 1 and "photo.heic" in notices[0]


async def test_cut_off_stream_keeps_partial_text_and_writes_no_history(
    make_core: Any, store: Store
) -> None:
    from openai.types.responses import ResponseTextDeltaEvent

    async def broken_stream(call: Any) -> AsyncIterator[Any]:
        for i, piece in enumerate(["The answer ", "is "]):
            yield ResponseTextDeltaEvent(
                type="response.output_text.delta",
                item_id="m1",
                output_index=0,
                content_index=0,
                delta=piece,
                sequence_number=i,
                logprobs=[],
            )
        raise StatusError(502)

    model = ScriptedModel([ModelStep.stream(broken_stream)])
    core = make_core(model)
    reply = RecordingReply()

    result = await core.handle(message("question"), reply)

    # The SDK may drop deltas still queued when the stream fails; what was shown stays shown.
    assert reply.text in ("The answer ", "The answer is ")
    assert reply.of("fail") == [user_message(ErrorKind.CUT_OFF)]
    assert result.error is ErrorKind.CUT_OFF
    assert await count_items(store, conversation="test:T1:C1:100.1") == 0


async def test_commands_reset_model_usage_help(make_core: Any, store: Store) -> None:
    model = ScriptedModel([text_step("hi", input_tokens=100, output_tokens=20)])
    core = make_core(model, BOT_ADMINS="test:ADMIN")
    await core.handle(message("hello"), RecordingReply())

    async def run(event: Any) -> str:
        reply = RecordingReply()
        result = await core.handle(event, reply)
        assert result.outcome == "command", reply.calls
        return reply.text

    assert "/reset" in await run(command("help"))
    assert "openrouter/openai/gpt-5-mini" in await run(command("model"))
    assert "Only the bot's admins" in await run(command("model", "x/y", user="U1"))
    assert "now uses `openrouter/anthropic/claude-sonnet-4.5`" in await run(
        command("model", "anthropic/claude-sonnet-4.5", user="ADMIN")
    )
    assert await core.channel_model(message("x")) == "openrouter/anthropic/claude-sonnet-4.5"
    usage = await run(command("usage"))
    assert "100 tokens in / 20 out" in usage
    assert "forgotten" in await run(command("reset"))
    assert await count_items(store, conversation="test:T1:C1:100.1") == 0
    assert "nothing to forget" in await run(command("reset"))
    assert "don't know the command /nope" in await run(command("nope"))


async def test_reply_failure_is_contained(make_core: Any, store: Store) -> None:
    class BrokenReply(RecordingReply):
        async def stream(self, delta: str) -> None:
            raise ConnectionError("platform down")

    model = ScriptedModel([text_step("lost")])
    core = make_core(model)
    reply = BrokenReply()
    result = await core.handle(message("hi"), reply)
    assert result.outcome == "failed"
    assert reply.of("fail")
    assert await count_items(store, conversation="test:T1:C1:100.1") == 0


async def test_an_agent_stack_that_fails_to_load_fails_each_question_once_and_says_why(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Questions taken while the stack loads wait for it; if the load fails, each gets the
    internal-error line and its claim is closed (no "restarted" notice later), the cause is
    logged once, and commands still answer."""
    loading: asyncio.Future[AgentStack] = asyncio.get_running_loop().create_future()

    async def load() -> AgentStack:
        return await loading

    core = Core(settings=make_settings(tmp_path), store=store, stack=load())
    replies = [RecordingReply(), RecordingReply()]
    turns = [
        asyncio.create_task(core.handle(message(f"q{n}", conversation=f"test:T1:C1:{n}.1"), r))
        for n, r in enumerate(replies)
    ]
    await eventually(lambda: core.waiting == 2)
    assert not core.ready

    loading.set_exception(ImportError("the SDK is broken"))
    results = await asyncio.gather(*turns)
    assert [r.outcome for r in results] == ["failed", "failed"]
    assert [r.failure for r in replies] == [user_message(ErrorKind.INTERNAL)] * 2
    assert await pending(store) == []
    assert caplog.text.count("the agent stack failed to load") == 1
    assert "the SDK is broken" in caplog.text
    with pytest.raises(ImportError):
        await core.loaded()
    help_reply = RecordingReply()
    assert (await core.handle(command("help"), help_reply)).outcome == "command"
    await core.close()


async def test_keyed_locks_do_not_grow() -> None:
    locks = KeyedLocks()
    async with locks.hold("a"), locks.hold("b"):
        assert len(locks) == 2
    assert len(locks) == 0


async def test_a_user_over_the_rate_limit_gets_a_friendly_line(make_core: Any) -> None:
    model = ScriptedModel([text_step(f"answer {n}") for n in range(3)])
    core = make_core(model, BOT_USER_RATE_LIMIT=2)

    results = [await core.handle(message(f"q{n}"), RecordingReply()) for n in range(2)]
    limited = RecordingReply()
    third = await core.handle(message("q2"), limited)
    other_user = await core.handle(message("hi", user="U2"), RecordingReply())
    help_reply = RecordingReply()
    await core.handle(command("help"), help_reply)  # commands are not limited

    assert [r.outcome for r in results] == ["answered", "answered"]
    assert third.outcome == "failed" and third.error == "user_rate_limit"
    [line] = limited.of("refuse")  # told to the author only
    assert line.startswith("You're sending messages faster than I can take them (2 a minute)")
    assert "try again in" in line and limited.of("start") == []  # no model call, no spinner
    assert other_user.outcome == "answered"
    assert "/ask" in help_reply.text


async def test_rate_limiter_counts_in_the_store_and_lets_through_when_it_fails(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.limits import RateLimiter

    limiter = RateLimiter(store, 2)
    assert await limiter.retry_after("a") == 0
    assert await limiter.retry_after("a") == 0
    assert 59 < await limiter.retry_after("a") <= 60  # the window is the store's (see storage)
    assert await RateLimiter(store, 2).retry_after("a") > 0  # another instance counts the same
    assert await RateLimiter(store, 0).retry_after("a") == 0  # 0 turns the limit off
    await store.close()
    assert await limiter.retry_after("b") == 0
    assert "letting it through" in caplog.text


@pytest.mark.parametrize(
    ("values", "event_kwargs", "allowed_through"),
    [
        ({}, {}, True),
        ({"BOT_ALLOWED_USERS": "test:U1"}, {}, True),
        ({"BOT_ALLOWED_USERS": "test:U1"}, {"user": "U2"}, False),
        ({"BOT_ALLOWED_USERS": "slack:U2"}, {"user": "U2"}, False),  # another platform's id
        ({"BOT_ALLOWED_CHANNELS": "test:C1"}, {}, True),
        ({"BOT_ALLOWED_CHANNELS": "test:C9"}, {}, False),
        ({"BOT_ALLOWED_CHANNELS": "test:C9"}, {"conversation": "test:dm:5"}, True),  # a DM
        ({"BOT_ALLOWED_WORKSPACES": "test:T1"}, {}, True),
        ({"BOT_ALLOWED_WORKSPACES": "test:T2"}, {}, False),
    ],
)
async def test_allowlists(
    make_core: Any, values: dict[str, str], event_kwargs: dict[str, Any], allowed_through: bool
) -> None:
    core = make_core(ScriptedModel([text_step("ok")]), **values)
    reply = RecordingReply()
    result = await core.handle(message("hi", **event_kwargs), reply)

    if allowed_through:
        assert result.outcome == "answered"
    else:
        assert result.outcome == "refused"
        assert reply.of("refuse") == [REFUSAL] and reply.of("start") == []


async def test_a_discord_role_lets_its_members_in(make_core: Any) -> None:
    core = make_core(
        ScriptedModel([text_step("ok")]), BOT_ALLOWED_USERS="test:U9", BOT_ALLOWED_ROLES="test:R1"
    )
    base = message("hi", user="U2")
    member = dataclasses.replace(base, author=dataclasses.replace(base.author, roles=("R1",)))
    stranger = message("hi", user="U3")

    assert (await core.handle(member, RecordingReply())).outcome == "answered"
    assert (await core.handle(stranger, RecordingReply())).outcome == "refused"


# --------------------------------------------------------------------------- budgets


async def test_daily_user_token_budget_stops_turns_with_the_reset_time(
    make_core: Any, store: Store
) -> None:
    model = ScriptedModel([text_step("one", input_tokens=60, output_tokens=40)])
    core = make_core(model, BOT_DAILY_TOKENS_PER_USER=100)

    assert (await core.handle(message("first"), RecordingReply())).outcome == "answered"
    reply = RecordingReply()
    result = await core.handle(message("second"), reply)

    assert result.error is ErrorKind.BUDGET and result.outcome == "failed"
    assert reply.refusal is not None
    assert "You have reached today's limit of 100 tokens" in reply.refusal
    assert "resets at midnight UTC, in " in reply.refusal
    assert len(model.calls) == 1 and await pending(store) == []
    # Another user is not held by this user's budget (the model, out of steps, fails it).
    other = await core.handle(message("mine", user="U2"), RecordingReply())
    assert other.error is not ErrorKind.BUDGET and len(model.calls) == 2


async def test_daily_workspace_cost_budget_counts_every_user_of_the_workspace(
    make_core: Any, store: Store
) -> None:
    core = make_core(ScriptedModel([]), BOT_DAILY_USD_PER_WORKSPACE=1.0)
    now = time.time()
    for user, cost in (("test:U1", 0.4), ("test:U2", 0.6)):
        await store.record_usage(
            UsageRecord("c", "test:T1:C1", user, "m", 1, 1, cost, now, workspace="T1")
        )
    await store.record_usage(UsageRecord("c", "x", "test:U3", "m", 1, 1, 5.0, now - 86_400 * 2))
    reply = RecordingReply()

    result = await core.handle(message("hello", user="U3"), reply)

    assert result.error is ErrorKind.BUDGET
    assert reply.refusal is not None and "This workspace has reached today's limit of $1.00" in (
        reply.refusal
    )
    # Another workspace is not affected (its turn reaches the model).
    other = await core.handle(message("hi", conversation="test:T2:C1:1.1"), RecordingReply())
    assert other.error is not ErrorKind.BUDGET


# --------------------------------------------------------------------------- channel settings


async def test_channel_prompt_reaches_the_model_and_settings_need_an_admin(
    make_core: Any, store: Store
) -> None:
    model = ScriptedModel([text_step("Bonjour"), text_step("Hello")])
    core = make_core(model, BOT_ADMINS="test:ADMIN")

    refused = await core.handle(command("settings", "prompt Answer in French."), RecordingReply())
    assert "Only the bot's admins" in refused.text
    assert await store.channel_settings(channel="test:T1:C1") == {}

    done = await core.handle(
        command("settings", "prompt Answer in French.", user="ADMIN"), RecordingReply()
    )
    assert "Answer in French." in done.text
    await core.handle(message("hello"), RecordingReply())
    instructions = model.calls[0].system_instructions or ""
    assert instructions.endswith("Answer in French.")

    shown = await core.handle(command("settings"), RecordingReply())
    assert "“Answer in French.”" in shown.text and "mention: optional" in shown.text

    await core.handle(command("settings", "prompt default", user="ADMIN"), RecordingReply())
    await core.handle(message("again"), RecordingReply())
    assert "Answer in French." not in (model.calls[1].system_instructions or "")


@pytest.mark.parametrize(
    ("args", "stored", "said"),
    [
        ("mention required", {"mention": "required"}, "only when mentioned"),
        ("mention sometimes", {}, "Use `/settings mention required`"),
        ("pdf mistral-ocr", {"pdf_engine": "mistral-ocr"}, "read with `mistral-ocr`"),
        ("pdf magic", {}, "Use one of"),
        ("model anthropic/claude-sonnet-4.5", {"model": "openrouter/anthropic/claude-sonnet-4.5"},
         "now uses"),
        ("colour blue", {}, "Usage: `/settings`"),
        ("prompt " + "x" * 2_001, {}, "too long"),
    ],
)  # fmt: skip
async def test_settings_values_are_checked_and_stored(
    make_core: Any, store: Store, args: str, stored: dict[str, str], said: str
) -> None:
    core = make_core(ScriptedModel([]))
    result = await core.handle(command("settings", args), RecordingReply())
    assert said in result.text
    assert await store.channel_settings(channel="test:T1:C1") == stored


# --------------------------------------------------------------------------- restarts


async def test_recover_tells_each_address_once_and_retries_only_what_may_work_later(
    make_core: Any, store: Store
) -> None:
    await store.claim_event(event_id="a", conversation="test:T1:C1:1", address="here")
    await store.claim_event(event_id="b", conversation="test:T1:C1:2")
    await store.claim_event(event_id="c", conversation="test:T1:C1:3", address="gone")
    await store.claim_event(event_id="d", conversation="test:T1:C1:4", address="flaky")
    await store.claim_event(event_id="e", conversation="test:T1:C1:5", address="down")
    core = make_core(ScriptedModel([]))
    core.started_at = time.time() + 1
    told: list[tuple[str, str]] = []
    flaky_calls = 0

    async def tell(address: str, text: str) -> None:
        nonlocal flaky_calls
        if address == "gone":
            raise Undeliverable("channel_not_found")
        if address == "down" or (address == "flaky" and (flaky_calls := flaky_calls + 1) == 1):
            raise ConnectionError("the platform is down")
        told.append((address, text))

    assert await core.recover("test", tell, retry_delays=(0.01,)) == 2
    assert told == [("here", RESTART_LINE), ("flaky", RESTART_LINE)]
    # Only the one whose platform never answered is left for the next start.
    assert await pending(store) == [("e", "test:T1:C1:5")]
    assert await core.recover("test", tell, retry_delays=()) == 0
    assert len(told) == 2


# --------------------------------------------------------------------------- logs


@pytest.mark.parametrize("log_content", [False, True])
async def test_turn_log_line_carries_message_text_only_with_log_content(
    make_core: Any, caplog: pytest.LogCaptureFixture, log_content: bool
) -> None:
    from bot.logs import KeyValueFormatter

    core = make_core(ScriptedModel([text_step("the reply ZEBRA")]), LOG_CONTENT=log_content)
    with caplog.at_level("DEBUG"):
        await core.handle(message("a secret plan MARKER-42"), RecordingReply())

    [turn] = [r for r in caplog.records if r.getMessage() == "turn"]
    assert turn.__dict__["outcome"] == "answered" and turn.__dict__["chars_in"] == 23
    # Our own loggers (libraries that log payloads at DEBUG are held at WARNING by
    # bot.logs.setup_logging, tested in test_hostile).
    ours = [r for r in caplog.records if r.name.split(".")[0] in ("bot", "adapters", "storage")]
    everything = "\n".join(KeyValueFormatter().format(r) for r in ours)
    assert ("MARKER-42" in everything) is log_content
    assert ("ZEBRA" in everything) is log_content


async def test_usage_shows_todays_budgets_when_they_are_set(make_core: Any, store: Store) -> None:
    core = make_core(
        ScriptedModel([]), BOT_DAILY_TOKENS_PER_USER=1_000, BOT_DAILY_USD_PER_WORKSPACE=2.5
    )
    await store.record_usage(
        UsageRecord("c", "test:T1:C1", "test:U1", "m", 300, 50, 0.75, time.time(), workspace="T1")
    )
    shown = await core.handle(command("usage"), RecordingReply())
    assert "• Your budget today: 350 of 1,000 tokens (resets at midnight UTC)" in shown.text
    assert "• This workspace's budget today: $0.75 of $2.50" in shown.text

    plain = make_core(ScriptedModel([]))
    assert "budget" not in (await plain.handle(command("usage"), RecordingReply())).text


@pytest.mark.parametrize("text", ["\u200b", "\u200d\u200f \u2060", "\u202e\t\x00", " \ufeff "])
async def test_a_message_of_only_invisible_characters_is_empty(make_core: Any, text: str) -> None:
    model = ScriptedModel([])
    reply = RecordingReply()
    result = await make_core(model).handle(message(text), reply)
    assert result.outcome == "answered" and reply.text == EMPTY_MESSAGE_REPLY
    assert model.calls == ()


# --------------------------------------------------------------------------- commands per platform


@pytest.mark.parametrize(
    ("platform", "present", "absent"),
    [
        (
            "slack",
            ["*What I can do*", "I answer in the thread", "`/ask <question>`"],
            ["**", "/attach", "/quit", "I reply to you"],
        ),
        (
            "discord",
            ["**What I can do**", "I reply to you", "`/ask <question>`"],
            ["in the thread", "/attach", "/quit"],
        ),
        (
            "console",
            ["What I can do", "/attach <path>", "/quit", "type a question"],
            ["*", "`", "/ask", "in the thread"],
        ),
    ],
)
async def test_help_speaks_each_platforms_language(
    make_core: Any, platform: str, present: list[str], absent: list[str]
) -> None:
    core = make_core(ScriptedModel([]))
    event = dataclasses.replace(command("help"), platform=platform)
    reply = RecordingReply()
    await core.handle(event, reply)
    for text in present:
        assert text in reply.text, (platform, text)
    for text in absent:
        assert text not in reply.text, (platform, text)


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        ("slack", "*Usage*\n• You, last 24 h: 0 answers"),
        ("discord", "**Usage**\n• You, last 24 h: 0 answers"),
        ("console", "Usage\n• You, last 24 h: 0 answers"),
    ],
)
async def test_command_answers_are_formatted_for_the_platform(
    make_core: Any, platform: str, expected: str
) -> None:
    core = make_core(ScriptedModel([]))
    reply = RecordingReply()
    await core.handle(dataclasses.replace(command("usage"), platform=platform), reply)
    assert reply.text.startswith(expected), reply.text
