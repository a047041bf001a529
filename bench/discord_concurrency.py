"""Discord under load, through the fake gateway: issue #4's targets for the Discord adapter.

The real ``adapters.discord.DiscordAdapter`` (discord.py's client: REST and the zlib-stream
gateway) over the real core (``open_services`` + ``build_core``, a SQLite file in a temporary
directory, LOG_LEVEL=WARNING, BOT_MAX_CONCURRENT_TURNS >= 500 so that the core queues no burst):

- FakeDiscord runs in this process (its CPU is counted here): every user message is stored and
  dispatched as MESSAGE_CREATE over the real websocket (``send_user_message``), and the REST
  requests it records are the measurements. ``RecordedRequest.received_at`` is
  ``time.monotonic()``, the clock of every timestamp here; a mention's start is taken just
  before its ``send_user_message``.
- FakeOpenRouter answers "echo: <question>" (in the chunks each scenario asks for) in a child
  process, so its CPU is not counted here, unless ``--openrouter in-process``; ``first-text``
  always runs it in this process (it needs the time each model request arrived).
- discord.py's "We are being rate limited" and (false) "Can't keep up" warnings are counted,
  not printed (``DiscordWarnings``).

Each scenario gets its own world, bot and database, and one warm-up turn in another channel
(cold imports, the first command sync, discord.py's first rate-limit buckets), reported apart.

1. latency: an instant model, ``--sequential`` mentions in #general one after another, twice:
   (a) the answer in one chunk (the reply POST carries it), (b) in ``--latency-chunks`` chunks
   ``--latency-chunk-delay`` s apart (a POST with the first text, then the final edit, which the
   1.5 s throttle must not hold back). MESSAGE_CREATE dispatched -> the request that put the final
   text in place reached the fake (minus the time the model streamed, in b). Target p50 <= 100
   ms: a finished answer is never held back by the edit throttle.
2. spread: ``--spread-n`` mentions at once over ``--channels`` channels and ``--threads``
   threads (FakeDiscord's default limit, 50 requests per second per route and channel; its 429s
   are reported), model latency ``--latency``. Targets: all answered within 3 s, no duplicates
   (bot messages replying to one user message), overhead p50 <= 10 ms (final text landed -
   dispatch - model latency). A thread is one conversation and the core answers a
   conversation's messages in order, so mentions sharing a thread wait for each other: their
   overhead counts from the thread's previous answer (the target's figure pools these with the
   channel mentions' own), and is shown from their own dispatch too.
3. one-channel: ``--n`` mentions at once in #general with POST and PATCH of messages limited to
   5 per 5 s per channel (Discord's real-ish limit), model latency ``--latency`` then the answer
   in 5 chunks 0.2 s apart: time until everyone is answered, the 429s the fake sent, edits per
   answer (coalescing), exactly one answer each. Target: the limit honoured without 429 storms
   (here: fewer than 1 in 10 of the limited calls answered 429), everyone answered once.
4. first-text: ``--samples`` mentions one after another; the model's first byte after 0.5 s,
   then the answer in 10 chunks 0.3 s apart (~3.5 s): the first content chunk left the fake
   (its request's arrival + first byte + chunk delay) -> the bot's first message POST reached
   the fake. Target <= 0.5 s.

    python -m bench.discord_concurrency [--scenario all|latency|spread|one-channel|first-text]
        [--runs 1] [--n 50] [--spread-n 500] [--latency 1.0] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import itertools
import logging
import math
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.settings import Settings, prepare_library_environment

prepare_library_environment()

from agents import set_tracing_disabled  # noqa: E402

from adapters.discord import DiscordAdapter  # noqa: E402
from bench import _shared  # noqa: E402
from bench._shared import ProcessFigures, dist, gc_pauses, percentile, verdict  # noqa: E402
from bot.logs import setup_logging  # noqa: E402
from bot.wiring import build_core, open_services  # noqa: E402
from tests.fakes.discord import (  # noqa: E402
    FakeChannel,
    FakeDiscord,
    FakeGuild,
    FakeUser,
    RecordedRequest,
    new_snowflake,
)
from tests.fakes.openrouter import FakeOpenRouter, TextReply, last_user_text  # noqa: E402

TARGET_LATENCY_P50_MS = 100.0
TARGET_SPREAD_N = 500
TARGET_SPREAD_ALL_S = 3.0
TARGET_OVERHEAD_P50_MS = 10.0
TARGET_FIRST_TEXT_S = 0.5
EDIT_INTERVAL_S = 1.5
"""DiscordReply's throttle (adapters/discord/messages.py passes interval_s=1.5)."""
ONE_CHANNEL_LIMIT = (5, 5.0)
"""one-channel: requests per window, window seconds, for POST and PATCH of messages."""

POST_ROUTE = "POST /channels/{channel_id}/messages"
EDIT_ROUTE = "PATCH /channels/{channel_id}/messages/{message_id}"
TYPING_ROUTE = "POST /channels/{channel_id}/typing"

SHAPE_MARK = re.compile(r"\[(\d+)x([0-9.]+)s\]$")
"""A question ending in ``[3x0.010s]`` is answered in 3 chunks 0.010 s apart, whatever the
model's default shape (one child serves several shapes: ``bench._shared.openrouter_child``)."""


class BenchDiscord(FakeDiscord):
    """FakeDiscord with a listen backlog for hundreds of connections."""

    def _site_options(self) -> dict[str, Any]:
        return {"backlog": _shared.BACKLOG}


@dataclass(frozen=True)
class ModelShape:
    """How the fake model answers: first byte after ``latency`` s, then ``chunks`` content
    deltas ``delay`` s apart (the first one too: FakeOpenRouter waits before each)."""

    latency: float
    chunks: int = 1
    delay: float = 0.0

    @property
    def first_chunk_s(self) -> float:
        return self.latency + self.delay

    @property
    def last_chunk_s(self) -> float:
        return self.latency + self.chunks * self.delay

    def describe(self) -> str:
        if self.chunks == 1:
            return f"first byte after {self.latency:.2f} s, the answer in one chunk"
        return (
            f"first byte after {self.latency:.2f} s, the answer in {self.chunks} chunks"
            f" {self.delay:.2f} s apart (first text at {self.first_chunk_s:.2f} s, last at"
            f" {self.last_chunk_s:.2f} s)"
        )

    def mark(self) -> str:
        """The SHAPE_MARK asking a model of another default shape to stream like this one."""
        return f" [{self.chunks}x{self.delay:.3f}s]"

    def responder(self, body: dict[str, Any]) -> TextReply:
        text = last_user_text(body)
        found = SHAPE_MARK.search(text)
        chunks, delay = (int(found[1]), float(found[2])) if found else (self.chunks, self.delay)
        return TextReply(f"echo: {text}", chunks=chunks, delay=delay)


# --------------------------------------------------------------------------- process figures


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


@dataclass
class Resources(ProcessFigures):
    """The process figures, and what discord.py warned of over the block."""

    discord_py_retries: int = 0
    false_behind: int = 0


@asynccontextmanager
async def measured(
    child_pid: int | None, warnings: DiscordWarnings, profile: cProfile.Profile | None
) -> AsyncIterator[Resources]:
    """CPU (this process and the model child), RSS, event-loop stalls, full GCs and discord.py's
    429 retries over the block; cProfile too when asked."""
    retries_before, behind_before = warnings.rate_limited, warnings.behind
    async with _shared.measuring(Resources(child_pid), profile) as res:
        yield res
    res.discord_py_retries = warnings.rate_limited - retries_before
    res.false_behind = warnings.behind - behind_before


# --------------------------------------------------------------------------- turns


@dataclass
class Turn:
    """One mention and what the fake saw of its answer."""

    channel_id: int
    question: str
    in_thread: bool = False
    dispatched: float = 0.0
    """time.monotonic() just before ``send_user_message``."""
    message_id: int = 0
    requests: list[RecordedRequest] = field(default_factory=list)
    """POSTs replying to the mention and PATCHes of the message they created, any status."""
    answers: int = 0
    """Bot messages (not deleted) replying to the mention, as the fake stores them."""
    model_request_at: float | None = None
    """When the fake model received this turn's request (in-process model only)."""

    @property
    def expected(self) -> str:
        return f"echo: {self.question}"

    def ok(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.status == 200]

    @property
    def landed(self) -> RecordedRequest | None:
        """The first request that put the whole answer in place (the POST or a PATCH)."""
        for r in self.ok():
            if isinstance(r.body, dict) and r.body.get("content") == self.expected:
                return r
        return None

    @property
    def first_post(self) -> RecordedRequest | None:
        return next((r for r in self.ok() if r.method == "POST"), None)

    @property
    def edits(self) -> int:
        return sum(1 for r in self.ok() if r.method == "PATCH")

    def landed_at(self) -> float | None:
        landed = self.landed
        return None if landed is None else landed.received_at


async def mention(fake: FakeDiscord, turn: Turn, author: FakeUser | None = None) -> Turn:
    turn.dispatched = time.monotonic()
    payload = await fake.send_user_message(
        turn.channel_id, author, content=f"{fake.bot.mention} {turn.question}"
    )
    turn.message_id = int(payload["id"])
    return turn


def attribute(fake: FakeDiscord, turns: list[Turn], requests: list[RecordedRequest]) -> None:
    """Give each turn its answer's requests (a POST replying to its message, PATCHes of the
    message that POST created) and count the bot messages replying to it."""
    by_message = {t.message_id: t for t in turns}
    answer_of: dict[int, Turn] = {}
    for r in requests:
        if r.matches(POST_ROUTE):
            body = r.body if isinstance(r.body, dict) else {}
            reference = body.get("message_reference") or {}
            replied = reference.get("message_id")
            turn = by_message.get(int(replied)) if replied is not None else None
            if turn is None:
                continue
            turn.requests.append(r)
            if r.status == 200 and isinstance(r.response, dict):
                answer_of[int(r.response["id"])] = turn
        elif r.matches(EDIT_ROUTE):
            turn = answer_of.get(int(r.path.rsplit("/", 1)[1]))
            if turn is not None:
                turn.requests.append(r)
    for channel_id in {t.channel_id for t in turns}:
        for message in fake.bot_messages(channel_id):
            turn = by_message.get(message.reply_to or 0)
            if turn is not None:
                turn.answers += 1


def statuses(requests: list[RecordedRequest]) -> dict[str, Counter[int]]:
    """Status counts of the message and typing requests, by route."""
    out: dict[str, Counter[int]] = {}
    for name, route in (("POST", POST_ROUTE), ("PATCH", EDIT_ROUTE), ("typing", TYPING_ROUTE)):
        out[name] = Counter(r.status or 0 for r in requests if r.matches(route))
    return out


class Outcomes(Counter[str]):
    """The adapter's ``outcomes`` counter, telling when it changes (no polling loop whose CPU
    would count in the figures)."""

    def __init__(self, initial: Counter[str]) -> None:
        self.changed = asyncio.Event()
        super().__init__(initial)

    def __setitem__(self, key: str, value: int) -> None:
        super().__setitem__(key, value)
        self.changed.set()


def ended(adapter: DiscordAdapter, before: Counter[str]) -> int:
    return sum(adapter.outcomes[k] - before[k] for k in ("answered", "failed"))


async def settle(adapter: DiscordAdapter, before: Counter[str], n: int, deadline: float) -> bool:
    """Wait until the adapter ended ``n`` more turns (answered or failed) or the deadline."""
    outcomes = adapter.outcomes
    assert isinstance(outcomes, Outcomes)
    while ended(adapter, before) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        outcomes.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(outcomes.changed.wait(), left)
    return True


# --------------------------------------------------------------------------- report helpers


def status_line(counts: dict[str, Counter[int]]) -> str:
    parts = []
    for name, counter in counts.items():
        detail = ", ".join(f"{status} x{n}" for status, n in sorted(counter.items()))
        parts.append(f"{name} {sum(counter.values())} ({detail or '-'})")
    return "; ".join(parts)


def limited_total(counts: dict[str, Counter[int]]) -> int:
    return sum(counter[429] for counter in counts.values())


def resources_lines(res: Resources, turns: int) -> None:
    child = ""
    if res.child_pid is not None:
        child = f"; fake OpenRouter child {res.child_cpu_s * 1000 / turns:.2f} ms"
    print(
        f"  CPU:          this process (all threads, FakeDiscord included)"
        f" {res.cpu_s * 1000 / turns:.2f} ms per turn ({res.cpu_s:.2f} s in {res.wall_s:.1f} s)"
        f"{child}; longest event-loop stall {res.loop_lag_ms:.0f} ms; full GCs"
        f" {gc_pauses(res.full_gc_ms)}"
    )
    if res.false_behind:
        print(
            f'    (discord.py warned "Can\'t keep up" {res.false_behind} time(s): a false alarm'
            " against a loopback fake, see DiscordWarnings; not counted as a failure)"
        )
    print(
        f"  memory:       RSS {res.rss_before_mb:.0f} MB before, {res.rss_after_mb:.0f} MB after"
        f" ({res.rss_after_mb - res.rss_before_mb:+.0f} MB); peak RSS of the process"
        f" (ru_maxrss) {res.peak_rss_mb:.0f} MB"
    )


def answers_line(turns: list[Turn], outcomes: Counter[str]) -> tuple[int, int, int]:
    """Print answered / wrong / duplicate counts; return (answered, wrong, duplicated)."""
    answered = sum(1 for t in turns if t.landed is not None)
    wrong = sum(1 for t in turns if t.landed is None)
    duplicated = sum(1 for t in turns if t.answers > 1)
    missing = sum(1 for t in turns if t.answers == 0)
    print(
        f"  answers:      final text in place for {answered}/{len(turns)}; exactly one bot"
        f" message each: {sum(1 for t in turns if t.answers == 1)}/{len(turns)} (none:"
        f" {missing}, more than one: {duplicated}); adapter outcomes"
        f" {dict(sorted(outcomes.items()))}"
    )
    return answered, wrong, duplicated


def outcome_delta(adapter: DiscordAdapter, before: Counter[str]) -> Counter[str]:
    return Counter(
        {
            k: adapter.outcomes[k] - before[k]
            for k in adapter.outcomes
            if adapter.outcomes[k] != before[k]
        }
    )


# --------------------------------------------------------------------------- the rig


@dataclass
class Rig:
    fake: FakeDiscord
    adapter: DiscordAdapter
    settings: Settings
    model: ModelShape
    child_pid: int | None
    openrouter: FakeOpenRouter | None
    warnings: DiscordWarnings
    warmup_channel: FakeChannel
    authors: list[FakeUser]

    def header(self, title: str) -> None:
        where = (
            f"a child process (pid {self.child_pid})"
            if self.child_pid is not None
            else "THIS process"
        )
        print(f"\n=== {title}")
        print(
            f"discord.py {discord_version()} client, gateway {self.settings.discord_gateway_url};"
            f" model {self.settings.bot_model}: {self.model.describe()}; FakeOpenRouter in"
            f" {where}; BOT_MAX_CONCURRENT_TURNS {self.settings.max_concurrent_turns},"
            f" LOG_LEVEL {self.settings.log_level}; Python {sys.version.split()[0]},"
            f" {os.cpu_count()} CPUs"
        )


def discord_version() -> str:
    import discord

    return str(discord.__version__)


def bench_settings(
    tmp: Path, openrouter_url: str, fake: FakeDiscord, args: argparse.Namespace
) -> Settings:
    platform: dict[str, Any] = {
        "DISCORD_BOT_TOKEN": fake.token,
        "DISCORD_API_BASE": fake.rest_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "DISCORD_GUILD_ID": None,  # whatever the environment says
        "DISCORD_AUTO_THREAD": False,
        "BOT_MAX_CONCURRENT_TURNS": args.max_concurrent_turns
        or max(TARGET_SPREAD_N, args.spread_n, args.n),
    }
    return _shared.bot_settings(tmp, openrouter_url, platform)


@asynccontextmanager
async def open_rig(
    args: argparse.Namespace,
    fake: FakeDiscord,
    model: ModelShape,
    *,
    warmup_channel: Callable[[FakeDiscord], FakeChannel],
    in_process: bool,
) -> AsyncIterator[Rig]:
    set_tracing_disabled(True)
    async with AsyncExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-discord-")))
        child_pid: int | None = None
        openrouter: FakeOpenRouter | None = None
        if in_process:
            openrouter = _shared.InProcessOpenRouter(
                latency=model.latency, default_responder=model.responder, record_bodies=False
            )
            base_url = (await stack.enter_async_context(openrouter)).base_url
        else:
            child = _shared.openrouter_child(
                model.latency, (model.chunks, model.delay, SHAPE_MARK.pattern)
            )
            base_url, child_pid = await stack.enter_async_context(child)
        await stack.enter_async_context(fake)
        settings = bench_settings(tmp, base_url, fake, args)
        setup_logging(settings.log_level, settings.secrets)
        warnings = DiscordWarnings()
        for name in ("discord.http", "discord.gateway"):
            logger = logging.getLogger(name)
            logger.addFilter(warnings)
            stack.callback(logger.removeFilter, warnings)
        services = await stack.enter_async_context(open_services(settings))
        core = await build_core(services)
        stack.push_async_callback(core.close)
        adapter = DiscordAdapter(core, settings)
        adapter.outcomes = Outcomes(adapter.outcomes)
        stack.push_async_callback(adapter.close)
        await adapter.start(timeout_s=60)
        authors = [u for u in fake.users.values() if not u.bot]
        yield Rig(
            fake,
            adapter,
            settings,
            model,
            child_pid,
            openrouter,
            warnings,
            warmup_channel(fake),
            authors,
        )


async def warm_up(rig: Rig) -> None:
    """One turn in the warm-up channel, reported apart."""
    fake, adapter = rig.fake, rig.adapter
    before = Counter(adapter.outcomes)
    start = len(fake.requests)
    turn = await mention(fake, Turn(rig.warmup_channel.id, "warm-up"))
    done = await settle(adapter, before, 1, time.monotonic() + 60)
    attribute(fake, [turn], fake.requests[start:])
    landed = turn.landed_at()
    if not done or landed is None:
        print(f"warm-up turn: NOT answered (outcomes {dict(outcome_delta(adapter, before))})")
        return
    print(
        f"warm-up turn (cold: first model call, first buckets), in #{rig.warmup_channel.name}:"
        f" final text {(landed - turn.dispatched) * 1000:.0f} ms after the dispatch"
        f" ({len(fake.requests) - start} REST requests)"
    )


def default_world() -> BenchDiscord:
    """#general (measured), #random (warm-up), a thread; alice and bob."""
    return BenchDiscord()


def by_name(name: str) -> Callable[[FakeDiscord], FakeChannel]:
    def pick(fake: FakeDiscord) -> FakeChannel:
        for channel in fake.channels.values():
            if channel.name == name:
                return channel
        raise LookupError(name)

    return pick


# --------------------------------------------------------------------------- 1. latency


async def latency_variant(
    rig: Rig, args: argparse.Namespace, shape: ModelShape, tag: str, profile: Any
) -> float:
    """``--sequential`` mentions answered in ``shape``; prints the figures, returns the p50 of
    dispatch -> final text landed, minus the time the model streamed."""
    fake, adapter = rig.fake, rig.adapter
    general = fake.channel
    mark = shape.mark() if shape != rig.model else ""
    start = len(fake.requests)
    before = Counter(adapter.outcomes)
    turns = [Turn(general.id, f"latency {tag}-{i}{mark}") for i in range(args.sequential)]
    complete = True
    async with measured(rig.child_pid, rig.warnings, profile) as res:
        for i, turn in enumerate(turns):
            await mention(fake, turn)
            if not await settle(adapter, before, i + 1, time.monotonic() + 30):
                complete = False
                break
    requests = fake.requests[start:]
    attribute(fake, turns, requests)
    outcomes = outcome_delta(adapter, before)
    counts = statuses(requests)

    streamed_ms = shape.last_chunk_s * 1000
    to_final = [
        (t.landed.received_at - t.dispatched) * 1000 - streamed_ms
        for t in turns
        if t.landed is not None
    ]
    to_post = [
        (t.first_post.received_at - t.dispatched) * 1000 for t in turns if t.first_post is not None
    ]
    via_post = sum(1 for t in turns if t.landed is not None and t.landed.method == "POST")
    via_patch = sum(1 for t in turns if t.landed is not None and t.landed.method == "PATCH")
    post_to_final = [
        (t.landed.received_at - t.first_post.received_at) * 1000
        for t in turns
        if t.landed is not None and t.first_post is not None and t.landed.method == "PATCH"
    ]
    print(
        f"\nlatency {tag}: {len(turns)} sequential mentions in #{general.name}; model:"
        f" {shape.describe()}"
    )
    p50 = statistics.median(to_final) if to_final else float("nan")
    met = complete and len(to_final) == len(turns) and p50 <= TARGET_LATENCY_P50_MS
    minus = f" - {streamed_ms:.0f} ms streamed" if streamed_ms else ""
    print(
        f"  dispatch -> final text landed{minus}: {dist(to_final)}"
        f"   target p50 <= {TARGET_LATENCY_P50_MS:.0f} ms: {verdict(met)}"
    )
    print(
        f"    final text put in place by the reply POST: {via_post}, by an edit after it:"
        f" {via_patch}"
        + (
            f"; first POST -> final edit {dist(post_to_final, p90=False)} (held back by the"
            f" {EDIT_INTERVAL_S} s throttle it would be >= {EDIT_INTERVAL_S * 1000:.0f} ms)"
            if post_to_final
            else ""
        )
    )
    print(f"    dispatch -> first POST landed: {dist(to_post)}")
    answers_line(turns, outcomes)
    print(
        f"  REST:         {status_line(counts)}; 429s {limited_total(counts)}, discord.py"
        f" retries after a 429: {res.discord_py_retries}"
        + ("" if complete else "; gave up waiting for a turn after 30 s")
    )
    resources_lines(res, len(turns))
    return p50


async def scenario_latency(args: argparse.Namespace, profile: Any) -> list[dict[str, float]]:
    instant = ModelShape(latency=0.0)
    streamed = ModelShape(latency=0.0, chunks=args.latency_chunks, delay=args.latency_chunk_delay)
    async with open_rig(
        args,
        default_world(),
        instant,
        warmup_channel=by_name("random"),
        in_process=args.openrouter == "in-process",
    ) as rig:
        rig.header(f"latency: {args.sequential} sequential mentions, instant model")
        await warm_up(rig)
        results = []
        for i in range(args.runs):
            one = await latency_variant(rig, args, instant, f"run {i + 1}a", profile)
            several = await latency_variant(rig, args, streamed, f"run {i + 1}b", profile)
            results.append({"p50_one_chunk": one, "p50_streamed": several})
        return results


# --------------------------------------------------------------------------- 2. spread


def spread_world(args: argparse.Namespace) -> BenchDiscord:
    """A guild with #warm-up, ``--channels`` channels and ``--threads`` threads (under
    #warm-up), the bot and 20 users."""
    bot = FakeUser(id=new_snowflake(), username="FakeBot", bot=True)
    users = [
        FakeUser(id=new_snowflake(), username=f"user{i}", global_name=f"User {i}")
        for i in range(20)
    ]
    guild = FakeGuild.create(
        "Bench Guild",
        owner=users[0],
        members=[bot, *users],
        channel_names=["warm-up", *(f"bench-{i}" for i in range(args.channels))],
        thread_names=[f"thread-{i}" for i in range(args.threads)],
    )
    return BenchDiscord(bot=bot, guilds=[guild], users=users)


def thread_net_overhead_ms(turns: list[Turn], latency: float) -> list[float]:
    """Thread turns: final text landed - max(dispatch, the thread's previous answer landed) -
    model latency (the core answers a conversation's messages in order)."""
    out: list[float] = []
    per_thread: dict[int, list[Turn]] = defaultdict(list)
    for t in turns:
        if t.in_thread and t.landed is not None:
            per_thread[t.channel_id].append(t)
    for thread_turns in per_thread.values():
        previous: float | None = None
        for t in sorted(thread_turns, key=lambda x: x.landed_at() or 0.0):
            landed = t.landed_at() or 0.0
            start = t.dispatched if previous is None else max(t.dispatched, previous)
            out.append((landed - start - latency) * 1000)
            previous = landed
    return out


async def spread_run(
    rig: Rig, args: argparse.Namespace, tag: str, profile: Any
) -> dict[str, float]:
    fake, adapter = rig.fake, rig.adapter
    guild = fake.guild
    places = [(c, False) for c in guild.channels if c.id != rig.warmup_channel.id] + [
        (t, True) for t in guild.threads
    ]
    n = args.spread_n
    turns = [
        Turn(places[i % len(places)][0].id, f"spread {tag}-{i}", places[i % len(places)][1])
        for i in range(n)
    ]
    authors = rig.authors
    start = len(fake.requests)
    before = Counter(adapter.outcomes)
    timeout_s = rig.model.latency * (n / len(places) + 1) + max(60.0, n * 0.2)
    async with measured(rig.child_pid, rig.warnings, profile) as res:
        first = time.monotonic()
        await asyncio.gather(
            *(mention(fake, t, authors[i % len(authors)]) for i, t in enumerate(turns))
        )
        dispatched_s = time.monotonic() - first
        complete = await settle(adapter, before, n, first + timeout_s)
        waited = time.monotonic() - first
    requests = fake.requests[start:]
    attribute(fake, turns, requests)
    outcomes = outcome_delta(adapter, before)
    counts = statuses(requests)
    latency = rig.model.latency

    def all_in(selected: list[Turn]) -> float | None:
        if not selected or any(t.landed is None for t in selected):
            return None
        return max(t.landed_at() or 0.0 for t in selected) - first

    channel_turns = [t for t in turns if not t.in_thread]
    thread_turns = [t for t in turns if t.in_thread]
    all_s = all_in(turns) if complete else None
    channels = sum(1 for _, is_thread in places if not is_thread)
    threads = len(places) - channels
    print(
        f"\nspread {tag}: {n} mentions at once over {channels} channels and {threads} threads"
        f" ({n / len(places):.0f} per place), model latency {latency:.2f} s"
    )
    all_text = f"{all_s:.3f} s" if all_s is not None else "NOT all answered"
    print(
        f"  all answered:  {all_text:<18} target <= {TARGET_SPREAD_ALL_S} s for"
        f" {TARGET_SPREAD_N}: {verdict(all_s is not None and all_s <= TARGET_SPREAD_ALL_S)}"
        + ("" if n >= TARGET_SPREAD_N else f" (N={n} < {TARGET_SPREAD_N}: not the target's load)")
    )
    for label, selected in (
        ("channel mentions (each its own conversation)", channel_turns),
        ("thread mentions (one conversation per thread)", thread_turns),
    ):
        if not selected:
            continue
        done = all_in(selected)
        finals = sorted((t.landed_at() or 0.0) - first for t in selected if t.landed is not None)
        print(
            f"    {label}: {len(selected)}, all answered"
            f" {f'{done:.3f} s' if done is not None else 'NOT all'} after the first dispatch"
            + (
                f"; first {finals[0]:.3f} s, median {statistics.median(finals):.3f} s"
                if finals
                else ""
            )
        )
    answered, _, duplicated = answers_line(turns, outcomes)
    print(
        f"  duplicates:    {duplicated} mentions with more than one bot answer; outcomes"
        f"['duplicate'] = {outcomes['duplicate']}   target 0: {verdict(duplicated == 0)}"
    )
    raw = [
        ((t.landed_at() or 0.0) - t.dispatched - latency) * 1000
        for t in channel_turns
        if t.landed is not None
    ]
    net = thread_net_overhead_ms(turns, latency)
    combined = raw + net
    p50 = statistics.median(combined) if combined else float("nan")
    print(
        f"  overhead:      {dist(combined)}   target p50 <= {TARGET_OVERHEAD_P50_MS:.0f} ms:"
        f" {verdict(p50 <= TARGET_OVERHEAD_P50_MS)}"
    )
    print(f"    channel mentions (final text landed - dispatch - {latency:.2f} s): {dist(raw)}")
    if thread_turns:
        queued = [
            ((t.landed_at() or 0.0) - t.dispatched - latency) * 1000
            for t in thread_turns
            if t.landed is not None
        ]
        print(f"    thread mentions, counted from the thread's previous answer: {dist(net)}")
        print(f"    thread mentions, counted from their own dispatch (queued): {dist(queued)}")
    print(
        f"    dispatching all {n} MESSAGE_CREATEs took {dispatched_s * 1000:.0f} ms (one"
        " websocket, one frame after another; each turn counts from its own dispatch)"
    )
    print(
        f"  REST:          {status_line(counts)}; 429s {limited_total(counts)}"
        f" (FakeDiscord's default limit: 50 per route and channel per second), discord.py"
        f" retries after a 429: {res.discord_py_retries}; {len(requests) / n:.2f} requests"
        f" per turn" + ("" if complete else f"; gave up waiting after {waited:.1f} s")
    )
    resources_lines(res, n)
    return {
        "all_s": all_s if all_s is not None else float("nan"),
        "overhead_p50": p50,
        "overhead_p99": percentile(combined, 99) if len(combined) > 1 else float("nan"),
        "duplicates": float(duplicated),
        "answered": float(answered),
    }


async def scenario_spread(args: argparse.Namespace, profile: Any) -> list[dict[str, float]]:
    model = ModelShape(latency=args.latency)
    async with open_rig(
        args,
        spread_world(args),
        model,
        warmup_channel=by_name("warm-up"),
        in_process=args.openrouter == "in-process",
    ) as rig:
        rig.header(
            f"spread: {args.spread_n} mentions at once over {args.channels} channels and"
            f" {args.threads} threads"
        )
        await warm_up(rig)
        results = []
        for i in range(args.runs):
            results.append(await spread_run(rig, args, f"run {i + 1}", profile))
            gc.collect()
        return results


# --------------------------------------------------------------------------- 3. one channel


async def one_channel_run(
    rig: Rig, args: argparse.Namespace, tag: str, profile: Any
) -> dict[str, float]:
    fake, adapter = rig.fake, rig.adapter
    general = fake.channel
    n = args.n
    limit, per_s = ONE_CHANNEL_LIMIT
    turns = [Turn(general.id, f"one-channel {tag}-{i}") for i in range(n)]
    authors = rig.authors
    start = len(fake.requests)
    before = Counter(adapter.outcomes)
    # Each answer needs a POST and (its text having changed meanwhile) an edit, both limited.
    timeout_s = rig.model.last_chunk_s + 3 * math.ceil(n / limit) * per_s + 60
    async with measured(rig.child_pid, rig.warnings, profile) as res:
        first = time.monotonic()
        await asyncio.gather(
            *(mention(fake, t, authors[i % len(authors)]) for i, t in enumerate(turns))
        )
        complete = await settle(adapter, before, n, first + timeout_s)
        waited = time.monotonic() - first
    requests = fake.requests[start:]
    attribute(fake, turns, requests)
    outcomes = outcome_delta(adapter, before)
    counts = statuses(requests)
    landed = [t.landed_at() for t in turns]
    all_s = (
        max(x for x in landed if x is not None) - first
        if complete and all(x is not None for x in landed)
        else None
    )
    posts = sum(1 for t in turns for r in t.ok() if r.method == "POST")
    floor_s = (math.ceil(max(posts, n) / limit) - 1) * per_s
    print(
        f"\none-channel {tag}: {n} mentions at once in #{general.name}; POST and PATCH of"
        f" messages limited to {limit} per {per_s:.0f} s per channel; model:"
        f" {rig.model.describe()}"
    )
    print(
        "  everyone answered: "
        + (f"{all_s:.1f} s after the first dispatch" if all_s is not None else "NOT everyone")
        + f" (the POST limit alone needs >= {floor_s:.0f} s for {max(posts, n)} POSTs)"
        + ("" if complete else f"; gave up waiting after {waited:.0f} s")
    )
    finals = sorted(x - first for x in landed if x is not None)
    if finals:
        quarter = finals[len(finals) // 4]
        print(
            f"    final texts landed: first {finals[0]:.1f} s, 25% by {quarter:.1f} s, median"
            f" {statistics.median(finals):.1f} s, last {finals[-1]:.1f} s"
        )
    for method in ("POST", "PATCH"):
        times = sorted(r.received_at - first for t in turns for r in t.ok() if r.method == method)
        if times:
            windows = math.floor((times[-1] - times[0]) / per_s) + 1
            print(
                f"    {method} 200s: {len(times)}, from {times[0]:.1f} s to {times[-1]:.1f} s:"
                f" {len(times) / windows:.2f} per {per_s:.0f} s window over {windows} windows"
                f" (limit {limit})"
            )
    _, _, duplicated = answers_line(turns, outcomes)
    total_429 = limited_total(counts)
    limited_calls = sum(counts["POST"].values()) + sum(counts["PATCH"].values())
    by_route = ", ".join(f"{k} {v[429]}" for k, v in counts.items())
    print(
        f"  429s:         {total_429} sent by the fake ({by_route}) for {limited_calls} limited"
        f" calls; discord.py retries after a 429: {res.discord_py_retries}"
        f"   target no 429 storm (here: under 1 in 10 limited calls):"
        f" {verdict(total_429 * 10 < limited_calls)}"
    )
    edits = [t.edits for t in turns if t.landed is not None]
    if edits:
        print(
            f"  edits:        per answer mean {statistics.mean(edits):.2f}, max {max(edits)}"
            f" (the model streamed {rig.model.chunks} chunks per answer); answers whose first"
            f" POST already carried the whole text:"
            f" {sum(1 for t in turns if t.landed is not None and t.landed.method == 'POST')}/{n}"
        )
    print(f"  REST:         {status_line(counts)}; {len(requests) / n:.2f} requests per turn")
    resources_lines(res, n)
    everyone = all_s is not None and duplicated == 0
    return {
        "all_s": all_s if all_s is not None else float("nan"),
        "429s": float(total_429),
        "edits_mean": statistics.mean(edits) if edits else float("nan"),
        "everyone": float(everyone),
    }


async def scenario_one_channel(args: argparse.Namespace, profile: Any) -> list[dict[str, float]]:
    model = ModelShape(latency=args.latency, chunks=5, delay=0.2)
    fake = default_world()
    async with open_rig(
        args,
        fake,
        model,
        warmup_channel=by_name("random"),
        in_process=args.openrouter == "in-process",
    ) as rig:
        limit, per_s = ONE_CHANNEL_LIMIT
        fake.set_route_limit(POST_ROUTE, limit=limit, per_s=per_s)
        fake.set_route_limit(EDIT_ROUTE, limit=limit, per_s=per_s)
        rig.header(f"one-channel: {args.n} mentions at once in one rate-limited channel")
        await warm_up(rig)
        results = []
        for i in range(args.runs):
            if i:
                await asyncio.sleep(per_s)  # a fresh window for the next run
            results.append(await one_channel_run(rig, args, f"run {i + 1}", profile))
        return results


# --------------------------------------------------------------------------- 4. first text


async def first_text_run(
    rig: Rig, args: argparse.Namespace, tag: str, profile: Any
) -> dict[str, float]:
    fake, adapter, openrouter = rig.fake, rig.adapter, rig.openrouter
    assert openrouter is not None
    general = fake.channel
    model = rig.model
    start = len(fake.requests)
    before = Counter(adapter.outcomes)
    turns = [Turn(general.id, f"first text {tag}-{i}") for i in range(args.samples)]
    complete = True
    async with measured(rig.child_pid, rig.warnings, profile) as res:
        for i, turn in enumerate(turns):
            seen = len(openrouter.requests)
            await mention(fake, turn)
            if not await settle(adapter, before, i + 1, time.monotonic() + 30):
                complete = False
                break
            chat = [r for r in openrouter.requests[seen:] if r.path.endswith("/chat/completions")]
            if chat:
                turn.model_request_at = chat[0].received_at
    requests = fake.requests[start:]
    attribute(fake, turns, requests)
    outcomes = outcome_delta(adapter, before)
    counts = statuses(requests)

    first_text: list[float] = []
    approx: list[float] = []
    to_model: list[float] = []
    last_to_final: list[float] = []
    partial_first = 0
    gaps: list[float] = []
    for t in turns:
        post = t.first_post
        if post is None or t.model_request_at is None:
            continue
        first_chunk = t.model_request_at + model.first_chunk_s
        first_text.append((post.received_at - first_chunk) * 1000)
        approx.append((post.received_at - t.dispatched - model.latency) * 1000)
        to_model.append((t.model_request_at - t.dispatched) * 1000)
        body = post.body if isinstance(post.body, dict) else {}
        content = str(body.get("content") or "")
        if content and content != t.expected and t.expected.startswith(content):
            partial_first += 1
        landed = t.landed
        if landed is not None:
            last_to_final.append(
                (landed.received_at - t.model_request_at - model.last_chunk_s) * 1000
            )
        shown = [r.received_at for r in t.ok()]
        # Gaps between the text updates before the final one (the final edit is exempt).
        gaps.extend(b - a for a, b in itertools.pairwise(shown[:-1]))
    print(
        f"\nfirst-text {tag}: {len(turns)} sequential mentions in #{general.name}; model:"
        f" {model.describe()}"
    )
    worst = max(first_text) if first_text else float("nan")
    met = complete and len(first_text) == len(turns) and worst <= TARGET_FIRST_TEXT_S * 1000
    print(
        f"  first content chunk left the fake -> first POST landed:"
        f" {dist(first_text, p90=False)}   target <= {TARGET_FIRST_TEXT_S} s:"
        f" {verdict(met)}"
    )
    print(
        f"    (the brief's approximation, dispatch + first byte {model.latency:.2f} s -> first"
        f" POST: {dist(approx, p90=False)}; it includes the chunk delay {model.delay:.2f} s and"
        f" the bot's way to the model)"
    )
    print(f"    dispatch -> model request received: {dist(to_model, p90=False)}")
    print(
        f"    first POST carried only the start of the answer (streamed, not waited for):"
        f" {partial_first}/{len(turns)}"
    )
    edits = [t.edits for t in turns if t.landed is not None]
    print(
        f"  last chunk left -> final text landed: {dist(last_to_final, p90=False)} (the final"
        f" edit is not held back by the {EDIT_INTERVAL_S} s throttle)"
    )
    if edits:
        print(
            f"    edits per answer mean {statistics.mean(edits):.2f} (max {max(edits)}) for"
            f" {model.chunks} chunks; shortest gap between two updates before the final one:"
            + (f" {min(gaps):.2f} s" if gaps else " -")
        )
    answers_line(turns, outcomes)
    print(
        f"  REST:         {status_line(counts)}; 429s {limited_total(counts)}"
        + ("" if complete else "; gave up waiting for a turn after 30 s")
    )
    resources_lines(res, len(turns))
    return {
        "p50_ms": statistics.median(first_text) if first_text else float("nan"),
        "max_ms": worst,
    }


async def scenario_first_text(args: argparse.Namespace, profile: Any) -> list[dict[str, float]]:
    model = ModelShape(latency=args.first_byte, chunks=10, delay=0.3)
    async with open_rig(
        args, default_world(), model, warmup_channel=by_name("random"), in_process=True
    ) as rig:
        rig.header(f"first-text: {args.samples} sequential mentions, a ~3.5 s streamed answer")
        await warm_up(rig)
        return [await first_text_run(rig, args, f"run {i + 1}", profile) for i in range(args.runs)]


# --------------------------------------------------------------------------- profile

PROFILE_VIEW = _shared.profile_view(("/discord/", "discord.py"))


# --------------------------------------------------------------------------- main

Scenario = Callable[[argparse.Namespace, Any], Awaitable[list[dict[str, float]]]]
SCENARIOS: dict[str, tuple[Scenario, Callable[[argparse.Namespace], int]]] = {
    "latency": (scenario_latency, lambda a: 2 * int(a.sequential)),
    "spread": (scenario_spread, lambda a: int(a.spread_n)),
    "one-channel": (scenario_one_channel, lambda a: int(a.n)),
    "first-text": (scenario_first_text, lambda a: int(a.samples)),
}


async def run(args: argparse.Namespace) -> None:
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    for name in names:
        scenario, turns_of = SCENARIOS[name]
        profile = cProfile.Profile() if args.profile else None
        summaries = await scenario(args, profile)
        if profile is not None:
            path = args.profile_out
            if path and len(names) > 1:
                path = f"{path}.{name}"
            _shared.print_profile(
                profile,
                PROFILE_VIEW,
                runs=f"{name}'s timed runs",
                turns=turns_of(args) * args.runs,
                top=args.top,
                save_to=path,
            )
        if len(summaries) > 1:
            print(f"\n{name}: medians over {len(summaries)} runs:")
            for key in summaries[0]:
                values = [s[key] for s in summaries]
                print(
                    f"  {key:<14} {statistics.median(values):9.3f}"
                    f"  (runs: {', '.join(f'{v:.3f}' for v in values)})"
                )
        gc.collect()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--scenario",
        choices=("all", *SCENARIOS),
        default="all",
        help="which measurement to run (default: all four, one after another)",
    )
    parser.add_argument("--runs", type=int, default=1, help="timed runs per scenario")
    parser.add_argument("--sequential", type=int, default=100, help="latency: mentions")
    parser.add_argument(
        "--latency-chunks",
        type=int,
        default=3,
        help="latency, second part: the answer in this many chunks (a POST, then an edit)",
    )
    parser.add_argument(
        "--latency-chunk-delay",
        type=float,
        default=0.01,
        help="latency, second part: seconds between those chunks",
    )
    parser.add_argument("--spread-n", type=int, default=500, help="spread: mentions at once")
    parser.add_argument("--channels", type=int, default=25, help="spread: text channels")
    parser.add_argument("--threads", type=int, default=25, help="spread: threads")
    parser.add_argument("--n", type=int, default=50, help="one-channel: mentions at once")
    parser.add_argument(
        "--latency", type=float, default=1.0, help="spread, one-channel: model latency, seconds"
    )
    parser.add_argument("--samples", type=int, default=20, help="first-text: mentions")
    parser.add_argument(
        "--first-byte", type=float, default=0.5, help="first-text: model latency, seconds"
    )
    parser.add_argument(
        "--max-concurrent-turns",
        type=int,
        default=0,
        metavar="K",
        help="BOT_MAX_CONCURRENT_TURNS (default: the largest burst, at least 500)",
    )
    _shared.add_model_and_profile_arguments(
        parser, "where the fake OpenRouter runs (first-text: always in-process)"
    )
    args = parser.parse_args()
    if min(args.runs, args.sequential, args.spread_n, args.n, args.samples) < 1:
        parser.error("--runs, --sequential, --spread-n, --n and --samples must be at least 1")
    if args.channels < 0 or args.threads < 0 or args.channels + args.threads < 1:
        parser.error("--channels and --threads: at least one place for the spread")
    if min(args.latency, args.first_byte, args.latency_chunk_delay) < 0:
        parser.error("latencies and delays must be >= 0")
    if args.latency_chunks < 2:
        parser.error("--latency-chunks must be at least 2")
    if args.max_concurrent_turns < 0:
        parser.error("--max-concurrent-turns must be positive")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
