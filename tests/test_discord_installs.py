"""Discord as a user-installable app, and messages that bring others along, end to end: the REAL
discord.py client against FakeDiscord (user-install interactions from DMs the bot is not part
of, global command sync, forwards with message_snapshots, replies to messages the bot never
saw), the real core behind it."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import discord
import pytest
from discord import app_commands

import tests.test_discord as discord_suite
from adapters.discord.commands import SlashCommands, commands_digest
from bot.events import Quote, QuoteKind
from bot.quotes import MAX_QUOTES, QUOTE_CHARS, quoted_context
from bot.recovery import RESTART_LINE
from tests.conftest import make_settings
from tests.fakes.discord import FakeChannel, FakeDiscord
from tests.fakes.openrouter import HangReply, TextReply
from tests.helpers import as_restarted, eventually, pending
from tests.test_discord import Bot, BotFactory, normalize, pings_nobody

# The Discord suite's fixtures: a bot started on a fresh fake Discord.
start_bot = discord_suite.start_bot
bot = discord_suite.bot


def dispatched_in(fake: FakeDiscord, channel: FakeChannel) -> list[str]:
    """Message events the gateway sent the bot from ``channel`` (an interaction from there
    does come: that is how a user install works)."""
    return [
        e.event
        for e in fake.dispatched
        if e.data.get("channel_id") == str(channel.id) and e.event.startswith("MESSAGE_")
    ]


def bot_calls_to(fake: FakeDiscord, channel: FakeChannel) -> list[str]:
    """The bot's own REST calls to ``channel`` (interaction webhooks have no channel path)."""
    return [f"{r.method} {r.path}" for r in fake.requests if f"/channels/{channel.id}" in r.path]


# --------------------------------------------------------------------------- user installs


@pytest.mark.parametrize("group", [False, True], ids=["dm", "group-dm"])
async def test_a_user_installed_ask_in_a_dm_the_bot_is_not_in_is_answered_through_the_interaction(
    bot: Bot, group: bool
) -> None:
    fake = bot.discord
    alice, bob = fake.user, fake.get_user_by_name("bob")
    members = [alice, bob, fake.add_user("carol")] if group else [alice, bob]
    dm = fake.private_channel(*members, name="friends")
    text = "\n\n".join(f"Paragraph {i}. " + "Some words to fill the line. " * 12 for i in range(14))
    assert len(text) > 4_000
    bot.openrouter.enqueue(TextReply(text, chunks=10, delay=0.01))

    ask = await fake.send_user_install_interaction("ask", {"question": "long?"}, channel_id=dm.id)
    await bot.answered()

    assert ask.callbacks == [{"type": 5}]  # deferred, public: the DM sees the answer
    answers = fake.messages_in(dm.id)
    assert len(answers) >= 3 and all(len(m.content) <= 2_000 for m in answers)
    # Every part came through the interaction's webhook: the deferred response, then follow-ups.
    assert [m.id for m in answers] == ask.followup_ids
    assert all(m.interaction_id == ask.id and m.webhook_id == fake.application_id for m in answers)
    assert all(pings_nobody(m) for m in answers)
    assert normalize("\n".join(m.content for m in answers)) == normalize(text)
    # The bot never called the channel itself (typing, sends) and heard nothing from it.
    assert bot_calls_to(fake, dm) == []
    assert dispatched_in(fake, dm) == []
    assert bot.adapter.outcomes["failed"] == 0

    # The fake holds the line Discord holds: the bot's own send there is refused.
    client = bot.adapter.client
    assert client is not None
    with pytest.raises(discord.Forbidden) as refused:
        await client.get_partial_messageable(dm.id).send("hello?")
    assert (refused.value.status, refused.value.code) == (403, 50001)


async def test_private_commands_in_a_dm_the_bot_is_not_in_answer_the_user_alone(bot: Bot) -> None:
    fake = bot.discord
    dm = fake.private_channel(fake.user, fake.get_user_by_name("bob"))
    usage = await fake.send_user_install_interaction("usage", channel_id=dm.id)
    await eventually(lambda: usage.followup_ids)
    assert usage.callbacks == [{"type": 5, "data": {"flags": 64}}]
    [reply] = fake.messages_in(dm.id)
    assert reply.ephemeral and "answers" in reply.content
    assert bot_calls_to(fake, dm) == []


async def test_a_cut_user_installed_ask_is_told_through_the_interaction(bot: Bot) -> None:
    """After a crash the channel cannot be reached (403), but the interaction's webhook still
    can, for 15 minutes: the user is told there."""
    fake = bot.discord
    dm = fake.private_channel(fake.user, fake.get_user_by_name("bob"))
    bot.openrouter.enqueue(HangReply())
    ask = await fake.send_user_install_interaction("ask", {"question": "slow"}, channel_id=dm.id)
    await bot.openrouter.wait_for_requests(1)
    assert len(await pending(bot.core.store)) == 1  # in flight, as a kill -9 would leave it

    await as_restarted(bot.core)
    assert await bot.core.recover("discord", bot.adapter._tell) == 1

    told = await fake.wait_for_message(lambda m: RESTART_LINE in m.content, channel_id=dm.id)
    assert told.interaction_id == ask.id and told.content == f"*{RESTART_LINE}*"
    assert bot_calls_to(fake, dm) == []
    assert await pending(bot.core.store) == []


async def test_commands_are_synced_globally_for_server_and_user_installs(
    start_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.discord")
    bot = await start_bot()
    [sync] = bot.discord.command_syncs
    assert sync.guild_id is None  # only a global command carries installs and contexts
    for command in sync.commands:
        assert command["integration_types"] == [0, 1], command["name"]  # server, user
        assert command["contexts"] == [0, 1, 2], command["name"]  # server, bot DM, other DMs
    assert "synced globally, for server and user installs" in caplog.text
    await bot.adapter.close()

    # DISCORD_GUILD_ID: one server, for development, and the log says what is lost.
    dev = await start_bot(DISCORD_GUILD_ID=str(bot.discord.guild.id))
    assert [s.guild_id for s in dev.discord.command_syncs] == [None, dev.discord.guild.id]
    assert "a guild sync cannot carry the user install" in caplog.text


async def test_the_command_hash_covers_installs_and_contexts(tmp_path: Any) -> None:
    """Changing where a command may be used must sync again."""
    settings = make_settings(tmp_path)
    client = discord.Client(intents=discord.Intents.none())
    client._connection.application_id = 1234
    tree: app_commands.CommandTree[Any] = app_commands.CommandTree(client)
    SlashCommands(None, settings, inflight=None, outcomes=None).register(tree)  # type: ignore[arg-type]
    before = commands_digest(tree, None)
    ask = tree.get_command("ask")
    assert isinstance(ask, app_commands.Command)
    ask.allowed_contexts = app_commands.AppCommandContext(guild=True)
    assert commands_digest(tree, None) != before
    ask.allowed_contexts = app_commands.AppCommandContext(
        guild=True, dm_channel=True, private_channel=True
    )
    assert commands_digest(tree, None) == before
    ask.allowed_installs = app_commands.AppInstallationType(guild=True)
    assert commands_digest(tree, None) != before
    await client.close()


async def test_the_invite_urls_offer_the_server_and_the_user_install(
    start_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.discord")
    bot = await start_bot()
    [line] = [r.getMessage() for r in caplog.records if "invite it with" in r.getMessage()]
    server, user = re.findall(r"https://discord\.com/oauth2/authorize\?\S+", line)
    app = str(bot.discord.application_id)

    server_query = parse_qs(urlsplit(server).query)
    assert server_query["client_id"] == [app] and server_query["integration_type"] == ["0"]
    assert server_query["scope"] == ["bot applications.commands"]
    assert int(server_query["permissions"][0]) & (1 << 11)  # send messages

    user_query = parse_qs(urlsplit(user).query)
    assert user_query["client_id"] == [app] and user_query["integration_type"] == ["1"]
    assert user_query["scope"] == ["applications.commands"]  # no bot user, no permissions
    assert "permissions" not in user_query


# --------------------------------------------------------------------------- quoted messages


async def test_a_forwarded_message_reaches_the_model_as_context(bot: Bot) -> None:
    fake = bot.discord
    bob = fake.get_user_by_name("bob")
    elsewhere = fake.private_channel(fake.user, bob)  # a chat the bot cannot see
    original = fake.message_create(
        elsewhere.id,
        bob,
        "Dinner is at 7, bring the maps.",
        attachments=[("route.txt", b"Turn left at the old mill.")],
    )
    forward = await fake.send_forward(int(original["id"]), channel_id=fake.dm_channel.id)
    assert "message_snapshots" in forward and "referenced_message" not in forward
    await bot.answered()

    prompt = bot.last_prompt()
    assert "[A message the user forwarded, for context]" in prompt
    assert "> Dinner is at 7, bring the maps." in prompt
    assert "Turn left at the old mill." in prompt  # its file, read as any attachment
    [answer] = fake.bot_messages(fake.dm_channel.id)
    assert answer.content.startswith("echo:")


@pytest.mark.parametrize("included", [True, False], ids=["referenced_message", "fetched"])
async def test_a_reply_to_a_message_the_bot_never_saw_reaches_the_model_as_context(
    bot: Bot, included: bool
) -> None:
    fake = bot.discord
    bob = fake.get_user_by_name("bob")
    earlier = fake.message_create(content="The launch moved to Friday.", author=bob)
    payload = fake.message_create(
        content=f"{fake.bot.mention} is that right?", message_reference=int(earlier["id"])
    )
    assert payload["referenced_message"]["content"] == "The launch moved to Friday."
    if not included:  # Discord may leave it out: the bot asks for it once
        payload["referenced_message"] = None
        payload.pop("referenced_message")
    await fake.dispatch("MESSAGE_CREATE", payload)
    await bot.answered()

    assert "[The message the user is replying to, written by Bob, for context]" in (
        bot.last_prompt()
    )
    assert "> The launch moved to Friday.\n[End of quoted message]\n\nis that right?" in (
        bot.last_prompt()
    )
    fetched = fake.requests_to("GET /channels/{channel_id}/messages/{message_id}")
    assert len(fetched) == (0 if included else 1)

    # A reply to the bot's own answer is its conversation, not a quote.
    answer = fake.bot_messages(fake.channel.id)[-1]
    await fake.send_user_message(content="and after that?", message_reference=answer.id)
    await bot.answered(2)
    assert bot.last_prompt() == "and after that?"


# --------------------------------------------------------------------------- the quote block


def test_quotes_are_marked_bounded_and_empty_ones_skipped() -> None:
    long = "x" * (QUOTE_CHARS + 50)
    text = quoted_context(
        (
            Quote(QuoteKind.FORWARDED, "line one\nline two"),
            Quote(QuoteKind.REPLIED_TO, "  ", author="Bob"),
            Quote(QuoteKind.REPLIED_TO, long, author="Bob"),
        )
    )
    assert text.startswith("[A message the user forwarded, for context]\n> line one\n> line two")
    assert text.count("[End of quoted message]") == 2  # the blank one is skipped
    assert "x" * QUOTE_CHARS in text and "x" * (QUOTE_CHARS + 1) not in text
    assert f"longer than {QUOTE_CHARS:,} characters" in text
    many = tuple(Quote(QuoteKind.FORWARDED, f"n{i}") for i in range(MAX_QUOTES + 3))
    assert quoted_context(many).count("[End of quoted message]") == MAX_QUOTES
    assert quoted_context(()) == ""
