"""The core over the REAL request path: ``build_core`` with the default litellm models, talking
HTTP to a FakeOpenRouter (chat completions, JSON and SSE) and a FakeOpenMeteo on 127.0.0.1.

Nothing is injected below ``build_core``: LitellmModel, litellm, the SDK's streaming, the
ResilientModel chain, the usage logger, the tools and the SQLite store all run for real.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.core import Core
from bot.errors import ErrorKind, failure_line, user_message
from bot.results import TurnResult
from bot.settings import DEFAULT_SYSTEM_PROMPT
from bot.wiring import build_core, open_services
from storage import Store
from tests.conftest import make_settings
from tests.fakes.open_meteo import FakeOpenMeteo
from tests.fakes.openrouter import (
    ErrorReply,
    FakeOpenRouter,
    HangReply,
    MidStreamErrorReply,
    RecordedRequest,
    TextReply,
    ToolCall,
    ToolCallReply,
    Usage,
    last_user_text,
)
from tests.helpers import RecordingReply, bytes_attachment, count_items, message

PRIMARY = "openai/gpt-5-mini"
FALLBACK = "anthropic/claude-haiku-4.5"
CONVERSATION = "test:T1:C1:100.1"
USER = "test:U1"


@dataclass
class Stack:
    """One running core over the fakes, with what tests look at."""

    core: Core
    store: Store
    openrouter: FakeOpenRouter
    meteo: FakeOpenMeteo

    async def ask(
        self, text: str, *, conversation: str = CONVERSATION
    ) -> tuple[TurnResult, RecordingReply]:
        reply = RecordingReply()
        result = await self.core.handle(message(text, conversation=conversation), reply)
        return result, reply

    @property
    def chats(self) -> list[RecordedRequest]:
        return self.openrouter.chat_requests

    async def history(self, conversation: str = CONVERSATION) -> list[dict[str, Any]]:
        items = await self.store.load_history(
            conversation=conversation, max_items=100, max_tokens=1_000_000
        )
        return [h.item for h in items]


StackFactory = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def openrouter() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter() as fake:
        yield fake


@pytest.fixture
async def meteo() -> AsyncIterator[FakeOpenMeteo]:
    async with FakeOpenMeteo() as fake:
        yield fake


@pytest.fixture
async def start(
    tmp_path: Path, openrouter: FakeOpenRouter, meteo: FakeOpenMeteo
) -> AsyncIterator[StackFactory]:
    """``await start(**settings)``: services + ``build_core`` with the default litellm models."""
    async with AsyncExitStack() as stack:

        async def factory(**values: Any) -> Stack:
            values.setdefault("OPENROUTER_API_KEY", openrouter.api_key)
            settings = make_settings(
                tmp_path,
                OPENROUTER_BASE_URL=openrouter.base_url,
                OPEN_METEO_URL=meteo.base_url,
                OPEN_METEO_GEOCODING_URL=meteo.base_url,
                **values,
            )
            services = await stack.enter_async_context(open_services(settings))
            core = await build_core(services)
            stack.push_async_callback(core.close)
            return Stack(core, services.store, openrouter, meteo)

        yield factory


def only_usage_row(tmp_path: Path) -> tuple[str, int, int, float]:
    """The one row of the usage table (model, tokens in, tokens out, cost), read from the file."""
    with closing(sqlite3.connect(tmp_path / "bot.db")) as db:
        rows = db.execute(
            "SELECT model, input_tokens, output_tokens, cost_usd FROM usage ORDER BY id"
        ).fetchall()
    assert len(rows) == 1, rows
    model, tokens_in, tokens_out, cost = rows[0]
    assert cost is not None, "no cost recorded"
    return str(model), int(tokens_in), int(tokens_out), float(cost)


def debug_logging(caplog: pytest.LogCaptureFixture) -> None:
    """Capture every record at DEBUG, including libraries that set their own logger levels."""
    caplog.set_level(logging.DEBUG)
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx", "httpcore", "openai"):
        caplog.set_level(logging.DEBUG, logger=name)


def assert_key_not_logged(caplog: pytest.LogCaptureFixture, key: str) -> None:
    # litellm logs each request as a curl command at DEBUG, Authorization header included
    # (masked): without it in the capture the check below would prove nothing.
    assert "Authorization" in caplog.text, "no request was logged; the leak check is vacuous"
    for record in caplog.records:
        assert key not in record.getMessage(), record.name
        assert key not in repr(vars(record)), record.name
    assert key not in caplog.text


def header(request: RecordedRequest, name: str) -> str | None:
    """A request header by name, whatever case the client sent it in."""
    found = [v for k, v in request.headers.items() if k.lower() == name.lower()]
    assert len(found) <= 1, found
    return found[0] if found else None


def roles(body: dict[str, Any] | None) -> list[str]:
    assert body is not None
    return [str(m.get("role")) for m in body["messages"]]


# --------------------------------------------------------------------------- 1. streaming


async def test_streamed_answer_and_the_request_that_produced_it(
    start: StackFactory, openrouter: FakeOpenRouter, caplog: pytest.LogCaptureFixture
) -> None:
    debug_logging(caplog)
    text = "Lisbon is sunny today, with a light breeze from the west."
    openrouter.enqueue(TextReply(text, chunks=5))
    s = await start(OR_APP_NAME="integration-bot", OR_SITE_URL="https://bot.example.test")

    result, reply = await s.ask("How is Lisbon today?")

    assert result.outcome == "answered", reply.calls
    deltas = reply.of("stream")
    if s.core.settings.model_client == "litellm":
        assert len(deltas) == 5, deltas  # one delta per SSE chunk, none merged or lost
    else:  # what arrived together is handed on together: nothing lost, nothing reordered
        assert 1 <= len(deltas) <= 5 and deltas[0].startswith("Lisbon is su"), deltas
    assert "".join(deltas) == text
    assert reply.calls[0] == ("start", "")
    assert reply.calls[-1] == ("finish", "")
    kinds = [k for k, _ in reply.calls]
    assert kinds == ["start", *["stream"] * len(deltas), "finish"]

    assert len(s.chats) == 1
    request = s.chats[0]
    body = request.body
    assert body is not None
    assert body["stream"] is True
    assert body["model"] == PRIMARY
    assert body["temperature"] == 0.2
    system = body["messages"][0]
    assert system["role"] == "system"
    assert DEFAULT_SYSTEM_PROMPT in system["content"]
    assert "get_weather" in system["content"]  # the tool guidance is part of the instructions
    assert body["messages"][-1] == {"role": "user", "content": "How is Lisbon today?"}
    tools = sorted(t["function"]["name"] for t in body["tools"])
    assert tools == ["get_current_time", "get_weather", "read_document"]
    assert header(request, "X-Title") == "integration-bot"
    assert header(request, "HTTP-Referer") == "https://bot.example.test"
    assert request.authorized

    assert_key_not_logged(caplog, openrouter.api_key)


async def test_app_name_header_defaults_to_chatbot(
    start: StackFactory, openrouter: FakeOpenRouter
) -> None:
    s = await start()
    result, _ = await s.ask("hi")
    assert result.outcome == "answered"
    assert header(s.chats[0], "X-Title") == "chatbot"


# --------------------------------------------------------------------------- 2. tool loop


async def test_weather_tool_loop_over_http_and_history(
    start: StackFactory, openrouter: FakeOpenRouter, meteo: FakeOpenMeteo
) -> None:
    openrouter.enqueue(
        ToolCallReply.single("get_weather", {"location": "Tokyo"}, id="call_tokyo"),
        TextReply("It is 18.4°C and partly cloudy in Tokyo.", chunks=3),
    )
    s = await start()

    result, reply = await s.ask("What's the weather in Tokyo?")

    assert result.outcome == "answered", reply.calls
    assert result.tools == ["get_weather"]
    assert reply.of("progress") == [
        "in_progress: Checking the weather in Tokyo",
        "complete: Checking the weather in Tokyo",
    ]
    assert reply.text == "It is 18.4°C and partly cloudy in Tokyo."
    assert reply.calls[-1] == ("finish", "")

    searches = meteo.requests_to("/v1/search")
    forecasts = meteo.requests_to("/v1/forecast")
    assert len(searches) == 1 and searches[0].query["name"] == "Tokyo"
    assert len(forecasts) == 1
    assert abs(float(forecasts[0].query["latitude"]) - 35.6895) < 0.01
    assert abs(float(forecasts[0].query["longitude"]) - 139.69171) < 0.01

    assert len(s.chats) == 2
    second = s.chats[1].body
    assert second is not None
    assert roles(second)[-3:] == ["user", "assistant", "tool"]
    assistant, tool = second["messages"][-2], second["messages"][-1]
    assert assistant["tool_calls"][0]["function"]["name"] == "get_weather"
    assert tool["tool_call_id"] == "call_tokyo"
    assert "Tokyo" in tool["content"] and "18.4" in tool["content"]

    history = await s.history()
    assert [i.get("role") or i.get("type") for i in history] == [
        "user",
        "function_call",
        "function_call_output",
        "assistant",
    ]
    assert history[1]["name"] == "get_weather" and history[1]["call_id"] == "call_tokyo"
    assert "18.4" in history[2]["output"]

    openrouter.enqueue(TextReply("Yes, take sunglasses."))
    follow, _ = await s.ask("Will I need sunglasses?")
    assert follow.outcome == "answered"
    third = s.chats[2].body
    assert third is not None
    assert roles(third) == ["system", "user", "assistant", "tool", "assistant", "user"]
    messages = third["messages"]
    assert messages[1]["content"] == "What's the weather in Tokyo?"
    assert messages[2]["tool_calls"][0]["id"] == "call_tokyo"
    assert "18.4" in messages[3]["content"]
    assert messages[4]["content"] == "It is 18.4°C and partly cloudy in Tokyo."
    assert messages[5]["content"] == "Will I need sunglasses?"


# --------------------------------------------------------------------------- 3. usage and cost


async def test_usage_and_cost_are_what_openrouter_reported(
    start: StackFactory, openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    openrouter.enqueue(TextReply("Hello!", chunks=2, usage=Usage(123, 45, 0.000321)))
    s = await start()

    result, _ = await s.ask("hi")

    assert result.outcome == "answered"
    assert (result.input_tokens, result.output_tokens) == (123, 45)
    assert result.cost_usd == pytest.approx(0.000321)
    totals = await s.store.usage_totals(user_id=USER)
    assert (totals.turns, totals.input_tokens, totals.output_tokens) == (1, 123, 45)
    assert totals.cost_usd == pytest.approx(0.000321, rel=1e-9)
    model, tokens_in, tokens_out, cost = only_usage_row(tmp_path)
    assert (model, tokens_in, tokens_out) == ("openrouter/openai/gpt-5-mini", 123, 45)
    assert cost == pytest.approx(0.000321, rel=1e-9)


async def test_cost_of_a_tool_turn_is_the_sum_of_both_calls(
    start: StackFactory, openrouter: FakeOpenRouter
) -> None:
    first = ToolCallReply.single("get_weather", {"location": "Tokyo"})
    first = ToolCallReply(calls=first.calls, usage=Usage(200, 20, 0.0005))
    openrouter.enqueue(first, TextReply("Mild in Tokyo.", usage=Usage(300, 30, 0.00125)))
    s = await start()

    result, reply = await s.ask("Weather in Tokyo?")

    assert result.outcome == "answered", reply.calls
    totals = await s.store.usage_totals(user_id=USER)
    assert (totals.turns, totals.input_tokens, totals.output_tokens) == (1, 500, 50)
    assert totals.cost_usd == pytest.approx(0.00175, rel=1e-9)


async def test_the_turn_log_line_carries_a_rounded_cost(
    start: StackFactory, openrouter: FakeOpenRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """Two calls of 0.0001 and 0.0002 sum to 0.00030000000000000003 as floats: the turn's log
    line says 0.0003."""
    caplog.set_level(logging.INFO, logger="bot.core")
    first = ToolCallReply.single("get_weather", {"location": "Tokyo"})
    first = ToolCallReply(calls=first.calls, usage=Usage(200, 20, 0.0001))
    openrouter.enqueue(first, TextReply("Mild in Tokyo.", usage=Usage(300, 30, 0.0002)))
    s = await start()

    result, _ = await s.ask("Weather in Tokyo?")

    [turn] = [r for r in caplog.records if r.getMessage() == "turn"]
    assert result.cost_usd == 0.0001 + 0.0002 != 0.0003
    assert turn.cost_usd == 0.0003  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- 4. auth


async def test_401_is_not_retried_nor_sent_to_a_fallback(
    start: StackFactory, openrouter: FakeOpenRouter
) -> None:
    s = await start(BOT_FALLBACK_MODELS=f"openrouter/{FALLBACK}", BOT_MODEL_RETRIES=2)
    openrouter.enqueue(TextReply("first answer"))
    await s.ask("first")
    assert await count_items(s.store, conversation=CONVERSATION) == 2
    before = len(openrouter.requests)
    openrouter.enqueue(ErrorReply(401))

    result, reply = await s.ask("second")

    assert len(openrouter.requests) == before + 1
    assert FALLBACK not in [r.model for r in s.chats]
    assert result.outcome == "failed" and result.error is ErrorKind.AUTH
    assert reply.of("fail") == [user_message(ErrorKind.AUTH)]
    assert openrouter.api_key not in reply.of("fail")[0]
    assert reply.calls[-1][0] == "fail"
    assert await count_items(s.store, conversation=CONVERSATION) == 2
    assert [i.get("role") for i in await s.history()] == ["user", "assistant"]


async def test_wrong_key_fails_once_without_leaking_the_key(
    start: StackFactory, openrouter: FakeOpenRouter, caplog: pytest.LogCaptureFixture
) -> None:
    debug_logging(caplog)
    wrong = "sk-or-v1-wrong-key-0123456789"
    s = await start(OPENROUTER_API_KEY=wrong, BOT_FALLBACK_MODELS=f"openrouter/{FALLBACK}")

    result, reply = await s.ask("hello")

    assert len(openrouter.requests) == 1
    assert openrouter.counters.unauthorized == 1
    assert result.error is ErrorKind.AUTH
    fail = reply.of("fail")
    assert fail == [user_message(ErrorKind.AUTH)]
    assert wrong not in fail[0]
    assert await count_items(s.store, conversation=CONVERSATION) == 0
    assert_key_not_logged(caplog, wrong)


# --------------------------------------------------------------------------- 5. retries


async def test_429_with_retry_after_zero_is_retried_at_once(
    start: StackFactory, openrouter: FakeOpenRouter
) -> None:
    openrouter.enqueue(ErrorReply(429, retry_after=0), TextReply("after the limit"))
    # A long backoff: only honouring Retry-After: 0 keeps this turn fast.
    s = await start(BOT_RETRY_BACKOFF=10, BOT_MODEL_RETRIES=2)

    started = time.monotonic()
    result, reply = await s.ask("hi")
    elapsed = time.monotonic() - started

    assert result.outcome == "answered", reply.calls
    assert reply.text == "after the limit"
    assert [r.status for r in s.chats] == [429, 200]
    assert elapsed < 3.0
    assert reply.of("fail") == []


async def test_500_then_503_then_answer(start: StackFactory, openrouter: FakeOpenRouter) -> None:
    openrouter.enqueue(ErrorReply(500), ErrorReply(503), TextReply("third time lucky"))
    s = await start(BOT_MODEL_RETRIES=2)

    result, reply = await s.ask("hi")

    assert result.outcome == "answered", reply.calls
    assert reply.text == "third time lucky"
    assert [r.status for r in s.chats] == [500, 503, 200]
    assert [r.model for r in s.chats] == [PRIMARY] * 3


async def test_retries_exhausted_fails_with_the_provider_message(
    start: StackFactory, openrouter: FakeOpenRouter
) -> None:
    openrouter.enqueue(ErrorReply(500), ErrorReply(502), ErrorReply(503), TextReply("never"))
    s = await start(BOT_MODEL_RETRIES=2)

    result, reply = await s.ask("hi")

    assert len(s.chats) == 3
    assert result.error is ErrorKind.PROVIDER
    assert reply.of("fail") == [user_message(ErrorKind.PROVIDER)]
    assert openrouter.pending() == 1


# --------------------------------------------------------------------------- 6. fallback


async def test_fallback_model_answers_after_the_primary_keeps_failing(
    start: StackFactory, openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    retries = 2
    openrouter.enqueue(*[ErrorReply(500)] * (retries + 1), model=PRIMARY)
    openrouter.enqueue(
        TextReply("Haiku here.", chunks=2, usage=Usage(50, 5, 0.0001)), model=FALLBACK
    )
    s = await start(BOT_FALLBACK_MODELS=f"openrouter/{FALLBACK}", BOT_MODEL_RETRIES=retries)

    result, reply = await s.ask("hi")

    assert result.outcome == "answered", reply.calls
    assert reply.text == "Haiku here."
    assert [r.model for r in s.chats] == [PRIMARY] * (retries + 1) + [FALLBACK]
    assert [r.status for r in s.chats] == [500] * (retries + 1) + [200]
    assert result.model == f"openrouter/{FALLBACK}"
    model, tokens_in, tokens_out, cost = only_usage_row(tmp_path)
    assert (model, tokens_in, tokens_out) == (f"openrouter/{FALLBACK}", 50, 5)
    assert cost == pytest.approx(0.0001, rel=1e-9)


# --------------------------------------------------------------------------- 7. timeouts


async def test_hung_model_times_out(start: StackFactory, openrouter: FakeOpenRouter) -> None:
    openrouter.enqueue(HangReply())
    s = await start(BOT_MODEL_TIMEOUT=0.5, BOT_MODEL_RETRIES=0)

    started = time.monotonic()
    result, reply = await s.ask("hi")
    elapsed = time.monotonic() - started

    assert elapsed < 3.0
    assert result.error is ErrorKind.TIMEOUT
    assert reply.of("fail") == [user_message(ErrorKind.TIMEOUT)]
    assert len(s.chats) == 1
    assert await count_items(s.store, conversation=CONVERSATION) == 0


async def test_a_trickling_stream_is_capped_and_frees_the_conversation(
    start: StackFactory, openrouter: FakeOpenRouter
) -> None:
    """Chunks that each come within the idle timeout but never end: the per-turn cap stops the
    turn, the partial answer stays with a "cut" line, and the conversation's next message (which
    waited for its lock) is answered."""
    openrouter.enqueue(TextReply("never " * 200, chunks=200, delay=0.05))
    s = await start(BOT_MODEL_TIMEOUT=1, BOT_TURN_TIMEOUT=1.0, BOT_MODEL_RETRIES=0)

    first = asyncio.create_task(s.ask("tell me everything"))
    await openrouter.wait_for_requests(1)
    second_result, second_reply = await asyncio.wait_for(s.ask("still there?"), 10)
    first_result, first_reply = await first

    assert first_result.error is ErrorKind.TURN_TIMEOUT
    assert first_reply.text.startswith("never ") and len(first_reply.text) < len("never " * 200)
    assert first_reply.of("fail") == [failure_line(ErrorKind.TURN_TIMEOUT, shown_text=True)]
    assert second_result.outcome == "answered" and second_reply.text == "echo: still there?"
    assert s.core.locks._locks == {}  # nothing held or waiting afterwards
    # Only the answered turn is in history: the cut one left nothing half-written.
    assert [m["content"] for m in await s.history() if m.get("role") == "user"] == ["still there?"]


async def test_hung_model_is_retried_and_then_answers(
    start: StackFactory, openrouter: FakeOpenRouter
) -> None:
    openrouter.enqueue(HangReply(), TextReply("awake now"))
    s = await start(BOT_MODEL_TIMEOUT=0.5, BOT_MODEL_RETRIES=1)

    started = time.monotonic()
    result, reply = await s.ask("hi")
    elapsed = time.monotonic() - started

    assert result.outcome == "answered", reply.calls
    assert reply.text == "awake now"
    assert len(s.chats) == 2
    assert elapsed < 3.0


# --------------------------------------------------------------------------- 8. mid-stream error


async def test_mid_stream_error_keeps_the_partial_text_and_no_history(
    start: StackFactory, openrouter: FakeOpenRouter
) -> None:
    partial = "The first half of a long answer, "
    openrouter.enqueue(MidStreamErrorReply(text=partial, chunks=3))
    s = await start(BOT_MODEL_RETRIES=2)

    result, reply = await s.ask("tell me a long story")

    assert reply.text, reply.calls
    assert partial.startswith(reply.text)
    assert reply.calls[-1] == ("fail", user_message(ErrorKind.CUT_OFF))
    assert reply.of("finish") == []
    assert result.error is ErrorKind.CUT_OFF
    assert len(s.chats) == 1  # text was shown: never retried (the user would see it twice)
    assert await count_items(s.store, conversation=CONVERSATION) == 0

    openrouter.enqueue(TextReply("All good now."))
    again, reply2 = await s.ask("try again")
    assert again.outcome == "answered", reply2.calls
    assert reply2.text == "All good now."
    body = s.chats[-1].body
    assert roles(body) == ["system", "user"]
    assert [i.get("role") for i in await s.history()] == ["user", "assistant"]


# --------------------------------------------------------------------------- 9. concurrency


async def test_twenty_conversations_run_concurrently(
    start: StackFactory, openrouter: FakeOpenRouter
) -> None:
    openrouter.latency = 0.2
    s = await start(BOT_USER_RATE_LIMIT=0)  # one user sends all twenty
    await s.ask("warm up", conversation="test:T1:C9:0.0")  # first call pays one-off set-up costs
    openrouter.reset()

    started = time.monotonic()
    outcomes = await asyncio.gather(
        *(s.ask(f"question {i}", conversation=f"test:T1:C1:{i}.0") for i in range(20))
    )
    elapsed = time.monotonic() - started

    for i, (result, reply) in enumerate(outcomes):
        assert result.outcome == "answered", reply.calls
        assert reply.text == f"echo: question {i}"
    assert len(openrouter.chat_requests) == 20
    assert openrouter.counters.max_in_flight >= 10  # 20 seen here; 1 would mean serialised
    assert elapsed < 2.5, f"20 turns took {elapsed:.2f}s"


async def test_concurrent_turns_each_get_their_own_cost(
    start: StackFactory, openrouter: FakeOpenRouter
) -> None:
    def responder(body: dict[str, Any]) -> TextReply:
        i = int(last_user_text(body).split()[-1])
        return TextReply(
            f"answer {i}", chunks=2, delay=0.01, usage=Usage(100 + i, 10 + i, (i + 1) * 1e-5)
        )

    openrouter.default_responder = responder
    openrouter.latency = 0.05
    s = await start(BOT_USER_RATE_LIMIT=0)  # one user sends all twenty

    await asyncio.gather(
        *(s.ask(f"question {i}", conversation=f"test:T1:C1:{i}.0") for i in range(20))
    )

    for i in range(20):
        totals = await s.store.usage_totals(conversation=f"test:T1:C1:{i}.0")
        assert (totals.turns, totals.input_tokens, totals.output_tokens) == (1, 100 + i, 10 + i)
        assert totals.cost_usd == pytest.approx((i + 1) * 1e-5, rel=1e-9), i


# --------------------------------------------------------------------------- more of the path


@pytest.mark.parametrize(
    ("replies", "kind", "requests"),
    [
        ([ErrorReply(402)], ErrorKind.QUOTA, 1),
        ([ErrorReply(404)], ErrorKind.MODEL_NOT_FOUND, 1),
        ([ErrorReply(400)], ErrorKind.BAD_REQUEST, 1),
        ([ErrorReply(429, retry_after=0)] * 3, ErrorKind.RATE_LIMIT, 3),
    ],
)
async def test_error_statuses_map_to_their_user_message(
    start: StackFactory,
    openrouter: FakeOpenRouter,
    replies: list[ErrorReply],
    kind: ErrorKind,
    requests: int,
) -> None:
    openrouter.enqueue(*replies, TextReply("never"))
    s = await start(BOT_MODEL_RETRIES=2)

    result, reply = await s.ask("hi")

    assert result.error is kind
    assert reply.of("fail") == [user_message(kind)]
    assert len(s.chats) == requests


async def test_error_before_any_text_is_retried(
    start: StackFactory, openrouter: FakeOpenRouter
) -> None:
    openrouter.enqueue(MidStreamErrorReply(text=""), TextReply("second try"))
    s = await start(BOT_MODEL_RETRIES=1)

    result, reply = await s.ask("hi")

    assert result.outcome == "answered", reply.calls
    assert reply.text == "second try"
    assert len(s.chats) == 2


async def test_failed_turn_still_counts_the_calls_it_paid_for(
    start: StackFactory, openrouter: FakeOpenRouter
) -> None:
    first = ToolCallReply(
        calls=ToolCallReply.single("get_weather", {"location": "Tokyo"}).calls,
        usage=Usage(200, 20, 0.0005),
    )
    openrouter.enqueue(first, ErrorReply(500), ErrorReply(500))
    s = await start(BOT_MODEL_RETRIES=1)

    result, reply = await s.ask("Weather in Tokyo?")

    assert result.error is ErrorKind.PROVIDER, reply.calls
    assert len(s.chats) == 3
    totals = await s.store.usage_totals(user_id=USER)
    assert (totals.turns, totals.input_tokens, totals.output_tokens) == (1, 200, 20)
    assert totals.cost_usd == pytest.approx(0.0005, rel=1e-9)
    assert await count_items(s.store, conversation=CONVERSATION) == 0


async def test_timed_out_call_closes_its_connection(
    start: StackFactory, openrouter: FakeOpenRouter
) -> None:
    openrouter.enqueue(HangReply())
    s = await start(BOT_MODEL_TIMEOUT=0.5, BOT_MODEL_RETRIES=0)

    result, _ = await s.ask("hi")

    assert result.error is ErrorKind.TIMEOUT
    hung = s.chats[0]
    async with asyncio.timeout(2):
        await hung.finished.wait()
    assert hung.disconnected


async def test_text_before_a_tool_call_is_kept_apart_from_the_answer(
    start: StackFactory, openrouter: FakeOpenRouter
) -> None:
    calls = ToolCallReply.single("get_weather", {"location": "Paris"}, id="call_paris").calls
    openrouter.enqueue(ToolCallReply(calls=calls, text="Let me check."), TextReply("Rainy, 9.6°C."))
    s = await start()

    result, reply = await s.ask("Paris weather?")

    assert result.outcome == "answered", reply.calls
    assert reply.text == "Let me check.\n\nRainy, 9.6°C."
    assert [i.get("role") or i.get("type") for i in await s.history()] == [
        "user",
        "assistant",
        "function_call",
        "function_call_output",
        "assistant",
    ]
    openrouter.enqueue(TextReply("You're welcome."))
    follow, _ = await s.ask("thanks")
    assert follow.outcome == "answered"
    body = s.chats[-1].body
    assert roles(body) == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert body is not None
    replayed = body["messages"][2]
    assert replayed["content"] == "Let me check."
    assert replayed["tool_calls"][0]["id"] == "call_paris"


async def test_parallel_tool_calls_each_run_and_each_answer_goes_back(
    start: StackFactory, openrouter: FakeOpenRouter, meteo: FakeOpenMeteo
) -> None:
    openrouter.enqueue(
        ToolCallReply(
            calls=(
                ToolCall("get_weather", {"location": "Tokyo"}, id="call_1"),
                ToolCall("get_weather", {"location": "London"}, id="call_2"),
            )
        ),
        TextReply("Warm in both."),
    )
    s = await start()

    result, reply = await s.ask("Tokyo and London?")

    assert result.outcome == "answered", reply.calls
    # Both steps start, then each ends under its own id.
    assert reply.of("progress")[:2] == [
        "in_progress: Checking the weather in Tokyo",
        "in_progress: Checking the weather in London",
    ]
    assert sorted(reply.of("progress")[2:]) == [
        "complete: Checking the weather in London",
        "complete: Checking the weather in Tokyo",
    ]
    tokyo, london = reply.steps[:2]
    assert tokyo.id != london.id
    assert {s.id: s.title for s in reply.steps[2:]} == {
        tokyo.id: tokyo.title,
        london.id: london.title,
    }
    assert sorted(r.query["name"] for r in meteo.requests_to("/v1/search")) == ["London", "Tokyo"]
    body = s.chats[1].body
    assert roles(body)[-3:] == ["assistant", "tool", "tool"]
    assert body is not None
    outputs = {m["tool_call_id"]: m["content"] for m in body["messages"][-2:]}
    assert "Tokyo" in outputs["call_1"] and "London" in outputs["call_2"]


async def test_channel_model_override_reaches_the_request_and_the_usage_row(
    start: StackFactory, openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    s = await start()
    await s.store.set_channel_setting(
        channel="test:T1:C1", name="model", value="openrouter/anthropic/claude-sonnet-4.5"
    )

    result, _ = await s.ask("hi")

    assert result.outcome == "answered"
    assert [r.model for r in s.chats] == ["anthropic/claude-sonnet-4.5"]
    assert only_usage_row(tmp_path)[0] == "openrouter/anthropic/claude-sonnet-4.5"


# --------------------------------------------------------------------------- images

# A 1x1 transparent PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def user_parts(body: dict[str, Any] | None) -> list[Any]:
    assert body is not None
    return [m["content"] for m in body["messages"] if m["role"] == "user"]


async def test_an_image_goes_to_a_vision_model_on_its_turn_only(start: StackFactory) -> None:
    s = await start()
    reply = RecordingReply()
    event = message(
        "what is in this picture?",
        attachments=(bytes_attachment("dot.png", PNG, "image/png"),),
    )
    result = await s.core.handle(event, reply)
    assert result.outcome == "answered", reply.calls

    [content] = user_parts(s.chats[0].body)
    assert content[0] == {
        "type": "text",
        "text": "what is in this picture?\n\n[Attached image: dot.png]",
    }
    assert content[1]["type"] == "image_url"
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,iVBORw0KGgo")

    await s.ask("and now?")
    first, second = user_parts(s.chats[1].body)
    # Later turns name the image; its bytes are not sent again.
    assert first == "what is in this picture?\n\n[Attached image: dot.png]"
    assert second == "and now?"
    assert "base64" not in str(s.chats[1].body)


async def test_an_image_for_a_model_without_vision_is_named_and_skipped(
    start: StackFactory,
) -> None:
    s = await start(BOT_MODEL="openrouter/openai/gpt-3.5-turbo")  # no vision in litellm's info
    reply = RecordingReply()
    event = message("look", attachments=(bytes_attachment("dot.png", PNG, "image/png"),))
    result = await s.core.handle(event, reply)

    assert result.outcome == "answered"
    assert reply.of("notice") == [
        "Skipped dot.png: the model `openrouter/openai/gpt-3.5-turbo` cannot see images. "
        "Try `/model` with one that can, e.g. `openai/gpt-5-mini`."
    ]
    assert user_parts(s.chats[0].body) == ["look"]


async def test_a_file_that_only_claims_to_be_an_image_is_refused(start: StackFactory) -> None:
    s = await start()
    reply = RecordingReply()
    fake_png = bytes_attachment("photo.png", b"<!DOCTYPE html><html>sign in</html>", "image/png")
    good = bytes_attachment("notes.txt", b"the real notes")
    result = await s.core.handle(message("see files", attachments=(fake_png, good)), reply)

    assert result.outcome == "answered"
    assert reply.of("notice") == ["Skipped photo.png: it is not a PNG, JPEG, WebP or GIF image."]
    [content] = user_parts(s.chats[0].body)
    assert "the real notes" in content and "sign in" not in content
