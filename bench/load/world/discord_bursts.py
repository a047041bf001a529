"""discord-spread and discord-one-channel: mentions at once through the fake gateway.

The bot: the real DiscordAdapter over the real core, BOT_MAX_CONCURRENT_TURNS >= 500 so that
the core queues no burst. One warm-up turn goes first in another channel, reported apart.

- discord-spread: ``--spread-n`` mentions at once over ``--channels`` channels and
  ``--threads`` threads (FakeDiscord's default limit, 50 requests per second per route and
  channel; its 429s are reported), model latency ``--latency``. Targets: all answered within
  3 s, no duplicates (bot messages replying to one user message), overhead p50 <= 10 ms
  (final text landed - dispatch - model latency). A thread is one conversation and the core
  answers a conversation's messages in order, so mentions sharing a thread wait for each
  other: their overhead counts from the thread's previous answer (the target's figure pools
  these with the channel mentions' own), and is shown from their own dispatch too.
- discord-one-channel: ``--n`` mentions at once in #general with POST and PATCH of messages
  limited to 5 per 5 s per channel (Discord's real-ish limit), model latency ``--latency``
  then the answer in 5 chunks 0.2 s apart: time until everyone is answered, the 429s the fake
  sent, edits per answer (coalescing), exactly one answer each. Target: the limit honoured
  without 429 storms (here: fewer than 1 in 10 of the limited calls answered 429), everyone
  answered once.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass

from bench._shared import dist, percentile, verdict
from bench.load.figures import BlockFigures, SummaryRow, process_lines
from bench.load.protocol import BotLink
from bench.load.world.discord_traffic import (
    EDIT_ROUTE,
    POST_ROUTE,
    DiscordTurn,
    DiscordWatch,
    Rig,
    answers_line,
    default_world,
    discord_rig,
    limited_total,
    medians,
    mention,
    spread_world,
    status_line,
    statuses,
)
from bench.load.world.fakes import ModelShape

TARGET_SPREAD_N = 500
TARGET_SPREAD_ALL_S = 3.0
TARGET_OVERHEAD_P50_MS = 10.0
ONE_CHANNEL_LIMIT = (5, 5.0)
"""one-channel: requests per window, window seconds, for POST and PATCH of messages."""


@dataclass
class AtOnce:
    """A burst of mentions and what came of it."""

    watch: DiscordWatch
    figures: BlockFigures
    first: float
    """When the first mention was dispatched."""
    dispatched_s: float
    """How long dispatching them all took."""
    waited_s: float

    @property
    def complete(self) -> bool:
        """The adapter ended every turn before the world stopped waiting."""
        return self.figures.complete


async def at_once(rig: Rig, turns: list[DiscordTurn], label: str, timeout_s: float) -> AtOnce:
    """Every mention at once (authors in turn); wait until every answer is in place."""
    fake = rig.fake
    watch = DiscordWatch(fake, list(turns), since=len(fake.requests))
    people = rig.authors
    async with rig.link.block(label, ended=len(turns), timeout_s=10) as block:
        first = time.monotonic()
        await asyncio.gather(
            *(mention(fake, t, people[i % len(people)]) for i, t in enumerate(turns))
        )
        dispatched_s = time.monotonic() - first
        await watch.until_landed(first + timeout_s)
        waited = time.monotonic() - first
    watch.poll()
    watch.count_answers()
    assert block.figures is not None
    return AtOnce(watch, block.figures, first, dispatched_s, waited)


# --------------------------------------------------------------------------- spread


def thread_net_overhead_ms(turns: list[DiscordTurn], latency: float) -> list[float]:
    """Thread turns: final text landed - max(dispatch, the thread's previous answer landed) -
    model latency (the core answers a conversation's messages in order)."""
    out: list[float] = []
    per_thread: dict[int, list[DiscordTurn]] = defaultdict(list)
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


async def spread_run(rig: Rig, args: argparse.Namespace, tag: str) -> dict[str, float]:
    guild = rig.fake.guild
    places = [(c, False) for c in guild.channels if c.id != rig.warmup_channel.id] + [
        (t, True) for t in guild.threads
    ]
    n = args.spread_n
    turns = [
        DiscordTurn(places[i % len(places)][0].id, f"spread {tag}-{i}", places[i % len(places)][1])
        for i in range(n)
    ]
    timeout_s = rig.model.latency * (n / len(places) + 1) + max(60.0, n * 0.2)
    burst = await at_once(rig, turns, f"spread {tag}", timeout_s)
    watch, fig, first, complete = burst.watch, burst.figures, burst.first, burst.complete
    dispatched_s, waited = burst.dispatched_s, burst.waited_s
    outcomes = fig.outcomes_of("discord")
    counts = statuses(watch.requests)
    latency = rig.model.latency

    def all_in(selected: list[DiscordTurn]) -> float | None:
        if not selected or any(t.landed is None for t in selected):
            return None
        return max(t.landed_at() or 0.0 for t in selected) - first

    channel_turns = [t for t in turns if not t.in_thread]
    thread_turns = [t for t in turns if t.in_thread]
    all_s = all_in(turns) if complete else None
    channels = sum(1 for _, is_thread in places if not is_thread)
    threads = len(places) - channels
    say = rig.link.print
    say(
        f"\nspread {tag}: {n} mentions at once over {channels} channels and {threads} threads"
        f" ({n / len(places):.0f} per place), model latency {latency:.2f} s"
    )
    all_text = f"{all_s:.3f} s" if all_s is not None else "NOT all answered"
    say(
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
        say(
            f"    {label}: {len(selected)}, all answered"
            f" {f'{done:.3f} s' if done is not None else 'NOT all'} after the first dispatch"
            + (
                f"; first {finals[0]:.3f} s, median {statistics.median(finals):.3f} s"
                if finals
                else ""
            )
        )
    answered, _, duplicated = answers_line(say, turns, outcomes)
    say(
        f"  duplicates:    {duplicated} mentions with more than one bot answer; outcomes"
        f"['duplicate'] = {outcomes.get('duplicate', 0)}   target 0: {verdict(duplicated == 0)}"
    )
    raw = [
        ((t.landed_at() or 0.0) - t.dispatched - latency) * 1000
        for t in channel_turns
        if t.landed is not None
    ]
    net = thread_net_overhead_ms(turns, latency)
    combined = raw + net
    p50 = statistics.median(combined) if combined else float("nan")
    say(
        f"  overhead:      {dist(combined)}   target p50 <= {TARGET_OVERHEAD_P50_MS:.0f} ms:"
        f" {verdict(p50 <= TARGET_OVERHEAD_P50_MS)}"
    )
    say(f"    channel mentions (final text landed - dispatch - {latency:.2f} s): {dist(raw)}")
    if thread_turns:
        queued = [
            ((t.landed_at() or 0.0) - t.dispatched - latency) * 1000
            for t in thread_turns
            if t.landed is not None
        ]
        say(f"    thread mentions, counted from the thread's previous answer: {dist(net)}")
        say(f"    thread mentions, counted from their own dispatch (queued): {dist(queued)}")
    say(
        f"    dispatching all {n} MESSAGE_CREATEs took {dispatched_s * 1000:.0f} ms (one"
        " websocket, one frame after another; each turn counts from its own dispatch)"
    )
    say(
        f"  REST:          {status_line(counts)}; 429s {limited_total(counts)}"
        f" (FakeDiscord's default limit: 50 per route and channel per second), discord.py"
        f" retries after a 429: {fig.discord_py_retries}; {len(watch.requests) / n:.2f}"
        " requests per turn" + ("" if complete else f"; gave up waiting after {waited:.1f} s")
    )
    say(*process_lines(fig, n))
    return {
        "all_s": all_s if all_s is not None else float("nan"),
        "overhead_p50": p50,
        "overhead_p99": percentile(combined, 99) if len(combined) > 1 else float("nan"),
        "duplicates": float(duplicated),
        "answered": float(answered),
    }


async def run_spread(link: BotLink, args: argparse.Namespace) -> None:
    async with discord_rig(
        link,
        args,
        spread_world(args.channels, args.threads),
        ModelShape(latency=args.latency),
        title=(
            f"spread: {args.spread_n} mentions at once over {args.channels} channels and"
            f" {args.threads} threads"
        ),
        warmup="warm-up",
    ) as rig:
        results = [await spread_run(rig, args, f"run {i + 1}") for i in range(args.runs)]
        summary = medians(link, "spread", results)
        link.summary(
            f"discord-spread: {args.spread_n} mentions at once",
            [
                SummaryRow(
                    "all answered",
                    f"{summary['all_s']:.3f} s",
                    f"<= {TARGET_SPREAD_ALL_S} s for {TARGET_SPREAD_N}",
                    summary["all_s"] <= TARGET_SPREAD_ALL_S and args.spread_n >= TARGET_SPREAD_N,
                ),
                SummaryRow(
                    "overhead p50",
                    f"{summary['overhead_p50']:.1f} ms",
                    f"<= {TARGET_OVERHEAD_P50_MS:.0f} ms",
                    summary["overhead_p50"] <= TARGET_OVERHEAD_P50_MS,
                ),
                SummaryRow("overhead p99", f"{summary['overhead_p99']:.1f} ms"),
                SummaryRow(
                    "duplicates", f"{summary['duplicates']:.0f}", "0", summary["duplicates"] == 0
                ),
            ],
        )
        await link.done(
            all(r["answered"] == args.spread_n and r["duplicates"] == 0 for r in results)
        )


# --------------------------------------------------------------------------- one channel


async def one_channel_run(rig: Rig, args: argparse.Namespace, tag: str) -> dict[str, float]:
    general = rig.fake.channel
    n = args.n
    limit, per_s = ONE_CHANNEL_LIMIT
    turns = [DiscordTurn(general.id, f"one-channel {tag}-{i}") for i in range(n)]
    # Each answer needs a POST and (its text having changed meanwhile) an edit, both limited.
    timeout_s = rig.model.last_chunk_s + 3 * math.ceil(n / limit) * per_s + 60
    burst = await at_once(rig, turns, f"one-channel {tag}", timeout_s)
    watch, fig, first, complete = burst.watch, burst.figures, burst.first, burst.complete
    waited = burst.waited_s
    outcomes = fig.outcomes_of("discord")
    counts = statuses(watch.requests)
    landed = [t.landed_at() for t in turns]
    all_s = (
        max(x for x in landed if x is not None) - first
        if complete and all(x is not None for x in landed)
        else None
    )
    posts = sum(1 for t in turns for r in t.ok() if r.method == "POST")
    floor_s = (math.ceil(max(posts, n) / limit) - 1) * per_s
    say = rig.link.print
    say(
        f"\none-channel {tag}: {n} mentions at once in #{general.name}; POST and PATCH of"
        f" messages limited to {limit} per {per_s:.0f} s per channel; model:"
        f" {rig.model.describe()}"
    )
    say(
        "  everyone answered: "
        + (f"{all_s:.1f} s after the first dispatch" if all_s is not None else "NOT everyone")
        + f" (the POST limit alone needs >= {floor_s:.0f} s for {max(posts, n)} POSTs)"
        + ("" if complete else f"; gave up waiting after {waited:.0f} s")
    )
    finals = sorted(x - first for x in landed if x is not None)
    if finals:
        quarter = finals[len(finals) // 4]
        say(
            f"    final texts landed: first {finals[0]:.1f} s, 25% by {quarter:.1f} s, median"
            f" {statistics.median(finals):.1f} s, last {finals[-1]:.1f} s"
        )
    for method in ("POST", "PATCH"):
        times = sorted(r.received_at - first for t in turns for r in t.ok() if r.method == method)
        if times:
            windows = math.floor((times[-1] - times[0]) / per_s) + 1
            say(
                f"    {method} 200s: {len(times)}, from {times[0]:.1f} s to {times[-1]:.1f} s:"
                f" {len(times) / windows:.2f} per {per_s:.0f} s window over {windows} windows"
                f" (limit {limit})"
            )
    _, _, duplicated = answers_line(say, turns, outcomes)
    total_429 = limited_total(counts)
    limited_calls = sum(counts["POST"].values()) + sum(counts["PATCH"].values())
    by_route = ", ".join(f"{k} {v[429]}" for k, v in counts.items())
    say(
        f"  429s:         {total_429} sent by the fake ({by_route}) for {limited_calls} limited"
        f" calls; discord.py retries after a 429: {fig.discord_py_retries}"
        f"   target no 429 storm (here: under 1 in 10 limited calls):"
        f" {verdict(total_429 * 10 < limited_calls)}"
    )
    edits = [t.edits for t in turns if t.landed is not None]
    if edits:
        say(
            f"  edits:        per answer mean {statistics.mean(edits):.2f}, max {max(edits)}"
            f" (the model streamed {rig.model.chunks} chunks per answer); answers whose first"
            f" POST already carried the whole text:"
            f" {sum(1 for t in turns if t.landed is not None and t.landed.method == 'POST')}/{n}"
        )
    say(f"  REST:         {status_line(counts)}; {len(watch.requests) / n:.2f} requests per turn")
    say(*process_lines(fig, n))
    everyone = all_s is not None and duplicated == 0
    return {
        "all_s": all_s if all_s is not None else float("nan"),
        "429s": float(total_429),
        "limited_calls": float(limited_calls),
        "edits_mean": statistics.mean(edits) if edits else float("nan"),
        "everyone": float(everyone),
    }


async def run_one_channel(link: BotLink, args: argparse.Namespace) -> None:
    _, per_s = ONE_CHANNEL_LIMIT
    async with discord_rig(
        link,
        args,
        default_world(),
        ModelShape(latency=args.latency, chunks=5, delay=0.2),
        title=f"one-channel: {args.n} mentions at once in one rate-limited channel",
        warmup="random",
        limits={POST_ROUTE: ONE_CHANNEL_LIMIT, EDIT_ROUTE: ONE_CHANNEL_LIMIT},
    ) as rig:
        results = []
        for i in range(args.runs):
            if i:
                await asyncio.sleep(per_s)  # a fresh window for the next run
            results.append(await one_channel_run(rig, args, f"run {i + 1}"))
        summary = medians(link, "one-channel", results)
        link.summary(
            f"discord-one-channel: {args.n} mentions at once in one rate-limited channel",
            [
                SummaryRow("everyone answered", f"{summary['all_s']:.1f} s"),
                SummaryRow(
                    "429s",
                    f"{summary['429s']:.0f} of {summary['limited_calls']:.0f}",
                    "under 1 in 10",
                    summary["429s"] * 10 < summary["limited_calls"],
                ),
                SummaryRow("edits per answer", f"{summary['edits_mean']:.2f}"),
            ],
        )
        await link.done(all(r["everyone"] for r in results))


async def run(link: BotLink, name: str, args: argparse.Namespace) -> None:
    await (run_spread(link, args) if name == "discord-spread" else run_one_channel(link, args))
