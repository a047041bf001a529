"""mixed: Slack and Discord together under load and faults, on one core: issue #6's figures.

The bot: the real core with the real SlackAdapter (HTTP mode, signed ``POST /slack/events``)
and DiscordAdapter (discord.py over the fake gateway) on one event loop, as ``python -m bot``
runs them. The world: FakeOpenRouter, FakeSlack and FakeDiscord, the traffic and the
bookkeeping of what was answered. Nothing leaves 127.0.0.1.

Traffic: ``--events`` (1,000) user messages at random times over ``--seconds`` (60), half Slack,
half Discord, over ``--channels`` channels per platform and enough users per platform that nobody
passes the per-user limit (BOT_USER_RATE_LIMIT stays at its default, 10 a minute; a turn refused
by it would be reported as told of a failure, with the line):

- Slack, signed ``app_mention`` deliveries: 70% open a new thread, 30% follow up in a thread whose
  last answer is in (one conversation, several turns);
- Discord, MESSAGE_CREATE over the gateway: 50% mentions in a channel (each its own
  conversation), 30% mentions in one of ``--threads`` threads (one conversation each: they queue
  behind each other), 20% replies to an earlier answer (found through the bot's reply chain).

Faults, each switchable:

- ``--model-5xx`` (10%) of the model requests answer HTTP 500, 502 or 503. The bot retries with
  backoff (BOT_MODEL_RETRIES=2, BOT_RETRY_BACKOFF=1 s, its defaults), so a turn fails after three
  5xx in a row, and must then say so in one line;
- ``--slack-429`` (5%) of the Slack Web API calls an answer makes (``chat.*``,
  ``assistant.threads.setStatus``) get HTTP 429 with ``Retry-After: 1``, which the adapter's
  slack_sdk retry handler waits out (``FakeSlack.rate_limit_randomly``);
- ``--slack-redeliver`` (5%) of the Slack events are delivered again 0.2-3 s after the first
  delivery was acknowledged, with ``X-Slack-Retry-Num: 1`` and the same event id: the store's
  claim must keep them to one answer.

The model answers "echo: <what it was asked>": first byte after ``--latency`` (0.5 s), then
``--chunks`` (4) chunks ``--chunk-delay`` (0.15 s) apart, so answers stream.

Verdict per user message, from the fakes' records (``mixed_ledger``): answered exactly once (the
answer's text in place, once), told of a failure (a failure line, in italics, and no answer),
lost (neither: no answer and no failure line, or only part of the answer), doubled (the answer
twice, or an answer and a failure line). The run fails if any message was lost or doubled.

Overhead (final message - delivery - model latency) with faults taken out: from the delivery's
start (Slack: the signed POST leaving the fake; Discord: the MESSAGE_CREATE dispatch), or from
the previous answer in the same conversation if that came later (the core answers a
conversation's messages in order), to the request that put the final text in place reaching the
fake, minus the time spent waiting on things outside the bot: the model's requests at the fake
(arrival to last byte), the backoff between two model attempts, and the wait after a 429 (the
429 to its retry reaching the fake). Overlapping waits count once. Queueing for a model slot
(BOT_MAX_CONCURRENT_TURNS) is the bot's own and stays in.

Targets: nothing lost or doubled; overhead p99 <= 50 ms. ``bench.soak`` runs this world with
steady traffic for minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Self

from bench.load.figures import SummaryRow, process_lines
from bench.load.protocol import BotLink
from bench.load.world.fakes import (
    SECRET,
    LoadOpenRouter,
    LoadSlack,
    discord_settings,
    guild_world,
    openrouter_settings,
    slack_settings,
)
from bench.load.world.mixed_ledger import Ledger
from bench.load.world.mixed_report import print_faults, print_overhead, print_verdicts
from tests.fakes.discord import new_snowflake
from tests.fakes.openrouter import ErrorReply, Reply, TextReply, last_user_text
from tests.fakes.slack import app_mention, new_ts

JSONDict = dict[str, Any]

WARMUP = "warmup"
SLACK_429_METHODS = (
    "chat.postMessage",
    "chat.update",
    "chat.startStream",
    "chat.appendStream",
    "chat.stopStream",
    "assistant.threads.setStatus",
)
MODEL_5XX = (500, 502, 503)
WORDS = [
    *("weather", "oslo", "lisbon", "tokyo", "time", "zone", "cache", "http", "sqlite"),
    *("python", "thread", "answer", "retry", "budget", "stream", "markdown", "channel"),
    *("summary", "explain", "briefly", "compare", "list", "three", "reasons", "why", "how"),
]


@dataclass
class WorldConfig:
    """What the mixed world does (bench.soak sets ``arrivals`` and ``progress_s``)."""

    events: int
    seconds: float
    arrivals: str = "random"
    """``random``: uniform random times; ``even``: evenly spaced (steady traffic)."""
    seed: int = 1
    latency: float = 0.5
    chunks: int = 4
    chunk_delay: float = 0.15
    model_5xx: float = 0.10
    slack_429: float = 0.05
    slack_redeliver: float = 0.05
    channels: int = 20
    threads: int = 10
    users: int = 0
    """Users per platform; 0: enough that nobody sends more than 6 messages a minute."""
    give_up_s: float = 90.0
    """A message with no final answer this long after its delivery is lost."""
    settle_s: float = 3.0
    """After the last final answer, how long to keep watching for doubles."""
    progress_s: float = 0.0
    """Print a progress line this often (0: never)."""

    def users_per_platform(self) -> int:
        if self.users:
            return self.users
        per_minute = self.events / 2 / max(self.seconds, 1.0) * 60
        return max(10, math.ceil(per_minute / 6))


@dataclass
class Turn:
    """One user message, and what the world saw of its answer."""

    idx: int
    platform: str
    kind: str
    """slack-new, slack-follow-up; discord-channel, discord-thread, discord-reply."""
    at: float
    """Planned offset from the start of the traffic, seconds."""
    user: int
    question: str
    conversation: str = ""
    """The world's name for the conversation (the order in which its turns are answered)."""
    # Slack
    channel: str = ""
    root_ts: str = ""
    ts: str = ""
    event_id: str = ""
    redeliver: bool = False
    # Discord
    channel_id: int = 0
    message_id: int = 0
    # What happened
    dispatched: float = 0.0
    acks: list[int] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    """The bot's messages answering this one (Slack ts / Discord ids as str), in order."""
    final_at: float | None = None
    model: list[tuple[float, float, int]] = field(default_factory=list)
    """(arrival, last byte, status) of this turn's model requests."""
    expected: str | None = None
    """The answer the model gave (``None`` until a request succeeded)."""
    limited: list[tuple[float, float]] = field(default_factory=list)
    """Waits after a 429 (the 429 reached the fake, its retry reached the fake)."""
    slack_429: int = 0
    discord_429: int = 0

    @property
    def token(self) -> str:
        return f"q{self.idx:06d}"


class MixedWorld:
    """The fakes and the traffic; the ledger keeps the books."""

    def __init__(self, config: WorldConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.fault_rng = random.Random(config.seed + 1)
        self.faults_on = False
        self.openrouter = LoadOpenRouter(
            latency=config.latency, default_responder=self._respond, record_bodies=True
        )
        self.slack = LoadSlack()
        users = config.users_per_platform()
        self.slack_users = [f"UL{i:05d}" for i in range(users)]
        self.slack_channels = [f"CLOAD{i:03d}" for i in range(config.channels)]
        self.discord = guild_world(
            "Load Guild",
            channels=[WARMUP, *(f"load-{i}" for i in range(config.channels))],
            threads=[f"thread-{i}" for i in range(config.threads)],
            users=users,
            bot_name="LoadBot",
        )
        self.discord_users = [u for u in self.discord.users.values() if not u.bot]
        self.guild = self.discord.guild
        self.ledger = Ledger(self.openrouter, self.slack, self.discord)
        self.slack_url = ""
        self.turns: list[Turn] = []
        self.latest: dict[str, Turn] = {}
        """The last turn sent in each conversation."""
        self._slack_roots: list[Turn] = []
        self.redelivery_acks: Counter[int] = Counter()
        self.delivery_tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Self:
        await self.openrouter.start()
        await self.slack.start()
        await self.discord.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.discord.stop()
        await self.slack.stop()
        await self.openrouter.stop()

    def settings(self) -> JSONDict:
        return {
            **openrouter_settings(self.openrouter),
            **slack_settings(self.slack),
            **discord_settings(self.discord),
        }

    # ------------------------------------------------------------------ the model

    def _respond(self, body: JSONDict) -> Reply:
        text = last_user_text(body)
        if (
            self.faults_on
            and not text.startswith(WARMUP)
            and self.fault_rng.random() < self.config.model_5xx
        ):
            return ErrorReply(self.fault_rng.choice(MODEL_5XX))
        return TextReply(f"echo: {text}", chunks=self.config.chunks, delay=self.config.chunk_delay)

    # ------------------------------------------------------------------ sending

    def _prepare_slack(self, turn: Turn) -> JSONDict:
        """Place a Slack turn (a new thread, or a follow-up in an idle one); its event."""
        follow = self._idle(self._slack_roots) if turn.kind == "slack-follow-up" else None
        turn.ts = new_ts()
        if follow is not None:
            turn.channel, turn.root_ts = follow.channel, follow.root_ts
        else:
            turn.kind = "slack-new"
            turn.channel, turn.root_ts = self.rng.choice(self.slack_channels), turn.ts
            self._slack_roots.append(turn)
        turn.conversation = f"slack:{turn.channel}:{turn.root_ts}"
        turn.event_id = f"Ev{turn.idx:06d}{self.rng.randrange(16**6):06X}"
        self.ledger.slack_thread[(turn.channel, turn.root_ts)] = turn
        return app_mention(
            f"<@{self.slack.bot_user_id}> {turn.question}",
            user=self.slack_users[turn.user],
            channel=turn.channel,
            ts=turn.ts,
            thread_ts=None if follow is None else turn.root_ts,
            parent_user_id=None if follow is None else self.slack_users[follow.user],
        )

    async def _deliver_slack(self, turn: Turn, event: JSONDict) -> None:
        status, _ = await self.slack.deliver_event(
            self.slack_url, SECRET, event, event_id=turn.event_id
        )
        turn.acks.append(status)
        if turn.redeliver:
            await asyncio.sleep(self.rng.uniform(0.2, 3.0))
            status, _ = await self.slack.deliver_event(
                self.slack_url, SECRET, event, event_id=turn.event_id, retry_num=1
            )
            turn.acks.append(status)
            self.redelivery_acks[status] += 1

    def _prepare_discord(self, turn: Turn) -> int | None:
        """Place a Discord turn (a channel, a thread, or a reply to the last answer of an idle
        conversation); the id of the message it replies to, if any."""
        reply_to = (
            self._idle(self.ledger.discord_answered) if turn.kind == "discord-reply" else None
        )
        reference: int | None = None
        if reply_to is not None:
            turn.channel_id = reply_to.channel_id
            turn.conversation = reply_to.conversation
            reference = int(reply_to.messages[-1])
        elif turn.kind == "discord-thread":
            thread = self.rng.choice(self.guild.threads)
            turn.channel_id = thread.id
            turn.conversation = f"discord-thread:{thread.id}"
        else:
            turn.kind = "discord-channel"
            turn.channel_id = self.rng.choice(self.guild.channels[1:]).id
        turn.message_id = new_snowflake()
        turn.conversation = turn.conversation or f"discord:{turn.message_id}"
        self.ledger.discord_user_message[turn.message_id] = turn
        return reference

    async def _send_discord(self, turn: Turn, reference: int | None) -> None:
        await self.discord.send_user_message(
            turn.channel_id,
            self.discord_users[turn.user],
            content=f"{self.discord.bot.mention} {turn.question}",
            message_reference=reference,
            message_id=turn.message_id,
        )

    def _idle(self, candidates: list[Turn]) -> Turn | None:
        """The last turn of a conversation with nothing in flight (that turn is final and
        left a message), picked at random among the 200 latest candidates' conversations;
        None if a few tries find none."""
        window = candidates[-200:]
        for _ in range(5) if window else ():
            latest = self.latest.get(self.rng.choice(window).conversation)
            if latest is not None and latest.final_at is not None and latest.messages:
                return latest
        return None

    def _start(self, turn: Turn) -> None:
        """Place ``turn`` and send it now, in a task of its own."""
        coro: Coroutine[Any, Any, None]
        if turn.platform == "slack":
            coro = self._deliver_slack(turn, self._prepare_slack(turn))
        else:
            coro = self._send_discord(turn, self._prepare_discord(turn))
        self.latest[turn.conversation] = turn
        self.ledger.by_token[turn.token] = turn
        turn.dispatched = time.monotonic()
        task = asyncio.create_task(coro)
        self.delivery_tasks.add(task)
        task.add_done_callback(self.delivery_tasks.discard)

    def plan(self) -> list[Turn]:
        config, rng = self.config, self.rng
        n = config.events
        if config.arrivals == "even":
            times = [(i + rng.uniform(0.0, 0.5)) * config.seconds / n for i in range(n)]
        else:
            times = sorted(rng.uniform(0.0, config.seconds) for _ in range(n))
        platforms = ["slack"] * (n // 2) + ["discord"] * (n - n // 2)
        rng.shuffle(platforms)
        per_platform: Counter[str] = Counter()
        users = config.users_per_platform()
        turns = []
        for i, (at, platform) in enumerate(zip(times, platforms, strict=True)):
            roll = rng.random()
            if platform == "slack":
                kind = "slack-follow-up" if roll < 0.3 else "slack-new"
            else:
                kind = (
                    "discord-channel"
                    if roll < 0.5
                    else "discord-thread"
                    if roll < 0.8
                    else "discord-reply"
                )
            words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
            turn = Turn(
                idx=i,
                platform=platform,
                kind=kind,
                at=at,
                user=per_platform[platform] % users,
                question=f"q{i:06d} {words}?",
                redeliver=platform == "slack" and rng.random() < config.slack_redeliver,
            )
            per_platform[platform] += 1
            turns.append(turn)
        return turns

    async def warm_up(self) -> JSONDict:
        """One Slack and one Discord turn without faults (cold paths), in places the traffic
        does not use; returns how long each took, ms."""
        slack = Turn(-1, "slack", "warm-up", 0.0, 0, f"{WARMUP} slack")
        slack.channel, slack.ts = "CWARMUP", new_ts()
        slack.root_ts, slack.conversation = slack.ts, f"slack:CWARMUP:{slack.ts}"
        self.ledger.slack_thread[(slack.channel, slack.ts)] = slack
        discord = Turn(-2, "discord", "warm-up", 0.0, 0, f"{WARMUP} discord")
        discord.channel_id, discord.message_id = self.guild.channels[0].id, new_snowflake()
        discord.conversation = f"discord:{discord.message_id}"
        self.ledger.discord_user_message[discord.message_id] = discord
        self.ledger.warmups = [slack, discord]
        slack.dispatched = time.monotonic()
        event = app_mention(
            f"<@{self.slack.bot_user_id}> {slack.question}", channel=slack.channel, ts=slack.ts
        )
        await self.slack.deliver_event(self.slack_url, SECRET, event)
        discord.dispatched = time.monotonic()
        await self._send_discord(discord, None)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(w.final_at is None for w in self.ledger.warmups):
            self.ledger.track()
            await asyncio.sleep(0.05)
        return {
            w.platform: (w.final_at - w.dispatched) * 1000 if w.final_at else None
            for w in self.ledger.warmups
        }

    async def run(self, progress: Callable[[JSONDict], None]) -> JSONDict:
        """Send the planned traffic, wait for every answer (or give up on it), settle."""
        config = self.config
        self.turns = self.ledger.turns = self.plan()
        self.faults_on = True
        if config.slack_429:
            self.slack.rate_limit_randomly(
                config.slack_429, methods=SLACK_429_METHODS, retry_after=1, seed=config.seed + 2
            )
        start = time.monotonic()
        next_progress = start + config.progress_s if config.progress_s else math.inf
        sent = 0
        while True:
            now = time.monotonic()
            while sent < len(self.turns) and start + self.turns[sent].at <= now:
                self._start(self.turns[sent])
                sent += 1
            self.ledger.track()
            if now >= next_progress:
                progress(self._progress(now - start, sent))
                next_progress += config.progress_s
            if sent == len(self.turns) and not self.delivery_tasks and self._all_ended(now):
                break
            upcoming = start + self.turns[sent].at if sent < len(self.turns) else now + 0.05
            await asyncio.sleep(min(0.05, max(0.0, upcoming - time.monotonic())))
        traffic_s = time.monotonic() - start
        settle_until = time.monotonic() + config.settle_s
        while time.monotonic() < settle_until:
            self.ledger.track()
            await asyncio.sleep(0.05)
        self.ledger.track()
        progress(self._progress(time.monotonic() - start, sent))
        return self.ledger.results(
            traffic_s,
            {
                "redeliveries": sum(self.redelivery_acks.values()),
                "redelivery_acks": {str(k): v for k, v in self.redelivery_acks.items()},
                "users_per_platform": self.config.users_per_platform(),
            },
        )

    def _all_ended(self, now: float) -> bool:
        return all(
            t.final_at is not None or now - t.dispatched > self.config.give_up_s for t in self.turns
        )

    def _progress(self, elapsed: float, sent: int) -> JSONDict:
        ended = [t for t in self.turns[:sent] if t.final_at is not None]
        return {"t": round(elapsed, 1), "sent": sent, "final": len(ended)}


# --------------------------------------------------------------------------- run


def config_from(args: argparse.Namespace) -> WorldConfig:
    return WorldConfig(
        events=args.events,
        seconds=args.seconds,
        arrivals=getattr(args, "arrivals", "random"),
        seed=args.seed,
        latency=args.latency,
        chunks=args.chunks,
        chunk_delay=args.chunk_delay,
        model_5xx=args.model_5xx,
        slack_429=args.slack_429,
        slack_redeliver=args.slack_redeliver,
        channels=args.channels,
        threads=args.threads,
        users=args.users,
        progress_s=args.progress,
    )


def describe(config: WorldConfig) -> str:
    return (
        f"world (another process, with the fakes and the traffic): model first byte after"
        f" {config.latency:.2f} s, then {config.chunks} chunks {config.chunk_delay:.2f} s apart;"
        f" faults: {config.model_5xx:.0%} of model requests 5xx, {config.slack_429:.0%} of Slack"
        f" answer calls 429 (Retry-After 1), {config.slack_redeliver:.0%} of Slack events"
        f" delivered twice; {config.channels} channels per platform, {config.threads} Discord"
        " threads"
    )


async def run(link: BotLink, name: str, args: argparse.Namespace) -> None:
    config = config_from(args)
    async with MixedWorld(config) as world:
        settings = world.settings()
        if args.max_concurrent_turns:
            settings["BOT_MAX_CONCURRENT_TURNS"] = args.max_concurrent_turns
        bot = await link.ready(settings, ["slack", "discord"], [describe(config)])
        assert bot.slack_url is not None
        world.slack_url = bot.slack_url
        # A block of its own: both adapters have ended the warm-up before the load begins.
        async with link.block("warm-up", ended=2, lag=False, timeout_s=30, warm_up=True):
            warm = await world.warm_up()
        link.print(
            "warm-up (cold paths, no faults): "
            + ", ".join(
                f"{p} {ms:.0f} ms" if ms is not None else f"{p} NOT answered"
                for p, ms in warm.items()
            )
        )
        async with link.block("load", ended=config.events, timeout_s=10) as block:
            result = await world.run(link.progress)
        fig = block.figures
        assert fig is not None
        say = link.print
        say(
            f"\nload: {config.events} events over {config.seconds:.0f} s"
            f" (traffic and answers took {result['traffic_s']:.1f} s)"
        )
        v = print_verdicts(say, result, fig.outcomes)
        met, p99 = print_overhead(say, v)
        print_faults(say, result, v)
        say(
            f"  core:         peak turns running {fig.peak_running}, waiting"
            f" {fig.peak_waiting}; peak asyncio tasks {fig.peak_tasks}"
        )
        say(*process_lines(fig, config.events, per="event"))
        ok = v.lost == 0 and v.doubled == 0
        say(
            f"\nexactly-once: {'OK' if ok else 'FAILED'} ({v.lost} lost, {v.doubled} doubled);"
            f" overhead p99 target {'met' if met else 'NOT met'}"
        )
        link.summary(
            f"mixed: {config.events} events over {config.seconds:.0f} s",
            [
                SummaryRow("lost", str(v.lost), "0", v.lost == 0),
                SummaryRow("doubled", str(v.doubled), "0", v.doubled == 0),
                SummaryRow("overhead p99", f"{p99:.1f} ms", "<= 50 ms", met),
                SummaryRow("CPU per event (bot)", f"{fig.cpu_ms(config.events):.2f} ms"),
                SummaryRow("longest loop stall", f"{fig.lag_max_ms:.0f} ms"),
                SummaryRow("peak RSS", f"{fig.peak_rss_mb:.0f} MB"),
            ],
        )
        await link.done(ok, lost=v.lost, doubled=v.doubled)
