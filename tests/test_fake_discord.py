"""The fake Discord, driven by the real discord.py client (REST, gateway, interactions)."""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import discord.gateway
import discord.http
import pytest
import yarl
from discord import app_commands

from tests.fakes.discord import (
    INTENT_GUILD_MESSAGES,
    INTENT_GUILDS,
    INTENT_MESSAGE_CONTENT,
    AttachmentSpec,
    FakeDiscord,
    FakeGuild,
    FakeRole,
    new_snowflake,
    point_discord_py_at,
    shard_of,
)
from tests.helpers import eventually

EDIT_ROUTE = "PATCH /channels/{channel_id}/messages/{message_id}"
SEND_ROUTE = "POST /channels/{channel_id}/messages"
NO_PINGS = discord.AllowedMentions.none()


class Bot(discord.Client):
    """A client that records what reaches it; ``/ask`` defers, then answers with a follow-up."""

    def __init__(self) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        # guild_ready_timeout: on_ready waits this long after the last GUILD_CREATE (default 2 s).
        super().__init__(intents=intents, guild_ready_timeout=0.1)
        self.tree = app_commands.CommandTree(self)
        self.ready = asyncio.Event()
        self.resumed = asyncio.Event()
        self.inbox: asyncio.Queue[discord.Message] = asyncio.Queue()
        self.guild_ids_at_ready: list[int] = []

        @self.tree.command(name="ask", description="Ask the bot something")
        async def ask(interaction: discord.Interaction[discord.Client], question: str) -> None:
            await interaction.response.defer(thinking=True)
            await interaction.followup.send(f"answer: {question}", allowed_mentions=NO_PINGS)

    async def on_ready(self) -> None:
        self.guild_ids_at_ready = [g.id for g in self.guilds]
        self.ready.set()

    async def on_resumed(self) -> None:
        self.resumed.set()

    async def on_message(self, message: discord.Message) -> None:
        if message.author != self.user:
            await self.inbox.put(message)


async def _run(client: discord.Client, token: str) -> None:
    async with client:
        await client.start(token)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as f:
        yield f


@pytest.fixture
async def bot(fake: FakeDiscord) -> AsyncIterator[Bot]:
    """A started client pointed at the fake; discord.py's globals are restored afterwards."""
    with point_discord_py_at(fake):
        client = Bot()
        task = asyncio.create_task(_run(client, fake.token))
        try:
            async with asyncio.timeout(5):
                ready = asyncio.create_task(client.ready.wait())
                await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
                ready.cancel()
                if task.done():
                    task.result()  # the client died before on_ready: show why
            yield client
        finally:
            await client.close()
            async with asyncio.timeout(5):
                await task


async def _next_message(client: Bot) -> discord.Message:
    async with asyncio.timeout(5):
        return await client.inbox.get()


# --------------------------------------------------------------------------- connection


async def test_point_discord_py_at_restores_globals(fake: FakeDiscord) -> None:
    def current() -> tuple[str, yarl.URL]:
        return discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY

    before = current()
    with point_discord_py_at(fake):
        assert current() == (fake.rest_base, yarl.URL(fake.gateway_url))
    assert current() == before


async def test_ready_with_guild_cached(fake: FakeDiscord, bot: Bot) -> None:
    assert bot.guild_ids_at_ready == [fake.guild.id]
    guild = bot.get_guild(fake.guild.id)
    assert guild is not None and guild.name == "Fake Guild"
    assert [c.name for c in guild.text_channels] == ["general", "random"]
    assert [t.id for t in guild.threads] == [fake.thread.id]
    assert bot.user is not None and bot.user.id == fake.bot.id
    assert bot.application_id == fake.application_id

    # discord.py 2.7 without zstandard asks for zlib-stream; the fake answered in kind.
    conn = fake.connections[0]
    assert conn.query == {"v": "10", "encoding": "json", "compress": "zlib-stream"}
    assert conn.compression == "zlib-stream" and conn.identified
    intents = fake.intents
    assert intents is not None
    assert intents & INTENT_MESSAGE_CONTENT and intents & INTENT_GUILD_MESSAGES
    assert fake.identifies[0]["token"] == "[REDACTED]"
    assert fake.heartbeats >= 1  # discord.py beats right after HELLO

    login = fake.requests_to("GET /users/@me")[0]
    assert login.headers["Authorization"] == "Bot [REDACTED]" and login.status == 200
    assert fake.requests_to("GET /oauth2/applications/@me")[0].status == 200
    for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Bucket"):
        assert header in login.response_headers


async def test_wrong_token_is_a_login_failure(fake: FakeDiscord) -> None:
    with point_discord_py_at(fake):
        client = discord.Client(intents=discord.Intents.default())
        with pytest.raises(discord.LoginFailure):
            async with client:
                await client.login("not-the-token")
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{fake.rest_base}/users/@me") as resp,
    ):
        assert resp.status == 401
        assert await resp.json() == {"message": "401: Unauthorized", "code": 0}


# --------------------------------------------------------------------------- messages


async def test_mention_reply_edit(fake: FakeDiscord, bot: Bot) -> None:
    sent = await fake.send_user_message(content=f"{fake.bot.mention} hello there")
    message = await _next_message(bot)
    assert message.id == int(sent["id"]) and message.content.endswith("hello there")
    assert bot.user in message.mentions

    reply = await message.reply("working on it…", allowed_mentions=NO_PINGS)
    stored = fake.message(reply.id)
    assert stored.content == "working on it…" and stored.type == 19
    assert stored.reply_to == message.id
    assert stored.message_reference is not None
    assert int(stored.message_reference["channel_id"]) == fake.channel.id
    assert stored.allowed_mentions == {"parse": []}
    assert stored.mentions == []  # no reply ping with replied_user off
    assert reply.reference is not None and reply.reference.message_id == message.id
    # Like Discord, the bot's own message comes back over the gateway.
    assert any(
        e.event == "MESSAGE_CREATE" and e.data["id"] == str(reply.id) for e in fake.dispatched
    )

    edited = await reply.edit(content="done: 42")
    assert edited.content == "done: 42" and edited.edited_at is not None
    assert stored.content == "done: 42" and [e["content"] for e in stored.edits] == ["done: 42"]
    assert fake.dispatched[-1].event == "MESSAGE_UPDATE"


async def test_scripted_429_on_edit_is_waited_out(fake: FakeDiscord, bot: Bot) -> None:
    channel = bot.get_channel(fake.channel.id)
    assert isinstance(channel, discord.TextChannel)
    message = await channel.send("draft")
    fake.fail_next("PATCH /channels/{id}/messages/{id}", retry_after=0.3)

    started = time.monotonic()
    await message.edit(content="final")
    assert time.monotonic() - started >= 0.3
    assert fake.message(message.id).content == "final"
    first, second = fake.requests_to(EDIT_ROUTE)
    assert (first.status, second.status) == (429, 200)
    assert first.response == {
        "message": "You are being rate limited.",
        "retry_after": 0.3,
        "global": False,
    }
    assert first.response_headers["Retry-After"] == "1"
    assert first.response_headers["X-RateLimit-Scope"] == "user"
    assert first.response_headers["Via"] == "1.1 google"  # discord.py retries only with Via


async def test_route_limit_is_emulated(fake: FakeDiscord, bot: Bot) -> None:
    fake.set_route_limit("POST /channels/{id}/messages", limit=2, per_s=0.5)
    channel = bot.get_channel(fake.channel.id)
    assert isinstance(channel, discord.TextChannel)

    started = time.monotonic()
    for n in range(3):
        await channel.send(f"message {n}")
    # discord.py read Remaining 0 and slept out the window: the third send waited, no 429.
    assert time.monotonic() - started >= 0.3
    sends = fake.requests_to(SEND_ROUTE)
    assert [r.status for r in sends] == [200, 200, 200]
    assert [r.response_headers["X-RateLimit-Remaining"] for r in sends] == ["1", "0", "1"]

    # A client that ignores the headers gets a real 429.
    url = f"{fake.rest_base}/channels/{fake.channel.id}/messages"
    headers = {"Authorization": f"Bot {fake.token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        statuses = []
        for n in range(3):
            async with http.post(url, json={"content": f"raw {n}"}) as resp:
                statuses.append(resp.status)
                body = await resp.json()
        assert statuses[-1] == 429
        assert body["global"] is False and 0 < body["retry_after"] <= 0.5


async def test_content_over_2000_chars_is_rejected(fake: FakeDiscord, bot: Bot) -> None:
    channel = bot.get_channel(fake.channel.id)
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.HTTPException) as caught:
        await channel.send("x" * 2001)
    assert caught.value.status == 400 and caught.value.code == 50035
    assert "2000 or fewer" in caught.value.text
    assert fake.bot_messages() == []


async def test_typing_thread_and_dm(fake: FakeDiscord, bot: Bot) -> None:
    channel = bot.get_channel(fake.channel.id)
    assert isinstance(channel, discord.TextChannel)
    async with channel.typing():
        pass
    typing = await fake.wait_for_request("POST /channels/{id}/typing")
    assert typing.status == 204 and typing.path.endswith(f"/{fake.channel.id}/typing")

    await fake.send_user_message(content=f"{fake.bot.mention} start a thread")
    message = await _next_message(bot)
    thread = await message.create_thread(name="conversation")
    assert thread.id == message.id  # Discord reuses the starter message's id
    await thread.send("in the thread", allowed_mentions=NO_PINGS)
    assert [m.content for m in fake.messages_in(thread.id)] == ["in the thread"]
    assert fake.channels[thread.id].parent_id == fake.channel.id

    assert message.author.id == fake.user.id
    dm_message = await message.author.send("hello in private")
    assert dm_message.channel.id == fake.dm_channel.id
    assert [m.content for m in fake.messages_in(fake.dm_channel.id)] == ["hello in private"]
    assert fake.requests_to("POST /users/@me/channels")[0].body == {"recipient_id": fake.user.id}


async def test_incoming_dm_with_attachment(fake: FakeDiscord, bot: Bot) -> None:
    await fake.send_user_message(
        fake.dm_channel.id, content="read this", attachments=[("notes.txt", b"secret notes")]
    )
    message = await _next_message(bot)
    assert isinstance(message.channel, discord.DMChannel) and message.guild is None
    attachment = message.attachments[0]
    assert attachment.filename == "notes.txt" and attachment.size == 12
    assert attachment.content_type == "text/plain"
    assert await attachment.read() == b"secret notes"


# --------------------------------------------------------------------------- slash commands


async def test_slash_command_defer_and_followup(fake: FakeDiscord, bot: Bot) -> None:
    interaction = await fake.send_interaction("ask", {"question": "why?"})
    followup = await fake.wait_for_request("POST /webhooks/{id}/{token}")

    assert interaction.callbacks == [{"type": 5}]  # defer(thinking=True)
    callback = fake.requests_to("POST /interactions/{id}/{token}/callback")[0]
    assert "Authorization" not in callback.headers  # the token is in the path
    assert followup.status == 200 and followup.query.get("wait") == "1"
    assert followup.body["content"] == "answer: why?"
    # The first follow-up after a thinking defer replaces the loading message, as on Discord.
    assert interaction.followup_ids == [interaction.original_message_id]
    answer = fake.message(interaction.followup_ids[0])
    assert answer.content == "answer: why?" and not answer.loading
    assert answer.channel_id == fake.channel.id


async def test_tree_sync_is_a_bulk_put(fake: FakeDiscord, bot: Bot) -> None:
    synced = await bot.tree.sync()
    assert [c.name for c in synced] == ["ask"]
    await bot.tree.sync(guild=discord.Object(fake.guild.id))
    puts = [r for r in fake.requests if r.method == "PUT"]
    assert [r.route for r in puts] == [
        "PUT /applications/{application_id}/commands",
        "PUT /applications/{application_id}/guilds/{guild_id}/commands",
    ]
    assert [s.guild_id for s in fake.command_syncs] == [None, fake.guild.id]
    assert fake.commands[None][0]["options"][0]["name"] == "question"
    payload = fake.interaction_create("ask", {"question": "q"})
    assert payload["data"]["id"] == str(synced[0].id)


# --------------------------------------------------------------------------- reconnects


async def test_dropped_socket_resumes_and_replays(fake: FakeDiscord, bot: Bot) -> None:
    await fake.drop_connection()
    # Sent while the client is away: kept and replayed after its RESUME.
    missed = await fake.send_user_message(content=f"{fake.bot.mention} did you miss me?")
    async with asyncio.timeout(5):
        await fake.wait_for_resume()
        await bot.resumed.wait()
    message = await _next_message(bot)
    assert message.id == int(missed["id"])
    assert len(fake.identifies) == 1 and fake.resumes[0]["session_id"] == bot.ws.session_id
    assert fake.connections[0].closed_by_server and fake.connections[1].resumed

    await fake.replay()  # the same MESSAGE_CREATE again, a duplicate delivery
    again = await _next_message(bot)
    assert again.id == message.id


# --------------------------------------------------------------------------- raw gateway


async def _frames(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[dict[str, Any]]:
    inflate = zlib.decompressobj()
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(5):
        while len(frames) < count:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.BINARY:
                frames.append(json.loads(inflate.decompress(msg.data)))
            else:
                frames.append(json.loads(msg.data))
    return frames


async def test_raw_gateway_plain_json_and_intents(fake: FakeDiscord) -> None:
    without_content = INTENT_GUILDS | INTENT_GUILD_MESSAGES
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{fake.gateway_url}?v=10&encoding=json") as ws:
            (hello,) = await _frames(ws, 1)
            assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] > 0
            await ws.send_json({"op": 1, "d": None})
            identify = {"token": fake.token, "intents": without_content, "properties": {}}
            await ws.send_json({"op": 2, "d": identify})
            ack, ready, guild = await _frames(ws, 3)
            assert ack["op"] == 11
            assert (ready["t"], ready["s"]) == ("READY", 1)
            assert ready["d"]["resume_gateway_url"] == fake.gateway_url
            assert ready["d"]["guilds"] == [{"id": str(fake.guild.id), "unavailable": True}]
            assert (guild["t"], guild["s"]) == ("GUILD_CREATE", 2)
            # No GUILD_MEMBERS intent: only the bot's own member, as on Discord.
            assert [m["user"]["id"] for m in guild["d"]["members"]] == [str(fake.bot.id)]

            # No MESSAGE_CONTENT intent: content only when the bot is mentioned.
            await fake.send_user_message(content="not for the bot")
            await fake.send_user_message(content=f"{fake.bot.mention} for the bot")
            plain, mention = await _frames(ws, 2)
            assert (plain["s"], plain["d"]["content"]) == (3, "")
            assert mention["d"]["content"].endswith("for the bot")
        assert fake.connections[0].compression is None


async def test_raw_gateway_zlib_stream_and_zstd_refused(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as http:
        url = f"{fake.gateway_url}?v=10&encoding=json&compress=zlib-stream"
        async with http.ws_connect(url) as ws:
            msg = await ws.receive()
            assert msg.type is aiohttp.WSMsgType.BINARY
            assert msg.data.endswith(b"\x00\x00\xff\xff")  # each frame Z_SYNC_FLUSHed
            assert json.loads(zlib.decompressobj().decompress(msg.data))["op"] == 10
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(f"{fake.gateway_url}?v=10&encoding=json&compress=zstd-stream")
    assert "zstd-stream" in fake.gateway_errors[0]


# --------------------------------------------------------------------------- hostile worlds


async def test_webhook_message_and_member_roles(fake: FakeDiscord, bot: Bot) -> None:
    """A webhook's message as Discord documents it: ``webhook_id``, the webhook as author
    (no ``bot`` flag), no ``member``. A member's role ids ride along with each message."""
    hook_id = new_snowflake()
    sent = await fake.send_user_message(content="from a webhook", webhook_id=hook_id)
    assert sent["webhook_id"] == str(hook_id) and "application_id" not in sent
    assert sent["author"]["id"] == str(hook_id) and "bot" not in sent["author"]
    assert "member" not in sent
    message = await _next_message(bot)
    assert message.webhook_id == hook_id and not message.author.bot

    role = FakeRole(id=new_snowflake(), name="helpers")
    fake.guild.roles.append(role)
    fake.guild.member_roles[fake.user.id] = [role.id]
    await fake.send_user_message(content="with a role")
    message = await _next_message(bot)
    assert isinstance(message.author, discord.Member)
    assert [r.id for r in message.author.roles if not r.is_default()] == []  # not in the cache
    assert list(message.author._roles) == [role.id]


async def test_a_withheld_guild_is_unavailable_until_made_available() -> None:
    async with FakeDiscord() as fake:
        fake.unavailable_guilds.add(fake.guild.id)
        with point_discord_py_at(fake):
            client = Bot()
            task = asyncio.create_task(_run(client, fake.token))
            try:
                async with asyncio.timeout(5):
                    await client.ready.wait()
                    guild = client.get_guild(fake.guild.id)
                    assert guild is not None and guild.unavailable and not guild.channels
                    assert not [d for d in fake.dispatched if d.event == "GUILD_CREATE"]
                    await fake.make_available(fake.guild.id)
                await eventually(lambda: client.get_channel(fake.channel.id))
                assert not guild.unavailable
            finally:
                await client.close()
                await task


async def test_an_attachment_can_lie_about_its_size(fake: FakeDiscord, bot: Bot) -> None:
    spec = AttachmentSpec("small.txt", b"", declared_size=10, served_size=3 * 1024 * 1024)
    sent = await fake.send_user_message(fake.dm_channel.id, content="x", attachments=[spec])
    assert sent["attachments"][0]["size"] == 10
    message = await _next_message(bot)
    assert len(await message.attachments[0].read()) == 3 * 1024 * 1024
    assert fake.attachment(sent["attachments"][0]["id"]).bytes_served == 3 * 1024 * 1024


async def test_malformed_ready_resumed_and_raw_frames_are_sent_as_scripted(
    fake: FakeDiscord,
) -> None:
    fake.mangle_next("READY", {})
    fake.mangle_next("RESUMED", None)
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{fake.gateway_url}?v=10&encoding=json") as ws:
            await _frames(ws, 1)  # HELLO
            identify = {"token": fake.token, "intents": INTENT_GUILDS, "properties": {}}
            await ws.send_json({"op": 2, "d": identify})
            ready, _guild = await _frames(ws, 2)
            assert (ready["t"], ready["d"]) == ("READY", {})
            await fake.send_frame(["not", "an", "object"])
            assert await _frames(ws, 1) == [["not", "an", "object"]]  # type: ignore[comparison-overlap]
            await fake.drop_connection()  # the session stays resumable
        session = fake.connections[0].session_id
        async with http.ws_connect(f"{fake.gateway_url}?v=10&encoding=json") as ws:
            await _frames(ws, 1)
            resume = {"token": fake.token, "session_id": session, "seq": 2}
            await ws.send_json({"op": 6, "d": resume})
            (resumed,) = await _frames(ws, 1)
            assert (resumed["t"], resumed["d"]) == ("RESUMED", None)


# --------------------------------------------------------------------------- components


async def test_buttons_are_checked_as_discord_does(fake: FakeDiscord, bot: Bot) -> None:
    channel = bot.get_channel(fake.channel.id)
    assert isinstance(channel, discord.TextChannel)
    bad = [
        # No custom id on a non-link button, a custom id over 100, the same id twice, a select.
        {"type": 1, "components": [{"type": 2, "style": 1, "label": "x"}]},
        {"type": 1, "components": [{"type": 2, "style": 1, "label": "x", "custom_id": "c" * 101}]},
        {
            "type": 1,
            "components": [
                {"type": 2, "style": 1, "label": "x", "custom_id": "same"},
                {"type": 2, "style": 2, "label": "y", "custom_id": "same"},
            ],
        },
        {"type": 1, "components": [{"type": 3, "custom_id": "pick", "options": []}]},
        {"type": 1, "components": [{"type": 2, "style": 2, "custom_id": "no-label"}]},
    ]
    route = discord.http.Route("POST", "/channels/{channel_id}/messages", channel_id=channel.id)
    for row in bad:
        with pytest.raises(discord.HTTPException) as caught:
            await bot.http.request(route, json={"content": "x", "components": [row]})
        assert caught.value.status == 400 and caught.value.code == 50035, row
    assert fake.bot_messages() == []


async def test_a_click_on_a_button_is_a_component_interaction(fake: FakeDiscord, bot: Bot) -> None:
    clicked: asyncio.Queue[discord.Interaction[discord.Client]] = asyncio.Queue()

    class Buttons(discord.ui.View):
        @discord.ui.button(label="Yes", custom_id="yes", style=discord.ButtonStyle.success)
        async def yes(
            self, interaction: discord.Interaction[discord.Client], button: discord.ui.Button[Any]
        ) -> None:
            await interaction.response.send_message("noted", ephemeral=True)
            await clicked.put(interaction)

    channel = bot.get_channel(fake.channel.id)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("Agree?", view=Buttons(timeout=None))
    stored = fake.message(sent.id)
    assert stored.components[0]["components"][0]["custom_id"] == "yes"
    with pytest.raises(LookupError):  # nobody can click a button the message does not show
        fake.component_interaction_create(sent.id, "no")

    payload = fake.component_interaction_create(sent.id, "yes")
    assert payload["type"] == 3
    assert payload["data"] == {"custom_id": "yes", "component_type": 2}
    assert payload["message"]["id"] == str(sent.id)
    interaction = await fake.click_button(sent.id, "yes")
    async with asyncio.timeout(5):
        seen = await clicked.get()
    assert seen.message is not None and seen.message.id == sent.id
    assert interaction.callbacks == [
        {"type": 4, "data": {"tts": False, "content": "noted", "flags": 64}}
    ]
    reply = fake.message(interaction.original_message_id or 0)
    assert reply.ephemeral and reply.content == "noted"


# --------------------------------------------------------------------------- sharding


class ShardBot(discord.AutoShardedClient):
    """One process's share of a sharded bot: records the guilds, messages and interactions
    that reach it."""

    def __init__(self, shard_id: int, shard_count: int) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        super().__init__(
            intents=intents,
            shard_ids=[shard_id],
            shard_count=shard_count,
            guild_ready_timeout=0.1,
        )
        self.ready = asyncio.Event()
        self.messages: list[discord.Message] = []
        self.interactions: list[discord.Interaction[Any]] = []

    async def on_ready(self) -> None:
        self.ready.set()

    async def on_message(self, message: discord.Message) -> None:
        if message.author != self.user:
            self.messages.append(message)

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        self.interactions.append(interaction)


async def test_each_shard_gets_its_own_guilds_and_shard_0_the_dms() -> None:
    """Two sharded clients (shards 0 and 1 of 2), as two processes would run them: each sees
    only the guilds ``(guild_id >> 22) % 2`` puts on its shard, DMs reach shard 0 only."""
    async with FakeDiscord() as world:
        alice = world.user
        guilds = [
            FakeGuild.create(f"guild on {s}", owner=alice, members=[world.bot, alice], shard=(s, 2))
            for s in (0, 1)
        ]
    async with FakeDiscord(bot=world.bot, guilds=guilds, users=[alice]) as fake:
        assert [shard_of(g.id, 2) for g in guilds] == [0, 1]
        with point_discord_py_at(fake):
            clients = [ShardBot(0, 2), ShardBot(1, 2)]
            tasks = [asyncio.create_task(_run(c, fake.token)) for c in clients]
            try:
                async with asyncio.timeout(10):
                    await asyncio.gather(*(c.ready.wait() for c in clients))
                assert sorted(i["shard"] for i in fake.identifies) == [[0, 2], [1, 2]]
                assert [[g.id for g in c.guilds] for c in clients] == [[g.id] for g in guilds]

                for guild in guilds:
                    await fake.send_user_message(guild.channels[0].id, content=f"in {guild.name}")
                    await fake.send_interaction(
                        "ask", {"question": "?"}, channel_id=guild.channels[0].id
                    )
                await fake.send_user_message(fake.dm_channel.id, content="a DM")
                await fake.send_interaction("ask", {"question": "?"}, channel_id=fake.dm_channel.id)
                await eventually(lambda: sum(len(c.messages) for c in clients) == 3)
                await eventually(lambda: sum(len(c.interactions) for c in clients) == 3)
                got = [[m.content for m in c.messages] for c in clients]
                assert got == [["in guild on 0", "a DM"], ["in guild on 1"]]
                where = [[i.guild_id for i in c.interactions] for c in clients]
                assert where == [[guilds[0].id, None], [guilds[1].id]]
                sessions = fake.shard_sessions()
                assert {d.shard for d in fake.dispatched if d.session_id == sessions[1]} == {1}
            finally:
                for client, task in zip(clients, tasks, strict=True):
                    await client.close()
                    await task


async def test_an_identify_with_a_shard_out_of_range_is_closed_4010(fake: FakeDiscord) -> None:
    url = f"{fake.gateway_url}?v=10&encoding=json"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await _frames(ws, 1)  # HELLO
        identify = {"token": fake.token, "intents": INTENT_GUILDS, "shard": [2, 2]}
        await ws.send_json({"op": 2, "d": identify})
        assert (await ws.receive()).type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 4010
    assert fake.identifies == []


async def test_channel_history_pages_newest_first(fake: FakeDiscord, bot: Bot) -> None:
    for i in range(5):
        fake.message_create(content=f"m{i}")
    channel = bot.get_partial_messageable(fake.channel.id, guild_id=fake.guild.id)
    newest = [m.content async for m in channel.history(limit=3)]
    assert newest == ["m4", "m3", "m2"]
    ids = [m.id for m in fake.messages_in(fake.channel.id)]
    before = [m.content async for m in channel.history(limit=10, before=discord.Object(ids[3]))]
    assert before == ["m2", "m1", "m0"]
    read = fake.requests_to("GET /channels/{id}/messages")[-1]
    assert read.query["before"] == str(ids[3]) and read.query["limit"] == "10"


async def test_message_command_interaction_carries_the_target(fake: FakeDiscord) -> None:
    fake.message_create(content="target text")
    target = fake.messages_in(fake.channel.id)[-1]
    payload = fake.message_command_create("Translate", target, locale="ja")
    data = payload["data"]
    assert (data["type"], data["target_id"], payload["type"]) == (3, str(target.id), 2)
    assert data["resolved"]["messages"][str(target.id)]["content"] == "target text"
    assert payload["locale"] == "ja" and "options" not in data
