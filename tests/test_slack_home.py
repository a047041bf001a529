"""Slack's AI-app surfaces end to end, through the REAL slack_bolt app against FakeSlack: the
assistant thread's prompts, title and context, and the Home tab with its settings modal."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from adapters.slack.assistant import TITLE_MAX, thread_title
from adapters.slack.home import RECENT_MAX, HomeTab
from bot.settings import ConfigError, load_settings
from tests import test_slack as _slack_suite
from tests.fakes.slack import (
    TEAM_ID,
    USER_ID,
    FakeSlack,
    app_home_opened,
    app_mention,
    assistant_thread_context_changed,
    assistant_thread_started,
    im_message,
)
from tests.helpers import eventually
from tests.test_slack import BOT, SECRET, Bot, BotFactory

start_bot = _slack_suite.start_bot  # the bot on the fakes, as tests.test_slack starts it
bot = _slack_suite.bot

ADMIN = "UADMIN"
ADMINS = {"BOT_ADMINS": f"slack:{ADMIN}"}
PROMPTS = [
    {"title": "Standup", "message": "Summarize what I should say at standup."},
    {"title": "Translate", "message": "Translate my last message to French."},
]


def texts(view: dict[str, Any] | None) -> str:
    """Every text of a view's blocks, joined: what the user reads."""
    assert view is not None
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text"):
                found.append(str(node.get("text")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(view["blocks"])
    return "\n".join(found)


def buttons(view: dict[str, Any] | None) -> list[tuple[str, str | None]]:
    assert view is not None
    out = []
    for block in view["blocks"]:
        for element in [block.get("accessory"), *block.get("elements", [])]:
            if isinstance(element, dict) and element.get("type") == "button":
                out.append((element["action_id"], element.get("value")))
    return out


async def open_home(bot: Bot, user: str) -> dict[str, Any]:
    published = len(bot.slack.homes_published(user))
    await bot.deliver(app_home_opened(user=user, tab="home"))
    await bot.slack.wait_for(lambda: len(bot.slack.homes_published(user)) > published)
    home = bot.slack.home(user)
    assert home is not None
    return home


async def interact(bot: Bot, payload: dict[str, Any]) -> tuple[int, str]:
    return await bot.slack.deliver_interaction(bot.url, SECRET, payload)


async def open_modal(bot: Bot, user: str, value: str | None = "C123") -> dict[str, Any]:
    opened = len(bot.slack.modals())
    action = "home_edit_channel" if value else "home_new_channel"
    status, _ = await interact(bot, bot.slack.home_click(user, action, value=value))
    assert status == 200
    await bot.slack.wait_for(lambda: len(bot.slack.modals()) > opened)
    return bot.slack.modals()[-1]


# --------------------------------------------------------------------------- assistant threads


async def test_suggested_prompts_come_from_the_setting_where_each_view_shows_them(
    start_bot: BotFactory,
) -> None:
    bot = await start_bot(BOT_SUGGESTED_PROMPTS=json.dumps(PROMPTS))
    # The agent view: opening the DM; the prompts are the DM's (no thread_ts).
    await bot.deliver(app_home_opened(channel="D123"))
    shown = await bot.slack.wait_for(lambda: bot.slack.suggested_prompts("D123"))
    assert shown == {"title": "Try asking", "prompts": PROMPTS}
    assert "thread_ts" not in bot.slack.last_call("assistant.threads.setSuggestedPrompts").params

    # The legacy assistant view: a new thread gets them on itself (thread_ts).
    bot.slack.agent_view = False
    await bot.deliver(assistant_thread_started(thread_ts="1700000000.000100", channel="D124"))
    on_thread = await bot.slack.wait_for(
        lambda: bot.slack.suggested_prompts("D124", "1700000000.000100")
    )
    assert on_thread == {"title": "Try asking", "prompts": PROMPTS}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("not json", "not valid JSON"),
        ("[]", "1 to 4 prompts"),
        (json.dumps(PROMPTS * 3), "1 to 4 prompts"),
        ('[{"title": "Hi"}]', "prompt 1 must be"),
        ('[{"title": "Hi", "message": ""}]', "prompt 1 must be"),
        ('[{"title": "Hi", "message": "x", "extra": 1}]', "prompt 1 must be"),
    ],
)
def test_a_bad_suggested_prompts_setting_is_refused_at_start(
    value: str, problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOT_SUGGESTED_PROMPTS", value)
    with pytest.raises(ConfigError) as exc:
        load_settings(_env_file=None)
    assert str(exc.value).startswith("BOT_SUGGESTED_PROMPTS is invalid: ")
    assert problem in str(exc.value) and "\n" not in str(exc.value)


def test_thread_titles_are_the_first_line_cut_at_a_word() -> None:
    assert thread_title("  What's the   weather\nin Oslo?") == "What's the weather"
    long = thread_title("word " * 40)
    assert len(long) <= TITLE_MAX and long.endswith("word…")
    assert thread_title("\n \n") == ""


async def test_a_dm_threads_title_is_its_first_question_set_once(bot: Bot) -> None:
    first = im_message("How do I rotate the staging database password?\nDetails follow.")
    await bot.deliver(first)
    await bot.answered()
    await bot.deliver(first)  # Slack's retry of the same message
    follow_up = im_message("And for production?", thread_ts=first["ts"])
    await bot.deliver(follow_up)
    await bot.answered(2)
    await asyncio.sleep(0.1)

    assert bot.slack.titles("D123", first["ts"]) == [
        "How do I rotate the staging database password?"
    ]
    assert len(bot.slack.calls("assistant.threads.setTitle")) == 1


async def test_the_channel_the_user_views_reaches_the_models_input(bot: Bot) -> None:
    root = im_message("What's in this channel about?")
    await bot.deliver(assistant_thread_started(thread_ts=root["ts"], context_channel="C777"))
    await bot.deliver(root)
    await bot.answered()
    system = bot.last_body()["messages"][0]
    assert system["role"] == "system" and "<#C777>" in system["content"]

    await bot.deliver(
        assistant_thread_context_changed(thread_ts=root["ts"], context_channel="C888")
    )
    await eventually(
        lambda: bot.core.store.get_state(key=f"context-note:slack:{TEAM_ID}:D123:{root['ts']}")
    )
    await asyncio.sleep(0.05)
    await bot.deliver(im_message("and now?", thread_ts=root["ts"]))
    await bot.answered(2)
    system = bot.last_body()["messages"][0]["content"]
    assert "<#C888>" in system and "<#C777>" not in system

    # Another thread has no note.
    await bot.deliver(im_message("unrelated"))
    await bot.answered(3)
    assert "is viewing" not in bot.last_body()["messages"][0]["content"]


# --------------------------------------------------------------------------- the Home tab


async def test_home_tab_for_an_admin_and_a_non_admin(start_bot: BotFactory) -> None:
    bot = await start_bot(**ADMINS, BOT_DAILY_TOKENS_PER_USER=10_000)
    await bot.command("/model", "anthropic/claude-sonnet-4.5", user_id=ADMIN, channel_id="C123")
    await eventually(lambda: bot.slack.home(ADMIN))  # published after the change
    await bot.deliver(app_mention(f"{BOT} count my tokens"))
    await bot.answered()

    admin = await open_home(bot, ADMIN)
    assert "<#C123>: model `openrouter/anthropic/claude-sonnet-4.5`" in texts(admin)
    assert buttons(admin) == [("home_edit_channel", "C123"), ("home_new_channel", None)]
    assert "0 of 10,000 tokens (0%)" in texts(admin)

    user = await open_home(bot, USER_ID)
    shown = texts(user)
    assert "<#C123>: model `openrouter/anthropic/claude-sonnet-4.5`" in shown
    assert buttons(user) == []
    assert "Only the bot's admins can change these." in shown
    assert "1 answer" in shown and "of 10,000 tokens" in shown and "0 of 10,000" not in shown
    assert "What I can do" in shown and "`/ask &lt;question&gt;`" in shown


async def test_the_modal_saves_a_model_and_refuses_a_bad_one(start_bot: BotFactory) -> None:
    bot = await start_bot(**ADMINS)
    await bot.command("/settings", "mention required", user_id=ADMIN, channel_id="C123")
    await open_home(bot, USER_ID)
    await open_home(bot, ADMIN)
    modal = await open_modal(bot, ADMIN)
    assert "Settings of <#C123>" in texts(modal)

    bad = bot.slack.view_submission(modal["id"], ADMIN, {"model": "gpt 5 please"})
    status, body = await interact(bot, bad)
    assert status == 200
    answer = json.loads(body)
    assert answer["response_action"] == "errors"
    assert "doesn't look like a model name" in answer["errors"]["model"]
    assert await bot.core.store.channel_settings(channel=f"slack:{TEAM_ID}:C123") == {
        "mention": "required"
    }

    homes_before = len(bot.slack.homes_published(USER_ID))
    good = bot.slack.view_submission(modal["id"], ADMIN, {"model": "openai/gpt-5"})
    assert await interact(bot, good) == (200, "")  # an empty answer closes the modal
    assert await bot.core.store.channel_settings(channel=f"slack:{TEAM_ID}:C123") == {
        "mention": "required",  # unchanged fields stay as they were
        "model": "openrouter/openai/gpt-5",
    }
    # Both Homes are published again: the admin's and the one opened recently.
    await bot.slack.wait_for(lambda: len(bot.slack.homes_published(USER_ID)) > homes_before)
    assert "`openrouter/openai/gpt-5`" in texts(bot.slack.home(USER_ID))
    await eventually(lambda: "`openrouter/openai/gpt-5`" in texts(bot.slack.home(ADMIN)))


async def test_a_new_channels_modal_needs_a_channel_and_sets_it_up(start_bot: BotFactory) -> None:
    bot = await start_bot(**ADMINS)
    await open_home(bot, ADMIN)
    modal = await open_modal(bot, ADMIN, value=None)
    submit = bot.slack.view_submission(
        modal["id"], ADMIN, {"channel": "C900", "prompt": "Answer in French.", "pdf": "native"}
    )
    assert await interact(bot, submit) == (200, "")
    assert await bot.core.store.channel_settings(channel=f"slack:{TEAM_ID}:C900") == {
        "prompt": "Answer in French.",
        "pdf_engine": "native",
    }
    await eventually(lambda: "<#C900>" in texts(bot.slack.home(ADMIN)))


async def test_a_slash_command_change_republishes_recent_homes(start_bot: BotFactory) -> None:
    bot = await start_bot(**ADMINS)
    await open_home(bot, USER_ID)
    before = len(bot.slack.homes_published(USER_ID))
    url = await bot.command("/model", "openai/gpt-5-nano", user_id=ADMIN, channel_id="C55")
    await bot.slack.wait_for(lambda: bot.slack.responses(url))
    await bot.slack.wait_for(lambda: len(bot.slack.homes_published(USER_ID)) > before)
    assert "<#C55>: model `openrouter/openai/gpt-5-nano`" in texts(bot.slack.home(USER_ID))
    assert bot.slack.home(ADMIN) is not None  # the one who changed it


async def test_a_refused_users_home_and_clicks(start_bot: BotFactory) -> None:
    bot = await start_bot(**ADMINS, BOT_ALLOWED_USERS=f"slack:{ADMIN}")
    home = await open_home(bot, USER_ID)
    assert "not enabled for you" in texts(home) and buttons(home) == []

    await open_home(bot, ADMIN)
    admin_modal = await open_modal(bot, ADMIN, value=None)
    forged = bot.slack.view_submission(
        admin_modal["id"], USER_ID, {"channel": "C123", "model": "openai/gpt-5"}
    )
    status, body = await interact(bot, forged)
    assert status == 200 and "not enabled for you" in json.loads(body)["errors"]["channel"]
    assert await bot.core.store.channel_settings(channel=f"slack:{TEAM_ID}:C123") == {}


async def test_a_non_admins_forged_edit_click_opens_nothing(start_bot: BotFactory) -> None:
    bot = await start_bot(**ADMINS)
    await bot.command("/model", "openai/gpt-5", user_id=ADMIN, channel_id="C123")
    await open_home(bot, ADMIN)
    await open_home(bot, USER_ID)
    click = bot.slack.home_click(ADMIN, "home_edit_channel", value="C123")
    click["user"] = {**click["user"], "id": USER_ID}
    before = len(bot.slack.homes_published(USER_ID))
    assert (await interact(bot, click))[0] == 200
    await bot.slack.wait_for(lambda: len(bot.slack.homes_published(USER_ID)) > before)
    assert bot.slack.modals() == [] and not bot.slack.calls("views.open")


async def test_the_modal_over_socket_mode(start_bot: BotFactory) -> None:
    async with FakeSlack() as slack:
        bot = await start_bot(
            slack, **ADMINS, SLACK_APP_TOKEN=slack.app_token, SLACK_SIGNING_SECRET=None
        )
        await slack.wait_for_socket()
        await slack.deliver_socket_event(app_home_opened(user=ADMIN, tab="home"))
        await slack.wait_for(lambda: slack.home(ADMIN))
        await slack.deliver_socket_payload(slack.home_click(ADMIN, "home_new_channel"))
        [modal] = await slack.wait_for(slack.modals)
        bad = slack.view_submission(modal["id"], ADMIN, {"channel": "C1", "model": "a b"})
        ack = await slack.deliver_socket_payload(bad)
        assert "model name" in ack.message["payload"]["errors"]["model"]
        good = slack.view_submission(modal["id"], ADMIN, {"channel": "C1", "model": "x/y"})
        ack = await slack.deliver_socket_payload(good)
        assert "payload" not in ack.message or not ack.message["payload"]
        assert await bot.core.store.get_channel_setting(
            channel=f"slack:{TEAM_ID}:C1", name="model"
        ) == ("openrouter/x/y")


async def test_the_record_of_recent_homes_is_bounded() -> None:
    class _Core:
        def __init__(self) -> None:
            self.settings_changed: list[Any] = []

    tab = HomeTab(_Core(), client=None, inflight=None)  # type: ignore[arg-type]

    async def publish(team: str, user: str) -> None:
        pass

    tab.publish = publish  # type: ignore[method-assign]
    for n in range(RECENT_MAX + 10):
        await tab.opened(TEAM_ID, f"U{n}")
    await tab.opened(TEAM_ID, "U0")  # seen again: the latest, not a second entry
    assert len(tab._recent) == RECENT_MAX
    assert list(tab._recent)[-1] == (TEAM_ID, "U0")
