"""The scenarios of ``bench.load``: names, what each measures, their options and defaults.

Each scenario's world lives in ``bench.load.world.<module>`` (traffic, judging, report); its
options are declared here, where the bot process can read them without loading a fake.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


class Options(Protocol):
    """A parser or an argument group: where a scenario's options go."""

    def add_argument(self, *names: str, **kwargs: Any) -> argparse.Action: ...


Arguments = Callable[[Options], None]
"""Adds a scenario's options."""
Check = Callable[[argparse.Namespace], str | None]
"""An error message for bad option values, or None."""


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    module: str
    """The world's module (in bench.load.world) that runs it."""
    arguments: Arguments
    check: Check
    leads: bool = False
    """The world runs in the ``python -m bench.load`` process and starts the bot processes
    (several) itself, instead of one bot process starting the world."""


def _max_turns(parser: Options, default: str) -> None:
    parser.add_argument(
        "--max-concurrent-turns",
        type=int,
        default=0,
        metavar="K",
        help=f"BOT_MAX_CONCURRENT_TURNS (default: {default})",
    )


# --------------------------------------------------------------------------- mixed


def mixed_arguments(parser: Options) -> None:
    """The traffic, fault and model options of the mixed world (bench.soak shares them)."""
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency", type=float, default=0.5, help="model first byte, s")
    parser.add_argument("--chunks", type=int, default=4, help="answer chunks")
    parser.add_argument("--chunk-delay", type=float, default=0.15, help="between chunks, s")
    parser.add_argument("--model-5xx", type=float, default=0.10, help="fraction of requests")
    parser.add_argument("--slack-429", type=float, default=0.05, help="fraction of Slack calls")
    parser.add_argument(
        "--slack-redeliver", type=float, default=0.05, help="fraction of Slack events sent twice"
    )
    parser.add_argument("--channels", type=int, default=20, help="channels per platform")
    parser.add_argument("--threads", type=int, default=10, help="Discord threads")
    parser.add_argument("--users", type=int, default=0, help="users per platform (0: enough)")
    _max_turns(parser, "the bot's own default")


def _mixed(parser: Options) -> None:
    parser.add_argument("--events", type=int, default=1000, help="user messages in all")
    parser.add_argument("--seconds", type=float, default=60.0, help="spread over this long")
    parser.add_argument("--progress", type=float, default=0.0, help="progress line every N s")
    mixed_arguments(parser)


def _check_mixed(args: argparse.Namespace) -> str | None:
    if args.events < 2 or args.seconds <= 0:
        return "--events must be at least 2 and --seconds positive"
    return None


# --------------------------------------------------------------------------- slack-burst


def _slack_burst(parser: Options) -> None:
    parser.add_argument("--n", type=int, default=500, help="concurrent mentions per run")
    parser.add_argument("--latency", type=float, default=1.0, help="model latency, seconds")
    parser.add_argument("--runs", type=int, default=1, help="bursts of N, one after another")
    parser.add_argument("--channels", type=int, default=20, help="channel ids the threads use")
    parser.add_argument(
        "--native",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="SLACK_NATIVE_STREAMING (chat.startStream/stopStream) or post-and-update",
    )
    parser.add_argument(
        "--twins", action="store_true", help="also deliver each mention's message twin"
    )
    _max_turns(parser, "N, so that the core does not queue the burst")


def _check_slack_burst(args: argparse.Namespace) -> str | None:
    if args.n < 2 or args.runs < 1 or args.channels < 1 or args.latency < 0:
        return "--n must be at least 2, --runs and --channels at least 1, --latency >= 0"
    return None


# --------------------------------------------------------------------------- discord


def _discord(parser: Options) -> None:
    """One option set for the four Discord scenarios, so that ``--scenario discord`` takes
    any of them."""
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
    _max_turns(parser, "the largest burst, at least 500")


def _check_discord(args: argparse.Namespace) -> str | None:
    if min(args.runs, args.sequential, args.spread_n, args.n, args.samples) < 1:
        return "--runs, --sequential, --spread-n, --n and --samples must be at least 1"
    if args.channels < 0 or args.threads < 0 or args.channels + args.threads < 1:
        return "--channels and --threads: at least one place for the spread"
    if min(args.latency, args.first_byte, args.latency_chunk_delay) < 0:
        return "latencies and delays must be >= 0"
    if args.latency_chunks < 2:
        return "--latency-chunks must be at least 2"
    return None


# --------------------------------------------------------------------------- answers

ANSWER_PLATFORMS = ("slack-native", "slack-update", "discord")


def _answers(parser: Options) -> None:
    parser.add_argument(
        "--platform",
        choices=(*ANSWER_PLATFORMS, "all"),
        default="all",
        help="Slack with native streaming, Slack posting and updating, or Discord (all: each"
        " in its own process, one after another)",
    )
    parser.add_argument(
        "--sizes", default="50,500,2000", help="answer lengths in tokens, one token a chunk"
    )
    parser.add_argument("--answers", default="20,10,4", help="answers per size, one after another")
    parser.add_argument(
        "--token-delay", type=float, default=0.005, help="seconds between two tokens"
    )
    parser.add_argument(
        "--first-byte", type=float, default=0.1, help="model latency of a sized answer, s"
    )
    parser.add_argument(
        "--tool-turns", type=int, default=10, help="weather tool round trips (0: none)"
    )
    parser.add_argument(
        "--tool-tokens", type=int, default=50, help="the answer after the tool, tokens"
    )
    parser.add_argument(
        "--burst", type=int, default=500, help="conversations at once (0: no burst)"
    )
    parser.add_argument(
        "--burst-latency", type=float, default=1.0, help="model latency in the burst, s"
    )
    parser.add_argument("--burst-tokens", type=int, default=50, help="each burst answer, tokens")
    parser.add_argument(
        "--channels", type=int, default=100, help="burst: channels the conversations use"
    )


def sizes_and_counts(args: argparse.Namespace) -> list[tuple[int, int]]:
    sizes = [int(s) for s in str(args.sizes).split(",") if s.strip()]
    counts = [int(s) for s in str(args.answers).split(",") if s.strip()]
    if len(counts) == 1:
        counts *= len(sizes)
    return list(zip(sizes, counts, strict=True))


def _check_answers(args: argparse.Namespace) -> str | None:
    try:
        pairs = sizes_and_counts(args)
    except ValueError:
        return "--sizes and --answers: comma-separated whole numbers, as many of each"
    if any(size < 1 or count < 0 for size, count in pairs):
        return "--sizes must be positive and --answers not negative"
    if min(args.token_delay, args.first_byte, args.burst_latency) < 0:
        return "delays and latencies must be >= 0"
    if min(args.tool_turns, args.burst) < 0 or args.tool_tokens < 1 or args.burst_tokens < 1:
        return "--tool-turns and --burst >= 0, --tool-tokens and --burst-tokens >= 1"
    if args.channels < 1:
        return "--channels must be at least 1"
    return None


# --------------------------------------------------------------------------- instances

DATABASES = ("sqlite", "postgres")


def _instances(parser: Options) -> None:
    parser.add_argument(
        "--processes",
        default="1,2",
        help="bot processes on one database; several (1,2): one run each, side by side",
    )
    parser.add_argument(
        "--database",
        default="sqlite,postgres",
        help="the shared store: sqlite (one file), postgres (a throwaway PostgreSQL 15"
        " server), or both (one run each)",
    )
    parser.add_argument("--n", type=int, default=500, help="conversations at once")
    parser.add_argument("--latency", type=float, default=1.0, help="model latency, seconds")
    parser.add_argument("--tokens", type=int, default=300, help="each answer, one token a chunk")
    parser.add_argument(
        "--token-delay", type=float, default=0.01, help="seconds between two tokens"
    )
    parser.add_argument("--channels", type=int, default=100, help="channels the threads use")
    parser.add_argument(
        "--native",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="SLACK_NATIVE_STREAMING (chat.startStream/appendStream/stopStream) or post-and-update",
    )
    parser.add_argument(
        "--pool-size", type=int, default=0, help="DATABASE_POOL_SIZE (0: the bot's default)"
    )
    parser.add_argument(
        "--user-rate-limit",
        type=int,
        default=10,
        help="BOT_USER_RATE_LIMIT; every conversation is its own user, so none is refused",
    )
    parser.add_argument(
        "--connection-limit",
        type=int,
        default=0,
        metavar="K",
        help="connections per aiohttp session in the bot processes (0: aiohttp's default,"
        " 100, as the bot runs today; it caps model calls in flight per process)",
    )
    _max_turns(parser, "N, so that model slots are not the bottleneck")


def listed(value: str) -> list[str]:
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _check_instances(args: argparse.Namespace) -> str | None:
    processes = listed(args.processes)
    if not processes or not all(p.isdigit() and 1 <= int(p) <= 8 for p in processes):
        return "--processes: whole numbers from 1 to 8, comma-separated"
    databases = listed(args.database)
    if not databases or not all(d in DATABASES for d in databases):
        return f"--database: {' or '.join(DATABASES)}, comma-separated"
    if args.n < 1 or args.tokens < 1 or args.channels < 1:
        return "--n, --tokens and --channels must be at least 1"
    if args.pool_size < 0 or args.connection_limit < 0:
        return "--pool-size and --connection-limit must be >= 0"
    if min(args.latency, args.token_delay) < 0 or args.user_rate_limit < 0:
        return "latency, delay and rate limit must be >= 0"
    return None


# --------------------------------------------------------------------------- the registry

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "mixed",
            "Slack and Discord on one core under model 5xx, Slack 429s and redeliveries:"
            " every message answered once or told, none lost or doubled (issue #6)",
            "mixed",
            _mixed,
            _check_mixed,
        ),
        Scenario(
            "slack-burst",
            "N @mentions in N threads at once through Slack's HTTP mode, a 1 s model",
            "slack_burst",
            _slack_burst,
            _check_slack_burst,
        ),
        Scenario(
            "discord-latency",
            "sequential mentions, an instant model: a finished answer is never held back",
            "discord_sequential",
            _discord,
            _check_discord,
        ),
        Scenario(
            "discord-spread",
            "500 mentions at once over channels and threads, a 1 s model",
            "discord_bursts",
            _discord,
            _check_discord,
        ),
        Scenario(
            "discord-one-channel",
            "mentions at once in one channel under Discord's per-channel rate limit",
            "discord_bursts",
            _discord,
            _check_discord,
        ),
        Scenario(
            "discord-first-text",
            "sequential mentions, a ~3.5 s streamed answer: how soon the first text shows",
            "discord_sequential",
            _discord,
            _check_discord,
        ),
        Scenario(
            "answers",
            "realistic answers streamed one token a chunk (50, 500, 2,000 tokens), a weather"
            " tool round trip and a 500-conversation burst: CPU per answer and per chunk,"
            " first-text latency, loop lag, RSS",
            "answers",
            _answers,
            _check_answers,
        ),
        Scenario(
            "instances",
            "1 vs 2 bot processes on one database (SQLite or PostgreSQL): 500 conversations"
            " at once, a 1 s model, 300-token answers a token a chunk, spread over the"
            " processes: throughput, latency, CPU per turn, RSS, errors and duplicates",
            "instances",
            _instances,
            _check_instances,
            leads=True,
        ),
    )
}

GROUPS: dict[str, list[str]] = {
    "discord": ["discord-latency", "discord-spread", "discord-one-channel", "discord-first-text"],
}
"""Names that run several scenarios, one after another (each in its own process)."""
