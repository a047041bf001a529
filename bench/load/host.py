"""The bot process of ``bench.load``: the bot as ``python -m bot`` runs it, measured from inside.

The real core (``open_services`` + ``build_core``, a SQLite file in a temporary directory,
LOG_LEVEL=WARNING) with the real ``SlackAdapter`` (HTTP mode) and/or ``DiscordAdapter``
(discord.py over the fake gateway) on one event loop, as ``bot/__main__.py`` ``_serve`` runs
them. The world process says which platforms and settings it needs, then when to measure
(``bench.load.protocol``). Per block this process measures itself: CPU
(``time.process_time()``, all its threads), RSS, event-loop stalls, full GCs, the adapters'
outcomes, discord.py's 429 retries, the core's peak turns running and waiting.

No fake is imported here: the RSS and CPU figures are the bot's (and this small driver's).
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import _shared
from bench.load.figures import BlockFigures, SummaryRow
from bench.load.protocol import World

if TYPE_CHECKING:
    from adapters.discord import DiscordAdapter
    from adapters.slack import SlackAdapter
    from bot.core import Core
    from bot.settings import Settings

JSONDict = dict[str, Any]


class LogCounter(logging.Filter):
    """Counts the bot's records of WARNING and above by level, logger and message; lets ERROR
    and above through to stderr and holds the warnings back (a retried 5xx logs one each)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[tuple[str, str, str]] = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            self.counts[(record.levelname, record.name, str(record.msg)[:90])] += 1
        return record.levelno >= logging.ERROR

    def lines(self, top: int = 12) -> list[str]:
        if not self.counts:
            return ["bot log records (WARNING+): none"]
        ranked = sorted(self.counts.items(), key=lambda kv: -kv[1])
        return [f"bot log records (WARNING+), {sum(self.counts.values())} in all:"] + [
            f"  {n:6d} x {level} {name}: {msg}" for (level, name, msg), n in ranked[:top]
        ]


class DiscordWarnings(logging.Filter):
    """Counts (and hides) two discord.py warnings:

    - "We are being rate limited" (discord.http): a 429 it sleeps out and retries;
    - "Can't keep up, ... websocket is N s behind" (discord.gateway): a false alarm against a
      fake on the loopback. discord.py's keep-alive thread notes the time of a heartbeat only
      after the loop has sent it (discord/gateway.py, ``KeepAliveHandler.run``), and an
      instant HEARTBEAT_ACK can be handled before that, so ``ack()`` measures from the
      previous heartbeat: one interval (41.25 s here).
    """

    def __init__(self) -> None:
        super().__init__()
        self.rate_limited = 0
        self.behind = 0

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("We are being rate limited"):
            self.rate_limited += 1
            return False
        if message.startswith("Can't keep up"):
            self.behind += 1
            return False
        return True


class Outcomes(Counter[str]):
    """An adapter's ``outcomes`` counter that says when it changes (no polling loop whose CPU
    would count in the figures)."""

    def __init__(self, initial: Counter[str], changed: asyncio.Event) -> None:
        self.changed = changed
        super().__init__(initial)

    def __setitem__(self, key: str, value: int) -> None:
        super().__setitem__(key, value)
        self.changed.set()


@dataclass
class Bot:
    """The bot under test: one core, the adapters the world asked for."""

    settings: Settings
    core: Core
    tmp: Path
    slack: SlackAdapter | None = None
    discord: DiscordAdapter | None = None
    logs: LogCounter = field(default_factory=LogCounter)
    warnings: DiscordWarnings = field(default_factory=DiscordWarnings)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set whenever an adapter counts an outcome."""

    @property
    def slack_url(self) -> str | None:
        if self.slack is None:
            return None
        return f"http://127.0.0.1:{self.slack.port}/slack/events"

    @property
    def database(self) -> Path:
        """The SQLite file of the bench's default store (the world may name another)."""
        return self.tmp / "bot.db"

    @property
    def store(self) -> str:
        """Where the store is, as it may be shown (no password)."""
        from storage.urls import redact_url

        return redact_url(self.settings.database_url)

    def outcomes(self) -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = {}
        if self.slack is not None:
            out["slack"] = Counter(self.slack.outcomes)
        if self.discord is not None:
            out["discord"] = Counter(self.discord.outcomes)
        return out

    def model_classes(self) -> str:
        """The classes that make the model calls, built as the core builds them: what the
        setting actually selected (a client that is not wired yet shows up as the one that
        is)."""
        from bot.agent import base_models, resilient_models

        model = resilient_models(self.settings, base_models(self.settings))(self.settings.bot_model)
        chain = getattr(model, "chain", None)  # ResilientModel: [(name, model), ...]
        inner = [m for _, m in chain] if isinstance(chain, list) else [model]
        return ", ".join(dict.fromkeys(type(m).__name__ for m in inner)) + " underneath"

    def describe(self) -> str:
        s = self.settings
        parts = ["bot (this process): one core"]
        if self.slack is not None:
            parts.append(
                f"Slack (HTTP mode on :{self.slack.port}, native streaming"
                f" {'on' if s.slack_native_streaming else 'off'}, SLACK_STREAM_INTERVAL"
                f" {s.slack_stream_interval_s} s)"
            )
        if self.discord is not None:
            import discord

            parts.append(f"Discord (discord.py {discord.__version__} over the fake gateway)")
        return (
            " + ".join(parts) + f" on one loop; model {s.bot_model} through BOT_MODEL_CLIENT"
            f" {s.model_client} ({self.model_classes()}); BOT_MAX_CONCURRENT_TURNS"
            f" {s.max_concurrent_turns},"
            f" BOT_MODEL_RETRIES {s.model_retries}, BOT_RETRY_BACKOFF {s.retry_backoff_s} s,"
            f" BOT_USER_RATE_LIMIT {s.user_rate_limit}/min, LOG_LEVEL {s.log_level};"
            f" {self.store}; Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
        )


def bot_values(tmp: Path, model_client: str, world: JSONDict) -> JSONDict:
    """The bench's settings under the world's: a SQLite file in ``tmp``, no platform, no
    weather service and no Socket Mode unless the world names them (whatever the environment
    says), HTTP on 127.0.0.1 and a free port, LOG_LEVEL=WARNING, the model client asked for."""
    return {
        "DATABASE_URL": f"sqlite:///{tmp / 'bot.db'}",
        "LOG_LEVEL": "WARNING",
        "BOT_MODEL_CLIENT": model_client,
        "OPEN_METEO_URL": "http://127.0.0.1:9",
        "OPEN_METEO_GEOCODING_URL": "http://127.0.0.1:9",
        "SLACK_BOT_TOKEN": None,
        "SLACK_APP_TOKEN": None,
        "DISCORD_BOT_TOKEN": None,
        "DISCORD_GUILD_ID": None,
        "DISCORD_AUTO_THREAD": False,
        "HOST": "127.0.0.1",
        "PORT": 0,
        **world,
    }


@asynccontextmanager
async def running_bot(
    world_settings: JSONDict, platforms: list[str], model_client: str
) -> AsyncIterator[Bot]:
    """Core and the platforms' adapters on this loop; closed as ``_serve`` closes them."""
    from agents import set_tracing_disabled

    from bot.logs import setup_logging
    from bot.settings import Settings
    from bot.wiring import build_core, open_services

    set_tracing_disabled(True)
    async with AsyncExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-load-")))
        values = bot_values(tmp, model_client, world_settings)
        settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
        setup_logging(settings.log_level, settings.secrets)
        services = await stack.enter_async_context(open_services(settings))
        core = await build_core(services)
        stack.push_async_callback(core.close)
        bot = Bot(settings, core, tmp)
        for handler in logging.getLogger().handlers:
            handler.addFilter(bot.logs)
        for name in ("discord.http", "discord.gateway"):
            logger = logging.getLogger(name)
            logger.addFilter(bot.warnings)
            stack.callback(logger.removeFilter, bot.warnings)
        if "slack" in platforms:
            from adapters.slack import SlackAdapter

            bot.slack = SlackAdapter(core, settings)
            bot.slack.outcomes = Outcomes(bot.slack.outcomes, bot.changed)
            stack.push_async_callback(bot.slack.close)
            await bot.slack.start()
        if "discord" in platforms:
            from adapters.discord import DiscordAdapter

            bot.discord = DiscordAdapter(core, settings)
            bot.discord.outcomes = Outcomes(bot.discord.outcomes, bot.changed)
            stack.push_async_callback(bot.discord.close)
            await bot.discord.start(timeout_s=60)
        yield bot


# --------------------------------------------------------------------------- measured blocks


def _ended(outcomes: dict[str, Counter[str]]) -> int:
    return sum(c["answered"] + c["failed"] for c in outcomes.values())


def _duplicates(outcomes: dict[str, Counter[str]]) -> int:
    return sum(c["duplicate"] for c in outcomes.values())


async def _sample_core(bot: Bot, peaks: Counter[str], stop: asyncio.Event) -> None:
    """Peak turns running and waiting in the core, and asyncio tasks, every 100 ms."""
    while not stop.is_set():
        for name in ("running", "waiting"):
            value = getattr(bot.core, name, None)
            if isinstance(value, int):
                peaks[name] = max(peaks[name], value)
        peaks["tasks"] = max(peaks["tasks"], len(asyncio.all_tasks()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)


BlockHook = Callable[[str], Coroutine[Any, Any, None]]
"""Runs beside every measured block (bench.soak samples the bot with it); awaited at its end."""


class Measurer:
    """One block at a time: started and stopped as the world says."""

    def __init__(self, bot: Bot, profile: cProfile.Profile | None, hook: BlockHook | None):
        self.bot = bot
        self.profile = profile
        self.hook = hook
        self.turns = 0
        """Turns ended over every block but the warm-ups (the profile's denominator)."""
        self._stack: AsyncExitStack | None = None
        self._figures: _shared.ProcessFigures | None = None
        self._before: dict[str, Counter[str]] = {}
        self._warnings = (0, 0)
        self._peaks: Counter[str] = Counter()
        self._sampling: tuple[asyncio.Task[None], asyncio.Event] | None = None
        self._hook_task: asyncio.Task[None] | None = None
        self._label = ""
        self._warm_up = False

    async def start(self, label: str, lag: bool, warm_up: bool) -> None:
        bot = self.bot
        self._label = label
        self._warm_up = warm_up
        self._before = bot.outcomes()
        self._warnings = (bot.warnings.rate_limited, bot.warnings.behind)
        self._peaks = Counter()
        self._sampling = None
        if lag:  # sampling costs CPU too: not in blocks whose figure is the CPU of a turn
            stop = asyncio.Event()
            self._sampling = (asyncio.create_task(_sample_core(bot, self._peaks, stop)), stop)
        if self.hook is not None:
            self._hook_task = asyncio.create_task(self.hook(label))
        self._stack = AsyncExitStack()
        profile = None if warm_up else self.profile  # cold paths are not the steady cost
        measured = _shared.measuring(_shared.ProcessFigures(), profile, lag=lag)
        self._figures = await self._stack.enter_async_context(measured)

    async def settle(self, ended: int, duplicates: int, timeout_s: float) -> bool:
        """Wait until the adapters have ended ``ended`` turns (answered or failed) and counted
        ``duplicates`` duplicates since the block started; False after ``timeout_s``."""
        bot = self.bot
        deadline = time.monotonic() + timeout_s
        before_ended, before_dups = _ended(self._before), _duplicates(self._before)
        while True:
            now = bot.outcomes()
            if _ended(now) - before_ended >= ended and _duplicates(now) - before_dups >= duplicates:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            bot.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(bot.changed.wait(), left)

    async def stop(self, ended: int, duplicates: int, timeout_s: float) -> BlockFigures:
        assert self._stack is not None and self._figures is not None
        bot = self.bot
        complete = await self.settle(ended, duplicates, timeout_s)
        before_ended = _ended(self._before)
        await self._stack.aclose()
        if self._hook_task is not None:
            await self._hook_task
            self._hook_task = None
        if self._sampling is not None:
            task, stop = self._sampling
            stop.set()
            await task
            self._sampling = None
        res, after = self._figures, bot.outcomes()
        if not self._warm_up:
            self.turns += _ended(after) - before_ended
        delta = {
            platform: {
                k: v - self._before.get(platform, Counter())[k]
                for k, v in sorted(counts.items())
                if v != self._before.get(platform, Counter())[k]
            }
            for platform, counts in after.items()
        }
        return BlockFigures(
            label=self._label,
            cpu_s=res.cpu_s,
            wall_s=res.wall_s,
            rss_before_mb=res.rss_before_mb,
            rss_after_mb=res.rss_after_mb,
            peak_rss_mb=res.peak_rss_mb,
            lag_measured=res.lag_measured,
            lag_max_ms=res.loop_lag_ms,
            lag_p50_ms=res.lag_p50_ms,
            lag_p99_ms=res.lag_p99_ms,
            full_gc_ms=res.full_gc_ms,
            outcomes=delta,
            complete=complete,
            discord_py_retries=bot.warnings.rate_limited - self._warnings[0],
            false_behind=bot.warnings.behind - self._warnings[1],
            peak_running=self._peaks["running"],
            peak_waiting=self._peaks["waiting"],
            peak_tasks=self._peaks["tasks"],
        )


@dataclass
class RunResult:
    """How a run ended, as the world judged it."""

    done: JSONDict
    summary: JSONDict | None
    turns: int


async def serve(
    world: World,
    *,
    model_client: str,
    profile: cProfile.Profile | None = None,
    hook: BlockHook | None = None,
    on_bot: Callable[[Bot], None] | None = None,
    on_done: Callable[[Bot], Coroutine[Any, Any, None]] | None = None,
) -> RunResult:
    """Start the bot the world asks for and do what it says until it is done. ``hook`` runs
    beside every measured block; ``on_bot`` is told the bot once it is up, ``on_done`` is
    awaited once the world is done, with the bot still up."""
    kind, ready = await world.next(120)
    if kind != "ready":
        raise RuntimeError(f"the world began with {kind!r}, not 'ready'")
    for line in ready["lines"]:
        print(line, flush=True)
    async with running_bot(ready["settings"], ready["platforms"], model_client) as bot:
        started_rss, started_peak = _shared.rss_mb(), _shared.peak_rss_mb()
        print(bot.describe(), flush=True)
        if on_bot is not None:
            on_bot(bot)
        world.send(
            "bot",
            {
                "slack_url": bot.slack_url,
                "rss_mb": started_rss,
                "peak_rss_mb": started_peak,
                "model_client": bot.settings.model_client,
            },
        )
        measurer = Measurer(bot, profile, hook)
        summary: JSONDict | None = None
        while True:
            kind, body = await world.next(3600)
            if kind == "print":
                for line in body:
                    print(line, flush=True)
            elif kind == "start":
                await measurer.start(body["label"], body["lag"], body["warm_up"])
                world.send("started", {})
            elif kind == "settle":
                settled = await measurer.settle(body["ended"], 0, body["timeout_s"])
                world.send("settled", settled)
            elif kind == "stop":
                figures = await measurer.stop(body["ended"], body["duplicates"], body["timeout_s"])
                world.send("stopped", figures.to_json())
            elif kind == "summary":
                # What the setting selected, so that side-by-side columns say what they compare.
                used = SummaryRow("model calls made by", bot.model_classes())
                summary = {**body, "rows": [vars(used), *body["rows"]]}
            elif kind == "done":
                if on_done is not None:
                    await on_done(bot)
                for line in bot.logs.lines():
                    print(line)
                return RunResult(body, summary, measurer.turns)
            else:
                raise RuntimeError(f"unknown message from the world: {kind!r}")
