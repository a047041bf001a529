"""Reasoning: the CPU a streamed answer costs when the model reasons first, a token a chunk.

A fake OpenRouter in a thread of its own (its own event loop) streams a 500-token answer one
token a chunk, alone or after 500 reasoning tokens one a chunk (``delta.reasoning`` with its
``reasoning_details`` piece, as OpenRouter sends them). The client side is the Agents SDK's
``Runner.run_streamed`` over each model client (``BOT_MODEL_CLIENT``), consumed fully, the
way the core does. The figure is the CPU of the client's thread (``time.thread_time``): the
fake's work is not in it. litellm hands some logging to other threads, so its figure is a floor.

    python -m bench.reasoning [--answers 30] [--tokens 500] [--client openrouter,litellm]
                              [--delay 0.005]

``--delay`` spaces the chunks as a model does (a token every few ms): then the 100 ms
coalescing window, not the chunk count, decides how often the SDK's stream handler runs.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from bot.settings import prepare_library_environment

prepare_library_environment()

from agents import Agent, ModelSettings, Runner, set_tracing_disabled  # noqa: E402
from agents.models.interface import Model  # noqa: E402

from bot.openrouter_model import OpenRouterModel  # noqa: E402
from tests.fakes.openrouter import FakeOpenRouter, Reasoning, TextReply  # noqa: E402

MODEL = "openrouter/google/gemini-3-pro-preview"


class FakeInAThread:
    """The fake on a loop of its own thread, so its CPU is not the client's."""

    def __init__(self) -> None:
        self.fake = FakeOpenRouter(record_bodies=False)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> FakeOpenRouter:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.fake.start(), self._loop).result()
        return self.fake

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    def enqueue(self, reply: TextReply) -> None:
        self._loop.call_soon_threadsafe(self.fake.enqueue, reply)

    def enqueue_many(self, *replies: Any) -> None:
        self._loop.call_soon_threadsafe(lambda: self.fake.enqueue(*replies))


def model_for(client: str, fake: FakeOpenRouter) -> Model:
    if client == "openrouter":
        return OpenRouterModel(MODEL, base_url=fake.base_url, api_key=fake.api_key)
    from agents.extensions.models.litellm_model import LitellmModel

    from bot.cost_callback import configure_litellm

    configure_litellm()
    return LitellmModel(model=MODEL, base_url=fake.base_url, api_key=fake.api_key)


def enqueue_made(server: FakeInAThread, make: Callable[[], TextReply]) -> None:
    server.enqueue(make())


async def answer_cpu(agent: Agent[Any], enqueue: Callable[[], None]) -> tuple[float, int]:
    """CPU seconds of one streamed answer on this thread, and its text's length."""
    enqueue()
    start = time.thread_time()
    run = Runner.run_streamed(agent, "Why is the sky blue?")
    text = 0
    async for event in run.stream_events():
        if event.type == "raw_response_event" and event.data.type == "response.output_text.delta":
            text += len(event.data.delta)
    return time.thread_time() - start, text


async def measure(client: str, server: FakeInAThread, args: argparse.Namespace) -> None:
    words = "".join(f"w{i:03d} " for i in range(args.tokens))
    thought = "".join(f"t{i:03d} " for i in range(args.tokens))
    model = model_for(client, server.fake)
    agent = Agent(name="b", model=model, model_settings=ModelSettings(include_usage=True))
    replies: dict[str, Callable[[], TextReply]] = {
        "answer only": lambda: TextReply(words, chunks=args.tokens, delay=args.delay),
        "reasoning first": lambda: TextReply(
            words,
            chunks=args.tokens,
            delay=args.delay,
            reasoning=Reasoning(thought, chunks=args.tokens, tokens=args.tokens, encrypted=False),
        ),
    }
    figures: dict[str, list[float]] = {name: [] for name in replies}
    for _ in range(args.warmup):
        await answer_cpu(agent, lambda: server.enqueue(replies["reasoning first"]()))
    for _ in range(args.answers):  # interleaved: a busy moment slows both alike
        for name, make in replies.items():
            cpu, text = await answer_cpu(agent, functools.partial(enqueue_made, server, make))
            assert text == len(words), "the answer's text must arrive whole, and only it"
            figures[name].append(cpu)
    await model.close()
    for name, values in figures.items():
        print(
            f"{client:10} {name:16} median {statistics.median(values) * 1000:6.1f} ms CPU "
            f"per {args.tokens}-token answer (p90 "
            f"{statistics.quantiles(values, n=10)[-1] * 1000:.1f} ms, {len(values)} answers)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument("--client", default="openrouter,litellm")
    parser.add_argument(
        "--delay", type=float, default=0.0, help="seconds between chunks (0: back to back)"
    )
    args = parser.parse_args()
    set_tracing_disabled(True)
    server = FakeInAThread()
    with server:
        for client in [c.strip() for c in args.client.split(",") if c.strip()]:
            asyncio.run(measure(client, server, args))


if __name__ == "__main__":
    main()
