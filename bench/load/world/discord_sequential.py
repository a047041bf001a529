"""discord-latency and discord-first-text: mentions one after another through the fake gateway.

The bot: the real DiscordAdapter (discord.py's client: REST and the zlib-stream gateway) over
the real core. The world stores every user message and dispatches it as MESSAGE_CREATE over
the real websocket; the REST requests FakeDiscord records are the measurements. A mention is
sent once the adapter has ended the previous one. One warm-up turn goes first in another
channel (cold imports, the first command sync, discord.py's first rate-limit buckets).

- discord-latency: an instant model, ``--sequential`` mentions in #general, twice: (a) the
  answer in one chunk (the reply POST carries it), (b) in ``--latency-chunks`` chunks
  ``--latency-chunk-delay`` s apart (a POST with the first text, then the final edit, which
  the 1.5 s throttle must not hold back). MESSAGE_CREATE dispatched -> the request that put
  the final text in place reached the fake (minus the time the model streamed, in b).
  Target p50 <= 100 ms: a finished answer is never held back by the edit throttle.
- discord-first-text: ``--samples`` mentions; the model's first byte after ``--first-byte``
  (0.5 s), then the answer in 10 chunks 0.3 s apart (~3.5 s): the first content chunk left the
  fake (its request's arrival + first byte + chunk delay) -> the bot's first message POST
  reached the fake. Target <= 0.5 s.
"""

from __future__ import annotations

import argparse
import itertools
import statistics

from bench._shared import dist, verdict
from bench.load.figures import SummaryRow, process_lines
from bench.load.protocol import BotLink
from bench.load.world.discord_traffic import (
    EDIT_INTERVAL_S,
    DiscordTurn,
    Rig,
    answers_line,
    default_world,
    discord_rig,
    limited_total,
    medians,
    sequential,
    status_line,
    statuses,
)
from bench.load.world.fakes import ModelShape

TARGET_LATENCY_P50_MS = 100.0
TARGET_FIRST_TEXT_S = 0.5


# --------------------------------------------------------------------------- latency


async def latency_variant(rig: Rig, args: argparse.Namespace, shape: ModelShape, tag: str) -> float:
    """``--sequential`` mentions answered in ``shape``; prints the figures, returns the p50 of
    dispatch -> final text landed, minus the time the model streamed."""
    general = rig.fake.channel
    mark = shape.mark() if shape != rig.model else ""
    turns = [DiscordTurn(general.id, f"latency {tag}-{i}{mark}") for i in range(args.sequential)]
    watch, fig, complete = await sequential(rig, turns, f"latency {tag}")
    counts = statuses(watch.requests)
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
    say = rig.link.print
    say(
        f"\nlatency {tag}: {len(turns)} sequential mentions in #{general.name}; model:"
        f" {shape.describe()}"
    )
    p50 = statistics.median(to_final) if to_final else float("nan")
    met = complete and len(to_final) == len(turns) and p50 <= TARGET_LATENCY_P50_MS
    minus = f" - {streamed_ms:.0f} ms streamed" if streamed_ms else ""
    say(
        f"  dispatch -> final text landed{minus}: {dist(to_final)}"
        f"   target p50 <= {TARGET_LATENCY_P50_MS:.0f} ms: {verdict(met)}"
    )
    say(
        f"    final text put in place by the reply POST: {via_post}, by an edit after it:"
        f" {via_patch}"
        + (
            f"; first POST -> final edit {dist(post_to_final, ps=(50, 99))} (held back by the"
            f" {EDIT_INTERVAL_S} s throttle it would be >= {EDIT_INTERVAL_S * 1000:.0f} ms)"
            if post_to_final
            else ""
        )
    )
    say(f"    dispatch -> first POST landed: {dist(to_post)}")
    answers_line(say, turns, fig.outcomes_of("discord"))
    say(
        f"  REST:         {status_line(counts)}; 429s {limited_total(counts)}, discord.py"
        f" retries after a 429: {fig.discord_py_retries}"
        + ("" if complete else "; gave up waiting for a turn after 30 s")
    )
    say(*process_lines(fig, len(turns)))
    return p50


async def run_latency(link: BotLink, args: argparse.Namespace) -> None:
    instant = ModelShape(latency=0.0)
    streamed = ModelShape(latency=0.0, chunks=args.latency_chunks, delay=args.latency_chunk_delay)
    async with discord_rig(
        link,
        args,
        default_world(),
        instant,
        title=f"latency: {args.sequential} sequential mentions, instant model",
        warmup="random",
    ) as rig:
        results = []
        for i in range(args.runs):
            one = await latency_variant(rig, args, instant, f"run {i + 1}a")
            several = await latency_variant(rig, args, streamed, f"run {i + 1}b")
            results.append({"p50_one_chunk": one, "p50_streamed": several})
        summary = medians(link, "latency", results)
        link.summary(
            f"discord-latency: {args.sequential} sequential mentions",
            [
                SummaryRow(
                    f"final text p50, {label}",
                    f"{summary[key]:.1f} ms",
                    f"<= {TARGET_LATENCY_P50_MS:.0f} ms",
                    summary[key] <= TARGET_LATENCY_P50_MS,
                )
                for key, label in (("p50_one_chunk", "one chunk"), ("p50_streamed", "streamed"))
            ],
        )
        await link.done(all(v == v for r in results for v in r.values()))  # NaN: unanswered


# --------------------------------------------------------------------------- first text


async def first_text_run(rig: Rig, args: argparse.Namespace, tag: str) -> dict[str, float]:
    general = rig.fake.channel
    model = rig.model
    turns = [DiscordTurn(general.id, f"first text {tag}-{i}") for i in range(args.samples)]
    watch, fig, complete = await sequential(rig, turns, f"first-text {tag}", note_model=True)
    counts = statuses(watch.requests)

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
    say = rig.link.print
    say(
        f"\nfirst-text {tag}: {len(turns)} sequential mentions in #{general.name}; model:"
        f" {model.describe()}"
    )
    worst = max(first_text) if first_text else float("nan")
    met = complete and len(first_text) == len(turns) and worst <= TARGET_FIRST_TEXT_S * 1000
    say(
        f"  first content chunk left the fake -> first POST landed:"
        f" {dist(first_text, ps=(50, 99))}   target <= {TARGET_FIRST_TEXT_S} s: {verdict(met)}"
    )
    say(
        f"    (the brief's approximation, dispatch + first byte {model.latency:.2f} s -> first"
        f" POST: {dist(approx, ps=(50, 99))}; it includes the chunk delay {model.delay:.2f} s"
        " and the bot's way to the model)"
    )
    say(f"    dispatch -> model request received: {dist(to_model, ps=(50, 99))}")
    say(
        f"    first POST carried only the start of the answer (streamed, not waited for):"
        f" {partial_first}/{len(turns)}"
    )
    edits = [t.edits for t in turns if t.landed is not None]
    say(
        f"  last chunk left -> final text landed: {dist(last_to_final, ps=(50, 99))} (the final"
        f" edit is not held back by the {EDIT_INTERVAL_S} s throttle)"
    )
    if edits:
        say(
            f"    edits per answer mean {statistics.mean(edits):.2f} (max {max(edits)}) for"
            f" {model.chunks} chunks; shortest gap between two updates before the final one:"
            + (f" {min(gaps):.2f} s" if gaps else " -")
        )
    answers_line(say, turns, fig.outcomes_of("discord"))
    say(
        f"  REST:         {status_line(counts)}; 429s {limited_total(counts)}"
        + ("" if complete else "; gave up waiting for a turn after 30 s")
    )
    say(*process_lines(fig, len(turns)))
    return {
        "p50_ms": statistics.median(first_text) if first_text else float("nan"),
        "max_ms": worst,
    }


async def run_first_text(link: BotLink, args: argparse.Namespace) -> None:
    model = ModelShape(latency=args.first_byte, chunks=10, delay=0.3)
    async with discord_rig(
        link,
        args,
        default_world(),
        model,
        title=f"first-text: {args.samples} sequential mentions, a ~3.5 s streamed answer",
        warmup="random",
    ) as rig:
        results = [await first_text_run(rig, args, f"run {i + 1}") for i in range(args.runs)]
        summary = medians(link, "first-text", results)
        link.summary(
            f"discord-first-text: {args.samples} sequential mentions",
            [
                SummaryRow("first text p50", f"{summary['p50_ms']:.1f} ms"),
                SummaryRow(
                    "first text max",
                    f"{summary['max_ms']:.1f} ms",
                    f"<= {TARGET_FIRST_TEXT_S} s",
                    summary["max_ms"] <= TARGET_FIRST_TEXT_S * 1000,
                ),
            ],
        )
        await link.done(all(v == v for r in results for v in r.values()))


# --------------------------------------------------------------------------- run


async def run(link: BotLink, name: str, args: argparse.Namespace) -> None:
    await (run_latency(link, args) if name == "discord-latency" else run_first_text(link, args))
