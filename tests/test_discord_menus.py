"""Discord's message context-menu commands end to end: the REAL discord.py client against
FakeDiscord (message command interactions, REST channel history), the real core and store
behind it, answering from FakeOpenRouter. Every answer is ephemeral."""

from __future__ import annotations

import pytest

from adapters.discord import context_menus
from adapters.discord.context_menus import CANNOT_READ, CHANNEL_BEYOND
from adapters.discord.translate import Place, place_conversation
from bot.access import REFUSAL
from bot.actions import MAX_ACTION_MESSAGES
from tests import test_discord
from tests.fakes.discord import FakeMessage
from tests.fakes.openrouter import TextReply
from tests.helpers import eventually

Bot = test_discord.Bot
BotFactory = test_discord.BotFactory
start_bot = test_discord.start_bot
bot = test_discord.bot
HISTORY = "GET /channels/{channel_id}/messages"
DEFERRED_EPHEMERAL = [{"type": 5, "data": {"flags": 64}}]


def chatter(bot: Bot, channel_id: int, count: int) -> list[FakeMessage]:
    """``count`` messages stored in a channel (as if sent before the bot looked)."""
    fake = bot.discord
    bob = fake.get_user_by_name("bob")
    for i in range(count):
        fake.message_create(channel_id, bob if i % 2 else fake.user, f"message {i}")
    return fake.messages_in(channel_id)


def prompt(bot: Bot, role: str) -> str:
    body = bot.openrouter.chat_requests[-1].body
    assert body is not None
    return "\n".join(m["content"] for m in body["messages"] if m["role"] == role)


async def answer_of(bot: Bot, interaction: object) -> FakeMessage:
    followups = await eventually(lambda: interaction.followup_ids)  # type: ignore[attr-defined]
    return bot.discord.message(followups[0])


async def test_menus_are_synced_with_the_slash_commands(bot: Bot) -> None:
    synced = {c["name"]: c for c in bot.discord.commands[None]}
    for name in ("Summarize", "Translate"):
        assert synced[name]["type"] == 3 and synced[name]["description"] == ""
    assert "ask" in synced


async def test_adding_the_menus_changes_the_command_hash(
    start_bot: BotFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bot upgraded to one with the menus syncs again: they are part of the hashed set."""
    monkeypatch.setattr(context_menus, "MENUS", {})
    before = await start_bot()
    assert "Summarize" not in {c["name"] for c in before.discord.commands[None]}
    await before.adapter.close()
    monkeypatch.undo()
    after = await start_bot()
    assert len(after.discord.command_syncs) == 2
    assert "Summarize" in {c["name"] for c in after.discord.commands[None]}


async def test_summarize_a_thread_is_answered_ephemerally(bot: Bot) -> None:
    fake = bot.discord
    messages = chatter(bot, fake.thread.id, 6)
    bot.openrouter.enqueue(TextReply("Alice and Bob chatted."))

    interaction = await fake.send_message_command("Summarize", messages[2])
    answer = await answer_of(bot, interaction)

    assert interaction.callbacks == DEFERRED_EPHEMERAL
    assert answer.ephemeral and answer.content == "Alice and Bob chatted."
    assert test_discord.pings_nobody(answer)
    assert [m for m in fake.bot_messages() if not m.ephemeral] == []  # nothing public
    (read,) = fake.requests_to(HISTORY)
    assert read.path.endswith(f"/channels/{fake.thread.id}/messages")
    assert "before" not in read.query  # the whole thread's newest, whichever message
    said = prompt(bot, "user")
    assert "alice: message 0" in said.lower() and "message 5" in said
    thread = place_conversation(Place(fake.guild.id, fake.thread.id, fake.channel.id, True))
    assert thread is not None and not await bot.core.conversations.bot_takes_part(thread)


async def test_summarize_in_a_channel_reads_history_up_to_the_message_bounded(
    bot: Bot,
) -> None:
    fake = bot.discord
    messages = chatter(bot, fake.channel.id, 220)
    picked = messages[199]
    interaction = await fake.send_message_command("Summarize", picked)
    answer = await answer_of(bot, interaction)

    reads = fake.requests_to(HISTORY)
    assert reads[0].query.get("before") == str(picked.id)
    assert [int(r.query["limit"]) for r in reads] == [100, MAX_ACTION_MESSAGES - 1 - 100]
    said = prompt(bot, "user")
    assert said.count(": message ") == MAX_ACTION_MESSAGES
    assert ": message 199" in said and ": message 200" not in said
    assert ": message 50\n" in said and ": message 49\n" not in said
    note = CHANNEL_BEYOND.format(kept=MAX_ACTION_MESSAGES)
    # The answer (the fake echoes its prompt) is split into ephemeral follow-ups.
    assert answer.ephemeral
    await bot.answered()  # every part sent
    parts = [fake.message(i) for i in interaction.followup_ids]
    assert all(p.ephemeral and len(p.content) <= 2_000 for p in parts)
    assert parts[-1].content.endswith(f"_{note}_")


async def test_translate_uses_the_interaction_locale(bot: Bot) -> None:
    fake = bot.discord
    (message,) = chatter(bot, fake.channel.id, 1)
    bot.openrouter.enqueue(TextReply("メッセージ 0"))
    interaction = await fake.send_message_command("Translate", message, locale="ja")
    answer = await answer_of(bot, interaction)
    assert answer.ephemeral and answer.content == "メッセージ 0"
    assert interaction.callbacks == DEFERRED_EPHEMERAL
    assert "into Japanese" in prompt(bot, "system")
    assert prompt(bot, "user").endswith("message 0")
    assert fake.requests_to(HISTORY) == []  # the interaction carries the message


async def test_a_menu_from_outside_the_allowlist_is_refused_ephemerally(
    start_bot: BotFactory,
) -> None:
    bot = await start_bot(BOT_ALLOWED_USERS="discord:1")
    (message,) = chatter(bot, bot.discord.channel.id, 1)
    interaction = await bot.discord.send_message_command("Summarize", message)
    answer = await answer_of(bot, interaction)
    assert answer.ephemeral and answer.content == REFUSAL
    assert bot.discord.requests_to(HISTORY) == [] and bot.openrouter.chat_requests == []


async def test_history_discord_refuses_is_told_ephemerally(bot: Bot) -> None:
    fake = bot.discord
    (message,) = chatter(bot, fake.channel.id, 1)
    fake.error_next(HISTORY, 403, code=50001, message="Missing Access")
    interaction = await fake.send_message_command("Summarize", message)
    answer = await answer_of(bot, interaction)
    assert answer.ephemeral and answer.content == CANNOT_READ
    assert bot.openrouter.chat_requests == []


async def test_a_replayed_menu_interaction_is_answered_once(bot: Bot) -> None:
    fake = bot.discord
    (message,) = chatter(bot, fake.channel.id, 1)
    payload = fake.message_command_create("Translate", message)
    await fake.dispatch("INTERACTION_CREATE", payload)
    interaction = fake.interactions[int(payload["id"])]
    await answer_of(bot, interaction)
    await fake.dispatch("INTERACTION_CREATE", payload)
    await eventually(lambda: bot.adapter.outcomes["duplicate"] == 1)
    assert len(interaction.followup_ids) == 1 and len(bot.openrouter.chat_requests) == 1
