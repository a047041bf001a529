"""Slack's message shortcuts end to end: the REAL bolt app and slack_sdk client against
FakeSlack (signed HTTP delivery and Socket Mode), the real core and store behind them,
answering from FakeOpenRouter. The answer is for the clicking user only: ephemeral, or a DM."""

from __future__ import annotations

from typing import Any

from adapters.slack.threads import PAGE_SIZE
from adapters.slack.translate import conversation_key
from bot.access import REFUSAL
from bot.actions import MAX_ACTION_MESSAGES
from tests import test_slack
from tests.fakes.openrouter import TextReply
from tests.fakes.slack import USER_ID, FakeSlack, app_mention, message_event
from tests.helpers import eventually

Bot = test_slack.Bot
BotFactory = test_slack.BotFactory
SECRET = test_slack.SECRET
start_bot = test_slack.start_bot
bot = test_slack.bot


def add_thread(slack: FakeSlack, count: int, *, channel: str = "C123") -> dict[str, Any]:
    """A thread of ``count`` messages (root included) by three people; returns the root."""
    users = ("U1AAA", "U2BBB", USER_ID)
    root = slack.add_message(channel, message_event("message 0", user=users[0], channel=channel))
    for i in range(1, count):
        slack.add_message(
            channel,
            message_event(f"message {i}", user=users[i % 3], channel=channel, thread_ts=root["ts"]),
        )
    return root


async def click(bot: Bot, callback_id: str, message: dict[str, Any], **kwargs: Any) -> Any:
    payload = bot.slack.message_action(callback_id, message, **kwargs)
    status, _ = await bot.slack.deliver_shortcut(bot.url, SECRET, payload)
    assert status == 200
    return payload


def system_prompt(bot: Bot) -> str:
    body = bot.openrouter.chat_requests[-1].body
    assert body is not None
    return "\n".join(m["content"] for m in body["messages"] if m["role"] == "system")


def user_prompt(bot: Bot) -> str:
    body = bot.openrouter.chat_requests[-1].body
    assert body is not None
    return "\n".join(m["content"] for m in body["messages"] if m["role"] == "user")


async def test_summarize_a_200_message_thread_bounded_one_ephemeral_answer(bot: Bot) -> None:
    slack = bot.slack
    root = add_thread(slack, 200)
    bot.openrouter.enqueue(TextReply("They settled on Friday's release."))

    await click(bot, "summarize_thread", root)
    (answer,) = await slack.wait_for(lambda: slack.ephemerals("C123"))

    assert answer["user_to"] == USER_ID
    assert answer["text"] == (
        "They settled on Friday's release.\n\n"
        f"_Summarized the last {MAX_ACTION_MESSAGES} of 200 messages._"
    )
    assert "thread_ts" not in answer  # clicked on the root: shown in the channel, to them only
    assert slack.bot_messages("C123") == []  # nothing for everyone
    (read,) = slack.calls("conversations.replies")  # 200 messages: one page
    assert read.params["ts"] == root["ts"] and int(read.params["limit"]) == PAGE_SIZE
    assert len(bot.openrouter.chat_requests) == 1  # one model call
    sent = user_prompt(bot)
    assert sent.count(": message ") == MAX_ACTION_MESSAGES
    assert ": message 49\n" not in sent and ": message 50\n" in sent
    assert "<@U2BBB>: message 199" in sent
    assert bot.openrouter.chat_requests[-1].body.get("tools") in (None, [])  # type: ignore[union-attr]
    await bot.answered()  # recorded once the answer was delivered
    assert (await bot.core.store.usage_totals(user_id=f"slack:{USER_ID}")).turns == 1
    # The bot did not join the thread: a reply there is not answered.
    assert not await bot.core.conversations.bot_takes_part(
        conversation_key(slack.team_id, "C123", root["ts"])
    )


async def test_translate_uses_the_clicking_users_locale(bot: Bot) -> None:
    slack = bot.slack
    slack.add_user(USER_ID, name="aiko", locale="ja-JP")
    root = slack.add_message("C123", message_event("kick-off", user="U1AAA"))
    reply = slack.add_message(
        "C123", message_event("See you *tomorrow*", user="U1AAA", thread_ts=root["ts"])
    )
    bot.openrouter.enqueue(TextReply("明日 *また* 会いましょう"))

    await click(bot, "translate_message", reply)
    (answer,) = await slack.wait_for(lambda: slack.ephemerals("C123"))

    assert answer["text"] == "明日 *また* 会いましょう"
    assert answer["thread_ts"] == root["ts"]  # shown in the thread where they clicked
    info = slack.last_call("users.info")
    assert info.params["user"] == USER_ID and info.params["include_locale"] in (True, "true", "1")
    assert "into Japanese" in system_prompt(bot)
    assert user_prompt(bot).endswith("See you *tomorrow*")
    assert slack.calls("conversations.replies") == []  # one message: nothing to read back


async def test_translate_without_a_locale_is_english(bot: Bot) -> None:
    message = bot.slack.add_message("C123", message_event("Bonjour à tous"))
    await click(bot, "translate_message", message)
    await bot.slack.wait_for(lambda: bot.slack.ephemerals("C123"))
    assert bot.slack.last_call("users.info").error == "user_not_found"
    assert "into English" in system_prompt(bot)


async def test_a_shortcut_from_outside_the_allowlist_is_refused_privately(
    start_bot: BotFactory,
) -> None:
    bot = await start_bot(BOT_ALLOWED_USERS="slack:U999")
    root = add_thread(bot.slack, 5)
    await click(bot, "summarize_thread", root)
    (refusal,) = await bot.slack.wait_for(lambda: bot.slack.ephemerals("C123"))
    assert refusal["text"] == REFUSAL and refusal["user_to"] == USER_ID
    assert bot.slack.calls("conversations.replies") == []  # nothing read for a refusal
    assert bot.openrouter.chat_requests == []
    assert bot.slack.bot_messages("C123") == []


async def test_a_repeated_delivery_of_one_click_is_answered_once(bot: Bot) -> None:
    root = add_thread(bot.slack, 3)
    payload = await click(bot, "summarize_thread", root)
    await bot.slack.wait_for(lambda: bot.slack.ephemerals("C123"))
    status, _ = await bot.slack.deliver_shortcut(bot.url, SECRET, payload)
    assert status == 200
    await eventually(lambda: bot.adapter.outcomes["duplicate"] == 1)
    assert len(bot.slack.ephemerals("C123")) == 1
    assert len(bot.openrouter.chat_requests) == 1
    assert len(bot.slack.calls("conversations.replies")) == 1


async def test_ephemeral_refused_goes_to_a_dm(bot: Bot) -> None:
    slack = bot.slack
    root = add_thread(slack, 3)
    slack.fail_next("chat.postEphemeral", "not_in_channel")
    bot.openrouter.enqueue(TextReply("A short summary."))
    await click(bot, "summarize_thread", root)
    dm = slack.dm_channel_of(USER_ID)
    (sent,) = await slack.wait_for(lambda: slack.bot_messages(dm))
    assert sent["text"] == "For your request in <#C123>:\n\nA short summary."
    assert slack.bot_messages("C123") == [] and slack.ephemerals("C123") == []


async def test_long_thread_is_paged_waits_out_a_429_and_is_cached(bot: Bot) -> None:
    slack = bot.slack
    root = add_thread(slack, 2 * PAGE_SIZE + 50)
    slack.rate_limit("conversations.replies", retry_after=1)
    await click(bot, "summarize_thread", root)
    await slack.wait_for(lambda: slack.ephemerals("C123"), timeout=10)
    calls = slack.calls("conversations.replies")
    assert [c.status for c in calls] == [429, 200, 200, 200]
    assert calls[1].at - calls[0].at >= 0.9  # Retry-After was waited out
    assert "cursor" not in calls[1].params and calls[2].params["cursor"]
    assert "of 450 messages" in slack.ephemerals("C123")[0]["text"]
    # Another user's click within the minute reads the cached thread.
    await click(bot, "summarize_thread", root, user="U2BBB")
    await slack.wait_for(lambda: len(slack.ephemerals("C123")) == 2)
    assert len(slack.calls("conversations.replies")) == 4


async def test_a_thread_the_bot_takes_part_in_is_read_from_its_store(bot: Bot) -> None:
    slack = bot.slack
    question = app_mention(f"{test_slack.BOT} what is our deploy day?")
    await bot.deliver(question)
    await bot.answered()
    root = slack.message("C123", question["ts"])
    bot.openrouter.enqueue(TextReply("You asked about deploy day."))
    await click(bot, "summarize_thread", root)
    await slack.wait_for(lambda: slack.ephemerals("C123"))
    assert slack.calls("conversations.replies") == []
    sent = user_prompt(bot)
    assert "user: what is our deploy day?" in sent
    assert "assistant (me): echo: what is our deploy day?" in sent


async def test_a_shortcut_over_socket_mode(start_bot: BotFactory) -> None:
    async with FakeSlack() as slack:
        await start_bot(slack, SLACK_APP_TOKEN=slack.app_token, SLACK_SIGNING_SECRET=None)
        await slack.wait_for_socket()
        message = slack.add_message("C123", message_event("Hallo zusammen"))
        ack = await slack.deliver_socket_shortcut(
            slack.message_action("translate_message", message)
        )
        assert ack.envelope_id
        (answer,) = await slack.wait_for(lambda: slack.ephemerals("C123"))
        assert answer["text"].startswith("echo: Translate this message")
