"""The Slack adapter end to end: the REAL slack_bolt AsyncApp and slack_sdk client, served over HTTP
(and Socket Mode), against FakeSlack; the real core, litellm and SQLite behind it, answering from
FakeOpenRouter. Assertions are on what Slack saw: API calls, messages in threads, downloads."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import SlackAdapter
from adapters.slack.blocks import FEEDBACK_ACTION, button_blocks
from adapters.slack.reply import (
    LOADING_MESSAGES,
    STREAM_BUDGET,
    UPDATE_BUDGET,
    NativeStreaming,
    SlackReply,
)
from bot.agent import AgentStack
from bot.core import SHUTDOWN_LINE, Core
from bot.recovery import RESTART_LINE
from bot.wiring import Services, build_core, load_stack, open_services
from tests.conftest import make_settings
from tests.fakes.open_meteo import Failure, FakeOpenMeteo
from tests.fakes.openrouter import (
    FakeOpenRouter,
    HangReply,
    TextReply,
    ToolCall,
    ToolCallReply,
    last_user_text,
)
from tests.fakes.slack import (
    BOT_USER_ID,
    TEAM_ID,
    USER_ID,
    FakeSlack,
    app_home_opened,
    app_mention,
    bot_message,
    file_share_message,
    im_message,
    message_changed,
    message_event,
)
from tests.helpers import count_items, eventually, pending

SECRET = "slack-signing-secret-for-tests-0123"
BOT = f"<@{BOT_USER_ID}>"
BUTTONS = button_blocks()


@dataclass
class Bot:
    slack: FakeSlack
    openrouter: FakeOpenRouter
    adapter: SlackAdapter
    core: Core
    meteo: FakeOpenMeteo | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.adapter.port}/slack/events"

    async def deliver(self, event: dict[str, Any], **kwargs: Any) -> int:
        status, _ = await self.slack.deliver_event(self.url, SECRET, event, **kwargs)
        return status

    async def command(self, name: str, text: str = "", **kwargs: Any) -> str:
        """Deliver a slash command; returns its response_url."""
        status, body = await self.slack.deliver_command(self.url, SECRET, name, text, **kwargs)
        assert status == 200, body
        return str(self.slack.deliveries[-1].payload["response_url"])

    async def answered(self, count: int = 1) -> None:
        await eventually(lambda: self.adapter.outcomes["answered"] >= count)

    def answer(self, channel: str, thread_ts: str) -> str:
        """Every bot message in the thread, joined (streamed messages as their final text)."""
        return "\n".join(m["text"] for m in self.bot_messages(channel, thread_ts))

    def bot_messages(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        return [m for m in self.slack.thread(channel, thread_ts) if m.get("bot_id")]

    def last_body(self) -> dict[str, Any]:
        """The body of the newest chat completion request the model received."""
        body = self.openrouter.chat_requests[-1].body
        assert body is not None
        return body

    def chat_calls(self) -> list[str]:
        return [c.method for c in self.slack.calls() if c.method.startswith("chat.")]


BotFactory = Callable[..., Awaitable[Bot]]


@pytest.fixture
async def start_bot(tmp_path: Path) -> AsyncIterator[BotFactory]:
    async with AsyncExitStack() as stack:

        async def factory(
            slack: FakeSlack | None = None,
            *,
            stack_loads: asyncio.Event | None = None,
            **values: Any,
        ) -> Bot:
            """A bot on ``slack`` (a new fake by default); ``stack_loads``: its agent stack
            loads only once the test sets it (as in the first seconds after a start)."""
            if slack is None:
                slack = await stack.enter_async_context(FakeSlack())
            openrouter = await stack.enter_async_context(FakeOpenRouter())
            meteo = await stack.enter_async_context(FakeOpenMeteo())
            config: dict[str, Any] = {
                "OPENROUTER_API_KEY": openrouter.api_key,
                "OPENROUTER_BASE_URL": openrouter.base_url,
                "OPEN_METEO_URL": meteo.base_url,
                "OPEN_METEO_GEOCODING_URL": meteo.base_url,
                "SLACK_BOT_TOKEN": slack.bot_token,
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": slack.api_url,
                "SLACK_STREAM_INTERVAL": 0.05,
                "PORT": 0,
            }
            config.update(values)
            settings = make_settings(tmp_path, **config)
            services = await stack.enter_async_context(open_services(settings))
            if stack_loads is None:
                core = await build_core(services)
            else:
                core = Core(
                    settings=settings,
                    store=services.store,
                    stack=_loaded_after(stack_loads, services),
                )
            stack.push_async_callback(core.close)
            adapter = SlackAdapter(core, settings)
            await adapter.start()
            stack.push_async_callback(adapter.close)
            return Bot(slack, openrouter, adapter, core, meteo)

        yield factory


@pytest.fixture
async def bot(start_bot: BotFactory) -> Bot:
    return await start_bot()


async def _loaded_after(go: asyncio.Event, services: Services) -> AgentStack:
    """The agent stack, its loading held until the test sets ``go``."""
    await go.wait()
    return await load_stack(services)


# --------------------------------------------------------------------------- conversations


async def test_mention_is_answered_in_its_thread_with_status_first(bot: Bot) -> None:
    event = app_mention(f"{BOT} what is <https://example.com|this site>?")

    assert await bot.deliver(event) == 200
    await bot.answered()

    ts = event["ts"]
    assert bot.answer("C123", ts) == "echo: what is [this site](https://example.com)?"
    assert bot.slack.status_history("C123", ts)[0] == "is thinking…"
    assert bot.slack.status("C123", ts) is None  # cleared by the reply
    first_status = bot.slack.calls("assistant.threads.setStatus")[0].at
    first_post = next(c.at for c in bot.slack.calls() if c.method.startswith("chat."))
    assert first_status <= first_post
    assert all(c.auth == "bot" for c in bot.slack.calls())


async def test_a_slow_answer_streams_natively_to_the_recipient(bot: Bot) -> None:
    bot.openrouter.enqueue(TextReply("A streamed answer, piece by piece.", chunks=4, delay=0.3))
    event = app_mention(f"{BOT} stream please")
    await bot.deliver(event)
    await bot.answered()

    assert bot.answer("C123", event["ts"]) == "A streamed answer, piece by piece."
    # Native streaming in a channel thread carries the recipient, as Slack requires.
    start = bot.slack.calls("chat.startStream")[0]
    assert start.ok and start.params["recipient_user_id"] == USER_ID
    assert start.params["recipient_team_id"] == TEAM_ID
    assert start.params["thread_ts"] == event["ts"]
    assert bot.slack.stream("C123", start.response["ts"]).state == "completed"


# --------------------------------------------------------------------------- live progress


async def test_a_tool_step_is_a_task_card_in_the_stream_above_the_answer(bot: Bot) -> None:
    bot.openrouter.enqueue(
        ToolCallReply.single("get_weather", {"location": "Tokyo"}, id="call_tokyo"),
        TextReply("It is 18.4°C and partly cloudy in Tokyo.", chunks=3),
    )
    event = app_mention(f"{BOT} weather in Tokyo?")
    await bot.deliver(event)
    await bot.answered()

    # While the model thinks: the status, with lines rotating under it.
    first = bot.slack.calls("assistant.threads.setStatus")[0]
    assert first.params["status"] == "is thinking…"
    assert first.params["loading_messages"] == list(LOADING_MESSAGES)
    # The step is a task in the stream (not a status), in progress then complete, the answer
    # below it.
    start = bot.slack.calls("chat.startStream")[0]
    assert start.ok and start.params["task_display_mode"] == "timeline"
    [stream] = bot.slack.streams("C123")
    assert list(stream.tasks().values()) == [["in_progress", "complete"]]
    assert stream.timeline() == [
        "task Checking the weather in Tokyo: complete",
        "text It is 18.4°C and partly cloudy in Tokyo.",
    ]
    assert stream.state == "completed"
    assert bot.answer("C123", event["ts"]) == "It is 18.4°C and partly cloudy in Tokyo."
    assert bot.slack.status_history("C123", event["ts"]) == ["is thinking…"]
    assert bot.slack.status("C123", event["ts"]) is None


async def test_two_tools_in_one_turn_one_fails_each_its_own_task(bot: Bot) -> None:
    assert bot.meteo is not None
    bot.meteo.geocoding_failure = Failure.SERVER_ERROR  # Tokyo cannot be found; a zone can
    bot.openrouter.enqueue(
        ToolCallReply(
            calls=(
                ToolCall("get_current_time", {"place": "Europe/Paris"}, id="call_paris"),
                ToolCall("get_weather", {"location": "Tokyo"}, id="call_tokyo"),
            ),
            text="Let me look both up.",
        ),
        TextReply("It is noon in Paris; Tokyo's weather is unavailable right now."),
    )
    event = app_mention(f"{BOT} time in Paris and weather in Tokyo?")
    await bot.deliver(event)
    await bot.answered()

    [stream] = bot.slack.streams("C123")
    assert sorted(stream.tasks().values()) == [
        ["in_progress", "complete"],
        ["in_progress", "error"],
    ]
    # The text before the steps above their cards, the answer below them.
    assert stream.timeline() == [
        "text Let me look both up.",
        "task Looking up the time in Europe/Paris: complete",
        "task Checking the weather in Tokyo: error",
        "text \n\nIt is noon in Paris; Tokyo's weather is unavailable right now.",
    ]


async def test_a_step_still_running_when_the_turn_fails_ends_as_an_error(
    start_bot: BotFactory,
) -> None:
    bot = await start_bot(BOT_TURN_TIMEOUT=1)
    assert bot.meteo is not None
    bot.meteo.geocoding_failure = Failure.HANG
    bot.openrouter.enqueue(ToolCallReply.single("get_weather", {"location": "Tokyo"}))
    event = app_mention(f"{BOT} weather in Tokyo?")
    await bot.deliver(event)
    await eventually(lambda: bot.adapter.outcomes["failed"] >= 1, timeout=10)

    [stream] = bot.slack.streams("C123")
    assert stream.state == "completed"
    [row, text] = stream.timeline()
    assert row == "task Checking the weather in Tokyo: error"  # never left spinning
    assert "longer" in text
    assert bot.slack.status("C123", event["ts"]) is None


async def test_the_post_and_update_fallback_keeps_the_progress_line(
    start_bot: BotFactory,
) -> None:
    bot = await start_bot(SLACK_NATIVE_STREAMING=False)
    bot.openrouter.enqueue(
        ToolCallReply.single("get_weather", {"location": "Tokyo"}, id="call_tokyo"),
        TextReply("It is 18.4°C and partly cloudy in Tokyo.", chunks=3),
    )
    event = app_mention(f"{BOT} weather in Tokyo?")
    await bot.deliver(event)
    await bot.answered()

    statuses = bot.slack.status_history("C123", event["ts"])
    assert statuses[:2] == ["is thinking…", "Checking the weather in Tokyo…"]
    assert bot.answer("C123", event["ts"]) == "It is 18.4°C and partly cloudy in Tokyo."
    assert bot.slack.status("C123", event["ts"]) is None
    assert not bot.slack.calls("chat.startStream")


async def test_a_refused_task_update_falls_back_to_the_progress_line(bot: Bot) -> None:
    bot.slack.fail_next("chat.startStream", "invalid_chunks")
    bot.openrouter.enqueue(
        ToolCallReply.single("get_weather", {"location": "Tokyo"}, id="call_tokyo"),
        TextReply("It is 18.4°C and partly cloudy in Tokyo.", chunks=3),
    )
    event = app_mention(f"{BOT} weather in Tokyo?")
    await bot.deliver(event)
    await bot.answered()

    statuses = bot.slack.status_history("C123", event["ts"])
    assert statuses[:2] == ["is thinking…", "Checking the weather in Tokyo…"]
    assert bot.answer("C123", event["ts"]) == "It is 18.4°C and partly cloudy in Tokyo."
    # Only this answer fell back: the next one streams natively again.
    bot.openrouter.enqueue(TextReply("Streamed.", chunks=3, delay=0.2))
    again = app_mention(f"{BOT} again")
    await bot.deliver(again)
    await bot.answered(2)
    assert bot.slack.calls("chat.startStream")[-1].ok


async def test_a_mid_thread_mention_and_follow_ups_without_mention(bot: Bot) -> None:
    root = message_event("we need a plan for friday", user="U0ALICE")
    await bot.deliver(root)
    await bot.deliver(message_event("I can do the slides", user="U0BOB", thread_ts=root["ts"]))
    await eventually(lambda: bot.adapter.outcomes["ignored"] >= 2)
    mention = app_mention(f"{BOT} summarize this thread", thread_ts=root["ts"])
    await bot.deliver(mention)
    await bot.answered(1)

    # The mention saw what was said before it in the thread, from our own store.
    first = last_user_text(bot.last_body())
    assert "<@U0ALICE>: we need a plan for friday" in first
    assert "<@U0BOB>: I can do the slides" in first
    assert first.endswith("summarize this thread")

    follow_up = message_event("and a follow-up", thread_ts=root["ts"])
    await bot.deliver(follow_up)
    await bot.answered(2)

    answers = [m["text"] for m in bot.bot_messages("C123", root["ts"])]
    assert answers[1] == "echo: and a follow-up"
    # The follow-up was answered with the conversation's history, the context taken in once.
    users = [m["content"] for m in bot.last_body()["messages"] if m["role"] == "user"]
    assert users == [first, "and a follow-up"]
    # A reply in a thread the bot takes no part in is left alone.
    other = bot.slack.add_message("C123", message_event("another topic"))
    await bot.deliver(message_event("chatter", thread_ts=other["ts"]))
    await bot.deliver(message_event("top-level chatter"))
    await eventually(lambda: bot.adapter.outcomes["ignored"] >= 4)
    assert not bot.bot_messages("C123", other["ts"])
    assert bot.adapter.outcomes["answered"] == 2


async def test_require_mention_turns_follow_ups_off(start_bot: BotFactory) -> None:
    bot = await start_bot(SLACK_REQUIRE_MENTION=True)
    mention = app_mention(f"{BOT} hi")
    await bot.deliver(mention)
    await bot.answered(1)

    await bot.deliver(message_event("no mention", thread_ts=mention["ts"]))
    await eventually(lambda: bot.adapter.outcomes["ignored"] >= 1)
    await bot.deliver(message_event(f"{BOT} with mention", thread_ts=mention["ts"]))
    await bot.answered(2)
    first, second = [m["text"] for m in bot.bot_messages("C123", mention["ts"])]
    assert first == "echo: hi"
    # The unanswered reply reached the model as context of the next mention.
    assert second.endswith("with mention") and "<@U123>: no mention" in second


async def test_settings_command_sets_the_channels_mention_rule_and_prompt(bot: Bot) -> None:
    mention = app_mention(f"{BOT} hi")
    await bot.deliver(mention)
    await bot.answered(1)

    url = await bot.command("/settings", "mention required")
    [post] = await bot.slack.wait_for(lambda: bot.slack.responses(url))
    assert "only when mentioned" in post.body["text"]
    url = await bot.command("/settings", "prompt Always answer in haiku.")
    await bot.slack.wait_for(lambda: bot.slack.responses(url))

    await bot.deliver(message_event("no mention", thread_ts=mention["ts"]))
    await eventually(lambda: bot.adapter.outcomes["ignored"] >= 1)
    await bot.deliver(message_event(f"{BOT} with mention", thread_ts=mention["ts"]))
    await bot.answered(2)
    assert len(bot.bot_messages("C123", mention["ts"])) == 2
    system = bot.last_body()["messages"][0]
    assert system["role"] == "system" and "Always answer in haiku." in system["content"]

    url = await bot.command("/settings", "mention optional")
    await bot.slack.wait_for(lambda: bot.slack.responses(url))
    await bot.deliver(message_event("follow-up again", thread_ts=mention["ts"]))
    await bot.answered(3)
    url = await bot.command("/settings")
    [post] = await bot.slack.wait_for(lambda: bot.slack.responses(url))
    assert "“Always answer in haiku.”" in post.body["text"]


async def test_dm_is_answered_in_a_thread_under_the_message(bot: Bot) -> None:
    event = im_message("hello there")
    await bot.deliver(event)
    await bot.answered()
    assert bot.answer("D123", event["ts"]) == "echo: hello there"

    in_thread = im_message("more", thread_ts=event["ts"])
    await bot.deliver(in_thread)
    await bot.answered(2)
    assert bot.answer("D123", event["ts"]).endswith("echo: more")
    users = [m for m in bot.last_body()["messages"] if m["role"] == "user"]
    assert [m["content"] for m in users] == ["hello there", "more"]


async def test_bots_edits_and_own_messages_are_ignored(bot: Bot) -> None:
    mention = app_mention(f"{BOT} start")
    await bot.deliver(mention)
    await bot.answered()
    thread = mention["ts"]
    own = bot.bot_messages("C123", thread)[0]

    await bot.deliver(bot_message("beep", thread_ts=thread))
    await bot.deliver(
        bot_message("me", user=BOT_USER_ID, bot_id="B0BOT", app_id="A0APP", thread_ts=thread)
    )
    await bot.deliver(message_changed("edited", message_ts=own["ts"], thread_ts=thread))
    await bot.deliver(im_message("", channel="D123") | {"subtype": "message_deleted"})
    await eventually(lambda: bot.adapter.outcomes["ignored"] >= 2)
    await asyncio.sleep(0.2)

    assert len(bot.openrouter.chat_requests) == 1
    opened = [c for c in bot.chat_calls() if c in ("chat.postMessage", "chat.startStream")]
    assert len(opened) == 1  # the one answer


# --------------------------------------------------------------------------- exactly once


async def test_the_same_event_three_times_gets_one_answer(bot: Bot) -> None:
    event = app_mention(f"{BOT} once please")
    statuses = [await bot.deliver(event, event_id="Ev0ONCE")]
    for retry in (1, 2):
        statuses.append(await bot.deliver(event, event_id="Ev0ONCE", retry_num=retry))
    await bot.answered()
    await eventually(lambda: bot.adapter.outcomes["duplicate"] == 2)

    assert statuses == [200, 200, 200]
    assert len(bot.bot_messages("C123", event["ts"])) == 1
    assert len(bot.openrouter.chat_requests) == 1


async def test_mention_and_message_of_one_ts_get_one_answer(bot: Bot) -> None:
    mention = app_mention(f"{BOT} twins")
    twin = message_event(mention["text"], ts=mention["ts"])
    await asyncio.gather(bot.deliver(mention), bot.deliver(twin))
    await bot.answered()
    await eventually(lambda: bot.adapter.outcomes["duplicate"] == 1)
    assert len(bot.bot_messages("C123", mention["ts"])) == 1


async def test_a_retry_of_an_event_never_seen_is_answered(bot: Bot) -> None:
    event = app_mention(f"{BOT} lost the first time")
    await bot.deliver(event, retry_num=1, retry_reason="http_timeout")
    await bot.answered()
    assert bot.answer("C123", event["ts"]) == "echo: lost the first time"


async def test_slow_model_is_acked_in_time_and_its_retry_does_not_duplicate(bot: Bot) -> None:
    bot.openrouter.latency = 3.5
    event = app_mention(f"{BOT} take your time")
    started = time.monotonic()
    assert await bot.deliver(event, event_id="Ev0SLOW") == 200
    acked_in = time.monotonic() - started
    await asyncio.sleep(3.0 - acked_in)  # Slack gives up at 3 s and retries
    assert await bot.deliver(event, event_id="Ev0SLOW", retry_num=1) == 200
    await bot.answered()

    assert acked_in < 0.5
    assert bot.adapter.outcomes["duplicate"] == 1
    assert len(bot.bot_messages("C123", event["ts"])) == 1


async def test_an_event_while_the_agent_stack_loads_is_acked_at_once_and_answered_once(
    start_bot: BotFactory,
) -> None:
    """The first seconds after a start: the listener is up, the agent stack is not. An event
    and its retry are acked at once, the question is claimed and admitted as usual (a refusal
    is told at once, /help answers), and it is answered once, as soon as the stack has loaded."""
    loads = asyncio.Event()
    bot = await start_bot(stack_loads=loads, BOT_ALLOWED_USERS=f"slack:{USER_ID}")
    health = f"http://127.0.0.1:{bot.adapter.port}/healthz"
    async with aiohttp.ClientSession() as http:
        async with http.get(health) as resp:
            body = await resp.json()
            assert resp.status == 200 and body["ok"] is True and body["loading"] is True

        event = app_mention(f"{BOT} are you there?")
        started = time.monotonic()
        assert await bot.deliver(event, event_id="Ev0EARLY") == 200
        acked_in = time.monotonic() - started
        assert await bot.deliver(event, event_id="Ev0EARLY", retry_num=1) == 200
        stranger = app_mention(f"{BOT} let me in", user="U0STRANGER")
        assert await bot.deliver(stranger) == 200
        url = await bot.command("/help")

        [refusal] = await bot.slack.wait_for(lambda: bot.slack.ephemerals("C123"))
        assert refusal["user_to"] == "U0STRANGER" and "not enabled for you" in refusal["text"]
        [help_post] = await bot.slack.wait_for(lambda: bot.slack.responses(url))
        assert "/ask" in help_post.body["text"]
        await eventually(lambda: bot.adapter.outcomes["duplicate"] == 1)
        await bot.slack.wait_for(lambda: bot.slack.status("C123", event["ts"]))  # thinking…
        assert acked_in < 0.5
        assert bot.bot_messages("C123", event["ts"]) == []
        assert bot.openrouter.chat_requests == [] and not bot.core.ready
        assert bot.core.waiting == 1  # the question waits for the stack, as for a model slot

        loads.set()
        await bot.answered()
        async with http.get(health) as resp:
            body = await resp.json()
            assert resp.status == 200 and body["ok"] is True and "loading" not in body
    assert bot.answer("C123", event["ts"]) == "echo: are you there?"
    assert len(bot.bot_messages("C123", event["ts"])) == 1
    assert len(bot.openrouter.chat_requests) == 1
    assert bot.bot_messages("C123", stranger["ts"]) == []
    assert await pending(bot.core.store) == []
    assert len(bot.slack.calls("auth.test")) == 1  # at start: bolt does not ask again


async def test_invalid_signature_is_refused_and_nothing_happens(bot: Bot) -> None:
    status, _ = await bot.slack.deliver_event(bot.url, "wrong-secret", app_mention(f"{BOT} hi"))
    stale = int(time.time()) - 600
    stale_status, _ = await bot.slack.deliver_event(
        bot.url, SECRET, app_mention(f"{BOT} hi"), timestamp=stale
    )
    await asyncio.sleep(0.2)

    assert (status, stale_status) == (401, 401)
    assert bot.chat_calls() == []
    assert bot.openrouter.chat_requests == []
    assert sum(bot.adapter.outcomes.values()) == 0


# --------------------------------------------------------------------------- answers


@pytest.mark.parametrize(
    ("native", "method"), [(True, "chat.startStream"), (False, "chat.postMessage")]
)
async def test_rate_limited_post_still_delivers_the_answer(
    start_bot: BotFactory, native: bool, method: str
) -> None:
    bot = await start_bot(SLACK_NATIVE_STREAMING=native)
    bot.slack.rate_limit(method, times=2, retry_after=1)
    bot.openrouter.enqueue(TextReply("streamed despite limits", chunks=3, delay=0.3))
    event = app_mention(f"{BOT} go")
    await bot.deliver(event)
    await bot.answered()

    assert bot.answer("C123", event["ts"]) == "streamed despite limits"
    assert [c.status for c in bot.slack.calls(method)][:3] == [429, 429, 200]
    assert len(bot.bot_messages("C123", event["ts"])) == 1


def long_answer() -> str:
    """About 30,000 characters of paragraphs, lists and fenced code, ending with a marker."""
    parts: list[str] = []
    n = 0
    while sum(len(p) + 2 for p in parts) < 30_000:
        n += 1
        if n % 5 == 0:
            body = "\n".join(f"    print('line {n}-{i}')  # step {i}" for i in range(60))
            parts.append(f"```python\ndef block_{n}():\n{body}\n```")
        else:
            parts.append(f"Paragraph {n}: " + " ".join(f"word{n}_{i}" for i in range(60)))
    parts.append("THE END.")
    return "\n\n".join(parts)


def normalize(text: str) -> str:
    """Drop the fence lines a split adds and the whitespace at cut points."""
    text = re.sub(r"\n?```(python)?\n?", "\n", text)
    return re.sub(r"\s+", " ", text).strip()


@pytest.mark.parametrize("native", [True, False])
async def test_a_30000_character_answer_is_delivered_whole(
    start_bot: BotFactory, native: bool
) -> None:
    bot = await start_bot(SLACK_NATIVE_STREAMING=native)
    text = long_answer()
    assert len(text) >= 30_000
    bot.openrouter.enqueue(TextReply(text, chunks=40, delay=0.01))
    event = app_mention(f"{BOT} write a lot")
    await bot.deliver(event)
    await bot.answered()

    messages = bot.bot_messages("C123", event["ts"])
    assert len(messages) >= 3
    assert normalize("\n".join(m["text"] for m in messages)) == normalize(text)
    for m in messages:
        assert m["text"].count("```") % 2 == 0, "every message has balanced fences"
    assert all(c.ok for c in bot.slack.calls() if c.method.startswith("chat."))
    if native:
        assert all(s.state == "completed" for s in bot.slack.streams("C123"))
    else:
        assert all(len(m["text"]) <= 4_000 for m in messages)


async def test_outcomes_are_counted_under_their_plain_labels(bot: Bot) -> None:
    """Benchmarks print the adapter's counter: it reads 'answered', not an enum's repr."""
    await bot.deliver(app_mention(f"{BOT} hi"))
    await bot.deliver(bot_message("beep"))
    await bot.answered()
    await eventually(lambda: bot.adapter.outcomes["ignored"] >= 1)

    assert {type(label) for label in bot.adapter.outcomes} == {str}
    assert "'answered': 1" in repr(dict(bot.adapter.outcomes))


async def test_streaming_is_coalesced_and_single_flight(start_bot: BotFactory) -> None:
    bot = await start_bot(SLACK_STREAM_INTERVAL=0.3)
    bot.slack.latency = 0.05
    text = " ".join(f"token{i}" for i in range(60))
    bot.openrouter.enqueue(TextReply(text, chunks=60, delay=0.02))  # ~1.2 s of streaming
    event = app_mention(f"{BOT} stream it")
    await bot.deliver(event)
    await bot.answered()

    calls = [c for c in bot.slack.calls() if c.method.startswith("chat.")]
    assert calls[0].method == "chat.startStream" and calls[-1].method == "chat.stopStream"
    assert 3 <= len(calls) <= 8, [c.method for c in calls]  # not one call per token
    # Appends keep the interval; the first text goes at once and the final stop is not held.
    gaps = [b.at - a.at for a, b in itertools.pairwise(calls[:-1])]
    assert all(gap >= 0.25 for gap in gaps), gaps
    assert bot.answer("C123", event["ts"]) == text


async def test_native_streaming_refused_falls_back_to_post_and_update(bot: Bot) -> None:
    bot.slack.fail_next("chat.startStream", "unknown_method", times=5)
    bot.openrouter.enqueue(TextReply("one two three four five six", chunks=6, delay=0.1))
    event = app_mention(f"{BOT} old workspace")
    await bot.deliver(event)
    await bot.answered()

    assert bot.answer("C123", event["ts"]) == "one two three four five six"
    assert "chat.postMessage" in bot.chat_calls()
    # Refused for good: the next answer does not try native streaming again.
    before = len(bot.slack.calls("chat.startStream"))
    second = app_mention(f"{BOT} again")
    await bot.deliver(second)
    await bot.answered(2)
    assert len(bot.slack.calls("chat.startStream")) == before


async def test_failure_is_shown_and_status_cleared(bot: Bot) -> None:
    from tests.fakes.openrouter import ErrorReply

    bot.openrouter.enqueue(*[ErrorReply(401)] * 3)
    event = app_mention(f"{BOT} this will fail")
    await bot.deliver(event)
    await eventually(lambda: bot.adapter.outcomes["failed"] >= 1)
    await eventually(lambda: bot.slack.status_history("C123", event["ts"])[-1:] == [""])
    assert "misconfigured" in bot.answer("C123", event["ts"])
    assert bot.slack.status("C123", event["ts"]) is None


# --------------------------------------------------------------------------- files


async def test_dm_with_a_file_reads_it_with_the_token(bot: Bot) -> None:
    file = bot.slack.add_file(TEAM_ID, "notes.md", "# Plan\nShip the bot on Friday.", "text/plain")
    event = file_share_message([file], "what does this say?", channel="D123", channel_type="im")
    await bot.deliver(event)
    await bot.answered()

    [download] = bot.slack.downloads
    assert download.authorized and download.status == 200
    prompt = last_user_text(bot.last_body())
    assert "Ship the bot on Friday." in prompt and "what does this say?" in prompt
    assert bot.answer("D123", event["ts"]).startswith("echo: what does this say?")


async def test_files_the_bot_cannot_fetch_are_named_and_the_rest_used(bot: Bot) -> None:
    good = bot.slack.add_file(TEAM_ID, "good.txt", "the good part", "text/plain")
    foreign = dict(bot.slack.add_file(TEAM_ID, "foreign.txt", "x", "text/plain"))
    foreign["url_private_download"] = foreign["url_private_download"].replace(
        "127.0.0.1", "localhost"
    )
    evil = dict(foreign, name="evil.txt", url_private_download="https://evil.example/f.txt")
    other_team = bot.slack.add_file("T2", "signin.txt", "secret", "text/plain")  # sign-in page
    event = file_share_message([good, foreign, evil, other_team], "read these", channel="D123")
    await bot.deliver(event)
    await bot.answered()

    # The token went to the fake Slack's file host only; the others were never contacted.
    assert [d.path.rsplit("/", 1)[-1] for d in bot.slack.downloads] == ["good.txt", "signin.txt"]
    notices = [m["text"] for m in bot.bot_messages("D123", event["ts"])]
    text = "\n".join(notices)
    assert "foreign.txt" in text and "evil.txt" in text and "not hosted on Slack" in text
    assert "signin.txt" in text and "sign-in page" in text
    assert "the good part" in last_user_text(bot.last_body())
    assert "secret" not in str(bot.last_body())


# --------------------------------------------------------------------------- slash commands


async def test_help_usage_and_model_commands(bot: Bot) -> None:
    url = await bot.command("/help")
    [help_post] = await bot.slack.wait_for(lambda: bot.slack.responses(url))
    assert help_post.body["response_type"] == "ephemeral"
    assert "/ask" in help_post.body["text"]

    url = await bot.command("/model", "anthropic/claude-haiku-4.5")
    [post] = await bot.slack.wait_for(lambda: bot.slack.responses(url))
    assert "openrouter/anthropic/claude-haiku-4.5" in post.body["text"]
    url = await bot.command("/model")
    [post] = await bot.slack.wait_for(lambda: bot.slack.responses(url))
    assert "uses `openrouter/anthropic/claude-haiku-4.5`" in post.body["text"]

    mention = app_mention(f"{BOT} which model?")
    await bot.deliver(mention)
    await bot.answered()
    assert bot.last_body()["model"] == "anthropic/claude-haiku-4.5"

    url = await bot.command("/usage")
    [post] = await bot.slack.wait_for(lambda: bot.slack.responses(url))
    assert post.body["response_type"] == "ephemeral"
    assert "1 answer" in post.body["text"]


async def test_ask_opens_a_thread_that_continues_as_a_conversation(bot: Bot) -> None:
    await bot.command("/ask", "what is 2+2?")
    await bot.answered()

    [question] = [m for m in bot.slack.messages("C123") if "asked" in m["text"]]
    assert question["text"] == f"<@{USER_ID}> asked: what is 2+2?"
    root = question["ts"]
    assert bot.answer("C123", root) == question["text"] + "\necho: what is 2+2?"

    await bot.deliver(message_event("and 3+3?", thread_ts=root))
    await bot.answered(2)
    assert bot.answer("C123", root).endswith("echo: and 3+3?")

    url = await bot.command("/ask", "")
    [post] = await bot.slack.wait_for(lambda: bot.slack.responses(url))
    assert "Ask a question" in post.body["text"]


async def test_ask_where_the_bot_cannot_post_says_so(bot: Bot) -> None:
    bot.slack.fail_next("chat.postMessage", "not_in_channel")
    url = await bot.command("/ask", "hello?", channel_id="C999")
    [post] = await bot.slack.wait_for(lambda: bot.slack.responses(url))
    assert "Invite me" in post.body["text"]
    assert bot.openrouter.chat_requests == []


async def test_reset_forgets_the_users_latest_thread_here(bot: Bot) -> None:
    mention = app_mention(f"{BOT} remember 42")
    await bot.deliver(mention)
    await bot.answered()

    url = await bot.command("/reset")
    [post] = await bot.slack.wait_for(lambda: bot.slack.responses(url))
    assert "forgotten" in post.body["text"]

    await bot.deliver(message_event("what did I say?", thread_ts=mention["ts"]))
    await bot.answered(2)
    users = [m for m in bot.last_body()["messages"] if m["role"] == "user"]
    assert [m["content"] for m in users] == ["what did I say?"]

    url = await bot.command("/reset", channel_id="C777")
    [post] = await bot.slack.wait_for(lambda: bot.slack.responses(url))
    assert "nothing to forget" in post.body["text"]


# --------------------------------------------------------------------------- transport


async def test_dm_opened_greets_once_with_suggested_prompts(bot: Bot) -> None:
    await bot.deliver(app_home_opened(channel="D123"))
    await bot.slack.wait_for(lambda: bot.slack.suggested_prompts("D123"))
    await bot.deliver(app_home_opened(channel="D123"))
    await bot.deliver(app_home_opened(channel="D123", tab="home"))
    await asyncio.sleep(0.2)
    greetings = bot.slack.bot_messages("D123")
    assert len(greetings) == 1 and "/help" in greetings[0]["text"]


async def test_healthz(bot: Bot) -> None:
    await bot.core.instance.start()  # as python -m bot does before the platforms start
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{bot.adapter.port}/healthz") as resp,
    ):
        assert resp.status == 200
        body = await resp.json()
        assert body["ok"] is True and "loading" not in body  # the stack has loaded
        assert body["instance"] == bot.core.instance.id and body["pid"] == os.getpid()
        assert 0 < body["lease_expires_in_s"] <= bot.core.settings.lease_s


async def test_metrics_count_turns_tokens_and_queue_in_prometheus_format(bot: Bot) -> None:
    event = app_mention(f"{BOT} count me")
    await bot.deliver(event)
    await bot.answered()
    await bot.deliver(event)  # Slack's retry: a duplicate
    await eventually(lambda: bot.adapter.outcomes["duplicate"] >= 1)

    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{bot.adapter.port}/metrics") as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=")
        text = await resp.text()
    assert 'bot_events_total{outcome="answered",platform="slack"} 1.0' in text
    assert 'bot_events_total{outcome="duplicate",platform="slack"} 1.0' in text
    assert "bot_turn_seconds_count 1.0" in text
    assert 'bot_model_call_seconds_count{outcome="ok"} 1.0' in text
    assert re.search(r'bot_tokens_total\{direction="input"\} [1-9]', text)
    assert "bot_turns_waiting 0.0" in text and "bot_turns_running 0.0" in text
    [lease] = [
        line
        for line in text.splitlines()
        if line.startswith(f'bot_instance_lease_seconds{{instance="{bot.core.instance.id}"}}')
    ]
    assert 0 < float(lease.split()[-1]) <= bot.core.settings.lease_s
    assert bot.slack.bot_token not in text and SECRET not in text


async def test_socket_mode(start_bot: BotFactory) -> None:
    async with FakeSlack() as slack:
        bot = await start_bot(slack, SLACK_APP_TOKEN=slack.app_token, SLACK_SIGNING_SECRET=None)
        await slack.wait_for_socket()
        event = app_mention(f"{BOT} over the socket")
        ack = await slack.deliver_socket_event(event)
        assert ack.envelope_id
        await bot.answered()
        assert bot.answer("C123", event["ts"]) == "echo: over the socket"
        await slack.deliver_socket_event(event, retry_attempt=1, retry_reason="timeout")
        await eventually(lambda: bot.adapter.outcomes["duplicate"] == 1)
        assert bot.adapter.port is None
        assert slack.last_call("apps.connections.open").auth == "app"


async def test_two_socket_mode_instances_share_the_events_and_answer_each_once(
    start_bot: BotFactory,
) -> None:
    """Each instance opens its own connection; Slack spreads the events over them (the fake
    round-robin), and a retry lands on the other one: answered once, by one instance."""
    async with FakeSlack() as slack:
        socket_mode = {"SLACK_APP_TOKEN": slack.app_token, "SLACK_SIGNING_SECRET": None}
        one = await start_bot(slack, **socket_mode)
        two = await start_bot(slack, **socket_mode)  # the same database file (tmp_path)
        assert one.core.instance.id != two.core.instance.id
        await slack.wait_for_socket(2)
        events = [
            app_mention(f"{BOT} question {n}", ts=f"17000001{n:02d}.000100") for n in range(6)
        ]
        for event in events:
            await slack.deliver_socket_event(event, event_id=f"Ev{event['ts']}")
        for event in events:  # each retried: round-robin sends it to the other connection
            await slack.deliver_socket_event(
                event, event_id=f"Ev{event['ts']}", retry_attempt=1, retry_reason="timeout"
            )

        def both(outcome: str) -> int:
            return one.adapter.outcomes[outcome] + two.adapter.outcomes[outcome]

        await eventually(lambda: both("answered") == both("duplicate") == 6, 10)
        for n, event in enumerate(events):
            assert one.answer("C123", event["ts"]) == f"echo: question {n}"
            assert len(one.bot_messages("C123", event["ts"])) == 1
        answered = [bot.adapter.outcomes["answered"] for bot in (one, two)]
        assert min(answered) >= 1  # both took a share


async def test_socket_mode_acks_an_event_while_the_agent_stack_loads(
    start_bot: BotFactory,
) -> None:
    """Socket Mode connects before the agent stack has loaded: an event and its retry are
    acked over the socket at once, and the question is answered once, after the load."""
    loads = asyncio.Event()
    async with FakeSlack() as slack:
        bot = await start_bot(
            slack, stack_loads=loads, SLACK_APP_TOKEN=slack.app_token, SLACK_SIGNING_SECRET=None
        )
        await slack.wait_for_socket()
        event = app_mention(f"{BOT} early over the socket")
        acks = [await slack.deliver_socket_event(event, event_id="Ev0SOCK", timeout=1.0)]
        acks.append(
            await slack.deliver_socket_event(
                event, event_id="Ev0SOCK", retry_attempt=1, retry_reason="timeout", timeout=1.0
            )
        )
        await eventually(lambda: bot.adapter.outcomes["duplicate"] == 1)
        assert all(ack.envelope_id for ack in acks)
        assert bot.bot_messages("C123", event["ts"]) == [] and not bot.core.ready

        loads.set()
        await bot.answered()
        assert bot.answer("C123", event["ts"]) == "echo: early over the socket"
        assert len(bot.bot_messages("C123", event["ts"])) == 1


# --------------------------------------------------------------------------- SlackReply alone


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(update_text_limit=1_000) as fake:
        yield fake


async def reply_for(slack: FakeSlack, *, native: bool = True) -> tuple[SlackReply, str]:
    root = slack.add_message("C123", message_event("question"))
    client = AsyncWebClient(base_url=slack.api_url, token=slack.bot_token)
    reply = SlackReply(
        client,
        channel="C123",
        thread_ts=root["ts"],
        user=USER_ID,
        team=TEAM_ID,
        native=NativeStreaming(native),
        interval_s=0.01,
    )
    return reply, root["ts"]


def thread_text(slack: FakeSlack, ts: str) -> str:
    return "\n".join(m["text"] for m in slack.thread("C123", ts) if m.get("bot_id"))


async def test_an_expired_stream_continues_in_a_new_message(slack: FakeSlack) -> None:
    reply, ts = await reply_for(slack)
    await reply.start()
    await reply.stream("First part.\n\n")
    started = await slack.wait_for_call("chat.startStream")
    slack.expire_stream("C123", started.response["ts"])
    await reply.stream("Second part.")
    await asyncio.sleep(0.05)
    await reply.finish()

    assert normalize(thread_text(slack, ts)) == "First part. Second part."
    assert len(reply.posted) == 2


async def test_msg_too_long_on_post_is_retried_in_smaller_pieces(slack: FakeSlack) -> None:
    reply, ts = await reply_for(slack)
    slack.fail_next("chat.postMessage", "msg_too_long")
    text = "\n\n".join(f"Paragraph {n} " + "x" * 300 for n in range(10))
    await reply.stream(text)
    await reply.finish()  # before the first flush: posted whole

    posts = slack.calls("chat.postMessage")
    assert posts[0].error == "msg_too_long" and all(c.ok for c in posts[1:])
    assert len(posts) >= 3
    assert normalize(thread_text(slack, ts)) == normalize(text)


async def test_update_mode_continues_below_a_message_slack_will_not_grow(slack: FakeSlack) -> None:
    reply, ts = await reply_for(slack, native=False)
    for n in range(30):
        await reply.stream(f"line {n} " + "y" * 80 + "\n")
        await asyncio.sleep(0.005)
    await reply.finish()

    assert "chat.update" in [c.method for c in slack.calls()]
    assert all(len(m["text"]) <= 1_000 for m in slack.thread("C123", ts) if m.get("bot_id"))
    assert normalize(thread_text(slack, ts)) == normalize(
        "".join(f"line {n} " + "y" * 80 + "\n" for n in range(30))
    )


@pytest.mark.parametrize(
    ("native", "opens"), [(True, "chat.startStream"), (False, "chat.postMessage")]
)
async def test_a_message_opened_with_more_than_it_holds_ends_at_its_cut(
    native: bool, opens: str
) -> None:
    """More text waits than one message holds when a message is opened (a pump held up by a
    busy CPU): the cut that fits the first message ends it, its paragraph break dropped; the
    rest goes on in the next message, never glued onto the first paragraph's last word."""
    budget = STREAM_BUDGET if native else UPDATE_BUDGET
    # first fits one message with a few hundred characters to spare: room the next round
    # must not fill with the start of second.
    first = "First " + " ".join(f"alpha{i}" for i in range(budget // 10))
    second = "Second " + " ".join(f"beta{i}" for i in range(budget // 10))
    async with FakeSlack() as slack:
        reply, ts = await reply_for(slack, native=native)
        await reply.stream(f"{first}\n\n{second}")
        await slack.wait_for_call(opens)  # the pump is sending: finish() does not post it whole
        await reply.finish()

        texts = [m["text"] for m in slack.thread("C123", ts) if m.get("bot_id")]
    assert texts[0] == first
    assert normalize("\n".join(texts)) == normalize(f"{first} {second}")
    assert all(len(text) <= budget for text in texts)


async def test_model_output_never_pings_a_channel(slack: FakeSlack) -> None:
    reply, ts = await reply_for(slack)
    for delta in ["Hey <!chan", "nel> and <", "!here> and <!subteam^S1|@devs>, ask <@U123>"]:
        await reply.stream(delta)
    await reply.finish()

    text = thread_text(slack, ts)
    assert "<!" not in text
    assert text.count("<\u200b!") == 3 and "<@U123>" in text  # user mentions stay


async def test_notice_and_fail_after_partial_text(slack: FakeSlack) -> None:
    reply, ts = await reply_for(slack)
    await reply.start()
    await reply.notice("Skipped big.bin: it is over the 20 MB limit.")
    await reply.stream("Partial answer")
    await asyncio.sleep(0.05)
    await reply.fail("The answer was cut off.")

    texts = [m["text"] for m in slack.thread("C123", ts) if m.get("bot_id")]
    assert texts[0] == "_Skipped big.bin: it is over the 20 MB limit._"
    assert texts[1] == "Partial answer\n\n_The answer was cut off._"
    assert slack.status_history("C123", ts)[-1] == ""


async def test_close_lets_answers_in_flight_finish(bot: Bot) -> None:
    bot.openrouter.latency = 0.5
    event = app_mention(f"{BOT} finish me")
    await bot.deliver(event)
    await eventually(lambda: bot.openrouter.chat_requests)

    await bot.adapter.close()

    assert bot.adapter.outcomes["answered"] == 1
    assert bot.answer("C123", event["ts"]) == "echo: finish me"


async def test_dm_with_a_pdf_then_a_follow_up_parses_it_once(bot: Bot) -> None:
    from tests.fakes.pdf import make_pdf

    report = make_pdf(["Revenue grew 42 percent in the quarter."])
    file = bot.slack.add_file(TEAM_ID, "report.pdf", report, "application/pdf")
    bot.openrouter.enqueue(
        ToolCallReply.single("read_document", {"question": "What grew?", "document": ""})
    )
    event = file_share_message([file], "what grew?", channel="D123", channel_type="im")
    await bot.deliver(event)
    await bot.answered()
    bot.openrouter.enqueue(
        ToolCallReply.single("read_document", {"question": "By how much?", "document": ""})
    )
    await bot.deliver(im_message("by how much?", thread_ts=event["ts"]))
    await bot.answered(2)

    assert bot.slack.downloads[0].authorized
    assert bot.openrouter.counters.parses == 1
    tool = [m for m in bot.last_body()["messages"] if m["role"] == "tool"]
    assert "Revenue grew 42 percent" in str(tool[-1]["content"])


# --------------------------------------------------------------------------- shutdown and restarts


async def test_shutdown_tells_the_user_whose_answer_the_grace_period_cut(bot: Bot) -> None:
    bot.openrouter.enqueue(HangReply())
    event = app_mention(f"{BOT} a slow question")
    await bot.deliver(event)
    await bot.openrouter.wait_for_requests(1)

    await bot.adapter.close(grace_s=0.2)

    assert bot.answer("C123", event["ts"]) == f"_{SHUTDOWN_LINE}_"
    assert await pending(bot.core.store) == []  # told, so the next start says nothing more
    assert (
        await count_items(bot.core.store, conversation=f"slack:{TEAM_ID}:C123:{event['ts']}") == 0
    )


async def test_turns_a_dead_instance_left_unfinished_are_told_once_by_a_live_one(
    start_bot: BotFactory,
) -> None:
    first = await start_bot(BOT_LEASE_S=1)
    store = first.core.store
    # What an instance killed mid-turn leaves: claims never finished, with where to answer,
    # owned by an instance whose lease runs out (here: never taken).
    address = '{"channel": "C123", "thread_ts": "1700000000.000100"}'
    for event_id, conversation, where in (
        ("slack:T1:C123:1", "slack:T1:C123:1", address),
        ("slack:T1:C123:2", "slack:T1:C123:2", None),
        ("discord:9", "discord:1:2:9", '{"x": 1}'),
    ):
        await store.claim_event(
            event_id=event_id, conversation=conversation, address=where, owner="killed"
        )

    # The live instance notices on its own, at its next lease renewal (a third of a second).
    await eventually(lambda: first.answer("C123", "1700000000.000100") == f"_{RESTART_LINE}_")

    async def only_discord_left() -> bool:
        return await pending(store) == [("discord:9", "discord:1:2:9")]  # not Slack's to tell

    await eventually(only_discord_left)
    assert await first.core.recover("slack", first.adapter._tell) == 0  # never told twice
    await asyncio.sleep(0.5)  # another renewal: still nothing more said
    assert len(first.bot_messages("C123", "1700000000.000100")) == 1


async def test_an_answer_slack_will_not_take_is_one_warning_not_a_traceback(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    for method in ("chat.startStream", "chat.postMessage", "chat.appendStream", "chat.update"):
        bot.slack.fail_next(method, "channel_not_found", times=5)
    await bot.deliver(app_mention(f"{BOT} anyone there?"))
    await eventually(lambda: bot.adapter.outcomes["failed"] >= 1)

    assert "the answer could not be delivered: Slack answered channel_not_found" in caplog.text
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert await pending(bot.core.store) == []


async def test_a_slow_status_does_not_hold_up_the_model(bot: Bot) -> None:
    """setStatus rate-limited for 1 s: the model is asked at once, and the status still comes
    before the answer."""
    bot.slack.fail_next("assistant.threads.setStatus", "ratelimited", status=429, retry_after=1)
    event = app_mention(f"{BOT} quick one")
    await bot.deliver(event)
    await bot.answered()

    calls = bot.slack.calls()
    status_ok = next(
        c for c in calls if c.method == "assistant.threads.setStatus" and c.status == 200
    )
    first_post = next(c for c in calls if c.method.startswith("chat."))
    asked = bot.openrouter.chat_requests[0].received_at
    assert asked < status_ok.at  # the model did not wait out the 429
    assert status_ok.at < first_post.at  # the status still came first
    assert bot.answer("C123", event["ts"]) == "echo: quick one"


async def test_socket_mode_acks_and_drops_payloads_slack_would_never_send(
    start_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Over Socket Mode too, a malformed interactive payload, a command without a response
    URL and a non-object event are acked (so Slack does not resend them) and dropped with one
    warning each; the connection stays up and the next mention is answered."""
    async with FakeSlack() as slack:
        bot = await start_bot(slack, SLACK_APP_TOKEN=slack.app_token, SLACK_SIGNING_SECRET=None)
        await slack.wait_for_socket()
        junk: list[tuple[object, Any]] = [
            ({"type": "view_submission", "team": {"id": TEAM_ID}, "view": "x"}, "interactive"),
            ({"type": "block_actions", "user": {"id": "U1"}, "actions": 5}, "interactive"),
            ({"command": "/help", "team_id": TEAM_ID}, "slash_commands"),
            ({"type": "event_callback", "event": "nope"}, "events_api"),
        ]
        for payload, kind in junk:
            ack = await slack.deliver_socket_payload(payload, kind)
            assert ack.envelope_id
        event = app_mention(f"{BOT} still connected?")
        await slack.deliver_socket_event(event)
        await bot.answered()

    dropped = [r for r in caplog.records if "dropped a malformed" in r.getMessage()]
    assert len(dropped) == len(junk)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert bot.answer("C123", event["ts"]) == "echo: still connected?"


# --------------------------------------------------------------------------- feedback buttons


def buttons_of(message: dict[str, Any]) -> dict[str, Any]:
    """The feedback_buttons element under a message (its last block)."""
    block = message["blocks"][-1]
    assert block["type"] == "context_actions", message["blocks"]
    [element] = block["elements"]
    assert element["type"] == "feedback_buttons"
    return dict(element)


async def click(
    bot: Bot, ts: str, value: str, *, user: str = USER_ID, channel: str = "C123"
) -> tuple[int, float]:
    """A user clicks a feedback button on message ``ts``: the status and the time to the ack."""
    payload = bot.slack.block_actions(
        channel, ts, action_id=FEEDBACK_ACTION, value=value, user_id=user
    )
    started = time.monotonic()
    status, _ = await bot.slack.deliver_interaction(bot.url, SECRET, payload)
    return status, time.monotonic() - started


async def told(bot: Bot, user: str, count: int, channel: str = "C123") -> str:
    """The ``count``-th ephemeral line shown to ``user`` (and only to them)."""
    shown = await bot.slack.wait_for(
        lambda: [m for m in bot.slack.ephemerals(channel) if m["user_to"] == user][count - 1 :]
    )
    return str(shown[0]["text"])


async def test_an_answer_posted_whole_carries_buttons_under_its_text_and_a_vote_changes(
    bot: Bot,
) -> None:
    event = app_mention(f"{BOT} quick one")
    await bot.deliver(event)
    await bot.answered()

    [answer] = bot.bot_messages("C123", event["ts"])
    # A message with blocks shows only its blocks: the text is in one, the buttons below it.
    assert answer["blocks"][0] == {"type": "markdown", "text": "echo: quick one"}
    assert answer["text"] == "echo: quick one"  # the notification fallback
    buttons = buttons_of(answer)
    assert (buttons["positive_button"]["value"], buttons["negative_button"]["value"]) == (
        "up",
        "down",
    )

    status, took = await click(bot, answer["ts"], "up")
    assert status == 200 and took < 3.0  # acked in Slack's time
    assert await told(bot, USER_ID, 1) == "Thanks for the 👍! I've noted it."
    url = await bot.command("/usage")
    [post] = await bot.slack.wait_for(lambda: bot.slack.responses(url))
    assert "👍 100% of 1 vote" in post.body["text"]

    await click(bot, answer["ts"], "down")
    assert await told(bot, USER_ID, 2) == "Changed your vote on this answer to 👎."
    url = await bot.command("/usage")
    [post] = await bot.slack.wait_for(lambda: bot.slack.responses(url))
    assert "👍 0% of 1 vote" in post.body["text"]
    url = await bot.command("/stats")
    [post] = await bot.slack.wait_for(lambda: bot.slack.responses(url))
    assert "`slack:T1:C123`" in post.body["text"] and "👍 0%" in post.body["text"]
    # Confirmations are ephemeral, in the answer's thread: the channel sees no new message.
    assert all(m["thread_ts"] == event["ts"] for m in bot.slack.ephemerals("C123"))
    assert len(bot.bot_messages("C123", event["ts"])) == 1
    metrics = bot.core.metrics.render().decode()
    assert 'bot_feedback_total{platform="slack",value="up"} 1.0' in metrics
    assert 'bot_feedback_total{platform="slack",value="down"} 1.0' in metrics


async def test_a_natively_streamed_answer_gets_its_buttons_when_the_stream_stops(
    bot: Bot,
) -> None:
    bot.openrouter.enqueue(TextReply("A streamed answer, piece by piece.", chunks=4, delay=0.3))
    event = app_mention(f"{BOT} stream please")
    await bot.deliver(event)
    await bot.answered()

    stop = bot.slack.last_call("chat.stopStream")
    assert stop.ok and stop.params["blocks"][0]["type"] == "context_actions"
    assert not any("blocks" in c.params for c in bot.slack.calls("chat.appendStream"))
    [answer] = bot.bot_messages("C123", event["ts"])
    assert answer["blocks"][0] == {
        "type": "markdown",
        "text": "A streamed answer, piece by piece.",
    }
    buttons_of(answer)
    await click(bot, answer["ts"], "up")
    assert await told(bot, USER_ID, 1) == "Thanks for the 👍! I've noted it."


async def test_the_post_and_update_fallback_puts_the_buttons_on_the_last_update(
    bot: Bot,
) -> None:
    bot.slack.fail_next("chat.startStream", "unknown_method", times=5)
    bot.openrouter.enqueue(TextReply("one two three four five six", chunks=6, delay=0.1))
    event = app_mention(f"{BOT} old workspace")
    await bot.deliver(event)
    await bot.answered()

    last = bot.slack.last_call("chat.update")
    assert last.ok and "markdown_text" not in last.params
    assert last.params["blocks"][0] == {"type": "markdown", "text": "one two three four five six"}
    assert [c for c in bot.slack.calls("chat.update") if "blocks" in c.params] == [last]
    [answer] = bot.bot_messages("C123", event["ts"])
    assert answer["text"] == "one two three four five six"
    buttons_of(answer)
    await click(bot, answer["ts"], "down")
    assert await told(bot, USER_ID, 1) == "Thanks for the 👎! I've noted it."


async def test_a_long_answer_has_its_buttons_on_its_last_message_only(bot: Bot) -> None:
    bot.openrouter.enqueue(TextReply(long_answer()))
    event = app_mention(f"{BOT} long")
    await bot.deliver(event)
    await bot.answered()

    messages = bot.bot_messages("C123", event["ts"])
    assert len(messages) >= 3
    with_buttons = [m for m in messages if m["blocks"][-1]["type"] == "context_actions"]
    assert with_buttons == [messages[-1]]
    await click(bot, messages[-1]["ts"], "up")
    assert await told(bot, USER_ID, 1) == "Thanks for the 👍! I've noted it."


async def test_clicks_from_outside_the_allowlist_or_on_unknown_answers_are_answered_privately(
    start_bot: BotFactory,
) -> None:
    bot = await start_bot(BOT_ALLOWED_USERS=f"slack:{USER_ID}")
    event = app_mention(f"{BOT} hello")
    await bot.deliver(event)
    await bot.answered()
    [answer] = bot.bot_messages("C123", event["ts"])

    status, _ = await click(bot, answer["ts"], "up", user="U999")
    assert status == 200
    assert "not enabled for you here" in await told(bot, "U999", 1)
    assert await bot.core.store.vote_shares() == []

    # Buttons on a message the store never heard of (an answer retention deleted, say).
    unknown = await bot.adapter.client.chat_postMessage(
        channel="C123", text="old", blocks=[{"type": "markdown", "text": "old"}, *BUTTONS]
    )
    await click(bot, str(unknown["ts"]), "up")
    assert (
        await told(bot, USER_ID, 1)
        == "I can't find that answer any more, so I couldn't record your vote."
    )
    assert await bot.core.store.vote_shares() == []


async def test_two_clicks_at_once_leave_one_vote(bot: Bot) -> None:
    event = app_mention(f"{BOT} hello")
    await bot.deliver(event)
    await bot.answered()
    [answer] = bot.bot_messages("C123", event["ts"])

    statuses = await asyncio.gather(
        click(bot, answer["ts"], "up"), click(bot, answer["ts"], "down")
    )
    assert [s for s, _ in statuses] == [200, 200]
    await told(bot, USER_ID, 2)
    [share] = await bot.core.store.vote_shares()
    assert share.up + share.down == 1


async def test_a_click_over_socket_mode_is_acked_and_recorded(start_bot: BotFactory) -> None:
    async with FakeSlack() as slack:
        bot = await start_bot(slack, SLACK_APP_TOKEN=slack.app_token, SLACK_SIGNING_SECRET=None)
        await slack.wait_for_socket()
        event = app_mention(f"{BOT} over the socket")
        await slack.deliver_socket_event(event)
        await bot.answered()
        [answer] = bot.bot_messages("C123", event["ts"])

        payload = slack.block_actions("C123", answer["ts"], action_id=FEEDBACK_ACTION, value="up")
        ack = await slack.deliver_socket_payload(payload, "interactive")
        assert ack.envelope_id
        assert await told(bot, USER_ID, 1) == "Thanks for the 👍! I've noted it."


# --------------------------------------------------------------------------- PII redaction


async def test_pii_is_redacted_from_slack_links_and_the_thread_told_once(
    start_bot: BotFactory,
) -> None:
    bot = await start_bot(BOT_REDACT_PII="true")
    # Slack sends addresses and numbers as links: <mailto:...|...>, <tel:...|...>.
    root = message_event("reach me at <mailto:jane@example.com|jane@example.com>", user="U0ALICE")
    await bot.deliver(root)
    await eventually(lambda: bot.adapter.outcomes["ignored"] >= 1)
    await bot.deliver(
        app_mention(f"{BOT} call <tel:+14155552671|+1 415 555 2671>", thread_ts=root["ts"])
    )
    await bot.answered(1)
    await bot.deliver(message_event("card 4111 1111 1111 1111?", thread_ts=root["ts"]))
    await bot.answered(2)

    bodies = str([r.body for r in bot.openrouter.chat_requests])
    for raw in ("jane@example.com", "4155552671", "415 555", "4111"):
        assert raw not in bodies, raw
    first = last_user_text(bot.openrouter.chat_requests[0].body or {})
    # The same value twice (label and link), one placeholder; the Markdown link stays whole.
    mail = re.search(
        r"<@U0ALICE>: reach me at \[\[email (\w+)\]\]\(mailto:\[email (\w+)\]\)", first
    )
    assert mail and mail[1] == mail[2], first
    phone = re.search(r"call \[\[phone (\w+)\]\]\(tel:\[phone (\w+)\]\)", first)
    assert phone and phone[1] == phone[2], first
    notes = [m for m in bot.bot_messages("C123", root["ts"]) if "PII redaction is on" in m["text"]]
    assert len(notes) == 1
