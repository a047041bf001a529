"""A soak: steady Slack and Discord traffic on one core for minutes, and whether anything grows.

The bot and world of ``python -m bench.load --scenario mixed`` (``bench/load/world/mixed.py``):
the real core with the real Slack (HTTP mode) and Discord adapters on one loop in this process
(``bench.load.host``), a SQLite file in a temporary directory, and a child process with the
fakes (FakeOpenRouter, FakeSlack, FakeDiscord) and the traffic, so that every figure sampled
here is the bot's alone. Traffic is steady: ``--rate`` (2) user messages a second, evenly
spaced, half Slack and half Discord, mixed as in the mixed scenario, with the same faults by
default (10% model 5xx, 5% Slack 429s, 5% Slack redeliveries; ``--model-5xx 0`` and so on to
switch them off): error paths are where leaks hide.

Every ``--sample-every`` (30) seconds this process samples itself: RSS; asyncio tasks;
``core.locks`` (one per conversation with a turn in flight or waiting); turns in flight (the
adapters' ``InFlight``, the core's running/waiting counts when it keeps them); open sockets
(``/proc/self/fd`` entries that are sockets) and all fds; the connections of the Slack adapter's and
discord.py's aiohttp sessions (in use / idle); objects the collector tracks; the SQLite file with
its WAL. One more sample is taken once the traffic has stopped and every message is answered (counts
of work in flight should be back to zero).

Warm-up: the first 2 minutes (a quarter of the run when that is shorter than 8 minutes, e.g. 30 s
of a 2-minute run). After it:

- memory growth: RSS of the last sample under traffic against the sample that ended the warm-up,
  in %; target < 5%;
- counts (tasks, locks, rate-limiter keys, turns in flight, sockets, fds, connections): first,
  last and max after the warm-up. A count "grows without bound" when the last sample under
  traffic is more than twice the warm-up's value plus 10; exit status 1 if one does;
- exactly once, as in the mixed scenario: exit status 1 if any message was lost or doubled.
  The SQLite file grows with the history it keeps (reported, not judged).

    python -m bench.soak [--minutes 10] [--rate 2] [--sample-every 30] [--model-5xx 0.1]
        [--model-client litellm|openrouter]
    python -m bench.soak --minutes 2                      # a quick check

Targets: RSS growth after the warm-up < 5%; no count growing without bound; nothing lost or
doubled.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench._shared import rss_mb
from bench.load.host import Bot, serve
from bench.load.protocol import WorldProcess, world_process
from bench.load.scenarios import mixed_arguments

if TYPE_CHECKING:
    import aiohttp

TARGET_RSS_GROWTH_PCT = 5.0
WARMUP_S = 120.0


# --------------------------------------------------------------------------- samples


def socket_fds() -> tuple[int, int]:
    """(sockets, all fds) open in this process now."""
    sockets = total = 0
    for name in os.listdir("/proc/self/fd"):
        total += 1
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                sockets += 1
        except OSError:
            continue  # closed meanwhile (the listdir's own fd, for one)
    return sockets, total


def connections(session: aiohttp.ClientSession | None) -> tuple[int, int]:
    """(in use, idle) connections of an aiohttp session's connector; (-1, -1) if unknown."""
    connector = getattr(session, "connector", None) if session is not None else None
    acquired = getattr(connector, "_acquired", None)
    pooled = getattr(connector, "_conns", None)
    if acquired is None or pooled is None:
        return -1, -1
    return len(acquired), sum(len(v) for v in pooled.values())


def file_mb(path: Path) -> float:
    try:
        return path.stat().st_size / 1e6
    except OSError:
        return 0.0


@dataclass
class Sample:
    t: float
    """Seconds since the traffic started."""
    sent: int
    answered: int
    rss_mb: float
    counts: dict[str, int]
    sqlite_mb: float
    wal_mb: float
    took_ms: float
    """How long taking this sample held the loop."""


COUNTS = (
    "tasks",
    "locks",
    "in flight",
    "sockets",
    "fds",
    "slack conns",
    "discord conns",
)
"""The counts judged by the growth rule (the others are shown only)."""


def take_sample(bot: Bot, t: float, progress: dict[str, Any]) -> Sample:
    started = time.perf_counter()
    core = bot.core
    sockets, fds = socket_fds()
    slack_in_use, slack_idle = connections(getattr(bot.slack, "_session", None))
    client = getattr(bot.discord, "client", None)
    http = getattr(client, "http", None)
    discord_in_use, discord_idle = connections(getattr(http, "_HTTPClient__session", None))
    counts = {
        "tasks": len(asyncio.all_tasks()),
        "locks": len(core.locks),
        "in flight": len(getattr(bot.slack, "_inflight", ()))
        + len(getattr(bot.discord, "_inflight", ())),
        "core running": int(getattr(core, "running", -1)),
        "core waiting": int(getattr(core, "waiting", -1)),
        "typing": len(getattr(bot.discord, "_typing", ())),
        "sockets": sockets,
        "fds": fds,
        "slack conns": slack_in_use + slack_idle,
        "slack in use": slack_in_use,
        "discord conns": discord_in_use + discord_idle,
        "discord in use": discord_in_use,
        "gc objects": len(gc.get_objects()),
    }
    database = bot.database
    return Sample(
        t=t,
        sent=int(progress.get("sent", 0)),
        answered=int(progress.get("final", 0)),
        rss_mb=rss_mb(),
        counts=counts,
        sqlite_mb=file_mb(database),
        wal_mb=file_mb(database.with_name(database.name + "-wal")),
        took_ms=(time.perf_counter() - started) * 1000,
    )


def sample_line(s: Sample, label: str = "") -> str:
    c = s.counts
    return (
        f"  {label or f'{s.t:6.0f} s'} sent {s.sent:5d} ended {s.answered:5d}  RSS"
        f" {s.rss_mb:6.1f} MB  tasks {c['tasks']:4d}  locks {c['locks']:3d}"
        f"  in flight {c['in flight']:3d} (core {c['core running']}"
        f" running, {c['core waiting']} waiting)  sockets {c['sockets']:3d} / fds {c['fds']:3d}"
        f"  conns slack {c['slack conns']:2d} ({c['slack in use']} in use) discord"
        f" {c['discord conns']:2d} ({c['discord in use']})  gc objects {c['gc objects']:,}"
        f"  SQLite {s.sqlite_mb:.2f} MB + WAL {s.wal_mb:.2f} MB  ({s.took_ms:.0f} ms)"
    )


@dataclass
class Sampler:
    world: WorldProcess
    every_s: float
    until_s: float
    bot: Bot | None = None
    samples: list[Sample] = field(default_factory=list)
    drained: Sample | None = None

    def attach(self, bot: Bot) -> None:
        self.bot = bot

    async def during(self, label: str) -> None:
        """Beside the measured traffic (not the warm-up): the samples."""
        if label == "load":
            await self.run(time.monotonic())

    async def drain(self, bot: Bot) -> None:
        """Once every message is answered: one more sample."""
        await asyncio.sleep(1.0)  # let the last answers' tasks end
        progress = self.world.progress
        self.drained = take_sample(bot, float(progress.get("t", self.until_s)), progress)
        print(sample_line(self.drained, "drained "))

    async def run(self, started: float) -> None:
        """A sample at 0 s, every ``every_s``, and at ``until_s`` (the traffic's end)."""
        assert self.bot is not None
        k = 0
        while True:
            due = min(k * self.every_s, self.until_s)
            await asyncio.sleep(max(0.0, started + due - time.monotonic()))
            sample = take_sample(self.bot, due, self.world.progress)
            self.samples.append(sample)
            print(sample_line(sample), flush=True)
            if due >= self.until_s:
                return
            k += 1


# --------------------------------------------------------------------------- report


def growth(samples: list[Sample], warmup_s: float) -> tuple[Sample, list[Sample]]:
    """The sample that ended the warm-up, and those from it on."""
    after = [s for s in samples if s.t >= warmup_s - 1e-6] or samples[-1:]
    return after[0], after


def report(samples: list[Sample], drained: Sample, warmup_s: float) -> tuple[bool, bool]:
    """Print the growth figures; (RSS target met, no count growing without bound)."""
    warm, after = growth(samples, warmup_s)
    last = after[-1]
    rss_pct = 100 * (last.rss_mb - warm.rss_mb) / warm.rss_mb
    rss_ok = rss_pct < TARGET_RSS_GROWTH_PCT
    peak = max(s.rss_mb for s in after)
    print(
        f"  RSS after the warm-up: {warm.rss_mb:.1f} MB at {warm.t:.0f} s -> {last.rss_mb:.1f} MB"
        f" at {last.t:.0f} s ({rss_pct:+.1f}%; max {peak:.1f} MB; after draining"
        f" {drained.rss_mb:.1f} MB)   target < {TARGET_RSS_GROWTH_PCT:.0f}%:"
        f" {'met' if rss_ok else 'NOT met'}"
    )
    if len(after) < 3:
        print(f"    (only {len(after)} samples after the warm-up: a short run says little)")
    bounded = True
    print(
        "  counts after the warm-up (warm-up value / first / last / max under traffic / after"
        " draining), grows without bound if last > 2 x warm-up + 10:"
    )
    for name in (*COUNTS, "core running", "core waiting", "typing", "gc objects"):
        values = [s.counts[name] for s in after]
        limit = 2 * warm.counts[name] + 10
        judged = name in COUNTS
        grows = judged and values[-1] > limit
        bounded = bounded and not grows
        verdict = ("GROWS" if grows else "bounded") if judged else "(shown only)"
        print(
            f"    {name:<14} {warm.counts[name]:>9,} / {values[0]:>9,} / {values[-1]:>9,} /"
            f" {max(values):>9,} / {drained.counts[name]:>9,}   {verdict}"
        )
    print(
        f"  SQLite: {warm.sqlite_mb:.2f} MB (+ WAL {warm.wal_mb:.2f} MB) after the warm-up,"
        f" {drained.sqlite_mb:.2f} MB (+ WAL {drained.wal_mb:.2f} MB) at the end (history is"
        " kept: it grows with the traffic)"
    )
    leftovers = {
        name: drained.counts[name]
        for name in ("locks", "in flight", "core running", "core waiting", "typing")
        if drained.counts[name] > 0
    }
    if leftovers:
        print(f"  NOT back to zero once every message was answered: {leftovers}")
    return rss_ok, bounded


# --------------------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> int:
    duration = args.minutes * 60
    warmup_s = min(WARMUP_S, duration / 4)
    options = {
        **{k: v for k, v in vars(args).items() if k not in SOAK_OPTIONS},
        "events": max(2, round(args.rate * duration)),
        "seconds": duration,
        "arrivals": "even",
        "progress": min(args.sample_every, 2.0),
    }
    print(
        f"soak: {options['events']} events over {args.minutes:g} min ({args.rate:g} a second),"
        f" a sample every {args.sample_every:g} s, warm-up {warmup_s:.0f} s"
    )
    async with world_process("mixed", options) as world:
        sampler = Sampler(world, args.sample_every, duration)
        result = await serve(
            world,
            model_client=args.model_client,
            hook=sampler.during,
            on_bot=sampler.attach,
            on_done=sampler.drain,
        )
    assert sampler.drained is not None
    print(f"\nsoak: {options['events']} events over {duration:.0f} s")
    rss_ok, bounded = report(sampler.samples, sampler.drained, warmup_s)
    exact = result.done.get("lost") == 0 and result.done.get("doubled") == 0
    print(
        f"\nexactly-once: {'OK' if exact else 'FAILED'}; counts"
        f" {'bounded' if bounded else 'GROWING'}; RSS growth target"
        f" {'met' if rss_ok else 'NOT met'}"
    )
    return 0 if exact and bounded else 1


SOAK_OPTIONS = {"minutes", "rate", "sample_every", "model_client"}
"""Options of this process; the others go to the mixed world."""


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the traffic runs")
    parser.add_argument("--rate", type=float, default=2.0, help="user messages per second")
    parser.add_argument("--sample-every", type=float, default=30.0, help="seconds")
    parser.add_argument(
        "--model-client",
        choices=("litellm", "openrouter"),
        default="litellm",
        help="BOT_MODEL_CLIENT of the bot",
    )
    mixed_arguments(parser)
    args = parser.parse_args()
    if args.minutes <= 0 or args.rate <= 0 or args.sample_every <= 0:
        parser.error("--minutes, --rate and --sample-every must be positive")
    from bot.settings import prepare_library_environment

    prepare_library_environment()  # before the agent stack is imported: litellm offline, quiet
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
