"""Feedback on answers through the core: what a finished answer hands the adapter, a vote and
its change, an answer the store does not know, the allowlists, clicks at once, ``/usage`` and
``/stats``, and the metric. (Slack's and Discord's buttons: tests/test_slack.py and
tests/test_discord.py, through the real libraries.)"""

from __future__ import annotations

import asyncio
from typing import Any

from agents.testing import ScriptedModel

from bot.access import REFUSAL
from bot.core import Core
from bot.feedback import UNKNOWN_ANSWER, FinishedAnswer, Vote
from storage.base import Store
from tests import test_core
from tests.helpers import RecordingReply, command, message
from tests.test_core import text_step

# The core's fixtures: a core over the test's store, with a scripted model.
http, make_core = test_core.http, test_core.make_core

CHANNEL = "test:T1:C1"


async def answered(core: Core, text: str = "hi", *, message_id: str = "M1") -> FinishedAnswer:
    """Have ``core`` answer a question, and post it as ``message_id``, as an adapter does."""
    reply = RecordingReply()
    result = await core.handle(message(text), reply)
    assert result.outcome == "answered"
    assert reply.answer is not None
    assert await reply.answer.posted([message_id])
    return reply.answer


async def run(core: Core, name: str, *, user: str = "U1") -> str:
    reply = RecordingReply()
    await core.handle(command(name, user=user), reply)
    assert reply.answer is None  # a command's answer takes no feedback
    return reply.text


def metric(core: Core, platform: str, value: str) -> float:
    got = core.metrics.registry.get_sample_value(
        "bot_feedback_total", {"platform": platform, "value": value}
    )
    return got or 0.0


async def test_a_finished_answer_knows_its_turn_model_and_channel(make_core: Any) -> None:
    core = make_core(ScriptedModel([text_step("Hello!")]), BOT_MODEL="openrouter/acme/m1")
    answer = await answered(core)
    assert answer.platform == "test"
    assert answer.record.channel == CHANNEL
    assert answer.record.conversation == "test:T1:C1:100.1"
    assert answer.record.model == "openrouter/acme/m1"
    assert answer.record.event_id.startswith("ev-")


async def test_a_vote_is_recorded_then_changed_and_usage_and_stats_show_the_share(
    make_core: Any, store: Store
) -> None:
    core = make_core(ScriptedModel([text_step("Hello!")]), BOT_ADMINS="test:ADMIN")
    await answered(core)
    click = command("feedback", user="U2")

    first = await core.vote(click, message_id="M1", value=Vote.UP)
    assert (first.outcome, first.text) == ("recorded", "Thanks for the 👍! I've noted it.")
    assert "👍 100% of 1 vote" in await run(core, "usage")
    again = await core.vote(click, message_id="M1", value=Vote.UP)
    assert again.outcome == "unchanged"

    changed = await core.vote(click, message_id="M1", value=Vote.DOWN)
    assert (changed.outcome, changed.text) == ("changed", "Changed your vote on this answer to 👎.")
    usage = await run(core, "usage")
    assert "👍 0% of 1 vote" in usage
    stats = await run(core, "stats", user="ADMIN")
    assert f"`{CHANNEL}`" in stats and "👍 0% of 1 vote" in stats
    assert await run(core, "stats") == "Only the bot's admins can see the feedback statistics."
    assert (metric(core, "test", "up"), metric(core, "test", "down")) == (1.0, 1.0)
    assert b'bot_feedback_total{platform="test",value="down"} 1.0' in core.metrics.render()
    assert [(s.up, s.down) for s in await store.vote_shares(channel=CHANNEL)] == [(0, 1)]


async def test_a_vote_on_an_answer_the_store_does_not_know_is_answered_politely(
    make_core: Any, store: Store
) -> None:
    core = make_core(ScriptedModel([]))
    voted = await core.vote(command("feedback"), message_id="gone", value=Vote.UP)
    assert (voted.outcome, voted.text) == ("unknown", UNKNOWN_ANSWER)
    assert await store.vote_shares() == []
    assert metric(core, "test", "up") == 0.0
    assert "No votes on answers yet" in await run(core, "stats")


async def test_a_user_outside_the_allowlist_gets_the_usual_refusal(
    make_core: Any, store: Store
) -> None:
    core = make_core(ScriptedModel([text_step("Hello!")]), BOT_ALLOWED_USERS="test:U1")
    await answered(core)
    voted = await core.vote(command("feedback", user="U9"), message_id="M1", value=Vote.UP)
    assert (voted.outcome, voted.text) == ("refused", REFUSAL)
    assert await store.vote_shares() == []


async def test_clicks_at_once_leave_one_vote(make_core: Any, store: Store) -> None:
    core = make_core(ScriptedModel([text_step("Hello!")]))
    await answered(core)
    click = command("feedback", user="U2")
    results = await asyncio.gather(
        *(
            core.vote(click, message_id="M1", value=Vote.UP if n % 2 else Vote.DOWN)
            for n in range(10)
        )
    )
    assert [r.outcome for r in results].count("recorded") == 1
    shares = await store.vote_shares()
    assert len(shares) == 1 and shares[0].up + shares[0].down == 1


async def test_an_answer_whose_messages_the_store_refuses_gets_no_buttons(
    make_core: Any, store: Store
) -> None:
    core = make_core(ScriptedModel([text_step("Hello!")]))
    reply = RecordingReply()
    await core.handle(message("hi"), reply)
    assert reply.answer is not None
    assert not await reply.answer.posted([])  # nothing posted: nothing to click
    await store.close()  # the store is gone: the adapter must not show buttons
    assert not await reply.answer.posted(["M1"])
