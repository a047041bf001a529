"""ResilientModel: retries, fallbacks, timeouts; driven through the SDK's Runner."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import Agent, Runner
from agents.testing import ModelStep, ScriptedModel, assistant_message
from openai.types.responses import ResponseTextDeltaEvent

from bot.errors import ErrorKind, classify
from bot.resilient_model import ResilientModel
from bot.turn_stats import TURN_STATS, TurnStats


class StatusError(Exception):
    def __init__(self, status_code: int, retry_after: str | None = None) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code
        self.headers = {"retry-after": retry_after} if retry_after else {}


def text(t: str) -> ModelStep:
    return ModelStep(output=[assistant_message(t)])


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


async def run(model: ResilientModel, *, stream: bool) -> tuple[str, TurnStats]:
    stats = TurnStats()
    token = TURN_STATS.set(stats)
    try:
        agent = Agent[None](name="t", model=model)
        if stream:
            result = Runner.run_streamed(agent, "hi")
            async for _ in result.stream_events():
                pass
            return str(result.final_output), stats
        done = await Runner.run(agent, "hi")
        return str(done.final_output), stats
    finally:
        TURN_STATS.reset(token)


@pytest.mark.parametrize("stream", [False, True])
async def test_retries_then_answers(stream: bool) -> None:
    primary = ScriptedModel([StatusError(429, "3"), StatusError(502), text("ok")])
    sleeps = Sleeps()
    model = ResilientModel([("a", primary)], retries=2, backoff_s=0.5, sleep=sleeps)

    answer, stats = await run(model, stream=stream)

    assert answer == "ok"
    assert stats.model == "a" and stats.attempts == 3
    assert sleeps.delays[0] == 3.0  # Retry-After honoured
    assert 1.0 <= sleeps.delays[1] <= 1.5  # exponential backoff with jitter (0.5 * 2 ** 1)


@pytest.mark.parametrize("stream", [False, True])
async def test_auth_error_is_not_retried_nor_sent_to_fallbacks(stream: bool) -> None:
    primary = ScriptedModel([StatusError(401)])
    fallback = ScriptedModel([text("should not be used")])
    model = ResilientModel([("a", primary), ("b", fallback)], retries=3, sleep=Sleeps())

    with pytest.raises(StatusError):
        await run(model, stream=stream)
    assert len(primary.calls) == 1 and fallback.calls == ()


@pytest.mark.parametrize("stream", [False, True])
async def test_fallback_after_retries_are_exhausted(stream: bool) -> None:
    primary = ScriptedModel([StatusError(500)] * 2)
    fallback = ScriptedModel([text("from b")])
    model = ResilientModel([("a", primary), ("b", fallback)], retries=1, sleep=Sleeps())

    answer, stats = await run(model, stream=stream)

    assert answer == "from b"
    assert stats.model == "b" and stats.fallbacks == 1 and stats.attempts == 3
    assert stats.errors == ["provider", "provider"]


async def test_fallback_on_unknown_model_without_retrying() -> None:
    primary = ScriptedModel([StatusError(404)])
    fallback = ScriptedModel([text("b")])
    model = ResilientModel([("a", primary), ("b", fallback)], retries=3, sleep=Sleeps())
    answer, stats = await run(model, stream=True)
    assert answer == "b" and stats.attempts == 2


async def test_stream_that_showed_text_is_not_retried() -> None:
    async def partial(call: Any) -> AsyncIterator[Any]:
        yield ResponseTextDeltaEvent(
            type="response.output_text.delta",
            item_id="m",
            output_index=0,
            content_index=0,
            delta="half an ans",
            sequence_number=0,
            logprobs=[],
        )
        raise StatusError(502)

    primary = ScriptedModel([ModelStep.stream(partial), text("second try")])
    model = ResilientModel([("a", primary)], retries=2, sleep=Sleeps())

    with pytest.raises(StatusError):
        await run(model, stream=True)
    assert primary.remaining_steps == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_idle_timeout_then_fallback(stream: bool) -> None:
    async def hang(call: Any) -> Any:
        await asyncio.sleep(30)
        return text("too late")

    primary = ScriptedModel([ModelStep.respond(hang)])
    fallback = ScriptedModel([text("fast")])
    model = ResilientModel(
        [("a", primary), ("b", fallback)], retries=0, timeout_s=0.1, sleep=Sleeps()
    )

    answer, stats = await asyncio.wait_for(run(model, stream=stream), 5)

    assert answer == "fast" and stats.errors == ["timeout"]


@pytest.mark.parametrize(
    ("exc", "kind", "retryable", "fallback"),
    [
        (StatusError(401), ErrorKind.AUTH, False, False),
        (StatusError(402), ErrorKind.QUOTA, False, False),
        (StatusError(429), ErrorKind.RATE_LIMIT, True, True),
        (StatusError(500), ErrorKind.PROVIDER, True, True),
        (StatusError(503), ErrorKind.PROVIDER, True, True),
        (StatusError(404), ErrorKind.MODEL_NOT_FOUND, False, True),
        (StatusError(400), ErrorKind.BAD_REQUEST, False, True),
        (TimeoutError(), ErrorKind.TIMEOUT, True, True),
        (ValueError("bug"), ErrorKind.INTERNAL, False, False),
    ],
)
def test_classify(exc: Exception, kind: ErrorKind, retryable: bool, fallback: bool) -> None:
    verdict = classify(exc)
    assert (verdict.kind, verdict.retryable, verdict.try_fallback) == (kind, retryable, fallback)


def test_classify_litellm_exceptions() -> None:
    from litellm import exceptions as lx

    ctx = lx.ContextWindowExceededError(message="too long", model="m", llm_provider="openrouter")
    assert classify(ctx).kind is ErrorKind.CONTEXT_TOO_LONG
    auth = lx.AuthenticationError(message="bad key", llm_provider="openrouter", model="m")
    assert classify(auth).kind is ErrorKind.AUTH
    limited = lx.RateLimitError(message="slow down", llm_provider="openrouter", model="m")
    assert classify(limited).kind is ErrorKind.RATE_LIMIT
    timeout = lx.Timeout(message="t", model="m", llm_provider="openrouter")
    assert classify(timeout).kind is ErrorKind.TIMEOUT
    midstream = lx.MidStreamFallbackError(message="cut", model="m", llm_provider="openrouter")
    assert classify(midstream).kind is ErrorKind.PROVIDER
