"""Several instances on one database, at the core: two cores, each on a store of its own over
one database (SQLite file or PostgreSQL), stand for two bot processes. One turn per
conversation across them, the rate limit and channel settings shared, and a dead instance's
cut turns told by the live one within the lease bound. (``test_instances.py`` runs the same
promises as real processes through the platforms.)"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from agents import Usage, function_tool
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call

from bot.agent import AgentStack, build_agent, resilient_models
from bot.context import ToolConfig
from bot.core import Core
from bot.recovery import RESTART_LINE
from tests.conftest import make_settings
from tests.helpers import RecordingReply, command, eventually, message
from tests.stores import StoreBackend

Factory = Callable[..., Core]


def answer(text: str) -> ModelStep:
    return ModelStep(output=[assistant_message(text)], usage=Usage(input_tokens=5, output_tokens=3))


def user_texts(call_input: Any) -> list[str]:
    return [i["content"] for i in call_input if isinstance(i, dict) and i.get("role") == "user"]


@pytest.fixture
async def instances(backend: StoreBackend, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await instances(model, **settings)``: a core on a store of its own (the test's one
    database), as another process would have."""
    cores: list[Core] = []
    async with aiohttp.ClientSession() as http:

        async def factory(
            model: Any,
            *,
            models: list[str] | None = None,
            tools: tuple[Any, ...] = (),
            **values: Any,
        ) -> Core:
            settings = make_settings(tmp_path, **values)

            def named(name: str) -> Any:
                if models is not None:
                    models.append(name)
                return model

            chosen = resilient_models(settings, named)
            agent = build_agent(settings, chosen(settings.bot_model))
            stack = AgentStack(
                agent=agent.clone(tools=[*agent.tools, *tools]),
                model_factory=chosen,
                tool_config=ToolConfig(
                    http=http,
                    open_meteo_url=settings.open_meteo_url,
                    geocoding_url=settings.open_meteo_geocoding_url,
                ),
            )
            core = Core(settings=settings, store=await backend.open(), stack=stack)
            cores.append(core)
            return core

        yield factory
        for core in cores:
            await core.close()


async def test_a_follow_up_on_another_instance_waits_for_the_turn_and_sees_its_history(
    instances: Any,
) -> None:
    gate = asyncio.Event()
    seen: list[list[str]] = []

    async def first_waits(call: Any) -> ModelStep:
        texts = user_texts(call.input)
        seen.append(texts)
        if texts[-1] == "first":
            await gate.wait()
        return answer(f"re: {texts[-1]}")

    a = await instances(ScriptedModel([ModelStep.respond(first_waits)]))
    b = await instances(ScriptedModel([ModelStep.respond(first_waits)]))
    assert a.instance.id != b.instance.id
    first = asyncio.create_task(a.handle(message("first"), RecordingReply()))
    await eventually(lambda: seen)
    second = asyncio.create_task(b.handle(message("second"), RecordingReply()))
    await asyncio.sleep(0.4)
    assert seen == [["first"]] and not second.done()  # B waits while A answers
    gate.set()
    results = await asyncio.gather(first, second)

    assert [r.outcome for r in results] == ["answered", "answered"]
    assert seen[1] == ["first", "second"]  # B's turn saw A's, in order
    assert results[1].text == "re: second"


async def test_other_conversations_run_in_parallel_across_instances(instances: Any) -> None:
    gate = asyncio.Event()

    async def held(call: Any) -> ModelStep:
        await gate.wait()
        return answer("held")

    a = await instances(ScriptedModel([ModelStep.respond(held)]))
    b = await instances(ScriptedModel([answer("free")]))
    stuck = asyncio.create_task(
        a.handle(message("one", conversation="test:T1:C1:1.0"), RecordingReply())
    )
    await asyncio.sleep(0.1)
    other = await asyncio.wait_for(
        b.handle(message("two", conversation="test:T1:C1:2.0"), RecordingReply()), 5
    )
    assert other.outcome == "answered" and not stuck.done()
    gate.set()
    assert (await stuck).outcome == "answered"


async def test_a_redelivery_to_another_instance_is_not_answered_twice(instances: Any) -> None:
    a = await instances(ScriptedModel([answer("once")]))
    b = await instances(ScriptedModel([answer("twice?")]))
    event = message("hello")
    results = await asyncio.gather(
        a.handle(event, RecordingReply()), b.handle(event, RecordingReply())
    )
    assert sorted(r.outcome for r in results) == ["answered", "duplicate"]


async def test_the_rate_limit_counts_across_instances(instances: Any) -> None:
    a = await instances(ScriptedModel([answer("1"), answer("3")]), BOT_USER_RATE_LIMIT=2)
    b = await instances(ScriptedModel([answer("2")]), BOT_USER_RATE_LIMIT=2)
    outcomes = []
    for core, n in ((a, 1), (b, 2), (a, 3)):
        conv = f"test:T1:C1:{n}.0"
        outcomes.append(await core.handle(message("hi", conversation=conv), RecordingReply()))
    assert [r.outcome for r in outcomes[:2]] == ["answered", "answered"]
    assert outcomes[2].error == "user_rate_limit"  # the third of the minute, whichever instance


async def test_a_daily_budget_spent_on_one_instance_holds_on_the_other(instances: Any) -> None:
    budget = {"BOT_DAILY_TOKENS_PER_USER": 8}  # one answer (5 in + 3 out) spends it
    a = await instances(ScriptedModel([answer("spent")]), **budget)
    b = await instances(ScriptedModel([answer("never")]), **budget)
    assert (await a.handle(message("first"), RecordingReply())).outcome == "answered"
    refused = await b.handle(message("second", conversation="test:T1:C1:2.0"), RecordingReply())
    assert refused.error == "budget"


async def test_a_channel_setting_changed_on_one_instance_applies_on_the_other_at_once(
    instances: Any,
) -> None:
    models: list[str] = []
    a = await instances(ScriptedModel([]), BOT_ADMINS="test:ADMIN")
    b = await instances(ScriptedModel([answer("ok")]), models=models)
    said = await a.handle(
        command("model", "anthropic/claude-sonnet-4.5", user="ADMIN"), RecordingReply()
    )
    assert said.outcome == "command"
    models.clear()
    assert (await b.handle(message("hi"), RecordingReply())).outcome == "answered"
    assert models == ["openrouter/anthropic/claude-sonnet-4.5"]


async def test_a_dead_instance_is_noticed_within_its_lease_and_its_user_told_once(
    instances: Any,
) -> None:
    async def hangs(call: Any) -> ModelStep:
        await asyncio.Event().wait()
        raise AssertionError("never")

    a = await instances(ScriptedModel([ModelStep.respond(hangs)]), BOT_LEASE_S=1)
    b = await instances(ScriptedModel([answer("later")]), BOT_LEASE_S=1)
    told: list[tuple[str, str]] = []

    async def tell(address: str, line: str) -> None:
        told.append((address, line))

    event = dataclasses.replace(
        message("a question", conversation="test:T1:C1:7.0"), address='{"thread": "7.0"}'
    )
    turn = asyncio.create_task(a.handle(event, RecordingReply()))
    watchers = [asyncio.create_task(core.watch_orphans("test", tell)) for core in (a, b)]
    try:
        await asyncio.sleep(1.5)  # more than a lease: A renews it, so nobody is told
        assert told == [] and not turn.done()

        # A stops renewing, as if killed -9 (its turn stays "running" in its memory).
        assert a.instance._keeping is not None
        a.instance._keeping.cancel()
        stopped = time.monotonic()
        await eventually(lambda: told, timeout=5)
        took = time.monotonic() - stopped
        assert took < 1 + 1 / 3 + 1  # the lease, a renewal, and a margin
        assert told == [(event.address, RESTART_LINE)]
        await asyncio.sleep(0.8)  # more renewals: told once only
        assert len(told) == 1
        # A follow-up in that conversation is not stuck behind the dead instance's lock.
        follow_up = message("again", conversation="test:T1:C1:7.0")
        result = await asyncio.wait_for(b.handle(follow_up, RecordingReply()), 5)
        assert result.outcome == "answered"
    finally:
        for task in (turn, *watchers):
            task.cancel()
        await asyncio.gather(turn, *watchers, return_exceptions=True)


async def test_an_approval_clicked_on_another_instance_resumes_the_turn(instances: Any) -> None:
    """Slack may send the click to any instance: the one whose turn waits sees the decision."""
    ran: list[str] = []

    @function_tool(needs_approval=True)
    def close_issue(number: int) -> str:
        """Close an issue."""
        ran.append(str(number))
        return f"closed #{number}"

    model = ScriptedModel(
        [
            ModelStep(output=[function_call("close_issue", {"number": 12}, call_id="c1")]),
            answer("Closed it."),
        ]
    )
    a = await instances(model, tools=(close_issue,))
    b = await instances(ScriptedModel([]))
    reply = RecordingReply()
    turn = asyncio.create_task(a.handle(message("close #12", user="U1"), reply))
    await asyncio.wait_for(reply.asked.wait(), 10)
    [request] = reply.approvals
    assert request.tool == "close_issue" and request.arguments == "number=12"

    started = time.monotonic()
    decided = await b.decide_approval(message("", user="U1"), approval_id=request.id, approve=True)
    assert decided.status == "decided"
    result = await asyncio.wait_for(turn, 10)
    assert time.monotonic() - started < 2  # polled, not waited out
    assert result.outcome == "answered" and ran == ["12"] and reply.text == "Closed it."
