"""Tool calls that need approval on Discord: the real adapter on the fake Discord (the question
with its buttons where the answer goes, component interactions for the clicks), a real MCP
server (``tests/mcp_servers/notes.py``) and the fake OpenRouter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.approvals import DENIED_TO_MODEL
from tests.fakes.discord import FakeDiscord, FakeMessage, FakeUser, new_snowflake
from tests.fakes.discord.models import FakeInteraction
from tests.fakes.openrouter import TextReply, ToolCallReply
from tests.helpers import eventually
from tests.test_discord import BotFactory, start_bot
from tests.test_mcp import stdio_server, tool_output, write_config

__all__ = ["start_bot"]  # the Discord bot fixture, shared


def discord_buttons(message: FakeMessage) -> list[str]:
    return [c["custom_id"] for row in message.components for c in row["components"]]


async def test_discord_asks_with_buttons_and_only_the_asker_may_answer(
    tmp_path: Path, start_bot: BotFactory
) -> None:
    config = write_config(tmp_path, {"notes": stdio_server(require_approval="always")})
    bot = await start_bot(BOT_MCP_CONFIG=config)
    fake = bot.discord
    bot.openrouter.enqueue(
        ToolCallReply.single("delete_note", {"topic": "@everyone deploys"}, id="call_1"),
        TextReply("I left it alone."),
    )
    await fake.send_user_message(content=f"{fake.bot.mention} delete the note")

    question = await wait_until(
        lambda: next((m for m in bot.answers(fake.channel.id) if m.components), None)
    )
    asker = fake.user.id
    assert question.content.startswith(
        f'<@{asker}> May I run `notes.delete_note` with topic="@everyone deploys"?'
    )
    # It pings the asker, and nobody else whatever the arguments say.
    assert question.allowed_mentions == {"parse": [], "users": [asker]}
    [yes, no] = discord_buttons(question)
    assert yes.startswith("ap:yes:") and no.startswith("ap:no:")

    stranger = FakeUser(id=new_snowflake(), username="mallory")
    told = await private_line(fake, await fake.click_button(question.id, yes, user=stranger))
    assert told == f"Only <@{asker}> or an admin can answer this request."
    assert len(bot.openrouter.chat_requests) == 1

    told = await private_line(fake, await fake.click_button(question.id, no))
    assert told == "Denied: `notes.delete_note` will not run."
    await bot.answered()
    assert tool_output(bot.openrouter.chat_requests[1]) == DENIED_TO_MODEL
    decided = fake.message(question.id)
    assert decided.components == []
    assert decided.content.endswith(f"-# 🚫 Denied by <@{asker}>")
    assert any("I left it alone." in m.content for m in bot.answers(fake.channel.id))


async def test_an_ask_command_asks_in_its_follow_up_and_approve_goes_on(
    tmp_path: Path, start_bot: BotFactory
) -> None:
    """``/ask`` answers through the interaction's webhook: the question is a follow-up there,
    its buttons work, and the edit that closes it goes through the same webhook."""
    config = write_config(tmp_path, {"notes": stdio_server(require_approval=["delete_note"])})
    bot = await start_bot(BOT_MCP_CONFIG=config)
    fake = bot.discord
    bot.openrouter.enqueue(
        ToolCallReply.single("delete_note", {"topic": "drafts"}, id="call_1"),
        TextReply("Deleted the drafts note."),
    )
    ask = await fake.send_interaction("ask", {"question": "delete the drafts note"})
    question = await wait_until(
        lambda: next((m for i in ask.followup_ids if (m := fake.message(i)).components), None)
    )
    assert question.content.startswith(f"<@{fake.user.id}> May I run `notes.delete_note`")
    [yes, _] = discord_buttons(question)
    told = await private_line(fake, await fake.click_button(question.id, yes))
    assert told == "Approved: running `notes.delete_note`."
    await bot.answered()
    assert "deleted drafts" in tool_output(bot.openrouter.chat_requests[1])
    decided = fake.message(question.id)
    assert decided.components == [] and decided.content.endswith(
        f"✅ Approved by <@{fake.user.id}>"
    )
    answers = [fake.message(i).content for i in ask.followup_ids]
    assert any("Deleted the drafts note." in text for text in answers)


async def wait_until(predicate: Any) -> Any:
    """``predicate()`` once it is not None."""
    await eventually(lambda: predicate() is not None)
    return predicate()


async def private_line(fake: FakeDiscord, interaction: FakeInteraction) -> str:
    """What a click's clicker alone was told: a deferred ephemeral response, then its
    follow-up."""
    await eventually(lambda: interaction.followup_ids)
    assert interaction.callbacks == [{"type": 5, "data": {"flags": 64}}]
    told = fake.message(interaction.followup_ids[0])
    assert told.ephemeral
    return told.content
