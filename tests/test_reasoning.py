"""Reasoning models through the whole bot over the fake OpenRouter: the effort reaches the
request (deployment and channel), reasoning is never shown as the answer while the status says
the model thinks, reasoning tokens count in /usage, and a model that requires its
``reasoning_details`` back gets them on every tool follow-up, within a turn and from history.

Runs through both model clients (``tests/conftest.py``), except where a test says why not.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from agents import Agent, ModelSettings, Runner, function_tool
from agents.models.interface import Model

from bot.openrouter_model import OpenRouterModel
from bot.reasoning import DETAILS_KEY, has_details_for, items_to_messages, merge_details
from bot.turn import THINKING_TITLE
from tests.fakes.open_meteo import FakeOpenMeteo
from tests.fakes.openrouter import (
    FakeOpenRouter,
    Reasoning,
    TextReply,
    ToolCall,
    ToolCallReply,
)
from tests.fakes.openrouter_reasoning import reasoning_details
from tests.helpers import RecordingReply, command
from tests.test_integration import StackFactory, meteo, openrouter, start

__all__ = ["meteo", "openrouter", "start"]  # the integration suite's fixtures, used here

THOUGHT = "The user wants Tokyo's weather; I should call the weather tool first. " * 8
ANSWER = "It is 18.4°C and partly cloudy in Tokyo."


def reasoning_tokens_rows(tmp_path: Path) -> list[tuple[int, int]]:
    with closing(sqlite3.connect(tmp_path / "bot.db")) as db:
        rows = db.execute("SELECT output_tokens, reasoning_tokens FROM usage ORDER BY id")
        return [(int(out), int(reasoning)) for out, reasoning in rows.fetchall()]


# --------------------------------------------------------------------------- effort


async def test_the_deployments_effort_reaches_the_request(
    start: StackFactory, openrouter: FakeOpenRouter
) -> None:
    s = await start(BOT_REASONING_EFFORT="low")
    result, _ = await s.ask("hi")
    assert result.outcome == "answered"
    body = s.chats[-1].body
    assert body is not None
    assert body["reasoning"] == {"effort": "low"}
    assert "reasoning_effort" not in body  # one field, OpenRouter's, on both clients


async def test_without_an_effort_the_model_decides(
    start: StackFactory, openrouter: FakeOpenRouter
) -> None:
    s = await start()
    await s.ask("hi")
    body = s.chats[-1].body
    assert body is not None
    assert "reasoning" not in body and "reasoning_effort" not in body


async def test_the_channels_setting_wins_and_default_gives_the_deployments_back(
    start: StackFactory, openrouter: FakeOpenRouter
) -> None:
    s = await start(BOT_REASONING_EFFORT="low")
    answer = await s.core.handle(command("settings", "reasoning high"), reply := RecordingReply())
    assert "`high`" in reply.text, (answer, reply.calls)
    await s.ask("think hard")
    assert s.chats[-1].body is not None and s.chats[-1].body["reasoning"] == {"effort": "high"}

    shown = RecordingReply()
    await s.core.handle(command("settings"), shown)
    assert "reasoning: high" in shown.text

    wrong = RecordingReply()
    await s.core.handle(command("settings", "reasoning extreme"), wrong)
    assert "low" in wrong.text and "default" in wrong.text  # the choices, nothing stored

    await s.core.handle(command("settings", "reasoning default"), RecordingReply())
    await s.ask("again")
    assert s.chats[-1].body is not None and s.chats[-1].body["reasoning"] == {"effort": "low"}
    shown = RecordingReply()
    await s.core.handle(command("settings"), shown)
    assert "reasoning: low (default)" in shown.text


# --------------------------------------------------------------------------- streaming


async def test_reasoning_is_never_the_answer_and_the_status_says_thinking(
    start: StackFactory, openrouter: FakeOpenRouter
) -> None:
    openrouter.enqueue(
        TextReply(ANSWER, chunks=8, reasoning=Reasoning(THOUGHT, chunks=60, encrypted=False))
    )
    s = await start()
    result, reply = await s.ask("Weather in Tokyo?")

    assert result.outcome == "answered", reply.calls
    assert reply.text == ANSWER == result.text
    assert "weather tool" not in reply.text
    kinds = [kind for kind, _ in reply.calls]
    assert reply.of("progress") == [f"in_progress: {THINKING_TITLE}", f"complete: {THINKING_TITLE}"]
    assert kinds.index("progress") < kinds.index("stream")  # said while it thought
    history = await s.history()
    assert [i.get("role") or i.get("type") for i in history] == ["user", "reasoning", "assistant"]
    assert all("weather tool" not in str(i.get("content")) for i in history if i.get("role"))


async def test_reasoning_tokens_count_in_usage(
    start: StackFactory, openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    thought = Reasoning(THOUGHT, chunks=30, tokens=321, encrypted=False)
    openrouter.enqueue(TextReply(ANSWER, reasoning=thought))
    s = await start()
    await s.ask("Weather in Tokyo?")

    usage = openrouter.chat_requests[-1].usage
    assert usage is not None and usage["completion_tokens_details"]["reasoning_tokens"] == 321
    [(output_tokens, reasoning_tokens)] = reasoning_tokens_rows(tmp_path)
    assert reasoning_tokens == 321
    assert output_tokens == usage["completion_tokens"]  # reasoning is part of the output

    shown = RecordingReply()
    await s.core.handle(command("usage"), shown)
    assert f"{output_tokens:,} out (321 of them reasoning)" in shown.text, shown.text


# --------------------------------------------------------------------------- replay


async def test_a_tool_follow_up_gets_its_reasoning_back_within_the_turn_and_from_history(
    start: StackFactory,
    openrouter: FakeOpenRouter,
    meteo: FakeOpenMeteo,
) -> None:
    """On both clients: litellm drops the stream chunks that carry only blocks (the thought
    signatures here), and the SDK keeps none of them; ``bot.litellm_model`` reads them."""
    openrouter.require_reasoning_replay = True
    thought = Reasoning(THOUGHT, chunks=40)
    openrouter.enqueue(
        ToolCallReply(
            (ToolCall("get_weather", {"location": "Tokyo"}, "call_tokyo"),), reasoning=thought
        ),
        TextReply(ANSWER, chunks=4),
    )
    s = await start()
    result, reply = await s.ask("What's the weather in Tokyo?")

    assert result.outcome == "answered", reply.calls
    assert reply.text == ANSWER
    assert reply.of("progress")[:3] == [
        f"in_progress: {THINKING_TITLE}",
        f"complete: {THINKING_TITLE}",
        "in_progress: Checking the weather in Tokyo",
    ]
    issued = reasoning_details(thought, ["call_tokyo"])
    follow_up = s.chats[1].body
    assert follow_up is not None
    [assistant] = [m for m in follow_up["messages"] if m.get("tool_calls")]
    assert assistant[DETAILS_KEY] == issued  # whole again from the streamed pieces, in order
    assert "reasoning_content" not in assistant

    history = await s.history()
    [stored] = [i for i in history if i.get("type") == "reasoning"]
    assert stored["provider_data"][DETAILS_KEY] == issued

    openrouter.enqueue(TextReply("Yes, take sunglasses."))
    follow, reply = await s.ask("Will I need sunglasses?")
    assert follow.outcome == "answered", reply.calls
    third = s.chats[2].body
    assert third is not None
    [again] = [m for m in third["messages"] if m.get("tool_calls")]
    assert again[DETAILS_KEY] == issued


async def test_the_fake_refuses_a_follow_up_that_lost_its_reasoning(
    openrouter: FakeOpenRouter,
) -> None:
    """The check the replay test leans on can fail: the same follow-up, blocks dropped."""
    openrouter.require_reasoning_replay = True
    call = ToolCall("get_weather", {"location": "Tokyo"}, "call_1")
    openrouter.enqueue(ToolCallReply((call,), reasoning=Reasoning("thinking")))
    body: dict[str, Any] = {
        "model": "google/gemini-3-pro-preview",
        "messages": [{"role": "user", "content": "Weather in Tokyo?"}],
    }
    headers = {"Authorization": f"Bearer {openrouter.api_key}"}
    url = openrouter.base_url + "/chat/completions"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=body, headers=headers) as response:
            message = (await response.json())["choices"][0]["message"]
        assert message[DETAILS_KEY][0]["type"] == "reasoning.text"
        tool = {"role": "tool", "tool_call_id": "call_1", "content": "18.4°C"}
        without = {k: v for k, v in message.items() if k not in (DETAILS_KEY, "reasoning")}
        body["messages"] += [without, tool]
        async with http.post(url, json=body, headers=headers) as response:
            assert response.status == 400
            error = (await response.json())["error"]
        assert "thought_signature" in error["metadata"]["raw"]
        body["messages"][1] = message
        async with http.post(url, json=body, headers=headers) as response:
            assert response.status == 200


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter() as server:
        yield server


@function_tool
def get_weather(location: str) -> str:
    """The weather somewhere.

    Args:
        location: A place.
    """
    return f"18.4°C in {location}"


MODEL = "openrouter/google/gemini-3-pro-preview"


@asynccontextmanager
async def model_of(client: str | None, fake: FakeOpenRouter) -> AsyncIterator[Model]:
    """A model of the client under test over ``fake`` (litellm is imported only for it)."""
    if client == "litellm":
        from bot.litellm_model import ReasoningLitellmModel

        yield ReasoningLitellmModel(model=MODEL, base_url=fake.base_url, api_key=fake.api_key)
        return
    model = OpenRouterModel(MODEL, base_url=fake.base_url, api_key=fake.api_key)
    try:
        yield model
    finally:
        await model.close()


def weather_agent(model: Model) -> Agent[None]:
    return Agent(
        name="t",
        model=model,
        tools=[get_weather],
        model_settings=ModelSettings(include_usage=True),
    )


async def test_a_plain_response_keeps_and_replays_its_reasoning(
    fake: FakeOpenRouter, model_client: str | None
) -> None:
    """The non-streamed path (``Runner.run``) of both clients keeps the blocks too (litellm
    keeps them on the whole message, where the SDK does not look)."""
    fake.require_reasoning_replay = True
    fake.enqueue(
        ToolCallReply(
            (ToolCall("get_weather", {"location": "Oslo"}, "call_oslo"),),
            reasoning=Reasoning(THOUGHT),
        ),
        TextReply("Cold."),
    )
    async with model_of(model_client, fake) as model:
        result = await Runner.run(weather_agent(model), "Weather in Oslo?")
    assert result.final_output == "Cold."
    assert result.context_wrapper.usage.output_tokens_details.reasoning_tokens > 0
    follow_up = fake.chat_requests[1].body
    assert follow_up is not None
    [assistant] = [m for m in follow_up["messages"] if m.get("tool_calls")]
    assert assistant[DETAILS_KEY] == reasoning_details(Reasoning(THOUGHT), ["call_oslo"])


async def test_turns_at_once_on_one_model_each_get_their_own_blocks_back(
    fake: FakeOpenRouter, model_client: str | None
) -> None:
    """One model object serves every turn of its name: blocks collected while two streams
    run at once stay with the response they came in."""
    fake.require_reasoning_replay = True
    places = ("Oslo", "Lima")
    fake.enqueue(
        *(
            ToolCallReply(
                (ToolCall("get_weather", {"location": place}, f"call_{place.lower()}"),),
                reasoning=Reasoning(f"{place}? The weather tool. " * 20, chunks=20),
            )
            for place in places
        ),
        TextReply("Cold."),
        TextReply("Mild."),
    )

    async def ask(agent: Agent[None], place: str) -> Any:
        run = Runner.run_streamed(agent, f"Weather in {place}?")
        async for _ in run.stream_events():
            await asyncio.sleep(0)  # let the other stream read meanwhile
        return run.final_output

    async with model_of(model_client, fake) as model:
        agent = weather_agent(model)
        answers = await asyncio.gather(*(ask(agent, place) for place in places))
    assert sorted(answers) == ["Cold.", "Mild."]
    follow_ups = [r.body for r in fake.chat_requests[2:]]
    replayed = {
        m["tool_calls"][0]["id"]: m[DETAILS_KEY]
        for body in follow_ups
        if body is not None
        for m in body["messages"]
        if m.get("tool_calls")
    }
    assert replayed == {
        f"call_{place.lower()}": reasoning_details(
            Reasoning(f"{place}? The weather tool. " * 20), [f"call_{place.lower()}"]
        )
        for place in places
    }


# --------------------------------------------------------------------------- units


def test_streamed_pieces_join_by_index_and_keep_the_last_signature() -> None:
    merged: list[dict[str, Any]] = []
    merge_details(merged, [{"type": "reasoning.text", "text": "a", "signature": None, "index": 0}])
    merge_details(merged, [{"type": "reasoning.text", "text": "b", "signature": "s", "index": 0}])
    merge_details(merged, [{"type": "reasoning.encrypted", "data": "x", "id": "c1", "index": 1}])
    merge_details(merged, "not a list")
    assert merged == [
        {"type": "reasoning.text", "text": "ab", "signature": "s", "index": 0},
        {"type": "reasoning.encrypted", "data": "x", "id": "c1", "index": 1},
    ]


def test_blocks_go_on_the_assistant_message_after_their_reasoning_item_only() -> None:
    blocks = [{"type": "reasoning.encrypted", "data": "x", "id": "c1", "index": 0}]
    items: list[Any] = [
        {"role": "user", "content": "q"},
        {
            "type": "reasoning",
            "id": "r",
            "summary": [],
            "content": [],
            "provider_data": {"model": "m", DETAILS_KEY: blocks},
        },
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        {
            "type": "message",
            "role": "assistant",
            "id": "a",
            "status": "completed",
            "content": [{"type": "output_text", "text": "done", "annotations": []}],
        },
    ]
    messages = items_to_messages(items, model="m")
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[1][DETAILS_KEY] == blocks and "reasoning_content" not in messages[1]
    assert DETAILS_KEY not in messages[3]
    # Another model's signatures are not sent to this one.
    assert all(DETAILS_KEY not in m for m in items_to_messages(items, model="other"))
    assert has_details_for(items, "m") and not has_details_for(items, "other")
    assert not has_details_for("q", "m")
