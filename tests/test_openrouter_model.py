"""The lean OpenRouter model (``BOT_MODEL_CLIENT=openrouter``) through the Agents SDK's real
``Runner`` against the fake OpenRouter's real SSE streams: coalescing never drops or reorders
text, the first text is not held back, tool calls, usage and cost come through, errors are the
kinds the retry loop knows. The core's behaviour on this path (and on litellm's) is covered by
the integration, Slack and Discord suites, which run through both (``--model-client``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import Agent, ModelSettings, Runner, function_tool
from agents.models.interface import ModelTracing

from bot.errors import ErrorKind, classify
from bot.openrouter_http import ModelConnectionError, ModelHTTPError
from bot.openrouter_model import OpenRouterModel, _text_of
from bot.turn_stats import TURN_STATS, TurnStats
from tests.fakes.openrouter import (
    ErrorReply,
    FakeOpenRouter,
    MidStreamErrorReply,
    TextReply,
    ToolCallReply,
    Usage,
)

WORDS = [f"w{i:03d} " for i in range(500)]  # equal lengths: the fake splits evenly


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter() as server:
        yield server


def model_for(fake: FakeOpenRouter, **options: Any) -> OpenRouterModel:
    return OpenRouterModel(
        "openrouter/openai/gpt-5-mini", base_url=fake.base_url, api_key=fake.api_key, **options
    )


async def text_deltas(model: OpenRouterModel, question: str = "hi", **agent: Any) -> list[str]:
    run = Runner.run_streamed(
        Agent(name="t", model=model, model_settings=ModelSettings(include_usage=True), **agent),
        question,
    )
    deltas = []
    async for event in run.stream_events():
        if event.type == "raw_response_event" and event.data.type == "response.output_text.delta":
            deltas.append(event.data.delta)
    return deltas


async def test_a_500_token_answer_arrives_whole_in_order_and_in_few_deltas(
    fake: FakeOpenRouter,
) -> None:
    text = "".join(WORDS)
    fake.enqueue(TextReply(text, chunks=len(WORDS), delay=0.001))
    model = model_for(fake)
    try:
        deltas = await text_deltas(model)
    finally:
        await model.close()
    assert "".join(deltas) == text
    assert deltas[0] == WORDS[0]  # the first text is handed on alone, at once
    assert len(deltas) < len(WORDS) // 5, len(deltas)


async def test_text_that_pauses_is_handed_on_when_the_window_closes(fake: FakeOpenRouter) -> None:
    # Chunks 0.4 s apart with a 0.05 s window: each one goes out on its own, none waits for
    # the next (a paused model's text is not held back).
    fake.enqueue(TextReply("one two six ", chunks=3, delay=0.4))
    model = model_for(fake, coalesce_s=0.05)
    try:
        deltas = await text_deltas(model)
    finally:
        await model.close()
    assert deltas == ["one ", "two ", "six "]


async def test_tool_call_round_trip_keeps_text_order(fake: FakeOpenRouter) -> None:
    @function_tool
    def lookup(city: str) -> str:
        """Look a city up."""
        return f"{city}: 18C"

    fake.enqueue(
        ToolCallReply.single("lookup", {"city": "Tokyo"}, id="call_1"),
        TextReply("It is 18C in Tokyo.", chunks=6),
    )
    model = model_for(fake)
    try:
        deltas = await text_deltas(model, "weather?", tools=[lookup])
    finally:
        await model.close()
    assert "".join(deltas) == "It is 18C in Tokyo."
    second = fake.chat_requests[1].body
    assert second is not None
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["tool_call_id"] == "call_1"
    assert "18C" in tool_message["content"]


async def test_usage_and_openrouters_cost_reach_the_turn(fake: FakeOpenRouter) -> None:
    fake.enqueue(TextReply("hello there", chunks=4, usage=Usage(120, 7, 0.00042)))
    model = model_for(fake)
    stats = TurnStats()
    token = TURN_STATS.set(stats)
    try:
        run = Runner.run_streamed(Agent(name="t", model=model), "hi")
        async for _ in run.stream_events():
            pass
    finally:
        TURN_STATS.reset(token)
        await model.close()
    assert run.context_wrapper.usage.input_tokens == 120
    assert run.context_wrapper.usage.output_tokens == 7
    assert stats.cost_usd == pytest.approx(0.00042)
    assert (stats.calls_started, stats.cost_reports) == (1, 1)
    body = fake.chat_requests[0].body
    assert body is not None
    assert body["model"] == "openai/gpt-5-mini"  # the provider prefix is ours, not OpenRouter's
    assert body["usage"] == {"include": True}
    assert body["stream_options"] == {"include_usage": True}


async def test_a_plain_response_is_converted_with_usage(fake: FakeOpenRouter) -> None:
    fake.enqueue(TextReply("plain answer", usage=Usage(10, 2, 0.001)))
    model = model_for(fake)
    stats = TurnStats()
    token = TURN_STATS.set(stats)
    try:
        result = await Runner.run(Agent(name="t", model=model), "hi")
    finally:
        TURN_STATS.reset(token)
        await model.close()
    assert result.final_output == "plain answer"
    assert result.context_wrapper.usage.output_tokens == 2
    assert stats.cost_usd == pytest.approx(0.001)


@pytest.mark.parametrize(
    ("status", "kind"),
    [(401, ErrorKind.AUTH), (429, ErrorKind.RATE_LIMIT), (503, ErrorKind.PROVIDER)],
)
async def test_error_statuses_become_the_kinds_the_retry_loop_knows(
    fake: FakeOpenRouter, status: int, kind: ErrorKind
) -> None:
    fake.enqueue(ErrorReply(status, "nope", retry_after=3 if status == 429 else None))
    model = model_for(fake)
    try:
        with pytest.raises(ModelHTTPError) as caught:
            await text_deltas(model)
    finally:
        await model.close()
    verdict = classify(caught.value)
    assert verdict.kind is kind
    if status == 429:
        assert verdict.retry_after == 3


async def test_an_error_in_the_stream_hands_on_the_text_before_it(fake: FakeOpenRouter) -> None:
    fake.enqueue(MidStreamErrorReply(text="partial answer", chunks=4, code=502))
    model = model_for(fake)
    seen: list[str] = []
    try:
        with pytest.raises(ModelHTTPError) as caught:
            async for event in model.stream_response(
                None, "hi", ModelSettings(), [], None, [], ModelTracing.DISABLED
            ):
                if event.type == "response.output_text.delta":
                    seen.append(event.delta)
    finally:
        await model.close()
    assert "".join(seen) == "partial answer"
    assert caught.value.status_code == 502


async def test_an_unreachable_provider_is_a_retryable_provider_failure() -> None:
    model = OpenRouterModel("openai/gpt-5-mini", base_url="http://127.0.0.1:9/api/v1", api_key="k")
    try:
        with pytest.raises(ModelConnectionError) as caught:
            await text_deltas(model)
    finally:
        await model.close()
    verdict = classify(caught.value)
    assert verdict.kind is ErrorKind.PROVIDER and verdict.retryable


def chunk(delta: dict[str, Any], **choice: Any) -> dict[str, Any]:
    return {"id": "gen-1", "choices": [{"index": 0, "delta": delta, **choice}]}


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        # OpenRouter's ordinary text chunk, its empty fields included
        (chunk({"role": "assistant", "content": "Hi", "reasoning": None}, logprobs=None), "Hi"),
        (chunk({"content": "", "reasoning_details": []}), ""),
        # anything more than text is handed on as it came
        (chunk({"content": "", "reasoning": "thinking"}), None),
        (chunk({"tool_calls": [{"index": 0, "id": "c"}]}), None),
        (chunk({"content": "x"}, finish_reason="stop"), None),
        ({**chunk({"content": "x"}), "usage": {"prompt_tokens": 1}}, None),
        ({"id": "gen-1", "choices": []}, None),
    ],
)
def test_only_plain_text_chunks_are_merged(raw: dict[str, Any], text: str | None) -> None:
    assert _text_of(json.loads(json.dumps(raw))) == text


async def test_a_provider_that_goes_silent_mid_answer_is_a_timeout_not_a_hang(
    fake: FakeOpenRouter,
) -> None:
    fake.enqueue(TextReply("First half. Second half.", chunks=2, delay=5, first_delay=0))
    model = model_for(fake, timeout_s=0.3, coalesce_s=0.05)
    seen: list[str] = []
    try:
        with pytest.raises(TimeoutError):
            async for event in model.stream_response(
                None, "hi", ModelSettings(), [], None, [], ModelTracing.DISABLED
            ):
                if event.type == "response.output_text.delta":
                    seen.append(event.delta)
    finally:
        await model.close()
    assert seen == ["First half. "]
