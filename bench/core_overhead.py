"""Per-turn overhead: a full turn through the core versus a bare ``Runner.run``, same fake model.

One instant FakeOpenRouter on 127.0.0.1 (latency 0, echo answers) serves every figure:

- bare ``Runner.run(Agent(model=LitellmModel(...)), "hello")``, and bare ``Runner.run_streamed``
  consumed fully (the core streams);
- the core: ``Core.handle(event, reply)`` built with ``open_services`` + ``build_core`` over a
  SQLite file (WAL), a fresh event per turn, 50 conversations in rotation so history grows
  modestly, a reply that does nothing; LOG_LEVEL=WARNING (the headline) and INFO (to /dev/null);
- for attribution: the core's own agent and model (instructions, tools, ResilientModel,
  include_usage) streamed with no store, history or token estimates; and the bare runs with the
  core's litellm cost callback installed (``build_core`` installs it process-wide; the bare
  figures are taken with litellm's callback lists as they were before, swapped per block).

Other processes share the 2 cores, so the figures are taken in interleaved blocks (every figure
gets a block of ``--block`` turns per round, in rotating order) and reported as medians: a busy
minute slows every figure alike instead of whichever ran then. Then a breakdown of the core's
wall time (store calls, the token estimates, the Runner, the wait for litellm's cost callback)
and a cProfile of each path, CPU per turn grouped by package.

    python -m bench.core_overhead [--turns 300] [--warmup 20] [--block 10] [--no-breakdown]

Target: the core's median at most 1.5x the bare run's (a bare run measured 5.5 ms here).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import functools
import gc
import logging
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bot.settings import Settings, prepare_library_environment

prepare_library_environment()

import litellm  # noqa: E402
from agents import Agent, RunConfig, Runner, set_tracing_disabled  # noqa: E402
from agents.extensions.models.litellm_model import LitellmModel  # noqa: E402

import bot.turn  # noqa: E402
import bot.turn_stats  # noqa: E402
from bench._shared import GcWatch, StatsTable, percentile  # noqa: E402
from bot.agent import AgentStack  # noqa: E402
from bot.context import TurnContext  # noqa: E402
from bot.core import Core  # noqa: E402
from bot.feedback import FinishedAnswer  # noqa: E402
from bot.logs import setup_logging  # noqa: E402
from bot.reply import (  # noqa: E402
    ApprovalRequest,
    Step,
    Verdict,
)
from bot.results import Outcome  # noqa: E402
from bot.wiring import Services, build_core, load_stack, open_services  # noqa: E402
from tests.fakes.openrouter import FakeOpenRouter  # noqa: E402
from tests.helpers import message  # noqa: E402

TARGET_RATIO = 1.5
REFERENCE_BARE_MS = 5.5

Turn = Callable[[int], Awaitable[None]]

# litellm's global callback registries; ``build_core`` adds the usage logger to them.
_CALLBACK_LISTS = (
    "callbacks",
    "input_callback",
    "success_callback",
    "failure_callback",
    "_async_input_callback",
    "_async_success_callback",
    "_async_failure_callback",
)
CallbackState = dict[str, list[Any]]


def callback_state() -> CallbackState:
    return {name: list(getattr(litellm, name)) for name in _CALLBACK_LISTS}


def set_callback_state(state: CallbackState) -> None:
    for name, values in state.items():
        getattr(litellm, name)[:] = values  # in place: litellm's modules hold these lists


# --------------------------------------------------------------------------- figures


@dataclass
class Variant:
    name: str
    turn: Turn
    setup: Callable[[], None]
    """Run before each of its blocks (litellm callbacks, log level)."""
    samples_ms: list[float] = field(default_factory=list)
    profile: cProfile.Profile | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms)

    def line(self) -> str:
        s = self.samples_ms
        return (
            f"{self.name:<50} median {self.median:6.2f} ms  p90 {percentile(s, 90):6.2f} ms"
            f"  p99 {percentile(s, 99):6.2f} ms  max {max(s):6.1f} ms  (n={len(s)})"
        )


def full_collection_ms() -> tuple[float, int]:
    """How long one full collection takes now, and how many objects it has to walk."""
    tracked = len(gc.get_objects())
    started = time.perf_counter()
    gc.collect()
    return (time.perf_counter() - started) * 1000, tracked


async def measure_interleaved(
    variants: list[Variant], *, turns: int, warmup: int, block: int, profile: bool = False
) -> None:
    """``turns`` timed turns of every variant, in rounds of ``block`` turns each, rotating."""
    for variant in variants:
        variant.setup()
        for i in range(warmup):
            await variant.turn(-1 - i)
        if profile:
            variant.profile = cProfile.Profile()
    done = 0
    rounds = 0
    while done < turns:
        count = min(block, turns - done)
        start = rounds % len(variants)
        for variant in variants[start:] + variants[:start]:
            variant.setup()
            for i in range(done, done + count):
                if variant.profile is not None:
                    variant.profile.enable()
                started = time.perf_counter()
                await variant.turn(i)
                elapsed = time.perf_counter() - started
                if variant.profile is not None:
                    variant.profile.disable()
                variant.samples_ms.append(elapsed * 1000)
        done += count
        rounds += 1


# --------------------------------------------------------------------------- turns


class NullReply:
    """Implements ``bot.reply.Reply`` and does nothing, so only the core is measured."""

    async def start(self) -> None:
        pass

    async def stream(self, delta: str) -> None:
        pass

    async def progress(self, step: Step) -> None:
        pass

    async def notice(self, text: str) -> None:
        pass

    async def finish(self, answer: FinishedAnswer | None = None, sources: Any = ()) -> None:
        pass

    async def fail(self, message: str) -> None:
        pass

    async def refuse(self, message: str) -> None:
        pass

    async def ask_approval(self, request: ApprovalRequest) -> bool:
        return False  # the bench's tools need none

    async def approval_closed(
        self, request: ApprovalRequest, verdict: Verdict, by: str | None
    ) -> None:
        pass


def bare_agent(fake: FakeOpenRouter, model: str) -> Agent[Any]:
    return Agent(
        name="bare",
        model=LitellmModel(model=model, base_url=fake.base_url, api_key=fake.api_key),
    )


def bare_run_turn(agent: Agent[Any]) -> Turn:
    async def turn(_: int) -> None:
        result = await Runner.run(agent, "hello")
        if not str(result.final_output).startswith("echo:"):
            raise RuntimeError(f"unexpected answer {result.final_output!r}")

    return turn


def bare_streamed_turn(agent: Agent[Any]) -> Turn:
    async def turn(_: int) -> None:
        run = Runner.run_streamed(agent, "hello")
        async for _event in run.stream_events():
            pass
        if not str(run.final_output).startswith("echo:"):
            raise RuntimeError(f"unexpected answer {run.final_output!r}")

    return turn


def core_agent_turn(stack: AgentStack, services: Services) -> Turn:
    """The core's Runner call (its agent, model, run config, from an agent stack built as the
    core's is) without store, history or tokens."""
    settings = services.settings

    async def turn(_: int) -> None:
        context = TurnContext(tools=services.tool_config(), conversation="bare", user_id="u")
        run = Runner.run_streamed(
            stack.agent,
            [{"role": "user", "content": "hello"}],
            context=context,
            max_turns=settings.max_tool_rounds,
            run_config=RunConfig(model=stack.model(settings.bot_model), tracing_disabled=True),
        )
        async for _event in run.stream_events():
            pass
        if not str(run.final_output).startswith("echo:"):
            raise RuntimeError(f"unexpected answer {run.final_output!r}")

    return turn


def core_turn(core: Core, phase: str, conversations: int) -> Turn:
    """A fresh event per turn; conversation ``i % conversations`` of this phase's own set."""
    reply = NullReply()

    async def turn(i: int) -> None:
        event = message("hello", conversation=f"bench:T1:{phase}:{i % conversations}")
        result = await core.handle(event, reply)
        if result.outcome is not Outcome.ANSWERED:
            raise RuntimeError(f"core turn {result.outcome}: {result.error}")

    return turn


# --------------------------------------------------------------------------- breakdown


@dataclass
class Breakdown:
    """Wall time per category, summed within a turn; one list entry per turn."""

    per_turn: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    current: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add(self, category: str, seconds: float) -> None:
        self.current[category] += seconds

    def end_turn(self, total_s: float) -> None:
        accounted = 0.0
        for category, seconds in self.current.items():
            self.per_turn[category].append(seconds * 1000)
            accounted += seconds
        self.per_turn["TOTAL"].append(total_s * 1000)
        self.per_turn["rest of the core (not in the above)"].append((total_s - accounted) * 1000)
        self.current = defaultdict(float)


def _timed(breakdown: Breakdown, category: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    if asyncio.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                breakdown.add(category, time.perf_counter() - started)

        return timed_async

    @functools.wraps(fn)
    def timed_sync(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            breakdown.add(category, time.perf_counter() - started)

    return timed_sync


class _TimedRunner:
    """Stands in for ``bot.turn.Runner``: times run_streamed from the call to the stream's end."""

    def __init__(self, breakdown: Breakdown) -> None:
        self._breakdown = breakdown

    def run_streamed(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        run = Runner.run_streamed(*args, **kwargs)
        inner = run.stream_events
        breakdown = self._breakdown

        async def stream_events() -> AsyncIterator[Any]:
            try:
                async for event in inner():
                    yield event
            finally:
                elapsed = time.perf_counter() - started
                breakdown.add("Runner.run_streamed, call to stream end", elapsed)

        run.stream_events = stream_events  # type: ignore[method-assign]
        return run


_STORE_METHODS = ("claim_event", "get_channel_setting", "load_history", "complete_turn")
_ESTIMATES = ("estimate_tokens", "estimate_tokens_off_loop")
_RUNNER = "Runner"


@contextlib.contextmanager
def instrumented(core: Core, breakdown: Breakdown) -> Iterator[None]:
    """Time the store's methods, estimate_tokens, the Runner and wait_for_costs (no code edits:
    instance and module attributes are swapped for the duration)."""
    store = core.store
    for name in _STORE_METHODS:
        setattr(store, name, _timed(breakdown, f"store.{name}", getattr(store, name)))
    # Whichever token estimate the core imports (estimate_tokens, or its off-loop variant).
    estimates = {name: getattr(bot.turn, name) for name in _ESTIMATES if hasattr(bot.turn, name)}
    for name, fn in estimates.items():
        setattr(bot.turn, name, _timed(breakdown, f"{name} (user + new items)", fn))
    real_wait = bot.turn_stats.TurnStats.wait_for_costs
    setattr(bot.turn, _RUNNER, _TimedRunner(breakdown))
    bot.turn_stats.TurnStats.wait_for_costs = _timed(  # type: ignore[method-assign]
        breakdown, "TurnStats.wait_for_costs (litellm cost callback)", real_wait
    )
    try:
        yield
    finally:
        for name in _STORE_METHODS:
            delattr(store, name)
        for name, fn in estimates.items():
            setattr(bot.turn, name, fn)
        setattr(bot.turn, _RUNNER, Runner)
        bot.turn_stats.TurnStats.wait_for_costs = real_wait  # type: ignore[method-assign]


async def breakdown_phase(core: Core, *, turns: int, warmup: int, conversations: int) -> None:
    breakdown = Breakdown()
    turn = core_turn(core, "breakdown", conversations)
    for i in range(warmup):
        await turn(-1 - i)
    with instrumented(core, breakdown):
        for i in range(turns):
            breakdown.current = defaultdict(float)
            started = time.perf_counter()
            await turn(i)
            breakdown.end_turn(time.perf_counter() - started)
    total = statistics.median(breakdown.per_turn.pop("TOTAL"))
    print(
        f"\nWhere a core turn's wall time goes ({turns} instrumented turns, per-category medians):"
    )
    rows = sorted(breakdown.per_turn.items(), key=lambda kv: -statistics.median(kv[1]))
    for category, values in rows:
        med = statistics.median(values)
        print(
            f"  {category:<50} {med:6.3f} ms  ({100 * med / total:4.1f}%)"
            f"  p99 {percentile(values, 99):6.3f} ms"
        )
    print(f"  {'core.handle, total':<50} {total:6.3f} ms")


# --------------------------------------------------------------------------- profiles

_GROUPS: tuple[tuple[str, str], ...] = (
    ("/tests/fakes/", "fake OpenRouter (same process)"),
    ("/storage/", "storage (project)"),
    ("/bot/", "bot (project)"),
    ("/litellm/", "litellm"),
    ("/agents/", "agents SDK"),
    ("/openai/", "openai"),
    ("/pydantic", "pydantic"),
    ("/aiohttp/", "aiohttp"),
    ("/httpx/", "httpx"),
    ("/httpcore/", "httpcore"),
    ("/aiosqlite/", "aiosqlite"),
    ("/tiktoken", "tiktoken"),
    ("/asyncio/", "asyncio"),
    ("/logging/", "logging"),
    ("/json/", "json"),
)
IDLE = "idle in epoll (SQLite thread, sockets)"


def _group(filename: str, funcname: str) -> str:
    if filename == "~":
        return IDLE if "epoll" in funcname else "builtins / C code"
    for needle, group in _GROUPS:
        if needle in filename:
            return group
    return "other Python"


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/work/main/", "/lib/python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def _table(profile: cProfile.Profile) -> StatsTable:
    table: StatsTable = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    return table


def by_package(profile: cProfile.Profile, turns: int) -> dict[str, float]:
    groups: dict[str, float] = defaultdict(float)
    for (filename, _line, funcname), (_cc, _nc, tottime, _ct, _callers) in _table(profile).items():
        groups[_group(filename, funcname)] += tottime * 1000 / turns
    return groups


def print_profiles(variants: list[Variant], *, turns: int, top: int) -> None:
    tables = {v.name: by_package(v.profile, turns) for v in variants if v.profile is not None}
    names = list(tables)
    print(f"\ncProfile, self time per turn by package (ms; {turns} profiled turns each):")
    header = "".join(f"{n[:22]:>24}" for n in names)
    print(f"  {'package':<40}{header}")
    groups = sorted({g for t in tables.values() for g in t}, key=lambda g: -tables[names[-1]][g])
    for group in groups:
        cells = "".join(f"{tables[n].get(group, 0.0):24.2f}" for n in names)
        print(f"  {group:<40}{cells}")
    totals = "".join(f"{sum(tables[n].values()):24.2f}" for n in names)
    print(f"  {'sum (incl. idle)':<40}{totals}")

    core = variants[-1]
    if core.profile is None or not top:
        return
    table = _table(core.profile)
    print(f"\n  {core.name}: top {top} functions by self time (ms per turn):")
    for (filename, line, funcname), (_cc, ncalls, tottime, cumtime, _c) in sorted(
        table.items(), key=lambda kv: -kv[1][2]
    )[:top]:
        print(
            f"    self {tottime * 1000 / turns:6.3f}  cum {cumtime * 1000 / turns:6.3f}"
            f"  calls/turn {ncalls / turns:7.1f}  {_short(filename)}:{line}({funcname})"
        )
    print(f"  {core.name}: project functions by cumulative CPU (ms per turn, excl. waits):")
    own = [
        (key, value)
        for key, value in table.items()
        if ("/bot/" in key[0] or "/storage/" in key[0]) and value[3] * 1000 / turns >= 0.02
    ]
    for (filename, line, funcname), (_cc, ncalls, _tt, cumtime, _c) in sorted(
        own, key=lambda kv: -kv[1][3]
    )[:top]:
        print(
            f"    cum {cumtime * 1000 / turns:6.3f}  calls/turn {ncalls / turns:5.1f}"
            f"  {_short(filename)}:{line}({funcname})"
        )


# --------------------------------------------------------------------------- main


def bench_settings(tmp: Path, fake: FakeOpenRouter) -> Settings:
    """Like tests.conftest.make_settings: no .env, the database under tmp, loopback URLs only."""
    values: dict[str, Any] = {
        "OPENROUTER_API_KEY": fake.api_key,
        "OPENROUTER_BASE_URL": fake.base_url,
        "DATABASE_URL": f"sqlite:///{tmp / 'bot.db'}",
        "OPEN_METEO_URL": "http://127.0.0.1:9",
        "OPEN_METEO_GEOCODING_URL": "http://127.0.0.1:9",
        "BOT_RETRY_BACKOFF": 0,
        "LOG_LEVEL": "WARNING",
        "BOT_USER_RATE_LIMIT": 0,  # one simulated user sends every turn
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def logging_to(level: str, settings: Settings, stream: IO[str]) -> Callable[[], None]:
    """The app's logging setup at ``level``, writing to ``stream`` (formatting is still paid)."""

    def setup() -> None:
        setup_logging(level, settings.secrets)
        handler = logging.getLogger().handlers[0]
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(stream)

    return setup


def both(*steps: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        for step in steps:
            step()

    return run


@dataclass
class Rig:
    """Everything the figures share: one fake, one core, the bare agent, the switches."""

    core: Core
    stack: AgentStack
    """The core's agent and models, built apart (the core keeps its own to itself)."""
    services: Services
    agent: Agent[Any]
    callbacks_off: Callable[[], None]
    """litellm's callback lists as they were before ``build_core`` (for the bare runs)."""
    callbacks_on: Callable[[], None]
    warning_logs: Callable[[], None]
    info_logs: Callable[[], None]
    conversations: int


async def headline(rig: Rig, args: argparse.Namespace) -> None:
    off, on = rig.callbacks_off, rig.callbacks_on
    core_on = both(on, rig.warning_logs)
    bare_run = Variant("bare Runner.run", bare_run_turn(rig.agent), off)
    bare_streamed = Variant(
        "bare Runner.run_streamed (consumed)", bare_streamed_turn(rig.agent), off
    )
    core = Variant(
        "core.handle (LOG_LEVEL=WARNING)",
        core_turn(rig.core, "warning", rig.conversations),
        core_on,
    )
    core_info = Variant(
        "core.handle (LOG_LEVEL=INFO, to /dev/null)",
        core_turn(rig.core, "info", rig.conversations),
        both(on, rig.info_logs),
    )
    attribution = [
        Variant(
            "core's agent+model streamed, no store/history",
            core_agent_turn(rig.stack, rig.services),
            core_on,
        ),
        Variant("bare Runner.run, core's litellm callback on", bare_run_turn(rig.agent), on),
        Variant("bare run_streamed, core's litellm callback on", bare_streamed_turn(rig.agent), on),
    ]
    gc_watch = GcWatch()
    with gc_watch.watching():
        await measure_interleaved(
            [bare_run, bare_streamed, core, core_info, *attribution],
            turns=args.turns,
            warmup=args.warmup,
            block=args.block,
        )
    for variant in (bare_run, bare_streamed, core, core_info):
        print(variant.line())
    print("attribution:")
    for variant in attribution:
        print(variant.line())

    run_ratio = core.median / bare_run.median
    verdict = "met" if run_ratio <= TARGET_RATIO else "NOT met"
    ratios = (
        ("core / bare Runner.run (medians)", run_ratio, ""),
        ("core / bare Runner.run_streamed (medians)", core.median / bare_streamed.median, ""),
        ("core with INFO logs / bare Runner.run", core_info.median / bare_run.median, ""),
        (
            "bare run_streamed / bare Runner.run",
            bare_streamed.median / bare_run.median,
            " (streaming alone, which the core does)",
        ),
    )
    print()
    for label, ratio, note in ratios:
        print(f"{label + ':':<44} {ratio:.2f}x{note}")
    print(
        f"target: core median <= {TARGET_RATIO}x the bare Runner.run median (a bare run measured"
        f" {REFERENCE_BARE_MS} ms here): {verdict}"
        f" ({core.median:.2f} ms vs {bare_run.median:.2f} ms)"
    )
    pauses = ", ".join(f"{ms:.0f} ms" for ms in gc_watch.full_ms) or "none"
    print(
        f"full GC collections while measuring (warm-ups included; a timed turn that met one has"
        f" it in its max): {pauses}"
    )


async def where_time_goes(rig: Rig, args: argparse.Namespace) -> None:
    rig.warning_logs()
    rig.callbacks_on()
    await breakdown_phase(
        rig.core, turns=args.turns, warmup=args.warmup, conversations=rig.conversations
    )
    core_on = both(rig.callbacks_on, rig.warning_logs)
    profiled = [
        Variant("bare run_streamed", bare_streamed_turn(rig.agent), rig.callbacks_off),
        Variant("core's agent, no store", core_agent_turn(rig.stack, rig.services), core_on),
        Variant("core.handle", core_turn(rig.core, "profile", rig.conversations), core_on),
    ]
    profile_turns = max(50, args.turns // 2)
    await measure_interleaved(
        profiled, turns=profile_turns, warmup=args.warmup, block=args.block, profile=True
    )
    print_profiles(profiled, turns=profile_turns, top=args.top)


async def run(args: argparse.Namespace) -> None:
    set_tracing_disabled(True)  # as the core does (BOT_TRACING is off by default)
    with (
        tempfile.TemporaryDirectory(prefix="bench-core-") as tmp_dir,
        open(os.devnull, "w") as devnull,  # noqa: ASYNC230 (opened once, before any timing)
    ):
        async with FakeOpenRouter(latency=0.0, record_bodies=False) as fake:
            settings = bench_settings(Path(tmp_dir), fake)
            warning_logs = logging_to("WARNING", settings, devnull)
            warning_logs()
            print(
                f"model {settings.bot_model} on a fake OpenRouter at {fake.base_url} (instant);"
                f" SQLite file {settings.database_url.removeprefix('sqlite:///')} (WAL);"
                f" Python {sys.version.split()[0]}"
            )
            print(
                f"{args.turns} timed turns per figure after {args.warmup} warm-up turns,"
                f" interleaved in blocks of {args.block}; core conversations rotate over"
                f" {args.conversations} keys"
            )
            agent = bare_agent(fake, settings.bot_model)
            without_callback = callback_state()
            async with open_services(settings) as services:
                core = await build_core(services)
                stack = await load_stack(services)
                with_callback = callback_state()
                rig = Rig(
                    core=core,
                    stack=stack,
                    services=services,
                    agent=agent,
                    callbacks_off=functools.partial(set_callback_state, without_callback),
                    callbacks_on=functools.partial(set_callback_state, with_callback),
                    warning_logs=warning_logs,
                    info_logs=logging_to("INFO", settings, devnull),
                    conversations=args.conversations,
                )
                try:
                    await headline(rig, args)
                    if not args.no_breakdown:
                        await where_time_goes(rig, args)
                    full_ms, tracked = full_collection_ms()
                    print(
                        f"\none full GC collection in this process now: {full_ms:.0f} ms over"
                        f" {tracked:,} tracked objects (mostly the imported agents/litellm stack);"
                        " every conversation waits while it runs"
                    )
                finally:
                    set_callback_state(with_callback)
                    await stack.close()
                    await core.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--turns", type=int, default=300, help="timed turns per figure")
    parser.add_argument("--warmup", type=int, default=20, help="untimed turns before each figure")
    parser.add_argument("--block", type=int, default=10, help="turns per figure per round")
    parser.add_argument("--conversations", type=int, default=50, help="conversation keys in turn")
    parser.add_argument("--top", type=int, default=15, help="functions listed from the profile")
    parser.add_argument("--no-breakdown", action="store_true", help="skip breakdown and profiles")
    args = parser.parse_args()
    if args.turns < 10 or args.block < 1:
        parser.error("--turns must be at least 10 and --block at least 1")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
