"""The Discord adapter end to end: the REAL discord.py client (REST + zlib-stream gateway) against
FakeDiscord, the real core, litellm and SQLite behind it, answering from FakeOpenRouter.
Assertions are on what Discord saw: messages, edits, interaction callbacks, allowed_mentions."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord.gateway
import discord.http
import pytest

from adapters.discord import DiscordAdapter
from adapters.discord.reply import DiscordReply
from adapters.discord.translate import (
    Place,
    channel_key,
    new_conversation,
    place_conversation,
    strip_bot_mention,
)
from bot.agent import AgentStack
from bot.core import SHUTDOWN_LINE, Core
from bot.recovery import RESTART_LINE
from bot.reply import Step, StepState
from bot.wiring import Services, build_core, load_stack, open_services
from tests.conftest import make_settings
from tests.fakes.discord import (
    INTENT_MESSAGE_CONTENT,
    FakeDiscord,
    FakeMessage,
    FakeUser,
    new_snowflake,
)
from tests.fakes.open_meteo import Failure, FakeOpenMeteo
from tests.fakes.openrouter import (
    ErrorReply,
    FakeOpenRouter,
    HangReply,
    TextReply,
    ToolCall,
    ToolCallReply,
    last_user_text,
)
from tests.helpers import as_restarted, eventually, pending

EDIT_ROUTE = "PATCH /channels/{channel_id}/messages/{message_id}"


@dataclass
class Bot:
    discord: FakeDiscord
    openrouter: FakeOpenRouter
    adapter: DiscordAdapter
    core: Core
    meteo: FakeOpenMeteo | None = None

    async def answered(self, count: int = 1) -> None:
        await eventually(lambda: self.adapter.outcomes["answered"] >= count)

    def answers(self, channel_id: int) -> list[FakeMessage]:
        return [m for m in self.discord.bot_messages(channel_id) if not m.deleted]

    def users_said(self) -> list[str]:
        body = self.openrouter.chat_requests[-1].body
        assert body is not None
        return [m["content"] for m in body["messages"] if m["role"] == "user"]

    def last_prompt(self) -> str:
        body = self.openrouter.chat_requests[-1].body
        assert body is not None
        return last_user_text(body)


BotFactory = Callable[..., Awaitable[Bot]]


def pings_nobody(message: FakeMessage) -> bool:
    """No @everyone/@here, roles or users parsed from the content, and no reply ping."""
    allowed = message.allowed_mentions or {}
    return allowed.get("parse") == [] and not allowed.get("replied_user", False)


@pytest.fixture
async def start_bot(tmp_path: Path) -> AsyncIterator[BotFactory]:
    async with AsyncExitStack() as stack:
        openrouter = await stack.enter_async_context(FakeOpenRouter())
        meteo = await stack.enter_async_context(FakeOpenMeteo())
        fakes: list[FakeDiscord] = []

        async def factory(
            *,
            world: dict[str, Any] | None = None,
            new_discord: bool = False,
            stack_loads: asyncio.Event | None = None,
            **values: Any,
        ) -> Bot:
            """A bot on the fake Discord (made on the first call, from ``world`` if given;
            ``new_discord``: another fake Discord, with another application, from now on;
            ``stack_loads``: its agent stack loads only once the test sets it)."""
            if not fakes or new_discord:
                fakes.append(await stack.enter_async_context(FakeDiscord(**(world or {}))))
            fake = fakes[-1]
            config: dict[str, Any] = {
                "OPENROUTER_API_KEY": openrouter.api_key,
                "OPENROUTER_BASE_URL": openrouter.base_url,
                "OPEN_METEO_URL": meteo.base_url,
                "OPEN_METEO_GEOCODING_URL": meteo.base_url,
                "DISCORD_BOT_TOKEN": fake.token,
                "DISCORD_API_BASE": fake.rest_base,
                "DISCORD_GATEWAY_URL": fake.gateway_url,
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
            adapter = DiscordAdapter(core, settings)
            stack.push_async_callback(adapter.close)
            await adapter.start(timeout_s=10)
            return Bot(fake, openrouter, adapter, core, meteo)

        yield factory


@pytest.fixture
async def bot(start_bot: BotFactory) -> Bot:
    return await start_bot()


async def _loaded_after(go: asyncio.Event, services: Services) -> AgentStack:
    """The agent stack, its loading held until the test sets ``go``."""
    await go.wait()
    return await load_stack(services)


# --------------------------------------------------------------------------- conversations


async def test_mention_is_answered_as_a_reply_without_pings(bot: Bot) -> None:
    fake = bot.discord
    sent = await fake.send_user_message(content=f"{fake.bot.mention} hello there")
    await bot.answered()

    [answer] = bot.answers(fake.channel.id)
    assert answer.content == "echo: hello there"
    assert answer.reply_to == int(sent["id"])
    assert pings_nobody(answer)
    assert fake.requests_to("POST /channels/{id}/typing")  # typing while working
    assert bot.adapter.message_content  # the fake application has the intent


async def test_replying_to_the_answer_continues_the_conversation(bot: Bot) -> None:
    fake = bot.discord
    await fake.send_user_message(content=f"{fake.bot.mention} remember 42")
    await bot.answered()
    [answer] = bot.answers(fake.channel.id)

    # A reply to the bot's answer, without a mention, continues that conversation.
    reply = await fake.send_user_message(content="what did I say?", message_reference=answer.id)
    await bot.answered(2)
    assert bot.users_said() == ["remember 42", "what did I say?"]
    # ... and so does a reply to that reply, across the chain.
    second = bot.answers(fake.channel.id)[-1]
    assert second.reply_to == int(reply["id"])
    await fake.send_user_message(
        content=f"{fake.bot.mention} and now?", message_reference=second.id
    )
    await bot.answered(3)
    assert bot.users_said() == ["remember 42", "what did I say?", "and now?"]

    # A fresh mention starts a new conversation.
    await fake.send_user_message(content=f"{fake.bot.mention} new topic")
    await bot.answered(4)
    assert bot.users_said() == ["new topic"]


async def test_plain_channel_chatter_is_ignored(bot: Bot) -> None:
    fake = bot.discord
    await fake.send_user_message(content="just talking")
    await fake.send_user_message(content="@everyone look", author=fake.get_user_by_name("bob"))
    await eventually(lambda: bot.adapter.outcomes["ignored"] >= 2)
    assert bot.openrouter.chat_requests == []


async def test_outcomes_are_counted_under_their_plain_labels(bot: Bot) -> None:
    """Benchmarks print the adapter's counter: it reads 'answered', not an enum's repr."""
    fake = bot.discord
    await fake.send_user_message(content=f"{fake.bot.mention} hi")
    await fake.send_user_message(content="just talking")
    await bot.answered()
    await eventually(lambda: bot.adapter.outcomes["ignored"] >= 1)

    assert {type(label) for label in bot.adapter.outcomes} == {str}
    assert "'answered': 1" in repr(dict(bot.adapter.outcomes))


async def test_a_thread_is_one_conversation(bot: Bot) -> None:
    fake = bot.discord
    thread = fake.thread
    await fake.send_user_message(thread.id, content=f"{fake.bot.mention} start here")
    await bot.answered()
    await fake.send_user_message(thread.id, content="follow-up without a mention")
    await bot.answered(2)

    assert [m.content for m in bot.answers(thread.id)] == [
        "echo: start here",
        "echo: follow-up without a mention",
    ]
    assert bot.users_said() == ["start here", "follow-up without a mention"]
    # A thread the bot takes no part in is left alone.
    other = await fake.send_user_message(content=f"{fake.bot.mention} x")
    await bot.answered(3)
    assert other


async def test_settings_command_makes_thread_follow_ups_need_a_mention(bot: Bot) -> None:
    fake = bot.discord
    thread = fake.thread
    await fake.send_user_message(thread.id, content=f"{fake.bot.mention} start here")
    await bot.answered()

    interaction = await fake.send_interaction(
        "settings", {"setting": "mention", "value": "required"}
    )
    await eventually(lambda: interaction.followup_ids)
    told = fake.message(interaction.followup_ids[0])
    assert told.ephemeral and "only when mentioned" in told.content

    await fake.send_user_message(thread.id, content="follow-up without a mention")
    await eventually(lambda: bot.adapter.outcomes["ignored"] >= 1)
    await fake.send_user_message(thread.id, content=f"{fake.bot.mention} with one")
    await bot.answered(2)
    assert [m.content for m in bot.answers(thread.id)] == ["echo: start here", "echo: with one"]

    shown = await fake.send_interaction("settings")
    await eventually(lambda: shown.followup_ids)
    assert "mention: required" in fake.message(shown.followup_ids[0]).content


async def test_dm_with_a_file(bot: Bot) -> None:
    fake = bot.discord
    await fake.send_user_message(
        fake.dm_channel.id,
        content="what is in it?",
        attachments=[("notes.md", b"# Plan\nShip on Friday.")],
    )
    await bot.answered()
    assert "Ship on Friday." in bot.last_prompt()
    await fake.send_user_message(fake.dm_channel.id, content="and again?")
    await bot.answered(2)
    assert bot.users_said()[-1] == "and again?"
    assert len(bot.users_said()) == 2  # the DM channel is one conversation


# --------------------------------------------------------------------------- exactly once


async def test_a_replayed_message_create_is_answered_once(bot: Bot) -> None:
    fake = bot.discord
    sent = await fake.send_user_message(content=f"{fake.bot.mention} once")
    await bot.answered()
    [original] = [
        d for d in fake.dispatched if d.event == "MESSAGE_CREATE" and d.data["id"] == sent["id"]
    ]
    await fake.replay(original.seq)  # as after a RESUME: same message, new sequence number
    await eventually(lambda: bot.adapter.outcomes["duplicate"] == 1)
    assert len(bot.answers(fake.channel.id)) == 1
    assert len(bot.openrouter.chat_requests) == 1


async def test_a_message_while_the_agent_stack_loads_is_answered_once_it_has(
    start_bot: BotFactory,
) -> None:
    """The first seconds after a start: the gateway is up, the agent stack is not. A mention
    shows typing at once and its replay is a duplicate; /ask is deferred within Discord's 3 s
    and /help answered; each question is answered once, as soon as the stack has loaded."""
    loads = asyncio.Event()
    bot = await start_bot(stack_loads=loads)
    fake = bot.discord

    def replies_to(message: dict[str, Any]) -> list[FakeMessage]:
        return [m for m in bot.answers(fake.channel.id) if m.reply_to == int(message["id"])]

    sent = await fake.send_user_message(content=f"{fake.bot.mention} are you there?")
    await fake.replay()
    ask = await fake.send_interaction("ask", {"question": "and you?"})
    help_ = await fake.send_interaction("help")

    await eventually(lambda: help_.followup_ids)
    assert "/ask" in fake.message(help_.followup_ids[0]).content
    await eventually(lambda: bot.adapter.outcomes["duplicate"] == 1)
    await eventually(lambda: ask.acknowledged)
    assert ask.callbacks == [{"type": 5}]  # "thinking…", in public
    # Typing is sent from its own task: it may land just after the /ask callback.
    await eventually(lambda: fake.requests_to("POST /channels/{id}/typing"))
    assert replies_to(sent) == [] and not ask.followup_ids
    assert bot.openrouter.chat_requests == [] and bot.core.waiting == 2

    loads.set()
    await bot.answered(2)
    [answer] = replies_to(sent)
    assert answer.content == "echo: are you there?"
    assert fake.message(ask.followup_ids[0]).content == "echo: and you?"
    assert len(bot.openrouter.chat_requests) == 2
    assert await pending(bot.core.store) == []


# --------------------------------------------------------------------------- answers


def normalize(text: str) -> str:
    text = re.sub(r"\n?```(python)?\n?", "\n", text)
    return re.sub(r"\s+", " ", text).strip()


async def test_a_5000_character_answer_is_split_with_fences_intact(bot: Bot) -> None:
    fake = bot.discord
    code = "\n".join(f"    print('line {i}')" for i in range(120))
    text = "Intro paragraph.\n\n```python\ndef f():\n" + code + "\n```\n\nOutro paragraph."
    assert len(text) > 2_500
    text = text + "\n\n" + "More words here. " * 150
    assert len(text) >= 5_000
    bot.openrouter.enqueue(TextReply(text, chunks=20, delay=0.02))
    await fake.send_user_message(content=f"{fake.bot.mention} long please")
    await bot.answered()

    answers = bot.answers(fake.channel.id)
    assert len(answers) >= 3
    assert all(len(m.content) <= 2_000 for m in answers)
    for m in answers:
        assert m.content.count("```") % 2 == 0, m.content[-200:]
    continued = [m.content for m in answers if m.content.startswith("```python")]
    assert continued, "a cut code block is reopened with its language"
    assert normalize("\n".join(m.content for m in answers)) == normalize(text)


async def test_streaming_edits_are_throttled_and_survive_a_429(bot: Bot) -> None:
    fake = bot.discord
    words = " ".join(f"w{i}" for i in range(40))
    bot.openrouter.enqueue(TextReply(words, chunks=40, delay=0.1))  # 4 s of streaming
    fake.fail_next("PATCH /channels/{id}/messages/{id}", retry_after=0.5)
    await fake.send_user_message(content=f"{fake.bot.mention} stream")
    await bot.answered()

    [answer] = bot.answers(fake.channel.id)
    assert answer.content == words  # the final edit landed
    edits = fake.requests_to(EDIT_ROUTE)
    assert edits[0].status == 429 and all(e.status == 200 for e in edits[1:])
    ok = [e for e in edits if e.status == 200]
    assert 2 <= len(ok) <= 5  # ~1 edit per 1.5 s over ~4 s, not one per token
    times = [e.received_at for e in ok[:-1]]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap >= 1.3 for gap in gaps), gaps


async def test_everyone_in_model_output_pings_nobody(bot: Bot) -> None:
    fake = bot.discord
    bot.openrouter.enqueue(TextReply("@everyone @here <@&123> look!"))
    await fake.send_user_message(content=f"{fake.bot.mention} shout")
    await bot.answered()
    [answer] = bot.answers(fake.channel.id)
    assert answer.content == "@everyone @here <@&123> look!"
    assert pings_nobody(answer)
    assert answer.mention_everyone is False and answer.mentions == []


# --------------------------------------------------------------------------- slash commands


async def test_slash_commands_defer_then_follow_up(bot: Bot) -> None:
    fake = bot.discord
    assert [c["name"] for c in fake.commands[None]] == [
        "ask",
        "model",
        "settings",
        "usage",
        "stats",
        "reset",
        "files",
        "help",
        "Summarize",
        "Translate",
    ]

    ask = await fake.send_interaction("ask", {"question": "what is 2+2?"})
    await bot.answered()
    assert ask.callbacks == [{"type": 5}]  # deferred, public
    answer = fake.message(ask.followup_ids[0])
    assert answer.content == "echo: what is 2+2?" and not answer.ephemeral
    assert pings_nobody(answer)

    # Replying to the /ask answer continues its conversation.
    await fake.send_user_message(content="and 3+3?", message_reference=answer.id)
    await bot.answered(2)
    assert bot.users_said() == ["what is 2+2?", "and 3+3?"]

    for name, options, expected in [
        ("help", None, "/ask"),
        ("model", {"name": "anthropic/claude-haiku-4.5"}, "openrouter/anthropic/claude-haiku-4.5"),
        ("model", None, "uses `openrouter/anthropic/claude-haiku-4.5`"),
        ("usage", None, "2 answers"),
        ("reset", None, "forgotten"),
    ]:
        interaction = await fake.send_interaction(name, options)
        await eventually(lambda i=interaction: i.followup_ids)  # type: ignore[misc]
        assert interaction.callbacks == [{"type": 5, "data": {"flags": 64}}], name
        reply = fake.message(interaction.followup_ids[0])
        assert reply.ephemeral and expected in reply.content, (name, reply.content)


async def test_commands_are_synced_only_when_they_change(start_bot: BotFactory) -> None:
    first = await start_bot()
    assert len(first.discord.command_syncs) == 1
    await first.adapter.close()
    second = await start_bot()
    assert len(second.discord.command_syncs) == 1  # same definition: no second sync
    await second.adapter.close()
    third = await start_bot(DISCORD_GUILD_ID=str(second.discord.guild.id))
    assert [s.guild_id for s in third.discord.command_syncs] == [None, third.discord.guild.id]


async def test_another_application_on_the_same_database_gets_its_commands(
    start_bot: BotFactory,
) -> None:
    """The stored hash covers the application: pointing the same database at another app (with
    the same command set) syncs that app's commands, where "unchanged" left it with none."""
    first = await start_bot()
    await first.adapter.close()
    second = await start_bot(new_discord=True)
    assert second.discord.application_id != first.discord.application_id
    assert [len(first.discord.command_syncs), len(second.discord.command_syncs)] == [1, 1]
    assert [c["name"] for c in second.discord.commands[None]][:2] == ["ask", "model"]
    await second.adapter.close()
    again = await start_bot(new_discord=False)  # the second app once more: nothing changed
    assert len(again.discord.command_syncs) == 1


async def test_globals_are_restored_on_close(start_bot: BotFactory) -> None:
    before = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    bot = await start_bot()
    assert bot.discord.rest_base == discord.http.Route.BASE
    await bot.adapter.close()
    assert before == (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)


async def test_the_step_line_ticks_then_gives_way_to_the_answer(bot: Bot) -> None:
    fake = bot.discord
    assert bot.meteo is not None
    bot.meteo.geocoding_failure = Failure.SERVER_ERROR  # Tokyo cannot be found; a zone can
    bot.openrouter.enqueue(
        ToolCallReply(
            calls=(
                ToolCall("get_current_time", {"place": "Europe/Paris"}, id="call_paris"),
                ToolCall("get_weather", {"location": "Tokyo"}, id="call_tokyo"),
            )
        ),
        # The answer waits past the edit interval, so the ticked line is shown first.
        TextReply("Noon in Paris; no weather for Tokyo right now.", first_delay=2.5),
    )
    await fake.send_user_message(content=f"{fake.bot.mention} Paris time, Tokyo weather?")
    await bot.answered()

    [answer] = bot.answers(fake.channel.id)
    shown = [r.body["content"] for r in fake.requests if r.body and "content" in r.body]
    assert shown[0].startswith("-# ⏳ Looking up the time in Europe/Paris…")
    ticked = "-# ✅ Looking up the time in Europe/Paris · ❌ Checking the weather in Tokyo"
    assert ticked in shown
    assert shown.index(ticked) < len(shown) - 1
    # Done: the line is gone, the answer alone remains.
    assert answer.content == "Noon in Paris; no weather for Tokyo right now."


async def test_the_step_line_is_gone_when_the_turn_fails_mid_step(
    start_bot: BotFactory,
) -> None:
    bot = await start_bot(BOT_TURN_TIMEOUT=1)
    fake = bot.discord
    assert bot.meteo is not None
    bot.meteo.geocoding_failure = Failure.HANG
    bot.openrouter.enqueue(ToolCallReply.single("get_weather", {"location": "Tokyo"}))
    await fake.send_user_message(content=f"{fake.bot.mention} weather in Tokyo?")
    await eventually(lambda: bot.adapter.outcomes["failed"] >= 1, timeout=10)

    [answer] = bot.answers(fake.channel.id)
    shown = [r.body["content"] for r in fake.requests if r.body and "content" in r.body]
    assert shown[0] == "-# ⏳ Checking the weather in Tokyo…"
    assert "-#" not in answer.content and "longer" in answer.content


async def test_the_step_line_is_gone_when_shutdown_cuts_the_answer(bot: Bot) -> None:
    fake = bot.discord
    assert bot.meteo is not None
    bot.meteo.geocoding_failure = Failure.HANG
    bot.openrouter.enqueue(ToolCallReply.single("get_weather", {"location": "Tokyo"}))
    await fake.send_user_message(content=f"{fake.bot.mention} weather in Tokyo?")
    await eventually(lambda: bot.answers(fake.channel.id))

    await bot.adapter.close(grace_s=0.2)

    [told] = bot.answers(fake.channel.id)
    assert told.content == f"*{SHUTDOWN_LINE}*"


@dataclass
class StubMessage:
    id: int
    content: str

    async def edit(
        self,
        *,
        content: str,
        allowed_mentions: discord.AllowedMentions,
        view: discord.ui.View | None = None,
    ) -> None:
        self.content = content


async def test_no_message_is_left_holding_only_the_step_line() -> None:
    """A step right after a message filled up: no new message for the line alone, which would
    stay behind if no more text came."""
    sent: list[StubMessage] = []

    async def send(content: str) -> StubMessage:
        sent.append(StubMessage(len(sent) + 1, content))
        return sent[-1]

    async def private(content: str) -> None:
        raise AssertionError("nothing is refused here")

    reply = DiscordReply(send_first=send, send_more=send, send_private=private, interval_s=0)
    await reply.start()
    text = "word " * 397 + "word"  # 1,989 characters: no room for the line below
    await reply.stream(text)
    await reply.progress(Step("s1", "Checking the weather in Tokyo", StepState.RUNNING))
    await asyncio.sleep(0.05)
    await reply.progress(Step("s1", "Checking the weather in Tokyo", StepState.COMPLETE))
    await reply.finish()

    assert [m.content for m in sent] == [text]
    assert all("-#" not in m.content for m in sent)


async def test_auto_thread_opens_a_thread_per_mention(start_bot: BotFactory) -> None:
    bot = await start_bot(DISCORD_AUTO_THREAD=True)
    fake = bot.discord
    sent = await fake.send_user_message(content=f"{fake.bot.mention} plan the offsite")
    await bot.answered()

    thread_id = int(sent["id"])  # Discord gives a thread made from a message that message's id
    assert fake.channels[thread_id].parent_id == fake.channel.id
    assert fake.channels[thread_id].name == "plan the offsite"
    assert [m.content for m in bot.answers(thread_id)] == ["echo: plan the offsite"]
    await fake.send_user_message(thread_id, content="and the budget?")
    await bot.answered(2)
    assert bot.users_said() == ["plan the offsite", "and the budget?"]


async def test_two_unsharded_instances_open_one_thread_and_answer_once(
    start_bot: BotFactory,
) -> None:
    """Every unsharded process receives every message (as on Discord): one of them opens the
    thread, and the message is answered once, in it."""
    one = await start_bot(DISCORD_AUTO_THREAD=True)
    two = await start_bot(DISCORD_AUTO_THREAD=True)  # the same fake and database
    fake = one.discord
    sent = await fake.send_user_message(content=f"{fake.bot.mention} plan the retreat")
    thread_id = int(sent["id"])
    await eventually(lambda: [m.content for m in one.answers(thread_id)])
    await eventually(
        lambda: (
            sum(
                b.adapter.outcomes["answered"] + b.adapter.outcomes["duplicate"] for b in (one, two)
            )
            == 2
        )
    )
    assert [m.content for m in one.answers(thread_id)] == ["echo: plan the retreat"]
    assert len(fake.requests_to("POST /channels/{channel_id}/messages/{message_id}/threads")) == 1


async def test_without_the_message_content_intent_mentions_still_work(
    start_bot: BotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await start_bot(world={"application_flags": 0})
    fake = bot.discord
    assert not bot.adapter.message_content
    assert not fake.intents or not fake.intents & INTENT_MESSAGE_CONTENT
    assert "Message Content intent is not enabled" in caplog.text

    await fake.send_user_message(content=f"{fake.bot.mention} still here?")
    await bot.answered()
    [answer] = bot.answers(fake.channel.id)
    assert answer.content == "echo: still here?"
    await fake.send_user_message(fake.dm_channel.id, content="and in a DM?")
    await bot.answered(2)
    # A reply without the @ ping arrives blank: the bot says how to reach it, and answers nothing.
    await fake.send_user_message(content="a quiet reply", message_reference=answer.id, mentions=[])
    hint = await eventually(lambda: bot.answers(fake.channel.id)[1:])
    assert "mention" in hint[0].content and pings_nobody(hint[0])
    assert len(bot.openrouter.chat_requests) == 2


async def test_other_bots_are_ignored_and_failures_are_one_line(bot: Bot) -> None:
    fake = bot.discord
    robot = FakeUser(id=new_snowflake(), username="robot", bot=True)
    fake.users[robot.id] = robot
    await fake.send_user_message(content=f"{fake.bot.mention} beep", author=robot)
    await eventually(lambda: bot.adapter.outcomes["ignored"] >= 1)
    assert bot.openrouter.chat_requests == []

    bot.openrouter.enqueue(*[ErrorReply(401)] * 3)
    await fake.send_user_message(content=f"{fake.bot.mention} this fails")
    await eventually(lambda: bot.adapter.outcomes["failed"] >= 1)
    [answer] = bot.answers(fake.channel.id)
    assert "misconfigured" in answer.content
    assert bot.openrouter.api_key not in answer.content


async def test_a_skipped_attachment_is_named_and_the_rest_used(start_bot: BotFactory) -> None:
    bot = await start_bot(MAX_FILE_MB=0.001)  # about 1 KB
    fake = bot.discord
    await fake.send_user_message(
        fake.dm_channel.id,
        content="two files",
        attachments=[("small.txt", b"tiny but readable"), ("big.txt", b"x" * 5_000)],
    )
    await bot.answered()
    contents = [m.content for m in bot.answers(fake.dm_channel.id)]
    assert any("big.txt" in c and "limit" in c for c in contents), contents
    assert "tiny but readable" in bot.last_prompt()
    assert "xxxxx" not in bot.last_prompt()


# --------------------------------------------------------------------------- pure parts


def test_keys_for_dms_threads_and_channels() -> None:
    dm = Place(guild_id=None, channel_id=5)
    thread = Place(guild_id=1, channel_id=7, parent_id=2, is_thread=True)
    channel = Place(guild_id=1, channel_id=2)
    assert str(place_conversation(dm)) == str(channel_key(dm)) == "discord:dm:5"
    assert str(place_conversation(thread)) == "discord:1:7"
    assert str(channel_key(thread)) == str(channel_key(channel)) == "discord:1:2"
    assert place_conversation(channel) is None
    assert str(new_conversation(channel, 99)) == "discord:1:2:99"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<@42> hi", "hi"),
        ("<@!42> hi <@7>", "hi <@7>"),
        ("hey <@42>, there", "hey , there"),
        ("no mention", "no mention"),
    ],
)
def test_strip_bot_mention(text: str, expected: str) -> None:
    assert strip_bot_mention(text, 42) == expected


async def test_one_typing_indicator_per_channel_however_many_answers(bot: Bot) -> None:
    fake = bot.discord
    bot.openrouter.latency = 0.5
    await asyncio.gather(
        *(fake.send_user_message(content=f"{fake.bot.mention} q{n}") for n in range(3))
    )
    await bot.answered(3)
    assert len(fake.requests_to("POST /channels/{id}/typing")) == 1
    assert len(bot.adapter._typing) == 0  # released when the last answer finished


async def test_dm_with_an_image_reaches_a_vision_model(bot: Bot) -> None:
    fake = bot.discord
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
    await fake.send_user_message(
        fake.dm_channel.id, content="what is this?", attachments=[("dot.png", png)]
    )
    await bot.answered()
    body = bot.openrouter.chat_requests[-1].body
    assert body is not None
    content = body["messages"][-1]["content"]
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")


async def test_dm_with_a_pdf_then_a_follow_up_parses_it_once(bot: Bot) -> None:
    from tests.fakes.pdf import make_pdf

    fake = bot.discord
    report = make_pdf(["Revenue grew 42 percent in the quarter."])
    bot.openrouter.enqueue(
        ToolCallReply.single("read_document", {"question": "What grew?", "document": ""})
    )
    await fake.send_user_message(
        fake.dm_channel.id, content="what grew?", attachments=[("report.pdf", report)]
    )
    await bot.answered()
    bot.openrouter.enqueue(
        ToolCallReply.single("read_document", {"question": "By how much?", "document": ""})
    )
    await fake.send_user_message(fake.dm_channel.id, content="by how much?")
    await bot.answered(2)

    assert bot.openrouter.counters.parses == 1
    body = bot.openrouter.chat_requests[-1].body
    assert body is not None
    tool = [m for m in body["messages"] if m["role"] == "tool"]
    assert "Revenue grew 42 percent" in str(tool[-1]["content"])


async def test_someone_outside_the_allowlist_gets_a_polite_refusal(start_bot: BotFactory) -> None:
    from bot.access import REFUSAL

    bot = await start_bot(world={})
    fake = bot.discord
    bob = fake.get_user_by_name("bob")
    await bot.adapter.close()
    bot = await start_bot(BOT_ALLOWED_USERS=f"discord:{bob.id}")
    await fake.send_user_message(fake.dm_channel.id, content="let me in")  # alice's DM
    await eventually(lambda: bot.adapter.outcomes["refused"] >= 1)
    [refusal] = bot.answers(fake.dm_channel.id)
    assert refusal.content == f"*{REFUSAL}*"
    assert bot.openrouter.chat_requests == []
    await fake.send_user_message(content=f"{fake.bot.mention} hi", author=bob)
    await bot.answered()


# --------------------------------------------------------------------------- shutdown and restarts


async def test_shutdown_tells_the_user_whose_answer_the_grace_period_cut(bot: Bot) -> None:
    fake = bot.discord
    bot.openrouter.enqueue(HangReply())
    sent = await fake.send_user_message(content=f"{fake.bot.mention} a slow question")
    await bot.openrouter.wait_for_requests(1)

    await bot.adapter.close(grace_s=0.2)

    [told] = bot.answers(fake.channel.id)
    assert told.content == f"*{SHUTDOWN_LINE}*" and told.reply_to == int(sent["id"])
    assert await pending(bot.core.store) == []


async def test_a_turn_cut_by_a_crash_is_told_after_restart_as_a_reply(bot: Bot) -> None:
    fake = bot.discord
    bot.openrouter.enqueue(HangReply())
    sent = await fake.send_user_message(content=f"{fake.bot.mention} a question")
    await bot.openrouter.wait_for_requests(1)
    assert len(await pending(bot.core.store)) == 1  # in flight, as a kill -9 would leave it

    await as_restarted(bot.core)  # its lease is gone: the claim is a dead instance's
    assert await bot.core.recover("discord", bot.adapter._tell) == 1

    told = await fake.wait_for_message(lambda m: RESTART_LINE in m.content)
    assert told.content == f"*{RESTART_LINE}*" and told.reply_to == int(sent["id"])
    assert pings_nobody(told)
    assert await pending(bot.core.store) == []
    assert await bot.core.recover("discord", bot.adapter._tell) == 0
    await bot.adapter.close(grace_s=0.1)  # the hung turn: no need to wait out the grace


async def test_a_client_that_ends_on_its_own_marks_the_adapter_failed(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    """``python -m bot`` exits non-zero on ``failed``, so a supervisor restarts it."""
    assert bot.adapter.healthy and not bot.adapter.failed.is_set()
    assert bot.adapter._task is not None
    bot.adapter._task.cancel()
    await eventually(lambda: bot.adapter.failed.is_set())
    assert not bot.adapter.healthy
    assert "discord: the gateway client stopped unexpectedly" in caplog.text


async def test_an_answer_discord_will_not_take_is_one_warning_not_a_traceback(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    fake = bot.discord
    fake.error_next(
        "POST /channels/{channel_id}/messages", 403, code=50013, message="Missing Permissions",
        times=3,
    )  # fmt: skip
    await fake.send_user_message(content=f"{fake.bot.mention} anyone there?")
    await eventually(lambda: bot.adapter.outcomes["failed"] >= 1)

    assert "the answer could not be delivered: Discord answered 403" in caplog.text
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert await pending(bot.core.store) == []


async def test_a_question_deleted_before_its_answer_still_gets_the_answer(bot: Bot) -> None:
    """The user deletes their question while the model thinks: replying to it would be refused
    ("Unknown message") and the whole answer lost. It is posted in the same place, without the
    reference, and nothing more is said."""
    fake = bot.discord
    bot.openrouter.latency = 0.5
    asked = await fake.send_user_message(content=f"{fake.bot.mention} quick one")
    await fake.wait_for_request("POST /channels/{channel_id}/typing")
    question = fake.message(int(asked["id"]))
    await fake.delete_by_user(question.id)
    await bot.answered()

    [answer] = fake.bot_messages(question.channel_id)
    assert answer.content == "echo: quick one"
    assert bot.adapter.outcomes["failed"] == 0


# --------------------------------------------------------------------------- feedback buttons


def feedback_ids(message: FakeMessage) -> list[str]:
    """The custom ids of the buttons under a message."""
    return [
        c["custom_id"] for row in message.components for c in row["components"] if c["type"] == 2
    ]


async def click(bot: Bot, message: FakeMessage, value: str, user: FakeUser | None = None) -> str:
    """A user clicks 👍 (``up``) or 👎 (``down``) under ``message``: what they alone are told."""
    fake = bot.discord
    interaction = await fake.click_button(message.id, f"fb:{value}:{message.id}", user=user)
    await eventually(lambda: interaction.followup_ids)
    # Acknowledged in time, privately: a deferred ephemeral response, then its follow-up.
    assert interaction.callbacks == [{"type": 5, "data": {"flags": 64}}]
    told = fake.message(interaction.followup_ids[0])
    assert told.ephemeral
    return told.content


async def test_an_answer_gets_buttons_and_a_click_is_recorded_changed_and_told_privately(
    bot: Bot,
) -> None:
    fake = bot.discord
    await fake.send_user_message(content=f"{fake.bot.mention} hello")
    await bot.answered()
    [answer] = bot.answers(fake.channel.id)
    assert answer.content == "echo: hello"
    assert feedback_ids(answer) == [f"fb:up:{answer.id}", f"fb:down:{answer.id}"]
    assert [c["emoji"]["name"] for c in answer.components[0]["components"]] == ["👍", "👎"]

    assert await click(bot, answer, "up") == "Thanks for the 👍! I've noted it."
    usage = await fake.send_interaction("usage")
    await eventually(lambda: usage.followup_ids)
    assert "👍 100% of 1 vote" in fake.message(usage.followup_ids[0]).content

    assert await click(bot, answer, "down") == "Changed your vote on this answer to 👎."
    for name in ("usage", "stats"):
        shown = await fake.send_interaction(name)
        await eventually(lambda i=shown: i.followup_ids)  # type: ignore[misc]
        assert "👍 0% of 1 vote" in fake.message(shown.followup_ids[0]).content, name
    assert [(s.up, s.down) for s in await bot.core.store.vote_shares()] == [(0, 1)]
    metrics = bot.core.metrics.render().decode()
    assert 'bot_feedback_total{platform="discord",value="down"} 1.0' in metrics


async def test_buttons_go_under_the_last_part_of_a_long_answer_and_of_an_ask(bot: Bot) -> None:
    fake = bot.discord
    bot.openrouter.enqueue(TextReply("Many words here. " * 300, chunks=10, delay=0.02))
    await fake.send_user_message(content=f"{fake.bot.mention} long please")
    await bot.answered()
    answers = bot.answers(fake.channel.id)
    assert len(answers) >= 3
    assert [bool(m.components) for m in answers] == [False] * (len(answers) - 1) + [True]
    assert await click(bot, answers[-1], "up") == "Thanks for the 👍! I've noted it."

    ask = await fake.send_interaction("ask", {"question": "and via a command?"})
    await bot.answered(2)
    followup = fake.message(ask.followup_ids[-1])
    assert feedback_ids(followup) == [f"fb:up:{followup.id}", f"fb:down:{followup.id}"]
    assert await click(bot, followup, "down") == "Thanks for the 👎! I've noted it."


async def test_buttons_still_work_after_a_restart(start_bot: BotFactory) -> None:
    first = await start_bot()
    fake = first.discord
    await fake.send_user_message(content=f"{fake.bot.mention} before the restart")
    await first.answered()
    [answer] = first.answers(fake.channel.id)
    await first.adapter.close()

    second = await start_bot()  # a new client: it never saw that message or its view
    assert await click(second, answer, "up") == "Thanks for the 👍! I've noted it."
    [share] = await second.core.store.vote_shares()
    assert (share.up, share.down) == (1, 0)


async def test_clicks_refused_or_on_unknown_answers_are_answered_privately(
    start_bot: BotFactory,
) -> None:
    bot = await start_bot()
    fake = bot.discord
    await bot.adapter.close()
    bot = await start_bot(BOT_ALLOWED_USERS=f"discord:{fake.user.id}")
    await fake.send_user_message(content=f"{fake.bot.mention} hello")
    await bot.answered()
    [answer] = bot.answers(fake.channel.id)
    bob = next(u for u in fake.users.values() if u.username == "bob")

    assert "not enabled for you here" in await click(bot, answer, "up", user=bob)
    assert await bot.core.store.vote_shares() == []
    # The answer is forgotten (retention deleted it): its buttons are answered politely.
    await bot.core.store.expire_older_than(cutoff=time.time() + 60, limit=100)
    told = await click(bot, answer, "up")
    assert told == "I can't find that answer any more, so I couldn't record your vote."


async def test_two_clicks_at_once_leave_one_vote(bot: Bot) -> None:
    fake = bot.discord
    await fake.send_user_message(content=f"{fake.bot.mention} hello")
    await bot.answered()
    [answer] = bot.answers(fake.channel.id)
    told = await asyncio.gather(click(bot, answer, "up"), click(bot, answer, "down"))
    assert sorted(told)[0].startswith(("Changed", "Thanks"))
    [share] = await bot.core.store.vote_shares()
    assert share.up + share.down == 1
