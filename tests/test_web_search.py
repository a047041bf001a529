"""Web search: OpenRouter's web plugin on the request, its ``url_citation`` annotations as
numbered sources under the answer, its cost in /usage.

Through both model clients (``BOT_MODEL_CLIENT``, see conftest) against the fake OpenRouter,
and through the real Slack and Discord adapters against their fakes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from agents import ModelSettings, ModelTracing

from adapters.common.sources import discord_sources, plain_sources, slack_sources
from bot.agent import base_models
from bot.core import Core
from bot.home import change_channel_settings, channel_settings
from bot.results import TurnResult
from bot.web_search import MAX_SOURCES, Source, request_extras, sources_of
from bot.wiring import build_core, open_services
from storage import Store
from tests.conftest import make_settings
from tests.fakes.openrouter import FakeOpenRouter, TextReply, ToolCallReply, WebPage
from tests.fakes.openrouter_web import DEFAULT_PAGES, WEB_RESULT_PRICE
from tests.fakes.slack import app_mention
from tests.helpers import RecordingReply, command, eventually, message
from tests.test_console import bot_env, run_bot
from tests.test_discord import Bot as DiscordBot
from tests.test_discord import start_bot as start_discord_bot  # noqa: F401  (a fixture)
from tests.test_slack import BOT as SLACK_MENTION
from tests.test_slack import Bot as SlackBot
from tests.test_slack import start_bot as start_slack_bot  # noqa: F401  (a fixture)

PAGES = [
    WebPage("https://a.example/one", "One & <Only>"),
    WebPage("https://b.example/two", "Two"),
    WebPage("https://a.example/one", "One again"),  # cited twice: listed once
    WebPage("https://c.example/three", "Three"),
    WebPage("https://d.example/four", "Four"),
    WebPage("https://e.example/five", "Five"),
    WebPage("https://f.example/six", "Six"),
    WebPage("https://g.example/seven", "Seven"),
]
"""Seven pages, one URL twice: a search of 8 results cites six URLs, of which five show."""
SHOWN = ["one", "two", "three", "four", "five"]


def citation(url: str, title: str = "") -> dict[str, Any]:
    return {"type": "url_citation", "url": url, "title": title, "start_index": 0, "end_index": 1}


def assistant(*annotations: dict[str, Any]) -> dict[str, Any]:
    part = {"type": "output_text", "text": "answer", "annotations": list(annotations)}
    return {"type": "message", "role": "assistant", "content": [part]}


# --------------------------------------------------------------------------- sources


def test_sources_are_numbered_in_citation_order_each_url_once_at_most_five() -> None:
    items = [
        {"role": "user", "content": "q"},
        assistant(citation("https://a.example/1", "A"), citation("https://b.example/2", "B")),
        {"type": "function_call_output", "call_id": "c", "output": "x"},
        assistant(
            citation("https://a.example/1", "A again"),
            {"type": "file_citation", "file_id": "f", "index": 0},
            *(citation(f"https://n.example/{i}", f"N{i}") for i in range(6)),
        ),
    ]
    sources = sources_of(items)
    assert [s.url for s in sources] == [
        "https://a.example/1",
        "https://b.example/2",
        "https://n.example/0",
        "https://n.example/1",
        "https://n.example/2",
    ]
    assert len(sources) == MAX_SOURCES and sources[0].title == "A"


@pytest.mark.parametrize(
    ("url", "title", "expected"),
    [
        ("javascript:alert(1)", "x", None),
        ("ftp://files.example/x", "x", None),
        ("https://ok.example/a b", "x", None),  # whitespace: not one URL
        ("https://www.ok.example/p", "", Source("https://www.ok.example/p", "ok.example")),
        (
            "https://ok.example/p",
            " Two\nlines\x1b[31m ",
            Source("https://ok.example/p", "Two lines [31m"),
        ),
        ("https://ok.example/p", "x" * 300, Source("https://ok.example/p", "x" * 119 + "…")),
    ],
)
def test_only_web_links_count_and_titles_are_one_clean_line(
    url: str, title: str, expected: Source | None
) -> None:
    assert sources_of([assistant(citation(url, title))]) == ([expected] if expected else [])


def test_each_platform_renders_links_natively_and_escapes_the_page_text() -> None:
    sources = [
        Source("https://a.example/x_(y)", "A <!channel> & [b]*c*"),
        Source("https://b.example/?q=1|2", "Two"),
    ]
    assert slack_sources(sources) == (
        "\n\n**Sources**\n"
        "1. <https://a.example/x_%28y%29|A &lt;!channel&gt; &amp; [b]*c*>\n"
        "2. <https://b.example/?q=1%7C2|Two>"
    )
    assert discord_sources(sources) == (
        "\n\n**Sources**\n"
        "1. [A \\<!channel\\> & \\[b\\]\\*c\\*](<https://a.example/x_%28y%29>)\n"
        "2. [Two](<https://b.example/?q=1%7C2>)"
    )
    assert plain_sources(sources) == (
        "\n\nSources:\n[1] A <!channel> & [b]*c* - https://a.example/x_(y)\n"
        "[2] Two - https://b.example/?q=1|2"
    )
    assert slack_sources([]) == discord_sources([]) == plain_sources([]) == ""


# --------------------------------------------------------------------------- the core


class Stack:
    def __init__(self, core: Core, store: Store, openrouter: FakeOpenRouter) -> None:
        self.core, self.store, self.openrouter = core, store, openrouter

    async def ask(self, text: str, **kwargs: Any) -> tuple[TurnResult, RecordingReply]:
        reply = RecordingReply()
        return await self.core.handle(message(text, **kwargs), reply), reply

    def plugins(self) -> Any:
        body = self.openrouter.chat_requests[-1].body
        assert body is not None
        return body.get("plugins")


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Stack]]]:
    async with AsyncExitStack() as stack:
        openrouter = await stack.enter_async_context(FakeOpenRouter())

        async def factory(**values: Any) -> Stack:
            settings = make_settings(
                tmp_path,
                OPENROUTER_API_KEY=openrouter.api_key,
                OPENROUTER_BASE_URL=openrouter.base_url,
                **values,
            )
            services = await stack.enter_async_context(open_services(settings))
            core = await build_core(services)
            stack.push_async_callback(core.close)
            return Stack(core, services.store, openrouter)

        yield factory


async def test_search_is_off_by_default(start: Callable[..., Awaitable[Stack]]) -> None:
    stack = await start()
    result, reply = await stack.ask("news from Lisbon?")
    assert stack.plugins() is None
    assert result.sources == [] and reply.sources == []
    assert not any("Searching the web" in line for line in reply.of("progress"))
    assert stack.openrouter.counters.web_results == 0


async def test_a_searched_answer_lists_its_sources_and_costs_the_search(
    start: Callable[..., Awaitable[Stack]],
) -> None:
    stack = await start(BOT_WEB_SEARCH="true", BOT_WEB_SEARCH_RESULTS="8")
    stack.openrouter.web_pages = PAGES
    stack.openrouter.enqueue(TextReply("Lisbon is sunny today, say the papers.", chunks=4))

    result, reply = await stack.ask("news from Lisbon?")

    assert stack.plugins() == [{"id": "web", "max_results": 8}]
    assert reply.of("progress")[:2] == [
        "in_progress: Searching the web",
        "complete: Searching the web",
    ]
    assert reply.text == "Lisbon is sunny today, say the papers."  # the sources are not text
    assert [s.url.split("/")[-1] for s in reply.sources] == SHOWN
    assert reply.sources == result.sources
    # OpenRouter's cost includes the 8 results; the turn records it as it is.
    [request] = stack.openrouter.chat_requests
    assert request.usage is not None
    reported = request.usage["cost"]
    assert reported > 8 * WEB_RESULT_PRICE
    assert result.cost_usd == pytest.approx(reported)
    totals = await stack.store.usage_totals(channel="test:T1:C1")
    assert totals.cost_usd == pytest.approx(reported)


async def test_each_model_call_of_a_turn_searches_and_the_sources_are_merged(
    start: Callable[..., Awaitable[Stack]],
) -> None:
    stack = await start(BOT_WEB_SEARCH="true", BOT_WEB_SEARCH_RESULTS="2")
    stack.openrouter.enqueue(
        ToolCallReply.single("get_current_time", {"location": "Lisbon"}),
        TextReply("It is noon in Lisbon, and sunny."),
    )
    result, reply = await stack.ask("time and news in Lisbon?")

    assert [r.body and r.body.get("plugins") for r in stack.openrouter.chat_requests] == [
        [{"id": "web", "max_results": 2}]
    ] * 2
    assert [s.url for s in reply.sources] == [p.url for p in DEFAULT_PAGES[:2]]
    assert result.tools == ["get_current_time"]


async def test_sources_of_a_non_streamed_response_through_the_model_client(
    tmp_path: Path,
) -> None:
    """The other call the SDK makes (``get_response``): the JSON answer's annotations."""
    async with FakeOpenRouter() as openrouter:
        settings = make_settings(
            tmp_path,
            OPENROUTER_API_KEY=openrouter.api_key,
            OPENROUTER_BASE_URL=openrouter.base_url,
            BOT_WEB_SEARCH_RESULTS="3",
        )
        model = base_models(settings)(settings.bot_model)
        openrouter.enqueue(TextReply("Sunny in Lisbon."))
        try:
            response = await model.get_response(
                None,
                "news from Lisbon?",
                ModelSettings(extra_body=request_extras(settings)),
                [],
                None,
                [],
                ModelTracing.DISABLED,
                previous_response_id=None,
                conversation_id=None,
                prompt=None,
            )
        finally:
            await model.close()
    body = openrouter.chat_requests[-1].body
    assert body is not None and body["plugins"] == [{"id": "web", "max_results": 3}]
    assert body["model"] == "openai/gpt-5-mini"  # the chosen model, no ":online"
    sources = sources_of(item.model_dump() for item in response.output)
    assert [s.url for s in sources] == [p.url for p in DEFAULT_PAGES[:3]]


async def test_a_channel_turns_search_on_and_off_and_bad_values_are_told(
    start: Callable[..., Awaitable[Stack]],
) -> None:
    stack = await start()

    async def settings(args: str) -> str:
        reply = RecordingReply()
        await stack.core.handle(command("settings", args), reply)
        return reply.text

    assert "web: off (default)" in await settings("")
    assert await settings("web maybe") == (
        "Use `/settings web on` or `/settings web off` (or `default`)."
    )
    assert "search the web first" in await settings("web on")
    assert "web: on — answers search the web" in await settings("")
    _, reply = await stack.ask("news?")
    assert stack.plugins() == [{"id": "web", "max_results": 5}] and reply.sources

    await settings("web off")
    _, reply = await stack.ask("more news?")
    assert stack.plugins() is None and reply.sources == []
    assert "follows the bot's default: off" in await settings("web default")


# --------------------------------------------------------------------------- Slack


async def test_slack_lists_the_sources_as_slack_links_and_usage_counts_the_search(
    start_slack_bot: Callable[..., Awaitable[SlackBot]],  # noqa: F811  (the fixture)
) -> None:
    bot = await start_slack_bot(BOT_WEB_SEARCH_RESULTS="8")
    bot.openrouter.web_pages = PAGES

    # Off by default: no plugin, no sources.
    first = app_mention(f"{SLACK_MENTION} news from Lisbon?")
    await bot.deliver(first)
    await bot.answered()
    assert "plugins" not in bot.last_body()
    assert bot.answer("C123", first["ts"]) == "echo: news from Lisbon?"

    url = await bot.command("/settings", "web sometimes")
    [post] = await bot.slack.wait_for(lambda: bot.slack.responses(url))
    assert post.body["text"] == "Use `/settings web on` or `/settings web off` (or `default`)."
    url = await bot.command("/settings", "web on")
    await bot.slack.wait_for(lambda: bot.slack.responses(url))

    bot.openrouter.enqueue(TextReply("Sunny in Lisbon, say the papers.", chunks=3, delay=0.1))
    second = app_mention(f"{SLACK_MENTION} and now?")
    await bot.deliver(second)
    await bot.answered(2)

    assert bot.last_body()["plugins"] == [{"id": "web", "max_results": 8}]
    assert bot.answer("C123", second["ts"]) == (
        "Sunny in Lisbon, say the papers.\n\n**Sources**\n"
        "1. <https://a.example/one|One &amp; &lt;Only&gt;>\n"
        "2. <https://b.example/two|Two>\n"
        "3. <https://c.example/three|Three>\n"
        "4. <https://d.example/four|Four>\n"
        "5. <https://e.example/five|Five>"
    )
    [stream] = [s for s in bot.slack.streams("C123") if s.thread_ts == second["ts"]]
    assert stream.tasks()["web-search"] == ["in_progress", "complete"]  # a step in the stream

    url = await bot.command("/usage")
    [post] = await bot.slack.wait_for(lambda: bot.slack.responses(url))
    searched = bot.openrouter.chat_requests[-1].usage
    assert searched is not None and searched["cost"] > 8 * WEB_RESULT_PRICE
    unsearched = bot.openrouter.chat_requests[0].usage
    assert unsearched is not None
    total = searched["cost"] + unsearched["cost"]
    assert "This channel, all time: 2 answers" in post.body["text"]
    assert f"${total:.4f}" in post.body["text"]


# --------------------------------------------------------------------------- Discord


async def test_discord_lists_the_sources_as_links_that_do_not_unfurl(
    start_discord_bot: Callable[..., Awaitable[DiscordBot]],  # noqa: F811  (the fixture)
) -> None:
    bot = await start_discord_bot(BOT_WEB_SEARCH="true", BOT_WEB_SEARCH_RESULTS="8")
    bot.openrouter.web_pages = PAGES
    fake = bot.discord
    bot.openrouter.enqueue(TextReply("Sunny in Lisbon.", chunks=2))
    await fake.send_user_message(content=f"{fake.bot.mention} news from Lisbon?")
    await bot.answered()

    body = bot.openrouter.chat_requests[-1].body
    assert body is not None and body["plugins"] == [{"id": "web", "max_results": 8}]
    [answer] = bot.answers(fake.channel.id)
    assert answer.content == (
        "Sunny in Lisbon.\n\n**Sources**\n"
        "1. [One & \\<Only\\>](<https://a.example/one>)\n"
        "2. [Two](<https://b.example/two>)\n"
        "3. [Three](<https://c.example/three>)\n"
        "4. [Four](<https://d.example/four>)\n"
        "5. [Five](<https://e.example/five>)"
    )

    # A channel may turn it off again.
    interaction = await fake.send_interaction("settings", {"setting": "web", "value": "off"})
    await eventually(lambda: interaction.followup_ids)
    assert "no longer search" in fake.message(interaction.followup_ids[0]).content
    await fake.send_user_message(content=f"{fake.bot.mention} again?")
    await bot.answered(2)
    body = bot.openrouter.chat_requests[-1].body
    assert body is not None and "plugins" not in body
    assert bot.answers(fake.channel.id)[-1].content == "echo: again?"


# --------------------------------------------------------------------------- terminal


async def test_the_terminal_prints_the_sources_plainly_after_the_answer(
    tmp_path: Path, model_client: str | None
) -> None:
    async with FakeOpenRouter() as openrouter:
        env = bot_env(
            tmp_path,
            openrouter,
            BOT_WEB_SEARCH="true",
            BOT_WEB_SEARCH_RESULTS="2",
            BOT_MODEL_CLIENT=model_client or "openrouter",
        )
        code, out, err = await run_bot(["chat"], env, tmp_path, "news from Lisbon?\n")
    assert code == 0, err
    assert out.splitlines() == [
        "echo: news from Lisbon?",
        "",
        "Sources:",
        "[1] Lisbon - Wikipedia - https://en.wikipedia.org/wiki/Lisbon",
        "[2] Visit Lisboa - https://www.visitlisboa.com/en",
    ]
    assert "[Searching the web…]" in err


# --------------------------------------------------------------------------- the fake's wire format


@pytest.mark.parametrize("stream", [False, True])
async def test_the_fake_cites_its_results_as_openrouter_does(stream: bool) -> None:
    async with FakeOpenRouter() as openrouter, aiohttp.ClientSession() as http:
        body: dict[str, Any] = {
            "model": "openai/gpt-5-mini",
            "messages": [{"role": "user", "content": "news?"}],
            "plugins": [{"id": "web", "max_results": 2}],
            "usage": {"include": True},
            "stream": stream,
        }
        headers = {"Authorization": f"Bearer {openrouter.api_key}"}
        url = f"{openrouter.base_url}/chat/completions"
        async with http.post(url, json=body, headers=headers) as response:
            raw = await response.text()
        without = {**body, "plugins": []}
        async with http.post(url, json=without, headers=headers) as response:
            await response.read()
    if stream:
        chunks = [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: {")]
        deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
        [annotations] = [d["annotations"] for d in deltas if "annotations" in d]
        # After the text they cite, on a delta of their own.
        assert deltas.index(next(d for d in deltas if "annotations" in d)) > 1
        usage = chunks[-1]["usage"]
    else:
        payload = json.loads(raw)
        annotations = payload["choices"][0]["message"]["annotations"]
        usage = payload["usage"]
    assert [a["type"] for a in annotations] == ["url_citation"] * 2
    first = annotations[0]["url_citation"]
    assert set(first) == {"url", "title", "content", "start_index", "end_index"}
    assert first["url"] == DEFAULT_PAGES[0].url
    plain = openrouter.chat_requests[1].usage
    assert plain is not None
    assert usage["cost"] == pytest.approx(plain["cost"] + 2 * WEB_RESULT_PRICE)
    assert openrouter.counters.web_results == 2


async def test_the_home_pages_settings_form_takes_the_web_setting_with_the_same_check(
    start: Callable[..., Awaitable[Stack]],
) -> None:
    stack = await start()
    settings, event = stack.core.settings, message("home")
    refused = await change_channel_settings(
        settings, stack.store, event, {"web": "maybe"}, stack.core.channel_model
    )
    assert refused == {"web": "Use `/settings web on` or `/settings web off` (or `default`)."}
    assert (
        await change_channel_settings(
            settings, stack.store, event, {"web": "on"}, stack.core.channel_model
        )
        == {}
    )
    assert (await channel_settings(stack.store, event.channel)).web_search == "on"
    await stack.ask("news?")
    assert stack.plugins() == [{"id": "web", "max_results": 5}]
