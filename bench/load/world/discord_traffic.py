"""Discord traffic for the world: mentions dispatched as MESSAGE_CREATE over the fake gateway,
and the fake's REST records read back into answers (the POST replying to a mention, the edits
of the message it created). ``RecordedRequest.received_at`` is ``time.monotonic()``, the clock
of every timestamp here; a mention's start is taken just before its ``send_user_message``."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bench.load.figures import BlockFigures
from bench.load.protocol import BotLink
from bench.load.world.fakes import (
    LoadDiscord,
    LoadOpenRouter,
    ModelShape,
    discord_settings,
    guild_world,
    openrouter_settings,
)
from tests.fakes.discord import FakeChannel, FakeDiscord, FakeUser, RecordedRequest

POST_ROUTE = "POST /channels/{channel_id}/messages"
EDIT_ROUTE = "PATCH /channels/{channel_id}/messages/{message_id}"
TYPING_ROUTE = "POST /channels/{channel_id}/typing"
EDIT_INTERVAL_S = 1.5
"""DiscordReply's throttle (adapters/discord/messages.py passes interval_s=1.5)."""


@dataclass
class DiscordTurn:
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
    """When the fake model received this turn's request (if the scenario notes it)."""

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


async def mention(fake: FakeDiscord, turn: DiscordTurn, author: FakeUser | None = None) -> None:
    turn.dispatched = time.monotonic()
    payload = await fake.send_user_message(
        turn.channel_id, author, content=f"{fake.bot.mention} {turn.question}"
    )
    turn.message_id = int(payload["id"])


class DiscordWatch:
    """Gives the fake's REST requests to their turns as they complete (a POST replying to the
    turn's mention, PATCHes of the message that POST created) and tells which turns have their
    answer in place."""

    def __init__(self, fake: FakeDiscord, turns: list[DiscordTurn], *, since: int) -> None:
        self.fake = fake
        self.turns = turns
        self.requests: list[RecordedRequest] = []
        """Every request since ``since`` that has completed, attributed or not."""
        self._seen = since
        self._open: list[RecordedRequest] = []
        self._answer_of: dict[int, DiscordTurn] = {}

    def poll(self) -> None:
        by_message = {t.message_id: t for t in self.turns if t.message_id}
        fresh = self.fake.requests[self._seen :]
        self._seen += len(fresh)
        still_open = []
        for r in [*self._open, *fresh]:
            if r.status is None:
                still_open.append(r)
                continue
            self.requests.append(r)
            if r.matches(POST_ROUTE):
                body = r.body if isinstance(r.body, dict) else {}
                reference = body.get("message_reference") or {}
                replied = reference.get("message_id")
                turn = by_message.get(int(replied)) if replied is not None else None
                if turn is None:
                    continue
                turn.requests.append(r)
                if r.status == 200 and isinstance(r.response, dict):
                    self._answer_of[int(r.response["id"])] = turn
            elif r.matches(EDIT_ROUTE):
                edited = self._answer_of.get(int(r.path.rsplit("/", 1)[1]))
                if edited is not None:
                    edited.requests.append(r)
        self._open = still_open

    async def until_landed(self, deadline: float, poll_s: float = 0.02) -> bool:
        """Wait until every turn's answer is in place; False at the deadline."""
        pending = list(self.turns)
        while True:
            self.poll()
            pending = [t for t in pending if t.landed is None]
            if not pending:
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(poll_s)

    def count_answers(self) -> None:
        """Bot messages replying to each turn's mention, as the fake stores them."""
        by_message = {t.message_id: t for t in self.turns}
        for channel_id in {t.channel_id for t in self.turns}:
            for message in self.fake.bot_messages(channel_id):
                turn = by_message.get(message.reply_to or 0)
                if turn is not None:
                    turn.answers += 1


# --------------------------------------------------------------------------- report helpers


def statuses(requests: list[RecordedRequest]) -> dict[str, Counter[int]]:
    """Status counts of the message and typing requests, by route."""
    out: dict[str, Counter[int]] = {}
    for name, route in (("POST", POST_ROUTE), ("PATCH", EDIT_ROUTE), ("typing", TYPING_ROUTE)):
        out[name] = Counter(r.status or 0 for r in requests if r.matches(route))
    return out


def status_line(counts: dict[str, Counter[int]]) -> str:
    parts = []
    for name, counter in counts.items():
        detail = ", ".join(f"{status} x{n}" for status, n in sorted(counter.items()))
        parts.append(f"{name} {sum(counter.values())} ({detail or '-'})")
    return "; ".join(parts)


def limited_total(counts: dict[str, Counter[int]]) -> int:
    return sum(counter[429] for counter in counts.values())


def answers_line(
    say: Callable[..., None], turns: list[DiscordTurn], outcomes: dict[str, int]
) -> tuple[int, int, int]:
    """Print answered / wrong / duplicate counts; return (answered, wrong, duplicated)."""
    answered = sum(1 for t in turns if t.landed is not None)
    wrong = sum(1 for t in turns if t.landed is None)
    duplicated = sum(1 for t in turns if t.answers > 1)
    missing = sum(1 for t in turns if t.answers == 0)
    say(
        f"  answers:      final text in place for {answered}/{len(turns)}; exactly one bot"
        f" message each: {sum(1 for t in turns if t.answers == 1)}/{len(turns)} (none:"
        f" {missing}, more than one: {duplicated}); adapter outcomes {outcomes}"
    )
    return answered, wrong, duplicated


# --------------------------------------------------------------------------- the rig

TARGET_SPREAD_N = 500
"""The largest burst a Discord scenario's target names: the core gets at least as many slots."""


@dataclass
class Rig:
    """What a Discord scenario's world holds: the fakes, the model's shape, where to warm up."""

    link: BotLink
    fake: LoadDiscord
    openrouter: LoadOpenRouter
    model: ModelShape
    warmup_channel: FakeChannel
    authors: list[FakeUser]


@asynccontextmanager
async def discord_rig(
    link: BotLink,
    args: argparse.Namespace,
    fake: LoadDiscord,
    model: ModelShape,
    *,
    title: str,
    warmup: str,
    limits: dict[str, tuple[int, float]] | None = None,
) -> AsyncIterator[Rig]:
    """The fakes up (``limits``: route -> requests per window, window seconds), the bot asked
    for, one warm-up turn in #``warmup`` (reported apart). Call ``link.done`` inside."""
    async with (
        LoadOpenRouter(
            latency=model.latency, default_responder=model.responder, record_bodies=False
        ) as openrouter,
        fake,
    ):
        for route, (limit, per_s) in (limits or {}).items():
            fake.set_route_limit(route, limit=limit, per_s=per_s)
        settings = {
            **openrouter_settings(openrouter),
            **discord_settings(fake),
            "BOT_MAX_CONCURRENT_TURNS": args.max_concurrent_turns
            or max(TARGET_SPREAD_N, args.spread_n, args.n),
            "BOT_USER_RATE_LIMIT": 0,
        }
        await link.ready(
            settings,
            ["discord"],
            [
                f"\n=== {title}",
                "world (another process, with the fakes and the traffic): FakeDiscord (REST,"
                f" gateway {fake.gateway_url}) and FakeOpenRouter: {model.describe()}",
            ],
        )
        rig = Rig(link, fake, openrouter, model, by_name(fake, warmup), authors(fake))
        await warm_up(rig)
        yield rig


async def warm_up(rig: Rig) -> None:
    """One turn in the warm-up channel, in a block of its own so that the adapter has ended
    it before anything is measured."""
    fake = rig.fake
    start = len(fake.requests)
    turn = DiscordTurn(rig.warmup_channel.id, "warm-up")
    watch = DiscordWatch(fake, [turn], since=start)
    async with rig.link.block("warm-up", ended=1, lag=False, warm_up=True):
        await mention(fake, turn)
        done = await watch.until_landed(time.monotonic() + 60)
    landed = turn.landed_at()
    if not done or landed is None:
        rig.link.print("warm-up turn: NOT answered")
        return
    rig.link.print(
        f"warm-up turn (cold: first model call, first buckets), in #{rig.warmup_channel.name}:"
        f" final text {(landed - turn.dispatched) * 1000:.0f} ms after the dispatch"
        f" ({len(fake.requests) - start} REST requests)"
    )


async def sequential(
    rig: Rig, turns: list[DiscordTurn], label: str, *, note_model: bool = False
) -> tuple[DiscordWatch, BlockFigures, bool]:
    """The turns one after another, each sent once the adapter ended the one before;
    ``note_model``: note when the fake model received each turn's request."""
    fake, link, openrouter = rig.fake, rig.link, rig.openrouter
    watch = DiscordWatch(fake, list(turns), since=len(fake.requests))
    complete = True
    async with link.block(label, ended=len(turns)) as block:
        for i, turn in enumerate(turns):
            seen = len(openrouter.requests)
            await mention(fake, turn)
            if not await link.settle(i + 1, 30):
                complete = False
                break
            if note_model:
                chat = [
                    r for r in openrouter.requests[seen:] if r.path.endswith("/chat/completions")
                ]
                if chat:
                    turn.model_request_at = chat[0].received_at
    watch.poll()
    watch.count_answers()
    assert block.figures is not None
    return watch, block.figures, complete


def medians(link: BotLink, name: str, summaries: list[dict[str, float]]) -> dict[str, float]:
    """The median of every figure over the runs (printed when there are several)."""
    out = {key: statistics.median(s[key] for s in summaries) for key in summaries[0]}
    if len(summaries) > 1:
        link.print(f"\n{name}: medians over {len(summaries)} runs:")
        for key, value in out.items():
            runs = ", ".join(f"{s[key]:.3f}" for s in summaries)
            link.print(f"  {key:<14} {value:9.3f}  (runs: {runs})")
    return out


# --------------------------------------------------------------------------- worlds


def default_world() -> LoadDiscord:
    """#general (measured), #random (warm-up), a thread; alice and bob."""
    return LoadDiscord()


def spread_world(channels: int, threads: int) -> LoadDiscord:
    """A guild with #warm-up, ``channels`` channels and ``threads`` threads (under #warm-up),
    the bot and 20 users."""
    return guild_world(
        "Bench Guild",
        channels=["warm-up", *(f"bench-{i}" for i in range(channels))],
        threads=[f"thread-{i}" for i in range(threads)],
    )


def by_name(fake: FakeDiscord, name: str) -> FakeChannel:
    for channel in fake.channels.values():
        if channel.name == name:
            return channel
    raise LookupError(name)


def authors(fake: FakeDiscord) -> list[FakeUser]:
    return [u for u in fake.users.values() if not u.bot]
