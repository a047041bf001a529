"""answers: what a real answer costs the bot, streamed one token a chunk as real models stream.

The other scenarios answer in one to ten chunks, which hides the cost of a chunk; a model
streams about a token a chunk, so per-chunk cost decides the CPU of a real answer. Here the
fake model answers with N words, one word (a token) a chunk ``--token-delay`` apart
(``TextReply(text, chunks=N, delay=...)``), through the real adapters of one platform
(``--platform``): Slack in HTTP mode with native streaming (chat.startStream/appendStream/
stopStream) or posting and updating (chat.postMessage/chat.update), or Discord. Phases:

- sized answers: ``--answers`` answers of each of ``--sizes`` tokens (50, 500, 2,000), one
  after another (each sent once the adapter ended the one before), each its own conversation;
- a tool round trip, ``--tool-turns`` times: the model calls ``get_weather`` (the real tool
  against the fake Open-Meteo: geocoding, then the forecast), then answers in
  ``--tool-tokens`` tokens;
- a burst: ``--burst`` conversations at once over ``--channels`` channels, model latency
  ``--burst-latency`` (1 s), each answer ``--burst-tokens`` tokens.

How it is measured. CPU is the bot process's own (``time.process_time()`` over the block,
all its threads: the event loop, aiosqlite's worker, ``to_thread`` work), taken in the bot
process, which loads no fake: FakeOpenRouter, FakeSlack or FakeDiscord and FakeOpenMeteo run
here, in the world process, whose CPU is shown apart. The sequential phases run without the
event-loop ticker (its wake-ups cost CPU of their own); the burst runs with it. Per answer: the
block's CPU / answers; per chunk: that / tokens, and the marginal cost of a chunk from the
sizes' slope, (CPU(largest) - CPU(smallest)) / (tokens apart), whose intercept is the fixed
cost of a turn. Turns per second per core: burst turns / the bot's CPU seconds over the burst.
First-text latency: the fake model wrote the answer's first token (``first_text_at``) -> the
first platform request carrying the answer's first words reached the fake (the platform's own
handling of that call is left out); on the one clock of the machine (``time.monotonic``).
RSS: right after start (core built, adapters connected, no turn yet), after the sequential
answers (idle), and the process's peak (VmHWM).

Targets: CPU per 500-token answer <= 40 ms end to end; a short (the smallest) answer's whole
turn <= 10 ms; first visible text within 50 ms of the first token; RSS <= 283 MB right after
start and after a few dozen answers.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass

from bench._shared import dist, percentile, verdict
from bench.load.figures import BlockFigures, SummaryRow, process_lines
from bench.load.protocol import BotInfo, BotLink
from bench.load.scenarios import sizes_and_counts
from bench.load.world.answer_traffic import AnswerTurn, DiscordSide, Model, Side, SlackSide
from bench.load.world.discord_traffic import authors, by_name
from bench.load.world.fakes import (
    LoadOpenMeteo,
    LoadOpenRouter,
    LoadSlack,
    discord_settings,
    guild_world,
    open_meteo_settings,
    openrouter_settings,
    slack_settings,
)

TARGET_CPU_500_MS = 40.0
TARGET_SHORT_TURN_MS = 10.0
TARGET_FIRST_TEXT_MS = 50.0
TARGET_RSS_MB = 283.0
FIRST_TEXT_DELAY_S = 0.05
"""adapters/slack/reply.py FIRST_TEXT_DELAY: Slack's first text waits this long for more."""


@dataclass
class Phase:
    """One measured block of answers and what came of them."""

    label: str
    turns: list[AnswerTurn]
    figures: BlockFigures
    complete: bool
    wall_s: float = 0.0

    @property
    def n(self) -> int:
        return len(self.turns)

    @property
    def chunks(self) -> int:
        return sum(t.tokens for t in self.turns)

    def cpu_per_answer_ms(self) -> float:
        return self.figures.cpu_ms(self.n)

    def first_text_ms(self) -> list[float]:
        return [ms for t in self.turns if (ms := t.first_text_ms()) is not None]

    def tail_ms(self) -> list[float]:
        return [ms for t in self.turns if (ms := t.tail_ms()) is not None]

    def exact(self) -> int:
        return sum(1 for t in self.turns if t.correct)


class Runner:
    """Sends a phase's questions, measures it, reads the answers back."""

    def __init__(
        self,
        link: BotLink,
        side: Side,
        model: Model,
        openrouter: LoadOpenRouter,
        args: argparse.Namespace,
    ) -> None:
        self.link, self.side, self.model, self.openrouter = link, side, model, openrouter
        self.args = args
        self._next = 0

    def turns(self, count: int, tokens: int, *, tool: bool = False) -> list[AnswerTurn]:
        made = [AnswerTurn(self._next + i, tokens, tool) for i in range(count)]
        self._next += count
        self.model.add(made)
        return made

    async def sequential(
        self, turns: list[AnswerTurn], label: str, *, warm_up: bool = False
    ) -> Phase:
        """One after another in channel 0, each its own conversation (a thread on Slack)."""
        link, side = self.link, self.side
        self.openrouter.latency = self.args.first_byte
        for turn in turns:
            side.place(turn, 0)
        model_since, side_since = len(self.openrouter.requests), side.since()
        per_turn_s = self.args.first_byte * 2 + max(t.tokens for t in turns) * self.args.token_delay
        complete = True
        async with link.block(label, ended=len(turns), lag=False, warm_up=warm_up) as block:
            for i, turn in enumerate(turns):
                await side.send(turn)
                if not await link.settle(i + 1, per_turn_s + 30):
                    complete = False
                    break
        assert block.figures is not None
        self.model.attribute(self.openrouter, model_since)
        side.collect(turns, side_since, sequential=True)
        return Phase(label, turns, block.figures, complete)

    async def burst(self, turns: list[AnswerTurn], label: str) -> Phase:
        """All at once over channels 1..``--channels``, model latency ``--burst-latency``."""
        link, side, args = self.link, self.side, self.args
        self.openrouter.latency = args.burst_latency
        for i, turn in enumerate(turns):
            side.place(turn, 1 + i % args.channels)
        model_since, side_since = len(self.openrouter.requests), side.since()
        timeout_s = args.burst_latency + len(turns) * 0.5 + 60
        async with link.block(label, ended=len(turns), lag=True, timeout_s=10) as block:
            first = time.monotonic()
            await asyncio.gather(*(side.send(t) for t in turns))
            complete = await link.settle(len(turns), timeout_s)
            wall_s = time.monotonic() - first
        assert block.figures is not None
        self.model.attribute(self.openrouter, model_since)
        side.collect(turns, side_since, sequential=False)
        return Phase(label, turns, block.figures, complete, wall_s)


# --------------------------------------------------------------------------- report


def first_text_note(side: Side) -> str:
    if isinstance(side, SlackSide):
        return (
            f" (Slack's adapter holds the first text {FIRST_TEXT_DELAY_S * 1000:.0f} ms for more,"
            " FIRST_TEXT_DELAY: an answer complete by then is one post)"
        )
    return ""


def report_phase(link: BotLink, side: Side, phase: Phase, args: argparse.Namespace) -> None:
    say = link.print
    sample = phase.turns[0]
    what = (
        f"a weather tool round trip then {sample.tokens} tokens"
        if sample.tool
        else f"{sample.tokens} tokens"
    )
    say(
        f"\n{phase.label}: {phase.n} answer{'s' if phase.n != 1 else ''} of {what}, one token a"
        " chunk"
        f" {args.token_delay * 1000:.0f} ms apart; {side.name}"
    )
    wrong = [t for t in phase.turns if not t.correct]
    tool = ""
    if sample.tool:
        ok = sum(1 for t in phase.turns if t.tool_output_ok)
        tool = f"; the model got the weather from Open-Meteo in {ok}/{phase.n}"
    say(
        f"  answers:      {phase.exact()}/{phase.n} in place and exact"
        + (f" (first wrong one shows {wrong[0].shown[:80]!r}...)" if wrong else "")
        + tool
        + ("" if phase.complete else "; the adapter did not end every turn in time")
    )
    cpu = phase.cpu_per_answer_ms()
    target = ""
    if sample.tokens == 500 and not sample.tool:
        target = f"   target <= {TARGET_CPU_500_MS:.0f} ms: {verdict(cpu <= TARGET_CPU_500_MS)}"
    say(
        f"  CPU (bot):    {cpu:.1f} ms per answer, {cpu * 1000 / sample.tokens:.0f} us per chunk"
        f" (all in){target}"
    )
    first = phase.first_text_ms()
    p99 = _p99(first)
    say(
        f"  first text:   model's first token -> first visible text at the platform:"
        f" {dist(first)}   target <= {TARGET_FIRST_TEXT_MS:.0f} ms:"
        f" {verdict(p99 <= TARGET_FIRST_TEXT_MS)}" + first_text_note(side)
    )
    say(f"  last token -> final text in place: {dist(phase.tail_ms())}")
    say(*process_lines(phase.figures, phase.n, per="answer"))


def _p99(samples: list[float]) -> float:
    return percentile(samples, 99) if samples else float("nan")


def report_slope(link: BotLink, sized: list[Phase]) -> tuple[float, float] | None:
    """The marginal CPU of a chunk and the fixed CPU of a turn, from the sizes' extremes."""
    if len(sized) < 2:
        return None
    small, large = sized[0], sized[-1]
    apart = large.turns[0].tokens - small.turns[0].tokens
    per_chunk_ms = (large.cpu_per_answer_ms() - small.cpu_per_answer_ms()) / apart
    fixed_ms = small.cpu_per_answer_ms() - per_chunk_ms * small.turns[0].tokens
    link.print(
        f"\ncost of a chunk (the slope from {small.turns[0].tokens} to"
        f" {large.turns[0].tokens} tokens): {per_chunk_ms * 1000:.0f} us; fixed cost of a turn"
        f" (the intercept): {fixed_ms:.1f} ms"
    )
    return per_chunk_ms, fixed_ms


def report_burst(link: BotLink, side: Side, phase: Phase, args: argparse.Namespace) -> float:
    say, fig = link.print, phase.figures
    tokens = phase.turns[0].tokens
    say(
        f"\nburst: {phase.n} conversations at once over {args.channels} channels, model latency"
        f" {args.burst_latency:.2f} s, answers of {tokens} tokens one a chunk; {side.name}"
    )
    landed = [t.final_at - t.dispatched for t in phase.turns if t.final_at is not None]
    say(
        f"  answers:      {phase.exact()}/{phase.n} in place and exact; the last in place"
        f" {max(landed, default=float('nan')):.2f} s after its dispatch; all ended"
        f" {phase.wall_s:.2f} s after the first"
        + ("" if phase.complete else " (NOT all: the adapter did not end every turn in time)")
    )
    per_core = phase.n / fig.cpu_s if fig.cpu_s else float("nan")
    say(
        f"  throughput:   {per_core:.1f} turns per second per core (turns / the bot's CPU"
        f" seconds); CPU {fig.cpu_ms(phase.n):.1f} ms per turn,"
        f" {fig.cpu_s * 1e6 / max(phase.chunks, 1):.0f} us per chunk (all in)"
    )
    say(
        f"  loop lag:     p50 {fig.lag_p50_ms:.1f} ms, p99 {fig.lag_p99_ms:.1f} ms, max"
        f" {fig.lag_max_ms:.0f} ms (a 10 ms ticker's lateness over the burst); core peaks:"
        f" {fig.peak_running} turns running, {fig.peak_waiting} waiting"
    )
    say(f"  first text:   {dist(phase.first_text_ms())}" + first_text_note(side))
    say(*process_lines(fig, phase.n))
    return per_core


# --------------------------------------------------------------------------- run


async def start_platform(
    stack: AsyncExitStack, link: BotLink, args: argparse.Namespace, settings: dict[str, object]
) -> tuple[BotInfo, Side]:
    """The platform's fake, the bot asked for, the side that drives it."""
    lines = [
        f"world (another process, with the fakes and the traffic): FakeOpenRouter (one token a"
        f" chunk, {args.token_delay * 1000:.0f} ms apart), FakeOpenMeteo and the"
        f" {args.platform} fake"
    ]
    if args.platform == "discord":
        discord = await stack.enter_async_context(
            guild_world(
                "Answers Guild",
                channels=["answers", *(f"burst-{i}" for i in range(args.channels))],
                users=20,
            )
        )
        bot = await link.ready({**settings, **discord_settings(discord)}, ["discord"], lines)
        channels = [by_name(discord, "answers").id]
        channels += [by_name(discord, f"burst-{i}").id for i in range(args.channels)]
        return bot, DiscordSide(discord, channels, authors(discord))
    native = args.platform == "slack-native"
    slack = await stack.enter_async_context(LoadSlack())
    bot = await link.ready({**settings, **slack_settings(slack, native=native)}, ["slack"], lines)
    assert bot.slack_url is not None
    return bot, SlackSide(slack, bot.slack_url, native=native)


async def run(link: BotLink, name: str, args: argparse.Namespace) -> None:
    model = Model(args.token_delay)
    async with AsyncExitStack() as stack:
        openrouter = await stack.enter_async_context(
            LoadOpenRouter(latency=args.first_byte, default_responder=model.respond)
        )
        meteo = await stack.enter_async_context(LoadOpenMeteo())
        settings: dict[str, object] = {
            **openrouter_settings(openrouter),
            **open_meteo_settings(meteo),
            "BOT_MAX_CONCURRENT_TURNS": max(32, args.burst),
            "BOT_USER_RATE_LIMIT": 0,  # a few simulated users send everything
        }
        bot, side = await start_platform(stack, link, args, settings)
        runner = Runner(link, side, model, openrouter, args)
        say = link.print
        warm = await runner.sequential(
            runner.turns(1, 50) + runner.turns(1, 50, tool=True), "warm-up", warm_up=True
        )
        say(
            "warm-up (cold paths: the first model call, the first tool call): "
            + ", ".join(
                f"{'tool' if t.tool else 'text'} {(t.final_at - t.dispatched) * 1000:.0f} ms"
                if t.final_at
                else "NOT answered"
                for t in warm.turns
            )
        )
        sized = []
        for tokens, count in sizes_and_counts(args):
            if count:
                phase = await runner.sequential(runner.turns(count, tokens), f"{tokens} tokens")
                report_phase(link, side, phase, args)
                sized.append(phase)
        slope = report_slope(link, sized)
        tool = None
        if args.tool_turns:
            tool = await runner.sequential(
                runner.turns(args.tool_turns, args.tool_tokens, tool=True), "tool round trip"
            )
            report_phase(link, side, tool, args)
        await asyncio.sleep(1.0)
        async with link.block("idle", ended=0, lag=False) as idle:
            pass
        assert idle.figures is not None
        answered = sum(p.n for p in sized) + (tool.n if tool else 0)
        burst = None
        per_core = float("nan")
        if args.burst:
            burst = await runner.burst(runner.turns(args.burst, args.burst_tokens), "burst")
            per_core = report_burst(link, side, burst, args)
        peak = (burst or tool or (sized[-1] if sized else warm)).figures.peak_rss_mb
        idle_rss = idle.figures.rss_after_mb
        say(
            f"\nmemory: RSS right after start {bot.rss_mb:.0f} MB (peak so far"
            f" {bot.peak_rss_mb:.0f} MB)   target <= {TARGET_RSS_MB:.0f} MB:"
            f" {verdict(bot.rss_mb <= TARGET_RSS_MB)}; idle after {answered} answers"
            f" {idle_rss:.0f} MB   target <= {TARGET_RSS_MB:.0f} MB:"
            f" {verdict(idle_rss <= TARGET_RSS_MB)}; peak RSS of the process {peak:.0f} MB"
        )
        rows = summary_rows(side, bot, sized, slope, tool, burst, per_core, idle_rss, answered)
        link.summary(f"answers: {side.name}", rows)
        phases = [*sized, *([tool] if tool else []), *([burst] if burst else [])]
        await link.done(all(p.complete and p.exact() == p.n for p in phases))


def summary_rows(
    side: Side,
    bot: BotInfo,
    sized: list[Phase],
    slope: tuple[float, float] | None,
    tool: Phase | None,
    burst: Phase | None,
    per_core: float,
    idle_rss: float,
    answered: int,
) -> list[SummaryRow]:
    rss = f"<= {TARGET_RSS_MB:.0f} MB"
    rows = [SummaryRow("RSS right after start", f"{bot.rss_mb:.0f} MB", rss, bot.rss_mb <= 283)]
    for i, phase in enumerate(sized):
        tokens, cpu = phase.turns[0].tokens, phase.cpu_per_answer_ms()
        target, met = "", None
        if tokens == 500:
            target, met = f"<= {TARGET_CPU_500_MS:.0f} ms", cpu <= TARGET_CPU_500_MS
        elif i == 0:
            target, met = f"<= {TARGET_SHORT_TURN_MS:.0f} ms", cpu <= TARGET_SHORT_TURN_MS
        rows.append(SummaryRow(f"CPU per {tokens}-token answer", f"{cpu:.1f} ms", target, met))
    if slope is not None:
        rows.append(SummaryRow("CPU per chunk (slope)", f"{slope[0] * 1000:.0f} us"))
        rows.append(SummaryRow("CPU of a turn (intercept)", f"{slope[1]:.1f} ms"))
    first = [ms for p in sized for ms in p.first_text_ms()]
    if first:
        p99 = _p99(first)
        rows.append(SummaryRow("first text p50", f"{statistics.median(first):.1f} ms"))
        rows.append(
            SummaryRow(
                "first text p99",
                f"{p99:.1f} ms",
                f"<= {TARGET_FIRST_TEXT_MS:.0f} ms",
                p99 <= TARGET_FIRST_TEXT_MS,
            )
        )
    if tool is not None:
        rows.append(SummaryRow("CPU per tool round trip", f"{tool.cpu_per_answer_ms():.1f} ms"))
    rows.append(
        SummaryRow(f"RSS idle after {answered} answers", f"{idle_rss:.0f} MB", rss, idle_rss <= 283)
    )
    if burst is not None:
        fig = burst.figures
        rows += [
            SummaryRow("burst: turns/s per core", f"{per_core:.1f}"),
            SummaryRow("burst: CPU per turn", f"{fig.cpu_ms(burst.n):.1f} ms"),
            SummaryRow("burst: loop lag p99", f"{fig.lag_p99_ms:.1f} ms"),
            SummaryRow("burst: first text p99", f"{_p99(burst.first_text_ms()):.0f} ms"),
            SummaryRow("burst: exact answers", f"{burst.exact()}/{burst.n}"),
            SummaryRow("peak RSS", f"{fig.peak_rss_mb:.0f} MB"),
        ]
    return rows
