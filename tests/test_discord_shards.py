"""Discord sharding (``DISCORD_SHARD_COUNT`` / ``DISCORD_SHARD_IDS``): the REAL discord.py
sharded client against FakeDiscord, which routes each guild's events to the session of its
shard (``(guild_id >> 22) % count``) and DMs to shard 0, as Discord does. In one process (all
shards, or some), and as two ``python -m bot`` processes on one SQLite file."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import discord
import pytest

from adapters.common.inflight import InFlight
from adapters.discord import DiscordAdapter
from adapters.discord.commands import SlashCommands
from adapters.discord.feedback import FeedbackClicks
from adapters.discord.gateway import ShardedChatClient
from bench._shared import free_port
from bot.core import Core
from bot.wiring import build_core, open_services
from tests.conftest import make_settings
from tests.fakes.discord import FakeDiscord, FakeGuild, FakeMessage, FakeUser, new_snowflake
from tests.fakes.openrouter import FakeOpenRouter, last_user_text
from tests.helpers import eventually, wait_healthy

REPO = Path(__file__).resolve().parent.parent


def sharded_world(count: int = 2) -> dict[str, Any]:
    """A FakeDiscord world with one guild on each of ``count`` shards (``guild on 0``...)."""
    bot = FakeUser(id=new_snowflake(), username="FakeBot", bot=True)
    alice = FakeUser(id=new_snowflake(), username="alice", global_name="Alice")
    guilds = [
        FakeGuild.create(f"guild on {s}", owner=alice, members=[bot, alice], shard=(s, count))
        for s in range(count)
    ]
    return {"bot": bot, "guilds": guilds, "users": [alice]}


def mention(fake: FakeDiscord, text: str) -> str:
    return f"{fake.bot.mention} {text}"


def shards_that_got(fake: FakeDiscord, event: str, object_id: str) -> list[int | None]:
    """The shards of the sessions ``event`` with this ``id`` was dispatched to."""
    return [d.shard for d in fake.dispatched if d.event == event and d.data["id"] == object_id]


def replies_to(fake: FakeDiscord, message_id: str) -> list[FakeMessage]:
    return [
        m
        for m in fake.bot_messages()
        if (m.message_reference or {}).get("message_id") in (message_id, int(message_id))
    ]


# --------------------------------------------------------------------------- in one process


@dataclass
class Sharded:
    discord: FakeDiscord
    openrouter: FakeOpenRouter
    adapter: DiscordAdapter


ShardedFactory = Callable[..., Awaitable[Sharded]]


@pytest.fixture(autouse=True)
def identify_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """In this process, each shard IDENTIFYs at once: discord.py waits 5 s before every
    IDENTIFY but the first (Discord's identify rate limit, which the fake does not enforce).
    The two-process test keeps the real wait."""

    async def at_once(*args: Any, **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(ShardedChatClient, "before_identify_hook", at_once)


@pytest.fixture
async def start_sharded(tmp_path: Path) -> AsyncIterator[ShardedFactory]:
    async with AsyncExitStack() as stack:
        openrouter = await stack.enter_async_context(FakeOpenRouter())
        fake = await stack.enter_async_context(FakeDiscord(**sharded_world()))

        async def factory(**values: Any) -> Sharded:
            settings = make_settings(
                tmp_path,
                OPENROUTER_API_KEY=openrouter.api_key,
                OPENROUTER_BASE_URL=openrouter.base_url,
                DISCORD_BOT_TOKEN=fake.token,
                DISCORD_API_BASE=fake.rest_base,
                DISCORD_GATEWAY_URL=fake.gateway_url,
                **values,
            )
            services = await stack.enter_async_context(open_services(settings))
            core = await build_core(services)
            stack.push_async_callback(core.close)
            adapter = DiscordAdapter(core, settings)
            stack.push_async_callback(adapter.close)
            await adapter.start(timeout_s=15)
            return Sharded(fake, openrouter, adapter)

        yield factory


async def test_one_process_runs_every_shard_and_each_guild_is_answered_once(
    start_sharded: ShardedFactory,
) -> None:
    bot = await start_sharded(DISCORD_SHARD_COUNT="2")
    fake, adapter = bot.discord, bot.adapter
    assert isinstance(adapter.client, ShardedChatClient) and adapter.healthy
    assert sorted(i["shard"] for i in fake.identifies) == [[0, 2], [1, 2]]
    assert len(fake.command_syncs) == 1  # it runs shard 0

    guilds = list(fake.guilds.values())
    sent = [
        await fake.send_user_message(g.channels[0].id, content=mention(fake, g.name))
        for g in guilds
    ]
    sent.append(await fake.send_user_message(fake.dm_channel.id, content="a DM"))
    await eventually(lambda: adapter.outcomes["answered"] >= 3)
    await asyncio.sleep(0.2)  # time for a second answer, were one coming

    assert [shards_that_got(fake, "MESSAGE_CREATE", m["id"]) for m in sent] == [[0], [1], [0]]
    answers = [[a.content for a in replies_to(fake, m["id"])] for m in sent]
    assert answers == [["echo: guild on 0"], ["echo: guild on 1"], ["echo: a DM"]]


async def test_health_needs_every_shard_this_process_runs(start_sharded: ShardedFactory) -> None:
    bot = await start_sharded(DISCORD_SHARD_COUNT="2")
    client = bot.adapter.client
    assert isinstance(client, ShardedChatClient) and bot.adapter.healthy
    shard = client.get_shard(1)
    assert shard is not None
    await shard.disconnect()  # shard 0 stays connected
    assert not bot.adapter.healthy
    await shard.connect()
    await eventually(lambda: bot.adapter.healthy)


async def test_a_process_without_shard_0_answers_its_guilds_and_syncs_no_commands(
    start_sharded: ShardedFactory,
) -> None:
    bot = await start_sharded(DISCORD_SHARD_COUNT="2", DISCORD_SHARD_IDS="1")
    fake = bot.discord
    assert [i["shard"] for i in fake.identifies] == [[1, 2]]
    assert fake.command_syncs == []
    on_0, on_1 = fake.guilds.values()
    await fake.send_user_message(on_0.channels[0].id, content=mention(fake, "zero"))
    await fake.send_user_message(on_1.channels[0].id, content=mention(fake, "one"))
    await eventually(lambda: bot.adapter.outcomes["answered"] >= 1)
    await asyncio.sleep(0.2)
    assert [m.content for m in fake.bot_messages()] == ["echo: one"]


async def test_a_shard_that_gets_a_broken_ready_rejoins_alone(
    start_sharded: ShardedFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A READY with no session leaves that shard nothing to trust: it IDENTIFYs afresh, and
    the client (the other shard with it) keeps running, where discord.py would end it."""
    bot = await start_sharded(DISCORD_SHARD_COUNT="2")
    fake, adapter = bot.discord, bot.adapter
    fake.mangle_next("READY", {})
    await fake.invalidate_session()  # both shards IDENTIFY anew; one gets the broken READY
    await eventually(lambda: len(fake.identifies) == 5, timeout=15)
    await eventually(lambda: adapter.healthy, timeout=10)
    for guild in fake.guilds.values():
        await fake.send_user_message(guild.channels[0].id, content=mention(fake, guild.name))
    await eventually(lambda: adapter.outcomes["answered"] >= 2, timeout=10)
    assert not adapter.failed.is_set()
    assert any("joining it afresh" in r.getMessage() for r in caplog.records)


def test_start_allows_for_the_pause_before_each_shard_identify(tmp_path: Path) -> None:
    """discord.py connects a process's shards 5 s apart: 16 of them need 75 s more than one
    to be ready, which ``DiscordAdapter.start`` adds to its time limit."""
    settings = make_settings(tmp_path, DISCORD_SHARD_COUNT="16")
    commands = SlashCommands(
        cast(Core, None), settings, inflight=InFlight("discord"), outcomes=Counter()
    )

    async def ignore(message: discord.Message) -> None:
        return None

    intents = discord.Intents.default()
    feedback = FeedbackClicks(cast(Core, None), inflight=InFlight("discord"))
    every = ShardedChatClient(
        intents,
        commands=commands,
        answer_message=ignore,
        feedback=feedback,
        shard_count=16,
        shard_ids=None,
    )
    some = ShardedChatClient(
        intents,
        commands=commands,
        answer_message=ignore,
        feedback=feedback,
        shard_count=16,
        shard_ids=[3, 4],
    )
    assert (every.running, every.identify_wait_s) == (list(range(16)), 75.0)
    assert (some.running, some.identify_wait_s) == ([3, 4], 5.0)


# --------------------------------------------------------------------------- two processes


@dataclass
class ShardProcess:
    shard: int
    port: int
    log: Path
    process: asyncio.subprocess.Process

    def turns(self) -> list[str]:
        """The conversations of the turns this process ran (its per-turn log lines)."""
        lines = self.log.read_text(errors="replace").splitlines()
        return [
            line.split("conversation=", 1)[1].split()[0]
            for line in lines
            if " turn " in line and "conversation=" in line
        ]


async def _start_shard(
    shard: int, tmp_path: Path, fake: FakeDiscord, openrouter: FakeOpenRouter
) -> ShardProcess:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k in keep}
    port = free_port()
    env.update(
        PYTHONPATH=str(REPO),
        DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",  # one file, both processes
        OPENROUTER_API_KEY=openrouter.api_key,
        OPENROUTER_BASE_URL=openrouter.base_url,
        OPEN_METEO_URL="http://127.0.0.1:9",
        OPEN_METEO_GEOCODING_URL="http://127.0.0.1:9",
        DISCORD_BOT_TOKEN=fake.token,
        DISCORD_API_BASE=fake.rest_base,
        DISCORD_GATEWAY_URL=fake.gateway_url,
        DISCORD_SHARD_COUNT="2",
        DISCORD_SHARD_IDS=str(shard),
        BOT_INSTANCE_ID=f"shard-{shard}",
        PORT=str(port),
        BOT_OPS_HOST="127.0.0.1",
        LOG_LEVEL="INFO",
    )
    log = tmp_path / f"shard-{shard}.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", stdout=out, stderr=out, env=env, cwd=tmp_path
        )
    return ShardProcess(shard, port, log, process)


async def _stop(shard: ShardProcess) -> int:
    if shard.process.returncode is None:
        shard.process.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(30):
            return await shard.process.wait()
    except TimeoutError:
        shard.process.kill()
        return await shard.process.wait()


async def test_two_shard_processes_each_answer_their_own_guilds(tmp_path: Path) -> None:
    """``python -m bot`` twice, shards 0 and 1 of 2, on one SQLite file: a mention in each
    guild, a DM, and a reply to each answer are answered once, by the process whose shard
    serves the guild (DMs: shard 0), the reply in its conversation; shard 0 alone syncs."""
    async with AsyncExitStack() as stack:
        openrouter = await stack.enter_async_context(FakeOpenRouter())
        fake = await stack.enter_async_context(FakeDiscord(**sharded_world()))
        shards = [await _start_shard(s, tmp_path, fake, openrouter) for s in (0, 1)]
        for shard in shards:
            stack.push_async_callback(_stop, shard)
        try:
            await asyncio.gather(*(wait_healthy(s.port, timeout=60) for s in shards))
        except AssertionError:
            for shard in shards:
                print(shard.log.read_text(errors="replace"))
            raise
        assert sorted(i["shard"] for i in fake.identifies) == [[0, 2], [1, 2]]
        sessions = fake.shard_sessions()
        assert len(fake.command_syncs) == 1  # by the process that runs shard 0

        guilds = list(fake.guilds.values())
        asked = [
            await fake.send_user_message(g.channels[0].id, content=mention(fake, g.name))
            for g in guilds
        ]
        dm = await fake.send_user_message(fake.dm_channel.id, content="a DM")
        await eventually(
            lambda: (
                all(replies_to(fake, m["id"]) for m in asked)
                and fake.bot_messages(fake.dm_channel.id)
            ),
            timeout=30,
        )
        # A reply to each answer, no mention: the conversation goes on, on the same shard.
        answers = [replies_to(fake, m["id"])[0] for m in asked]
        followed = [
            await fake.send_user_message(
                a.channel_id, content=f"more from {g.name}", message_reference=a.id
            )
            for a, g in zip(answers, guilds, strict=True)
        ]
        await eventually(lambda: all(replies_to(fake, m["id"]) for m in followed), timeout=30)
        # A slash command in the guild on shard 1: its interaction goes to shard 1 alone.
        ask = await fake.send_interaction(
            "ask", {"question": "slash on 1"}, channel_id=guilds[1].channels[0].id
        )
        await eventually(lambda: ask.followup_ids, timeout=30)
        assert fake.message(ask.followup_ids[0]).content == "echo: slash on 1"
        assert shards_that_got(fake, "INTERACTION_CREATE", str(ask.id)) == [1]
        await asyncio.sleep(0.5)  # time for a second answer, were one coming

        for shard_id, asked_here, follow_up in zip((0, 1), asked, followed, strict=True):
            for message in (asked_here, follow_up):
                got = [d.session_id for d in fake.dispatched if d.data.get("id") == message["id"]]
                assert got == [sessions[shard_id]]  # that shard's session alone
        assert shards_that_got(fake, "MESSAGE_CREATE", dm["id"]) == [0]
        contents = [[a.content for a in replies_to(fake, m["id"])] for m in (*asked, *followed)]
        assert contents == [
            ["echo: guild on 0"],
            ["echo: guild on 1"],
            ["echo: more from guild on 0"],
            ["echo: more from guild on 1"],
        ]
        assert [m.content for m in fake.bot_messages(fake.dm_channel.id)] == ["echo: a DM"]

        # Each process ran its own shard's turns; each reply went on in its mention's
        # conversation (the history the model got says so too).
        started = [
            f"discord:{g.id}:{g.channels[0].id}:{m['id']}"
            for g, m in zip(guilds, asked, strict=True)
        ]
        in_dm = f"discord:dm:{fake.dm_channel.id}"
        assert sorted(shards[0].turns()) == sorted([started[0], started[0], in_dm])
        slash = f"discord:{guilds[1].id}:{guilds[1].channels[0].id}:{ask.id}"
        assert shards[1].turns() == [started[1], started[1], slash]
        for guild in guilds:
            (request,) = [
                r
                for r in openrouter.chat_requests
                if last_user_text(r.body or {}) == f"more from {guild.name}"
            ]
            users = [m["content"] for m in (request.body or {})["messages"] if m["role"] == "user"]
            assert any(guild.name in str(u) for u in users[:-1]), users

        assert [await _stop(s) for s in shards] == [0, 0]
