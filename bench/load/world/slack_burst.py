"""slack-burst: N @mentions in N threads at once through Slack's HTTP mode, with a 1 s model.

The bot: the real SlackAdapter (slack_bolt ``AsyncApp`` + slack_sdk ``AsyncWebClient``) in
HTTP mode over the real core, BOT_MAX_CONCURRENT_TURNS=N so that the core does not queue them.
The world delivers N signed ``app_mention`` events to the adapter's ``POST /slack/events``,
all at once (``asyncio.gather``): N top-level messages, each its own thread, spread over
``--channels`` channel ids. ``--twins`` also delivers the ``message`` twin Slack sends with
every mention in a channel the app reads, so the exactly-once claim is exercised under load.
FakeOpenRouter answers every request after ``--latency`` seconds ("echo: <question>", one
chunk).

One warm-up turn goes first (cold imports, the first model call), reported apart. Then,
per run of N turns:

- all answered: from the first delivery until the last thread's final chat call (stopStream or
  postMessage) reached the fake, with every thread's final call answered ok, its text the
  expected answer and the adapter's ``outcomes["answered"]`` up by N; and the acks (HTTP 200,
  how fast);
- duplicates: threads with more than one bot message, and ``outcomes["duplicate"]``;
- the bot's own overhead per turn: final chat call received by the fake, minus that event's
  delivery start, minus the model latency (p50 / p99 / max);
- memory (RSS before and after, peak RSS of the bot's process), CPU per turn, Web API calls
  per turn.

Targets: 500 answered within 2.0 s, no duplicates, overhead p50 <= 10 ms and p99 <= 30 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import Counter
from dataclasses import dataclass

from bench._shared import dist, percentile, verdict
from bench.load.figures import BlockFigures, SummaryRow, process_lines
from bench.load.protocol import BotLink
from bench.load.world.fakes import LoadOpenRouter, LoadSlack, openrouter_settings, slack_settings
from bench.load.world.slack_traffic import (
    Ack,
    SlackThread,
    SlackWatch,
    channel_ids,
    check_threads,
    deliver,
    mention_thread,
)
from tests.fakes.slack import ApiCall, FakeSlack, message_event

TARGET_N = 500
TARGET_ALL_S = 2.0
TARGET_P50_MS = 10.0
TARGET_P99_MS = 30.0
WARM_UP = "warm-up"


@dataclass
class Burst:
    n: int
    latency: float
    threads: list[SlackThread]
    acks: list[Ack]
    calls: list[ApiCall]
    first_delivery: float
    waited_s: float
    answered_all: bool
    """The world saw every answer in place before its deadline."""
    figures: BlockFigures | None
    duplicate_threads: int = 0
    wrong_text: int = 0
    streams_open: int = 0

    @property
    def outcomes(self) -> dict[str, int]:
        return self.figures.outcomes_of("slack") if self.figures else {}

    def answered(self) -> list[SlackThread]:
        return [t for t in self.threads if t.final is not None and t.final.ok]

    def all_answered_s(self) -> float | None:
        answered = self.answered()
        if len(answered) < self.n or self.outcomes.get("answered", 0) < self.n or self.wrong_text:
            return None
        return max(t.final.at for t in answered if t.final) - self.first_delivery

    def overhead_ms(self) -> list[float]:
        return [
            (t.final.at - t.started - self.latency) * 1000
            for t in self.threads
            if t.final is not None and t.final.ok
        ]


async def burst(
    link: BotLink,
    slack: FakeSlack,
    url: str,
    args: argparse.Namespace,
    n: int,
    tag: str,
) -> Burst:
    """Deliver N mentions at once; wait until every answer is in place; measure."""
    channels = channel_ids(args.channels)
    threads = [
        mention_thread(slack, channels[i % len(channels)], f"question {tag}-{i}") for i in range(n)
    ]
    deliveries: list[tuple[dict[str, object], SlackThread | None]] = []
    for thread in threads:
        deliveries.append((thread.event, thread))
        if args.twins:
            twin = message_event(thread.event["text"], channel=thread.channel, ts=thread.ts)
            deliveries.append((twin, None))
    watch = SlackWatch(slack, threads, since=len(slack.api_calls))
    acks: list[Ack] = []
    timeout_s = args.latency + max(60.0, n * 0.2)
    first = time.monotonic()

    async def traffic() -> bool:
        nonlocal first
        first = time.monotonic()
        await asyncio.gather(*(deliver(slack, url, e, t, acks) for e, t in deliveries))
        return await watch.until_answered(first + timeout_s)

    # A block (the warm-up's too): the adapter has ended every turn before the next begins.
    duplicates = n if args.twins else 0
    warm_up = tag == WARM_UP
    async with link.block(
        tag, ended=n, duplicates=duplicates, timeout_s=10, warm_up=warm_up
    ) as block:
        answered_all = await traffic()
    figures = block.figures
    waited = time.monotonic() - first
    watch.poll()
    check = check_threads(slack, threads)
    return Burst(
        n=n,
        latency=args.latency,
        threads=threads,
        acks=acks,
        calls=watch.calls,
        first_delivery=first,
        waited_s=waited,
        answered_all=answered_all,
        figures=figures,
        duplicate_threads=check.duplicate_threads,
        wrong_text=check.wrong_text,
        streams_open=check.streams_open,
    )


# --------------------------------------------------------------------------- report


def report_warmup(link: BotLink, result: Burst) -> None:
    thread = result.threads[0]
    final = thread.final
    ack = result.acks[0] if result.acks else None
    if final is None or not final.ok:
        link.print("warm-up turn: NOT answered")
        return
    methods = ", ".join(f"{m} {c}" for m, c in Counter(c.method for c in result.calls).items())
    link.print(
        f"warm-up turn (cold: first model call): answered"
        f" {(final.at - thread.started) * 1000:.0f} ms after delivery"
        f" (overhead {(final.at - thread.started - result.latency) * 1000:.1f} ms beyond the"
        f" model's {result.latency:.2f} s), ack {ack.seconds * 1000 if ack else 0:.1f} ms"
        f" (HTTP {ack.status if ack else '-'}), {len(result.calls)} Web API calls ({methods})"
    )


def report(link: BotLink, result: Burst, label: str) -> dict[str, float]:
    n = result.n
    fig = result.figures
    assert fig is not None
    answered = result.answered()
    all_s = result.all_answered_s()
    acks_ok = sum(1 for a in result.acks if a.status == 200)
    ack_ms = [a.seconds * 1000 for a in result.acks]
    overhead = result.overhead_ms()
    duplicates = result.outcomes.get("duplicate", 0)
    channels = len({t.channel for t in result.threads})
    say = link.print
    say(f"\n{label}: {n} mentions in {n} threads over {channels} channels")
    all_text = f"{all_s:.3f} s" if all_s is not None else "NOT all answered"
    say(
        f"  all answered:        {all_text:<22} target <= {TARGET_ALL_S} s for {TARGET_N}:"
        f" {verdict(all_s is not None and all_s <= TARGET_ALL_S and n >= TARGET_N)}"
        + ("" if n >= TARGET_N else f" (N={n} < {TARGET_N}: not the target's load)")
    )
    say(
        f"    threads whose final chat call was answered ok: {len(answered)}/{n};"
        f" outcomes {result.outcomes}; wrong or missing text: {result.wrong_text}; native"
        f" streams left open: {result.streams_open}"
        + ("" if result.answered_all else f"; gave up waiting after {result.waited_s:.1f} s")
    )
    say(
        f"  acks:                {acks_ok}/{len(result.acks)} HTTP 200;"
        f" ack time {dist(ack_ms, ps=(50, 99))}"
    )
    twins = f" (the {n} message twins claimed away)" if duplicates else ""
    say(
        f"  duplicates:          {result.duplicate_threads} threads with more than one bot"
        f" message; outcomes['duplicate'] = {duplicates}{twins}   target 0:"
        f" {verdict(result.duplicate_threads == 0)}"
    )
    p50 = p99 = float("nan")
    if overhead:
        p50, p99 = statistics.median(overhead), percentile(overhead, 99)
        say(
            f"  overhead per turn:   {dist(overhead, ps=(50, 99))}"
            f"   targets p50 <= {TARGET_P50_MS:.0f} ms: {verdict(p50 <= TARGET_P50_MS)},"
            f" p99 <= {TARGET_P99_MS:.0f} ms: {verdict(p99 <= TARGET_P99_MS)}"
        )
        say(
            "    (final chat call received by the fake - delivery start - model latency"
            f" {result.latency:.2f} s)"
        )
        starts = [t.started for t in result.threads]
        finals = [t.final.at for t in answered if t.final is not None]
        say(
            f"    deliveries started over {(max(starts) - min(starts)) * 1000:.1f} ms; first"
            f" answer {min(finals) - result.first_delivery:.3f} s, median"
            f" {statistics.median(finals) - result.first_delivery:.3f} s after the first delivery"
        )
    by_method = Counter(c.method for c in result.calls)
    not_ok = sum(1 for c in result.calls if not c.ok)
    say(
        f"  Web API calls:       {len(result.calls) / n:.2f} per turn ({len(result.calls)} in all,"
        f" {not_ok} not ok): " + ", ".join(f"{m} {c / n:.2f}" for m, c in sorted(by_method.items()))
    )
    say(*process_lines(fig, n))
    return {
        "all_s": all_s if all_s is not None else float("nan"),
        "p50": p50,
        "p99": p99,
        "max": max(overhead) if overhead else float("nan"),
        "ack_max": max(ack_ms) if ack_ms else float("nan"),
        "dups": float(result.duplicate_threads),
        "cpu_ms": fig.cpu_ms(n),
        "lag_max": fig.lag_max_ms,
        "peak_rss": fig.peak_rss_mb,
    }


def medians(link: BotLink, summaries: list[dict[str, float]]) -> dict[str, float]:
    out = {key: statistics.median(s[key] for s in summaries) for key in summaries[0]}
    if len(summaries) > 1:
        link.print(f"\nmedians over {len(summaries)} runs:")
        for key, name, unit in (
            ("all_s", "all answered", "s"),
            ("p50", "overhead p50", "ms"),
            ("p99", "overhead p99", "ms"),
            ("max", "overhead max", "ms"),
            ("ack_max", "max ack", "ms"),
            ("dups", "duplicate threads", ""),
        ):
            values = ", ".join(f"{s[key]:.3f}" for s in summaries)
            link.print(f"  {name:<18} {out[key]:8.3f} {unit}  (runs: {values})")
    return out


# --------------------------------------------------------------------------- run


async def run(link: BotLink, name: str, args: argparse.Namespace) -> None:
    async with (
        LoadOpenRouter(latency=args.latency, record_bodies=False) as openrouter,
        LoadSlack() as slack,
    ):
        settings = {
            **openrouter_settings(openrouter),
            **slack_settings(slack, native=args.native),
            "BOT_MAX_CONCURRENT_TURNS": args.max_concurrent_turns or args.n,
            # The load comes from one simulated user: the per-user limit would answer most of it.
            "BOT_USER_RATE_LIMIT": 0,
        }
        bot = await link.ready(
            settings,
            ["slack"],
            [
                "world (another process, with the fakes and the traffic): FakeSlack (Web API,"
                " signed event delivery) and FakeOpenRouter, every answer 'echo: <question>'"
                f" in one chunk after {args.latency:.2f} s"
            ],
        )
        assert bot.slack_url is not None
        report_warmup(link, await burst(link, slack, bot.slack_url, args, 1, WARM_UP))
        summaries = []
        ok = True
        for i in range(args.runs):
            result = await burst(link, slack, bot.slack_url, args, args.n, f"r{i}")
            label = f"run {i + 1}/{args.runs}" + (" (with message twins)" if args.twins else "")
            summaries.append(report(link, result, label))
            ok = ok and result.all_answered_s() is not None and result.duplicate_threads == 0
        figures = medians(link, summaries)
        all_s = figures["all_s"]
        link.summary(
            f"slack-burst: {args.n} mentions at once, model latency {args.latency:.2f} s",
            [
                SummaryRow(
                    "all answered",
                    f"{all_s:.3f} s",
                    f"<= {TARGET_ALL_S} s for {TARGET_N}",
                    all_s <= TARGET_ALL_S and args.n >= TARGET_N,
                ),
                SummaryRow(
                    "overhead p50",
                    f"{figures['p50']:.1f} ms",
                    f"<= {TARGET_P50_MS:.0f} ms",
                    figures["p50"] <= TARGET_P50_MS,
                ),
                SummaryRow(
                    "overhead p99",
                    f"{figures['p99']:.1f} ms",
                    f"<= {TARGET_P99_MS:.0f} ms",
                    figures["p99"] <= TARGET_P99_MS,
                ),
                SummaryRow(
                    "duplicate threads", f"{figures['dups']:.0f}", "0", figures["dups"] == 0
                ),
                SummaryRow("CPU per turn (bot)", f"{figures['cpu_ms']:.2f} ms"),
                SummaryRow("longest loop stall", f"{figures['lag_max']:.0f} ms"),
                SummaryRow("peak RSS", f"{figures['peak_rss']:.0f} MB"),
            ],
        )
        await link.done(ok)
