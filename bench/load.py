"""Slack and Discord together under load and faults, on one core: issue #6's reliability figures.

The bot runs in this process as ``python -m bot`` runs it (``bot/__main__.py`` ``_serve``): the
real core (``open_services`` + ``build_core``, a SQLite file in a temporary directory,
LOG_LEVEL=WARNING) with the real ``SlackAdapter`` (HTTP mode, signed ``POST /slack/events``) and
``DiscordAdapter`` (discord.py over the fake gateway) on one event loop. A child process, the
*world*, runs everything else: FakeOpenRouter, FakeSlack and FakeDiscord on 127.0.0.1, the traffic
and the bookkeeping of what was answered. So the CPU, RSS, task and socket figures are the bot's
alone, and the fakes' work never queues on the bot's loop. Nothing leaves 127.0.0.1.

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

Verdict per user message, from the fakes' records: answered exactly once (the answer's text in
place, once), told of a failure (a failure line, in italics, and no answer), lost (neither: no
answer and no failure line, or only part of the answer), doubled (the answer twice, or an answer
and a failure line). Exit status 1 if any message was lost or doubled.

Overhead, as in bench.slack_concurrency (final message - delivery - model latency) with faults
taken out: from the delivery's start (Slack: the signed POST leaving the fake; Discord: the
MESSAGE_CREATE dispatch), or from the previous answer in the same conversation if that came later
(the core answers a conversation's messages in order), to the request that put the final text in
place reaching the fake, minus the time spent waiting on things outside the bot: the model's
requests at the fake (arrival to last byte), the backoff between two model attempts, and the wait
after a 429 (the 429 to its retry reaching the fake). Overlapping waits count once. Queueing for
a model slot (BOT_MAX_CONCURRENT_TURNS) is the bot's own and stays in.

    python -m bench.load [--events 1000] [--seconds 60] [--model-5xx 0.1] [--slack-429 0.05]
        [--slack-redeliver 0.05] [--latency 0.5] [--max-concurrent-turns K] [--seed 1]
        [--profile]                                       # where the bot's CPU goes
    python -m bench.load --events 100 --seconds 10        # a quick check

Targets: nothing lost or doubled; overhead p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import cProfile
import itertools
import json
import logging
import math
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import aiohttp

from tests.fakes.discord import FakeDiscord, FakeGuild, FakeUser, new_snowflake
from tests.fakes.openrouter import ErrorReply, FakeOpenRouter, Reply, TextReply, last_user_text
from tests.fakes.slack import FakeSlack, app_mention, new_ts

if TYPE_CHECKING:
    from adapters.discord import DiscordAdapter
    from adapters.slack import SlackAdapter
    from bench._shared import ProcessFigures, ProfileView
    from bot.core import Core
    from bot.settings import Settings

JSONDict = dict[str, Any]

TARGET_P99_MS = 50.0
SECRET = "bench-load-signing-secret-0123456789"
BACKLOG = 4096
REPO = Path(__file__).resolve().parent.parent
WARMUP = "warmup"
TOKEN = re.compile(r"\bq(\d{6})\b")
"""Every question starts with its turn's token, ``q000042``: model requests map back to it."""
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
DISCORD_MESSAGES = re.compile(r"^/api/v10/channels/(\d+)/messages(?:/(\d+))?$")


# =========================================================================== the plan


@dataclass
class WorldConfig:
    """What the world child does; passed to it as JSON."""

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


def failure_line(text: str) -> str | None:
    """The failure line closing ``text`` (its last paragraph in italics: ``_..._`` on Slack,
    ``*...*`` on Discord, as the adapters' ``fail`` renders it), or None."""
    last = text.strip().rsplit("\n\n", 1)[-1].strip()
    if len(last) > 2 and last[0] == last[-1] and last[0] in "_*":
        return last[1:-1]
    return None


def verdict(turn: Turn, texts: list[str]) -> str:
    """answered | failed | doubled | partial | lost, from the texts of the turn's messages.

    An answer split over two messages (a full stream continued in a new one) is still one
    answer; the answer twice, an answer and a failure line, or an answer and any other
    message are doubled."""
    if not texts:
        return "lost"
    whole = "".join(texts)
    answers = whole.count(turn.expected) if turn.expected else 0
    failed = any(failure_line(t) is not None for t in texts)
    if answers >= 2 or (answers == 1 and (failed or whole != turn.expected)):
        return "doubled"
    if answers == 1:
        return "answered"
    return "failed" if failed else "partial"


def union_length(intervals: Iterable[tuple[float, float]], lo: float, hi: float) -> float:
    """Total length of the union of ``intervals`` clipped to [lo, hi]."""
    clipped = sorted((max(a, lo), min(b, hi)) for a, b in intervals if b > lo and a < hi)
    total, end = 0.0, lo
    for a, b in clipped:
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


# =========================================================================== the world (child)


class WorldOpenRouter(FakeOpenRouter):
    def _site_options(self) -> dict[str, Any]:
        return {"backlog": BACKLOG}


class WorldSlack(FakeSlack):
    """A listen backlog for bursts, and deliveries without aiohttp's 100-connection cap."""

    def _site_options(self) -> dict[str, Any]:
        return {"backlog": BACKLOG}

    async def _on_started(self) -> None:
        await super()._on_started()
        if self._session is not None:
            await self._session.close()
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=60), connector=aiohttp.TCPConnector(limit=0)
        )


class WorldDiscord(FakeDiscord):
    def _site_options(self) -> dict[str, Any]:
        return {"backlog": BACKLOG}


class World:
    """The fakes, the traffic and the bookkeeping, in the child process."""

    def __init__(self, config: WorldConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.fault_rng = random.Random(config.seed + 1)
        self.faults_on = False
        self.openrouter = WorldOpenRouter(latency=config.latency, default_responder=self._respond)
        self.slack = WorldSlack()
        users = config.users_per_platform()
        self.slack_users = [f"UL{i:05d}" for i in range(users)]
        self.slack_channels = [f"CLOAD{i:03d}" for i in range(config.channels)]
        bot = FakeUser(id=new_snowflake(), username="LoadBot", bot=True)
        self.discord_users = [
            FakeUser(id=new_snowflake(), username=f"user{i}", global_name=f"User {i}")
            for i in range(users)
        ]
        guild = FakeGuild.create(
            "Load Guild",
            owner=self.discord_users[0],
            members=[bot, *self.discord_users],
            channel_names=[WARMUP, *(f"load-{i}" for i in range(config.channels))],
            thread_names=[f"thread-{i}" for i in range(config.threads)],
        )
        self.discord = WorldDiscord(bot=bot, guilds=[guild], users=self.discord_users)
        self.guild = guild
        self.slack_url = ""
        self.turns: list[Turn] = []
        self.warmups: list[Turn] = []
        self.by_token: dict[str, Turn] = {}
        # Slack: (channel, root ts) -> the turn answered there now; (channel, message ts) -> turn
        self.slack_thread: dict[tuple[str, str], Turn] = {}
        self.slack_message: dict[tuple[str, str], Turn] = {}
        # Discord: user message id -> turn; bot message id -> turn
        self.discord_user_message: dict[int, Turn] = {}
        self.discord_answer: dict[int, Turn] = {}
        self.unattributed: Counter[str] = Counter()
        self.pending_429: dict[tuple[str, ...], float] = {}
        self.latest: dict[str, Turn] = {}
        """The last turn sent in each conversation."""
        self._slack_roots: list[Turn] = []
        self._discord_answered: list[Turn] = []
        """Turns answered in a channel (not a thread): what replies may continue."""
        self._calls_seen = 0
        self._discord_seen = 0
        self._discord_open: list[Any] = []
        self._model_seen = 0
        self._model_open: list[Any] = []
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

    def urls(self) -> JSONDict:
        return {
            "openrouter": self.openrouter.base_url,
            "openrouter_key": self.openrouter.api_key,
            "slack_api": self.slack.api_url,
            "slack_token": self.slack.bot_token,
            "discord_token": self.discord.token,
            "discord_rest": self.discord.rest_base,
            "discord_gateway": self.discord.gateway_url,
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
        self.slack_thread[(turn.channel, turn.root_ts)] = turn
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
        reply_to = self._idle(self._discord_answered) if turn.kind == "discord-reply" else None
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
        self.discord_user_message[turn.message_id] = turn
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
        self.by_token[turn.token] = turn
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

    # ------------------------------------------------------------------ watching the fakes

    def track(self) -> None:
        """Attribute the fakes' new records to turns (model requests, Slack calls, Discord
        requests), and note when a turn's final text landed."""
        self._track_model()
        self._track_slack()
        self._track_discord()

    def _track_model(self) -> None:
        requests = self.openrouter.requests
        fresh = requests[self._model_seen :]
        self._model_seen = len(requests)
        still_open = []
        for r in [*self._model_open, *fresh]:
            if r.finished_at is None:
                still_open.append(r)
                continue
            if r.body is None:
                continue
            text = last_user_text(r.body)
            tokens = TOKEN.findall(text)
            turn = self.by_token.get(f"q{tokens[-1]}") if tokens else None
            if turn is None:
                turn = next((w for w in self.warmups if text.startswith(w.question)), None)
            if turn is None:
                continue
            status = r.status or 0
            turn.model.append((r.received_at, r.finished_at, status))
            if status == 200 and turn.expected is None:
                turn.expected = f"echo: {text}"
            r.body = None  # seen: let the memory go
        self._model_open = still_open

    def _track_slack(self) -> None:
        calls = self.slack.api_calls
        fresh = calls[self._calls_seen :]
        self._calls_seen = len(calls)
        for call in fresh:
            params = call.params
            channel = str(params.get("channel") or params.get("channel_id") or "")
            thread_ts = str(params.get("thread_ts") or "")
            turn: Turn | None
            target: tuple[str, ...]
            if thread_ts:
                turn = self.slack_thread.get((channel, thread_ts))
                target = (call.method, channel, thread_ts)
            else:
                ts = str(params.get("ts") or "")
                turn = self.slack_message.get((channel, ts))
                target = (call.method, channel, ts)
            if turn is None:
                if call.method != "auth.test":
                    self.unattributed[f"slack {call.method}"] += 1
                continue
            waited_since = self.pending_429.pop(target, None)
            if waited_since is not None:
                turn.limited.append((waited_since, call.at))
            if call.status == 429:
                turn.slack_429 += 1
                self.pending_429[target] = call.at
                continue
            if not call.ok:
                continue
            if call.method in ("chat.postMessage", "chat.startStream"):
                ts = str(call.response.get("ts") or "")
                self.slack_message[(channel, ts)] = turn
                turn.messages.append(ts)
            if call.method.startswith("chat.") and turn.final_at is None and self._complete(turn):
                turn.final_at = call.at

    def _track_discord(self) -> None:
        requests = self.discord.requests
        fresh = requests[self._discord_seen :]
        self._discord_seen = len(requests)
        still_open = []
        for r in [*self._discord_open, *fresh]:
            if r.status is None:
                still_open.append(r)
                continue
            found = DISCORD_MESSAGES.match(r.path)
            if found is None:
                continue
            turn: Turn | None
            target: tuple[str, ...]
            if r.method == "POST" and found[2] is None:
                body = r.body if isinstance(r.body, dict) else {}
                reference = body.get("message_reference") or {}
                replied = reference.get("message_id")
                turn = self.discord_user_message.get(int(replied)) if replied else None
                target = ("POST", r.path, str(replied))
            elif r.method == "PATCH" and found[2] is not None:
                turn = self.discord_answer.get(int(found[2]))
                target = ("PATCH", r.path)
            else:
                continue
            if turn is None:
                self.unattributed[f"discord {r.method}"] += 1
                continue
            waited_since = self.pending_429.pop(target, None)
            if waited_since is not None:
                turn.limited.append((waited_since, r.received_at))
            if r.status == 429:
                turn.discord_429 += 1
                self.pending_429[target] = r.received_at
                continue
            if r.status != 200:
                continue
            if r.method == "POST" and isinstance(r.response, dict):
                message_id = int(r.response["id"])
                self.discord_answer[message_id] = turn
                turn.messages.append(str(message_id))
            if turn.final_at is None and self._complete(turn):
                turn.final_at = r.received_at
                if turn.kind in ("discord-channel", "discord-reply") and turn.expected:
                    self._discord_answered.append(turn)
        self._discord_open = still_open

    def texts(self, turn: Turn) -> list[str]:
        """The texts of the turn's messages now, as the fakes store them."""
        out = []
        for ref in turn.messages:
            if turn.platform == "slack":
                try:
                    out.append(str(self.slack.message(turn.channel, ref).get("text") or ""))
                except LookupError:
                    continue
            else:
                with contextlib.suppress(KeyError):
                    message = self.discord.message(int(ref))
                    if not message.deleted:
                        out.append(message.content)
        return out

    def _complete(self, turn: Turn) -> bool:
        """The turn's final text is in place: the whole answer, or a failure line, with no
        Slack stream left open."""
        if turn.platform == "slack":
            for ts in turn.messages:
                with contextlib.suppress(LookupError):
                    if self.slack.stream(turn.channel, ts).state == "in_progress":
                        return False
        return verdict(turn, self.texts(turn)) in ("answered", "failed", "doubled")

    # ------------------------------------------------------------------ running

    async def warm_up(self) -> JSONDict:
        """One Slack and one Discord turn without faults (cold paths, bolt's first auth.test),
        in places the traffic does not use; returns how long each took, ms."""
        slack = Turn(-1, "slack", "warm-up", 0.0, 0, f"{WARMUP} slack")
        slack.channel, slack.ts = "CWARMUP", new_ts()
        slack.root_ts, slack.conversation = slack.ts, f"slack:CWARMUP:{slack.ts}"
        self.slack_thread[(slack.channel, slack.ts)] = slack
        discord = Turn(-2, "discord", "warm-up", 0.0, 0, f"{WARMUP} discord")
        discord.channel_id, discord.message_id = self.guild.channels[0].id, new_snowflake()
        discord.conversation = f"discord:{discord.message_id}"
        self.discord_user_message[discord.message_id] = discord
        self.warmups = [slack, discord]
        slack.dispatched = time.monotonic()
        event = app_mention(
            f"<@{self.slack.bot_user_id}> {slack.question}", channel=slack.channel, ts=slack.ts
        )
        await self.slack.deliver_event(self.slack_url, SECRET, event)
        discord.dispatched = time.monotonic()
        await self._send_discord(discord, None)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(w.final_at is None for w in self.warmups):
            self.track()
            await asyncio.sleep(0.05)
        return {
            w.platform: (w.final_at - w.dispatched) * 1000 if w.final_at else None
            for w in self.warmups
        }

    async def run(self, progress: Callable[[JSONDict], None]) -> JSONDict:
        """Send the planned traffic, wait for every answer (or give up on it), settle."""
        config = self.config
        self.turns = self.plan()
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
            self.track()
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
            self.track()
            await asyncio.sleep(0.05)
        self.track()
        progress(self._progress(time.monotonic() - start, sent))
        return self.results(traffic_s)

    def _all_ended(self, now: float) -> bool:
        return all(
            t.final_at is not None or now - t.dispatched > self.config.give_up_s for t in self.turns
        )

    def _progress(self, elapsed: float, sent: int) -> JSONDict:
        ended = [t for t in self.turns[:sent] if t.final_at is not None]
        return {"t": round(elapsed, 1), "sent": sent, "final": len(ended)}

    # ------------------------------------------------------------------ results

    def results(self, traffic_s: float) -> JSONDict:
        per_turn = [self._turn_result(t) for t in self.turns]
        calls = self.slack.api_calls
        model = self.openrouter.requests
        return {
            "traffic_s": traffic_s,
            "turns": per_turn,
            "model_requests": len(model),
            "model_statuses": dict(Counter(str(r.status) for r in model)),
            "slack_calls": len(calls),
            "slack_429": self.slack.random_429s,
            "slack_429_by_method": dict(Counter(c.method for c in calls if c.status == 429)),
            "slack_calls_by_method": dict(Counter(c.method for c in calls)),
            "slack_acks": dict(Counter(str(s) for t in self.turns for s in t.acks)),
            "redeliveries": sum(self.redelivery_acks.values()),
            "redelivery_acks": {str(k): v for k, v in self.redelivery_acks.items()},
            "discord_statuses": dict(
                Counter(f"{r.method} {r.status}" for r in self.discord.requests if r.route)
            ),
            "discord_connections": len(self.discord.connections),
            "unattributed": dict(self.unattributed),
            "users_per_platform": self.config.users_per_platform(),
        }

    def _turn_result(self, turn: Turn) -> JSONDict:
        texts = self.texts(turn)
        outcome = verdict(turn, texts)
        if outcome in ("answered", "failed") and turn.final_at is None:
            outcome = "partial"  # its text is there, but the request that completed it was not seen
        failure = next((f for t in texts if (f := failure_line(t)) is not None), None)
        attempts = sorted(turn.model)
        faulted = turn.slack_429 + turn.discord_429 + sum(s >= 500 for *_, s in attempts) > 0
        result: JSONDict = {
            "platform": turn.platform,
            "kind": turn.kind,
            "verdict": outcome,
            "failure": failure,
            "faulted": faulted,
            "attempts": len(attempts),
            "model_5xx": sum(1 for *_, s in attempts if s >= 500),
            "slack_429": turn.slack_429,
            "discord_429": turn.discord_429,
            "redelivered": turn.redeliver,
            "messages": len(turn.messages),
            "text": texts[-1][:200] if texts and outcome not in ("answered", "failed") else None,
        }
        if turn.final_at is None:
            return result
        previous = self._previous_final(turn)
        start = max(turn.dispatched, previous or 0.0)
        waits = [(a, b) for a, b, _ in attempts]
        waits += [(a[1], b[0]) for a, b in itertools.pairwise(attempts) if a[2] != 200]
        waits += turn.limited
        external = union_length(waits, start, turn.final_at)
        if attempts:
            result.update(
                before_model_ms=(attempts[0][0] - start) * 1000,
                after_model_ms=(turn.final_at - attempts[-1][1]) * 1000,
            )
        result.update(
            e2e_ms=(turn.final_at - turn.dispatched) * 1000,
            queued_ms=(start - turn.dispatched) * 1000,
            external_ms=external * 1000,
            overhead_ms=(turn.final_at - start - external) * 1000,
        )
        return result

    def _previous_final(self, turn: Turn) -> float | None:
        """When the answer before this one in the same conversation landed, if any."""
        finals = self._finals_by_conversation().get(turn.conversation, [])
        assert turn.final_at is not None
        i = bisect.bisect_left(finals, turn.final_at)
        return finals[i - 1] if i > 0 else None

    _finals: dict[str, list[float]] | None = None

    def _finals_by_conversation(self) -> dict[str, list[float]]:
        if self._finals is None:
            grouped: dict[str, list[float]] = defaultdict(list)
            for t in self.turns:
                if t.final_at is not None:
                    grouped[t.conversation].append(t.final_at)
            self._finals = {k: sorted(v) for k, v in grouped.items()}
        return self._finals


def _emit(message: JSONDict) -> None:
    sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def _stdin_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def world_main(config: WorldConfig) -> None:
    """The child: start the fakes, say where they are, wait for the bot's Slack URL, warm up,
    run the traffic, print the results, then wait for stdin to close (the bot has stopped)."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    stdin = await _stdin_lines()
    async with World(config) as world:
        _emit({"ready": world.urls()})
        line = await stdin.readline()
        if not line:
            return
        world.slack_url = json.loads(line)["slack_url"]
        _emit({"warm": await world.warm_up()})
        _emit({"result": await world.run(lambda p: _emit({"progress": p}))})
        await stdin.read()


# =========================================================================== the bot (parent)


class WorldProcess:
    """The world child: its messages (``ready``, ``warm``, ``progress``, ``result``) as they
    come, and a line to it (the bot's Slack URL)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.messages: dict[str, asyncio.Future[JSONDict]] = {}
        self.progress: JSONDict = {}
        self._reader = asyncio.create_task(self._read())

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _future(self, kind: str) -> asyncio.Future[JSONDict]:
        return self.messages.setdefault(kind, asyncio.get_running_loop().create_future())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            try:
                message = json.loads(raw)
            except ValueError:
                print(f"[world] {raw.decode(errors='replace').rstrip()}", file=sys.stderr)
                continue
            for kind, body in message.items():
                if kind == "progress":
                    self.progress = body
                future = self._future(kind)
                if not future.done():
                    future.set_result(body)

    async def wait(self, kind: str, timeout_s: float) -> JSONDict:
        """The first ``kind`` message; RuntimeError if the child ended without sending one."""
        future = self._future(kind)
        waiters: set[asyncio.Future[Any]] = {future, self._reader}
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        if future.done():
            return future.result()
        if self._reader.done():
            raise RuntimeError(f"the world process ended before sending {kind!r}")
        raise TimeoutError(f"no {kind!r} from the world process in {timeout_s:.0f} s")

    def send(self, message: JSONDict) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())

    async def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


@asynccontextmanager
async def world_process(config: WorldConfig) -> AsyncIterator[WorldProcess]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.load",
        "--world",
        json.dumps(asdict(config)),
        cwd=REPO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=64 * 1024 * 1024,  # the results come as one JSON line
    )
    world = WorldProcess(proc)
    try:
        yield world
    finally:
        await world.close()


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

    def lines(self) -> list[str]:
        return [
            f"{n:6d} x {level} {name}: {msg}"
            for (level, name, msg), n in sorted(self.counts.items(), key=lambda kv: -kv[1])
        ]


@dataclass
class Bot:
    """The bot under test: one core, both adapters, as ``_serve`` runs them."""

    settings: Settings
    core: Core
    slack: SlackAdapter
    discord: DiscordAdapter
    tmp: Path
    logs: LogCounter

    @property
    def slack_url(self) -> str:
        return f"http://127.0.0.1:{self.slack.port}/slack/events"

    @property
    def database(self) -> Path:
        return self.tmp / "bot.db"

    def outcomes(self) -> dict[str, dict[str, int]]:
        return {"slack": dict(self.slack.outcomes), "discord": dict(self.discord.outcomes)}


def bot_values(urls: JSONDict, tmp: Path, overrides: JSONDict) -> JSONDict:
    """The bot's settings: the world's fakes, a SQLite file in ``tmp``, Slack in HTTP mode."""
    return {
        "OPENROUTER_API_KEY": urls["openrouter_key"],
        "OPENROUTER_BASE_URL": urls["openrouter"],
        "DATABASE_URL": f"sqlite:///{tmp / 'bot.db'}",
        "OPEN_METEO_URL": "http://127.0.0.1:9",
        "OPEN_METEO_GEOCODING_URL": "http://127.0.0.1:9",
        "LOG_LEVEL": "WARNING",
        "SLACK_BOT_TOKEN": urls["slack_token"],
        "SLACK_APP_TOKEN": None,  # HTTP mode, whatever the environment says
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": urls["slack_api"],
        "PORT": 0,
        "DISCORD_BOT_TOKEN": urls["discord_token"],
        "DISCORD_API_BASE": urls["discord_rest"],
        "DISCORD_GATEWAY_URL": urls["discord_gateway"],
        "DISCORD_GUILD_ID": None,
        "DISCORD_AUTO_THREAD": False,
        **overrides,
    }


@asynccontextmanager
async def running_bot(urls: JSONDict, overrides: JSONDict) -> AsyncIterator[Bot]:
    """Core and both adapters on this loop; closed as ``_serve`` closes them."""
    from agents import set_tracing_disabled

    from adapters.discord import DiscordAdapter
    from adapters.slack import SlackAdapter
    from bot.logs import setup_logging
    from bot.settings import Settings
    from bot.wiring import build_core, open_services

    set_tracing_disabled(True)
    async with AsyncExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-load-")))
        settings = Settings(_env_file=None, **bot_values(urls, tmp, overrides))  # type: ignore[call-arg]
        setup_logging(settings.log_level, settings.secrets)
        logs = LogCounter()
        for handler in logging.getLogger().handlers:
            handler.addFilter(logs)
        services = await stack.enter_async_context(open_services(settings))
        core = await build_core(services)
        stack.push_async_callback(core.close)
        slack = SlackAdapter(core, settings)
        stack.push_async_callback(slack.close)
        await slack.start()
        discord = DiscordAdapter(core, settings)
        stack.push_async_callback(discord.close)
        await discord.start(timeout_s=60)
        yield Bot(settings, core, slack, discord, tmp, logs)


def prepare() -> None:
    """Before the agent stack is imported: litellm offline and quiet."""
    from bot.settings import prepare_library_environment

    prepare_library_environment()


# =========================================================================== report


def pct(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[round(p * 10) - 1]


def dist(values: list[float], unit: str = "ms") -> str:
    if not values:
        return "none"
    return (
        f"p50 {statistics.median(values):7.1f}  p95 {pct(values, 95):7.1f}  p99"
        f" {pct(values, 99):7.1f}  max {max(values):7.1f} {unit}  (n={len(values)})"
    )


@dataclass
class Verdicts:
    """The per-message verdicts of a run, counted."""

    turns: list[JSONDict]

    def count(self, verdict: str, platform: str | None = None) -> int:
        return sum(
            1
            for t in self.turns
            if t["verdict"] == verdict and (platform is None or t["platform"] == platform)
        )

    @property
    def lost(self) -> int:
        return self.count("lost") + self.count("partial")

    @property
    def doubled(self) -> int:
        return self.count("doubled")

    def overhead(self, keep: Callable[[JSONDict], bool] = lambda t: True) -> list[float]:
        return [
            float(t["overhead_ms"])
            for t in self.turns
            if "overhead_ms" in t and t["verdict"] in ("answered", "failed") and keep(t)
        ]


def print_verdicts(result: JSONDict, outcomes: dict[str, dict[str, int]]) -> Verdicts:
    """The exactly-once part of the report, shared with bench.soak."""
    v = Verdicts(result["turns"])
    n = len(v.turns)
    kinds = Counter(t["kind"] for t in v.turns)
    by_platform = Counter(t["platform"] for t in v.turns)
    print(
        f"  events sent:           {n} (Slack {by_platform['slack']}: "
        f"{kinds['slack-new']} new threads, {kinds['slack-follow-up']} follow-ups, plus"
        f" {result['redeliveries']} redeliveries; Discord {by_platform['discord']}:"
        f" {kinds['discord-channel']} channel mentions, {kinds['discord-thread']} thread"
        f" mentions, {kinds['discord-reply']} replies to an answer);"
        f" {result['users_per_platform']} users per platform"
    )
    for label, verdict in (
        ("answered exactly once", "answered"),
        ("told of a failure", "failed"),
    ):
        print(
            f"  {label + ':':<22} {v.count(verdict):5d}  (Slack {v.count(verdict, 'slack')},"
            f" Discord {v.count(verdict, 'discord')})"
        )
    failures = Counter(t["failure"] for t in v.turns if t["verdict"] == "failed")
    for line, count in failures.most_common():
        print(f"      {count:4d} x {line!r}")
    lost_ok = v.lost == 0
    print(
        f"  lost:                  {v.lost:5d}  (no answer and no failure line: {v.count('lost')};"
        f" only part of the answer: {v.count('partial')})   target 0:"
        f" {'met' if lost_ok else 'NOT met'}"
    )
    print(
        f"  doubled:               {v.doubled:5d}   target 0:"
        f" {'met' if v.doubled == 0 else 'NOT met'}"
    )
    for t in v.turns:
        if t["verdict"] in ("lost", "partial", "doubled"):
            print(
                f"      {t['verdict']}: {t['kind']}, {t['messages']} message(s), model attempts"
                f" {t['attempts']} ({t['model_5xx']} 5xx),"
                f" 429s {t['slack_429'] + t['discord_429']},"
                f" redelivered {t['redelivered']}; last text {t['text']!r}"
            )
    redelivered = [t for t in v.turns if t["redelivered"]]
    print(
        f"  Slack redeliveries:    {len(redelivered)} (acks {result['redelivery_acks']}); of their"
        f" messages {sum(t['verdict'] == 'answered' for t in redelivered)} answered once,"
        f" {sum(t['verdict'] == 'failed' for t in redelivered)} told of a failure,"
        f" {sum(t['verdict'] == 'doubled' for t in redelivered)} doubled; the adapters counted"
        f" {outcomes['slack'].get('duplicate', 0)} Slack and"
        f" {outcomes['discord'].get('duplicate', 0)} Discord duplicates"
    )
    print(f"  adapter outcomes:      {outcomes}")
    return v


def print_faults(result: JSONDict, v: Verdicts) -> None:
    statuses = result["model_statuses"]
    fivexx = sum(n for s, n in statuses.items() if s.isdigit() and int(s) >= 500)
    model_n = result["model_requests"]
    touched = sum(1 for t in v.turns if t["model_5xx"])
    print(
        f"  model 5xx injected:    {fivexx} of {model_n} model requests"
        f" ({100 * fivexx / max(model_n, 1):.1f}%; statuses {statuses}); messages that met one:"
        f" {touched}; attempts per message {dist([float(t['attempts']) for t in v.turns], '')}"
    )
    slack_n = result["slack_calls"]
    print(
        f"  Slack 429s injected:   {result['slack_429']} of {slack_n} Web API calls"
        f" ({100 * result['slack_429'] / max(slack_n, 1):.1f}%; {result['slack_429_by_method']});"
        f" messages that met one: {sum(1 for t in v.turns if t['slack_429'])}"
    )
    print(f"  Slack calls by method: {result['slack_calls_by_method']}")
    print(f"  Slack acks:            {result['slack_acks']}")
    print(
        f"  Discord REST:          {result['discord_statuses']}; messages that met a 429:"
        f" {sum(1 for t in v.turns if t['discord_429'])}; gateway connections"
        f" {result['discord_connections']}"
    )
    if result["unattributed"]:
        print(f"  not attributed to a message: {result['unattributed']}")


def on(platform: str) -> Callable[[JSONDict], bool]:
    return lambda t: bool(t["platform"] == platform)


def print_overhead(v: Verdicts) -> bool:
    """Overhead lines; True if the p99 target is met."""
    every = v.overhead()
    p99 = pct(every, 99)
    met = bool(every) and p99 <= TARGET_P99_MS
    print(
        f"  overhead, every ended message:   {dist(every)}   target p99 <="
        f" {TARGET_P99_MS:.0f} ms: {'met' if met else 'NOT met'}"
    )
    print(f"    messages without a fault:      {dist(v.overhead(lambda t: not t['faulted']))}")
    print(f"    messages that met a fault:     {dist(v.overhead(lambda t: t['faulted']))}")
    for platform in ("slack", "discord"):
        print(f"    {platform + ':':<31}{dist(v.overhead(on(platform)))}")
    clean = [t for t in v.turns if not t["faulted"] and "before_model_ms" in t]
    print(
        "      of which, without a fault: delivery (or the previous answer) -> the model request"
        f" reached the fake {dist([float(t['before_model_ms']) for t in clean])}"
    )
    print(
        "                                 the model's last byte -> the final text reached the"
        f" fake {dist([float(t['after_model_ms']) for t in clean])}"
    )
    e2e = [float(t["e2e_ms"]) for t in v.turns if "e2e_ms" in t]
    queued = [float(t["queued_ms"]) for t in v.turns if t.get("queued_ms", 0) > 0]
    print(f"  delivery -> final text (whole):  {dist(e2e)}")
    print(
        f"    behind an earlier message of the same conversation: {len(queued)} messages,"
        f" waited {dist(queued)}"
    )
    return met


def print_process(res: ProcessFigures, events: int, rss_peak_note: str = "") -> None:
    child = f"; the world child (fakes + traffic) {res.child_cpu_s:.2f} s" if res.child_pid else ""
    print(
        f"  CPU:                   the bot's process {res.cpu_s:.2f} s in {res.wall_s:.1f} s"
        f" ({100 * res.cpu_s / max(res.wall_s, 1e-9):.0f}% of a core,"
        f" {res.cpu_s * 1000 / max(events, 1):.1f} ms per event){child}"
    )
    gcs = ", ".join(f"{ms:.0f} ms" for ms in res.full_gc_ms) or "none"
    print(
        f"  RSS:                   {res.rss_before_mb:.0f} MB before, {res.rss_after_mb:.0f} MB"
        f" after, peak {res.peak_rss_mb:.0f} MB{rss_peak_note}; longest event-loop stall"
        f" {res.loop_lag_ms:.0f} ms; full GCs {gcs}"
    )


def print_logs(logs: LogCounter, top: int = 12) -> None:
    lines = logs.lines()
    if not lines:
        print("  bot log records (WARNING+): none")
        return
    print(f"  bot log records (WARNING+), {sum(logs.counts.values())} in all:")
    for line in lines[:top]:
        print(f"    {line}")


# =========================================================================== main


async def sample_core(bot: Bot, peaks: Counter[str], stop: asyncio.Event) -> None:
    """Peak turns running and waiting in the core (if it counts them), every 100 ms."""
    while not stop.is_set():
        for name in ("running", "waiting"):
            value = getattr(bot.core, name, None)
            if isinstance(value, int):
                peaks[name] = max(peaks[name], value)
        peaks["tasks"] = max(peaks["tasks"], len(asyncio.all_tasks()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)


def world_options(args: argparse.Namespace) -> JSONDict:
    """The WorldConfig fields ``add_world_arguments`` sets."""
    return {
        "seed": args.seed,
        "latency": args.latency,
        "chunks": args.chunks,
        "chunk_delay": args.chunk_delay,
        "model_5xx": args.model_5xx,
        "slack_429": args.slack_429,
        "slack_redeliver": args.slack_redeliver,
        "channels": args.channels,
        "threads": args.threads,
        "users": args.users,
    }


def overrides_from(args: argparse.Namespace) -> JSONDict:
    values: JSONDict = {}
    if args.max_concurrent_turns:
        values["BOT_MAX_CONCURRENT_TURNS"] = args.max_concurrent_turns
    return values


def profile_view() -> ProfileView:
    """How the profile groups the bot's time: the project, both platforms' libraries, ..."""
    from bench import _shared

    return _shared.profile_view(
        ("/slack_bolt/", "slack_bolt"), ("/slack_sdk/", "slack_sdk"), ("/discord/", "discord.py")
    )


def describe(bot: Bot, config: WorldConfig) -> None:
    s = bot.settings
    print(
        f"bot: one core, Slack (HTTP mode on :{bot.slack.port}) and Discord (discord.py, fake"
        f" gateway) on one loop; model {s.bot_model}, BOT_MODEL_RETRIES {s.model_retries},"
        f" BOT_RETRY_BACKOFF {s.retry_backoff_s} s, BOT_MAX_CONCURRENT_TURNS"
        f" {s.max_concurrent_turns}, BOT_USER_RATE_LIMIT {s.user_rate_limit}/min, native"
        f" streaming {'on' if s.slack_native_streaming else 'off'}, LOG_LEVEL {s.log_level};"
        f" SQLite {bot.database}; Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    print(
        f"world (child process): model first byte after {config.latency:.2f} s, then"
        f" {config.chunks} chunks {config.chunk_delay:.2f} s apart; faults: {config.model_5xx:.0%}"
        f" of model requests 5xx, {config.slack_429:.0%} of Slack answer calls 429"
        f" (Retry-After 1), {config.slack_redeliver:.0%} of Slack events delivered twice;"
        f" {config.channels} channels per platform, {config.threads} Discord threads"
    )


async def run(args: argparse.Namespace) -> int:
    from bench import _shared
    from bench._shared import ProcessFigures

    config = WorldConfig(
        events=args.events,
        seconds=args.seconds,
        progress_s=args.progress,
        **world_options(args),
    )
    async with (
        world_process(config) as world,
        running_bot(await world.wait("ready", 60), overrides_from(args)) as bot,
    ):
        describe(bot, config)
        world.send({"slack_url": bot.slack_url})
        warm = await world.wait("warm", 120)
        print(
            "warm-up (cold paths, no faults): "
            + ", ".join(
                f"{p} {ms:.0f} ms" if ms is not None else f"{p} NOT answered"
                for p, ms in warm.items()
            )
        )
        peaks: Counter[str] = Counter()
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_core(bot, peaks, stop))
        profile = cProfile.Profile() if args.profile else None
        async with _shared.measuring(ProcessFigures(world.pid), profile) as res:
            result = await world.wait("result", config.seconds + config.give_up_s + 300)
        stop.set()
        await sampler
        outcomes = bot.outcomes()
        print(
            f"\nload: {config.events} events over {config.seconds:.0f} s"
            f" (traffic and answers took {result['traffic_s']:.1f} s)"
        )
        v = print_verdicts(result, outcomes)
        met = print_overhead(v)
        print_faults(result, v)
        print(
            f"  core:                  peak turns running {peaks['running']}, waiting"
            f" {peaks['waiting']}; peak asyncio tasks {peaks['tasks']}"
        )
        print_process(res, config.events)
        print_logs(bot.logs)
        if profile is not None:
            _shared.print_profile(
                profile,
                profile_view(),
                runs="the whole load (main thread)",
                turns=config.events,
                top=args.top,
                save_to=args.profile_out,
            )
    ok = v.lost == 0 and v.doubled == 0
    print(
        f"\nexactly-once: {'OK' if ok else 'FAILED'} ({v.lost} lost, {v.doubled} doubled);"
        f" overhead p99 target {'met' if met else 'NOT met'}"
    )
    return 0 if ok else 1


def add_world_arguments(parser: argparse.ArgumentParser) -> None:
    """The traffic, fault and model options bench.load and bench.soak share."""
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
    parser.add_argument(
        "--max-concurrent-turns",
        type=int,
        default=0,
        metavar="K",
        help="BOT_MAX_CONCURRENT_TURNS (default: the bot's own default)",
    )


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--world":
        asyncio.run(world_main(WorldConfig(**json.loads(sys.argv[2]))))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="user messages in all")
    parser.add_argument("--seconds", type=float, default=60.0, help="spread over this long")
    parser.add_argument("--progress", type=float, default=0.0, help="progress line every N s")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the bot's process over the load"
    )
    parser.add_argument("--top", type=int, default=20, help="functions listed from the profile")
    parser.add_argument("--profile-out", metavar="PATH", help="with --profile: save the stats")
    add_world_arguments(parser)
    args = parser.parse_args()
    if args.events < 2 or args.seconds <= 0:
        parser.error("--events must be at least 2 and --seconds positive")
    prepare()
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
