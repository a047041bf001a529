"""A model that retries, times out and falls back: the one place model-call policy lives.

``ResilientModel`` wraps an ordered chain of models (the primary, then the fallbacks). For each
model it makes up to ``1 + retries`` attempts on retryable failures (429, 5xx, timeouts) with
exponential backoff (or the provider's ``Retry-After``), then moves to the next model when the
failure is one another model may not have. 401 stops at once. A streamed answer that already
showed text is never retried (the user would see it twice): the error goes up and the core keeps
the partial answer and says it was cut.

Doing this here rather than with the SDK's ``ModelRetrySettings`` keeps retries and fallbacks in
one loop with one order ("primary N times, then the next"), which the SDK's per-model retry
cannot express.

A plain response is run as a stream of one item, so the one retry loop serves both calls the
SDK makes (``get_response`` and ``stream_response``); for it the idle timeout is the call's.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from agents import exceptions as sdk_exceptions
from agents.models.interface import Model

from bot.errors import classify
from bot.turn_stats import TURN_STATS, TurnStats

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Call = Callable[[Model], AsyncIterator[Any]]
"""One attempt at one model: the events it streams (a plain response is one item)."""

# Events a stream emits before any content: retrying after only these shows the user nothing twice.
_PRELUDE_EVENTS = frozenset({"response.created", "response.in_progress"})
_MAX_RETRY_AFTER_S = 30.0


def _deliver_shown_events_first(exc: BaseException) -> None:
    """When a call fails mid-answer, the SDK drops the stream events still queued for the
    consumer unless the error is marked to drain them first. A coalesced chunk of text and the
    error often arrive in the same read, so without this the user would lose text the model
    sent. (The SDK marks its own errors so; the marker is not public, hence the lookup.)"""
    mark = getattr(sdk_exceptions, "_mark_error_to_drain_stream_events", None)
    if mark is not None:
        mark(exc)
    else:  # pragma: no cover - a newer SDK: the mid-stream tests say whether text is kept
        log.warning("the Agents SDK no longer drains stream events before a model error")


def _stats() -> TurnStats:
    stats = TURN_STATS.get()
    return stats if stats is not None else TurnStats()


class ResilientModel(Model):
    def __init__(
        self,
        chain: Sequence[tuple[str, Model]],
        *,
        retries: int = 2,
        backoff_s: float = 1.0,
        timeout_s: float = 90.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not chain:
            raise ValueError("a model chain needs at least one model")
        self.chain = list(chain)
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._sleep = sleep

    async def get_response(self, *args: Any, **kwargs: Any) -> Any:
        async def respond(model: Model) -> AsyncIterator[Any]:
            yield await model.get_response(*args, **kwargs)

        # Drained, not left at its one item: the loop records the call when the stream ends.
        (response,) = [item async for item in self._with_retries(respond)]
        return response

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        return self._with_retries(lambda model: model.stream_response(*args, **kwargs))

    async def _with_retries(self, call: Call) -> AsyncIterator[Any]:
        """``call`` on each model of the chain in turn, retried, until one gets to its end."""
        stats = _stats()
        for index, (name, model) in enumerate(self.chain):
            if index:
                stats.fallbacks += 1
            for attempt in range(self.retries + 1):
                stats.attempts += 1
                shown = False
                began = time.perf_counter()
                stream = call(model)
                try:
                    while True:
                        # Idle timeout: the first byte and every later chunk must come in time.
                        async with asyncio.timeout(self.timeout_s):
                            try:
                                event = await anext(stream)
                            except StopAsyncIteration:
                                break
                        if getattr(event, "type", None) not in _PRELUDE_EVENTS:
                            shown = True
                        yield event
                except Exception as exc:
                    stats.calls.append((time.perf_counter() - began, False))
                    if shown:
                        _deliver_shown_events_first(exc)
                        raise
                    has_next = index < len(self.chain) - 1
                    if await self._next_step(name, attempt, exc, has_next=has_next):
                        continue
                    break
                finally:
                    aclose = getattr(stream, "aclose", None)
                    if aclose is not None:
                        await aclose()
                stats.calls.append((time.perf_counter() - began, True))
                stats.model = name
                return
        # _next_step retries only while attempts remain and moves on only to a model that
        # exists; every other failure it re-raises. So the loops never run out.
        raise AssertionError("unreachable: the last attempt either succeeded or raised")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), _MAX_RETRY_AFTER_S)
        base = self.backoff_s * float(2**attempt)
        return base + random.uniform(0, base / 2)

    async def _next_step(self, name: str, attempt: int, exc: Exception, *, has_next: bool) -> bool:
        """After a failed attempt: True to retry the same model, False to move on; or re-raise."""
        verdict = classify(exc)
        stats = _stats()
        stats.errors.append(verdict.kind.value)
        if verdict.retryable and attempt < self.retries:
            delay = self._delay(attempt, verdict.retry_after)
            log.warning(
                "model call failed, retrying",
                extra={
                    "model": name,
                    "kind": verdict.kind.value,
                    "attempt": attempt + 1,
                    "delay_s": round(delay, 2),
                },
            )
            await self._sleep(delay)
            return True
        if verdict.try_fallback and has_next:
            log.warning(
                "model failed, trying the next model",
                extra={"model": name, "kind": verdict.kind.value},
            )
            return False
        raise exc

    async def close(self) -> None:
        for _, model in self.chain:
            await model.close()
