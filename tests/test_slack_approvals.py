"""Tool calls that need approval through Slack: the real adapter on the fake Slack (buttons in
the thread, ``block_actions`` clicks at the events URL), a real MCP server
(``tests/mcp_servers/notes.py``) and the fake OpenRouter. The core's
rules (who may answer, denial, expiry, the turn's time limit) are in ``test_mcp.py``; Discord's
buttons in ``test_discord.py``, the terminal's prompt in ``test_console.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapters.slack.blocks import APPROVE_ACTION, DENY_ACTION
from bot.approvals import DENIED_TO_MODEL
from tests.fakes.openrouter import TextReply, ToolCallReply
from tests.fakes.slack import USER_ID, app_mention
from tests.test_mcp import stdio_server, tool_output, write_config
from tests.test_slack import BOT, SECRET, Bot, BotFactory, start_bot, told

__all__ = ["start_bot"]  # the Slack bot fixture, shared


def question_of(bot: Bot, thread_ts: str) -> dict[str, Any]:
    """The bot's message in the thread that asks for an approval (its buttons, or their
    outcome once decided); {} until there is one."""
    for message in bot.bot_messages("C123", thread_ts):
        if any(b.get("type") == "section" for b in message.get("blocks") or []):
            return message
    return {}


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """action_id -> value of the buttons a message shows."""
    return {
        element["action_id"]: element["value"]
        for block in message.get("blocks") or []
        if block["type"] == "actions"
        for element in block["elements"]
    }


def context_line(message: dict[str, Any]) -> str:
    [block] = [b for b in message["blocks"] if b["type"] == "context"]
    return str(block["elements"][0]["text"])


async def slack_bot(start_bot: BotFactory, tmp_path: Path, **values: Any) -> Bot:
    config = write_config(tmp_path, {"notes": stdio_server(require_approval=["delete_note"])})
    return await start_bot(BOT_MCP_CONFIG=config, **values)


async def click(bot: Bot, ts: str, action_id: str, value: str, user: str) -> None:
    payload = bot.slack.block_actions("C123", ts, action_id=action_id, value=value, user_id=user)
    status, _ = await bot.slack.deliver_interaction(bot.url, SECRET, payload)
    assert status == 200


async def test_slack_asks_in_the_thread_and_only_the_asker_may_approve(
    start_bot: BotFactory, tmp_path: Path
) -> None:
    bot = await slack_bot(start_bot, tmp_path)
    bot.openrouter.enqueue(
        ToolCallReply.single("delete_note", {"topic": "<!channel> deploys"}, id="call_1"),
        TextReply("Deleted the note."),
    )
    event = app_mention(f"{BOT} delete the deploys note")
    await bot.deliver(event)

    question = await bot.slack.wait_for(lambda: question_of(bot, event["ts"]))
    shown = question["blocks"][0]["text"]["text"]
    assert shown == (
        f'<@{USER_ID}> May I run `notes.delete_note` with topic="&lt;!channel&gt; deploys"?'
    )
    assert context_line(question).startswith(f"Only <@{USER_ID}> or an admin can answer.")
    ids = buttons(question)
    assert set(ids) == {APPROVE_ACTION, DENY_ACTION}
    assert len(bot.openrouter.chat_requests) == 1  # paused before the tool

    await click(bot, question["ts"], APPROVE_ACTION, ids[APPROVE_ACTION], user="U999")
    assert await told(bot, "U999", 1) == f"Only <@{USER_ID}> or an admin can answer this request."
    assert len(bot.openrouter.chat_requests) == 1

    # A second click made before the buttons went (e.g. the asker on another device).
    late = bot.slack.block_actions(
        "C123", question["ts"], action_id=DENY_ACTION, value=ids[DENY_ACTION], user_id=USER_ID
    )
    await click(bot, question["ts"], APPROVE_ACTION, ids[APPROVE_ACTION], user=USER_ID)
    await bot.answered()
    assert "Deleted the note." in bot.answer("C123", event["ts"])
    assert "deleted <!channel> deploys" in tool_output(bot.openrouter.chat_requests[1])
    decided = bot.slack.message("C123", question["ts"])
    assert buttons(decided) == {}  # the buttons are gone, the outcome in their place
    assert context_line(decided) == f"✅ Approved by <@{USER_ID}>"

    status, _ = await bot.slack.deliver_interaction(bot.url, SECRET, late)
    assert status == 200
    assert await told(bot, USER_ID, 1) == f"This request was already approved by <@{USER_ID}>."


async def test_slack_deny_and_expiry_update_the_question(
    start_bot: BotFactory, tmp_path: Path
) -> None:
    bot = await slack_bot(start_bot, tmp_path, BOT_APPROVAL_TIMEOUT="1")
    bot.openrouter.enqueue(
        ToolCallReply.single("delete_note", {"topic": "a"}, id="call_1"),
        TextReply("Not deleted."),
        ToolCallReply.single("delete_note", {"topic": "b"}, id="call_2"),
    )
    first = app_mention(f"{BOT} delete a")
    await bot.deliver(first)
    question = await bot.slack.wait_for(lambda: question_of(bot, first["ts"]))
    await click(bot, question["ts"], DENY_ACTION, buttons(question)[DENY_ACTION], user=USER_ID)
    await bot.answered()
    assert tool_output(bot.openrouter.chat_requests[1]) == DENIED_TO_MODEL
    assert context_line(bot.slack.message("C123", question["ts"])) == (f"🚫 Denied by <@{USER_ID}>")

    second = app_mention(f"{BOT} delete b")
    await bot.deliver(second)
    question = await bot.slack.wait_for(lambda: question_of(bot, second["ts"]))
    await bot.slack.wait_for(lambda: not buttons(bot.slack.message("C123", question["ts"])))
    expired = bot.slack.message("C123", question["ts"])
    assert context_line(expired) == "⌛ Nobody answered in time: cancelled"
    await bot.slack.wait_for(lambda: "Nobody answered" in bot.answer("C123", second["ts"]))
    assert len(bot.openrouter.chat_requests) == 3  # the second call never ran
