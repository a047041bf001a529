"""The fake OpenRouter, driven by the real clients (litellm, raw aiohttp) over 127.0.0.1."""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # before litellm: no network GET at import

import asyncio
import base64
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import litellm
import pytest
from litellm.exceptions import (
    APIError,
    AuthenticationError,
    BadRequestError,
    MidStreamFallbackError,  # not exported as litellm.MidStreamFallbackError
    RateLimitError,
    ServiceUnavailableError,
    Timeout,
)

from tests.fakes.openrouter import (
    DEFAULT_API_KEY,
    ErrorReply,
    FakeOpenRouter,
    HangReply,
    MidStreamErrorReply,
    TextReply,
    ToolCall,
    ToolCallReply,
    Usage,
)
from tests.fakes.pdf import is_encrypted, make_pdf, pdf_text

litellm.suppress_debug_info = True

MODEL = "openrouter/openai/gpt-5-mini"
USER = [{"role": "user", "content": "What is up?"}]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter() as server:
        yield server


async def complete(fake: FakeOpenRouter, **kwargs: Any) -> Any:
    params: dict[str, Any] = {
        "model": MODEL,
        "base_url": fake.base_url,
        "api_key": fake.api_key,
        "messages": USER,
        "timeout": 5,
    }
    params.update(kwargs)
    return await litellm.acompletion(**params)


async def drain(stream: Any, chunks: list[Any]) -> None:
    async for chunk in stream:
        chunks.append(chunk)


def text_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# --------------------------------------------------------------------------- happy paths


async def test_non_streaming_default_echo_with_cost(fake: FakeOpenRouter) -> None:
    resp = await complete(fake)

    assert resp.choices[0].message.content == "echo: What is up?"
    assert resp.choices[0].finish_reason == "stop"
    sent = fake.last_request.usage
    assert sent is not None and sent["cost"] > 0
    assert resp.usage.prompt_tokens == sent["prompt_tokens"]
    assert resp.usage.completion_tokens == sent["completion_tokens"]
    assert resp.usage.total_tokens == sent["prompt_tokens"] + sent["completion_tokens"]
    assert resp.usage.cost == pytest.approx(sent["cost"])

    record = fake.last_request
    assert record.authorized and record.status == 200 and record.reply == "text"
    assert record.body is not None
    assert record.body["model"] == "openai/gpt-5-mini"  # litellm strips "openrouter/"
    assert record.body["usage"] == {"include": True}
    assert record.headers["Authorization"] == "Bearer [REDACTED]"
    assert fake.api_key not in json.dumps(record.headers)


async def test_streaming_text_deltas_and_usage_chunk(fake: FakeOpenRouter) -> None:
    fake.enqueue(TextReply("Hello there, world!", chunks=4, usage=Usage(11, 7, 0.000123)))
    chunks: list[Any] = []

    stream = await complete(fake, stream=True, stream_options={"include_usage": True})
    await drain(stream, chunks)

    assert text_of(chunks) == "Hello there, world!"
    deltas = [c.choices[0].delta.content for c in chunks if c.choices]
    assert deltas[:5] == ["", "Hello", " ther", "e, wo", "rld!"]  # role chunk, then 4 deltas
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (11, 7, 18)
    assert usage.cost == pytest.approx(0.000123)
    assert fake.last_request.stream and fake.counters.streams == 1


async def test_text_delay_between_deltas(fake: FakeOpenRouter) -> None:
    fake.enqueue(TextReply("abcd", chunks=4, delay=0.05))
    arrivals: list[float] = []
    stream = await complete(fake, stream=True)
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic())
    assert len(arrivals) == 4
    assert arrivals[-1] - arrivals[0] >= 0.14


async def test_first_text_at_is_when_the_first_delta_was_written(fake: FakeOpenRouter) -> None:
    fake.latency = 0.05
    fake.enqueue(TextReply("abcd", chunks=4, delay=0.1), TextReply("no stream"))
    first: float | None = None
    stream = await complete(fake, stream=True)
    async for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.monotonic()
    record = fake.last_request
    assert record.first_text_at is not None and first is not None
    assert record.received_at + 0.15 <= record.first_text_at <= first
    assert record.finished_at is not None and record.finished_at - record.first_text_at >= 0.29

    await complete(fake)  # a JSON answer has no first delta
    assert fake.last_request.first_text_at is None


async def test_tool_call_round_trip_streaming(fake: FakeOpenRouter) -> None:
    fake.enqueue(
        ToolCallReply(
            calls=(
                ToolCall("get_weather", {"city": "Paris", "unit": "celsius"}, id="call_1"),
                ToolCall("get_time", {"tz": "Europe/Paris"}, id="call_2"),
            ),
            arg_chunks=3,
        ),
        TextReply("It is 21 °C in Paris at noon."),
    )
    tools = [
        {
            "type": "function",
            "function": {
                "name": name,
                "parameters": {"type": "object", "properties": {}},
            },
        }
        for name in ("get_weather", "get_time")
    ]

    chunks: list[Any] = []
    await drain(await complete(fake, stream=True, tools=tools), chunks)
    calls: dict[int, dict[str, str]] = {}
    for c in chunks:
        for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            entry = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += tc.id or ""
            entry["name"] += tc.function.name or ""
            entry["arguments"] += tc.function.arguments or ""
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert calls == {
        0: {
            "id": "call_1",
            "name": "get_weather",
            "arguments": '{"city":"Paris","unit":"celsius"}',
        },
        1: {"id": "call_2", "name": "get_time", "arguments": '{"tz":"Europe/Paris"}'},
    }

    messages: list[dict[str, Any]] = [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": v["id"],
                    "type": "function",
                    "function": {k: v[k] for k in ("name", "arguments")},
                }
                for v in calls.values()
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21}'},
        {"role": "tool", "tool_call_id": "call_2", "content": '"12:00"'},
    ]
    resp = await complete(fake, messages=messages, tools=tools)

    assert resp.choices[0].message.content == "It is 21 °C in Paris at noon."
    body = fake.last_request.body
    assert body is not None
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool", "tool"]
    assert body["messages"][1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert body["messages"][2]["tool_call_id"] == "call_1"
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather", "get_time"]


async def test_tool_call_non_streaming(fake: FakeOpenRouter) -> None:
    fake.enqueue(ToolCallReply.single("get_weather", '{"city":"Oslo"}', id="call_9"))
    resp = await complete(fake)
    (call,) = resp.choices[0].message.tool_calls
    assert (call.id, call.function.name, call.function.arguments) == (
        "call_9",
        "get_weather",
        '{"city":"Oslo"}',
    )
    assert resp.choices[0].finish_reason == "tool_calls"


# --------------------------------------------------------------------------- errors


async def test_wrong_key_is_401_authentication_error(fake: FakeOpenRouter) -> None:
    fake.enqueue("never used")
    with pytest.raises(AuthenticationError) as info:
        await complete(fake, api_key="sk-or-v1-wrong")
    assert info.value.status_code == 401
    assert "User not found." in str(info.value)
    assert fake.pending() == 1  # auth failures do not consume the script
    assert len(fake.chat_requests) == 1  # no retry by default
    assert fake.counters.unauthorized == 1
    assert "sk-or-v1-wrong" not in json.dumps(fake.last_request.headers)


async def test_429_rate_limit_error_with_retry_after(fake: FakeOpenRouter) -> None:
    fake.enqueue(ErrorReply(429, retry_after=7))
    with pytest.raises(RateLimitError) as info:
        await complete(fake)
    assert info.value.status_code == 429
    # litellm's exception.response has no headers; the real ones are kept here:
    assert getattr(info.value, "litellm_response_headers", {})["retry-after"] == "7"
    assert len(fake.chat_requests) == 1


async def test_500_is_api_error(fake: FakeOpenRouter) -> None:
    fake.enqueue(ErrorReply(500, "boom"))
    with pytest.raises(APIError) as info:  # not litellm.InternalServerError
        await complete(fake)
    assert info.value.status_code == 500
    assert "boom" in str(info.value)
    assert len(fake.chat_requests) == 1


@pytest.mark.parametrize(
    ("status", "exc"),
    [(502, APIError), (503, ServiceUnavailableError)],
)
async def test_502_503_streaming(fake: FakeOpenRouter, status: int, exc: type[Exception]) -> None:
    fake.enqueue(ErrorReply(status))
    with pytest.raises(exc):
        await drain(await complete(fake, stream=True), [])
    assert fake.counters.statuses[status] == 1


async def test_hang_hits_client_timeout(fake: FakeOpenRouter) -> None:
    fake.enqueue(HangReply())
    started = time.monotonic()
    with pytest.raises(Timeout):
        await complete(fake, timeout=0.5)
    assert 0.4 < time.monotonic() - started < 2.0
    async with asyncio.timeout(2):  # the fake notices the client went away
        await fake.last_request.finished.wait()
    assert fake.last_request.disconnected
    assert fake.counters.disconnects == 1 and fake.last_request.reply == "hang"


async def test_hang_then_answer(fake: FakeOpenRouter) -> None:
    fake.enqueue(HangReply(0.2, then=TextReply("late")))
    started = time.monotonic()
    resp = await complete(fake)
    assert resp.choices[0].message.content == "late"
    assert time.monotonic() - started >= 0.2


async def test_mid_stream_error_after_partial_text(fake: FakeOpenRouter) -> None:
    fake.enqueue(MidStreamErrorReply("Once upon a time", chunks=2, code=502, message="lost it"))
    chunks: list[Any] = []
    with pytest.raises(MidStreamFallbackError) as info:
        await drain(await complete(fake, stream=True), chunks)
    assert text_of(chunks) == "Once upon a time"
    assert info.value.status_code == 502  # the chunk's code (class: ServiceUnavailableError)
    assert "lost it" in str(info.value)
    assert fake.last_request.reply == "mid_stream_error"


# --------------------------------------------------------------------------- scripting


async def test_fifo_order_and_per_model_queue(fake: FakeOpenRouter) -> None:
    fake.enqueue("one", "two")
    fake.enqueue(ErrorReply(503), model="openrouter/openai/gpt-5-mini")
    fake.enqueue("from B", model="anthropic/claude-sonnet-4.5")

    with pytest.raises(ServiceUnavailableError):  # model A fails ...
        await complete(fake)
    resp = await complete(fake, model="openrouter/anthropic/claude-sonnet-4.5")  # ... B answers
    assert resp.choices[0].message.content == "from B"
    assert [(await complete(fake)).choices[0].message.content for _ in range(3)] == [
        "one",
        "two",
        "echo: What is up?",
    ]
    assert [r.served_model for r in fake.chat_requests] == [
        "openai/gpt-5-mini",
        "anthropic/claude-sonnet-4.5",
        *["openai/gpt-5-mini"] * 3,
    ]


async def test_openrouter_models_fallback_list(fake: FakeOpenRouter) -> None:
    fake.enqueue(ErrorReply(502), model="openai/gpt-5-mini")
    fake.enqueue("fallback here", model="openai/gpt-5")
    resp = await complete(fake, extra_body={"models": ["openai/gpt-5"]})
    assert resp.choices[0].message.content == "fallback here"
    assert resp.model == "openai/gpt-5"
    assert fake.last_request.served_model == "openai/gpt-5"


async def test_custom_async_default_responder() -> None:
    async def responder(body: dict[str, Any]) -> str:
        return f"{len(body['messages'])} message(s)"

    async with FakeOpenRouter(default_responder=responder, api_key="k") as fake:
        resp = await complete(fake)
    assert resp.choices[0].message.content == "1 message(s)"


# --------------------------------------------------------------------------- wire format


async def test_raw_wire_format() -> None:
    async with (
        FakeOpenRouter(processing_comments=True) as fake,
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"}) as http,
    ):
        body = {"model": "openai/gpt-5-mini", "messages": USER, "stream": True}
        fake.enqueue(TextReply("hi", chunks=2))
        async with http.post(
            f"{fake.base_url}/chat/completions",
            json={**body, "stream_options": {"include_usage": True}},
        ) as r:
            assert r.headers["Content-Type"].startswith("text/event-stream")
            raw = (await r.read()).decode()
        events = raw.split("\n\n")
        assert events[0] == ": OPENROUTER PROCESSING"
        assert events[-2:] == ["data: [DONE]", ""]
        payloads = [json.loads(e.removeprefix("data: ")) for e in events[1:-2]]
        assert payloads[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        assert payloads[-2]["choices"][0]["finish_reason"] == "stop"
        assert payloads[-1]["choices"] == []
        assert set(payloads[-1]["usage"]) >= {
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "cost",
        }
        assert all(p["object"] == "chat.completion.chunk" for p in payloads)

        fake.enqueue(MidStreamErrorReply("ab", chunks=1))
        async with http.post(f"{fake.base_url}/chat/completions", json=body) as r:
            raw = (await r.read()).decode()
        last = json.loads(raw.split("\n\n")[-2].removeprefix("data: "))
        assert "[DONE]" not in raw
        assert last["error"] == {"code": 502, "message": "Provider disconnected unexpectedly"}
        assert last["choices"][0]["finish_reason"] == "error"

        async with http.post(
            f"{fake.base_url}/chat/completions",
            json=body,
            headers={"Authorization": "Bearer nope"},
        ) as r:
            assert r.status == 401
            assert await r.json() == {"error": {"code": 401, "message": "User not found."}}

        fake.enqueue(ErrorReply(503, retry_after=2.5))
        async with http.post(f"{fake.base_url}/chat/completions", json=body) as r:
            assert (r.status, r.headers["Retry-After"]) == (503, "2.5")
            assert (await r.json())["error"]["code"] == 503

        async with http.get(f"{fake.base_url}/models") as r:
            models = await r.json()
        assert "openai/gpt-5-mini" in {m["id"] for m in models["data"]}


async def test_latency_under_concurrency() -> None:
    async with (
        FakeOpenRouter(latency=0.1) as fake,
        aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"},
            connector=aiohttp.TCPConnector(limit=0),
        ) as http,
    ):

        async def one(i: int) -> str:
            body = {"model": "openai/gpt-5-mini", "messages": [{"role": "user", "content": f"{i}"}]}
            async with http.post(f"{fake.base_url}/chat/completions", json=body) as r:
                data = await r.json()
            return str(data["choices"][0]["message"]["content"])

        started = time.monotonic()
        answers = await asyncio.gather(*(one(i) for i in range(200)))
        elapsed = time.monotonic() - started
    assert answers == [f"echo: {i}" for i in range(200)]
    assert 0.1 <= elapsed < 2.0
    assert fake.counters.max_in_flight >= 150  # all waited in the latency together
    assert fake.counters.chat_completions == 200 and fake.counters.in_flight == 0


async def test_stop_releases_endless_hang() -> None:
    fake = await FakeOpenRouter().start()
    fake.enqueue(HangReply())
    call = asyncio.create_task(complete(fake, timeout=30))
    async with asyncio.timeout(2):
        await fake.wait_for_requests(1)
    started = time.monotonic()
    await fake.stop()
    assert time.monotonic() - started < 1.5
    with pytest.raises(ServiceUnavailableError):
        await call


# --------------------------------------------------------------------------- PDFs (file-parser)

PDF_PLUGIN = [{"id": "file-parser", "pdf": {"engine": "pdf-text"}}]


def file_part(data: bytes, filename: str = "a.pdf") -> dict[str, Any]:
    url = "data:application/pdf;base64," + base64.b64encode(data).decode()
    return {"type": "file", "file": {"filename": filename, "file_data": url}}


def user_with_file(data: bytes, question: str, filename: str = "a.pdf") -> dict[str, Any]:
    return {
        "role": "user",
        "content": [{"type": "text", "text": question}, file_part(data, filename)],
    }


def test_make_pdf_round_trip() -> None:
    data = make_pdf(["Hello (world) \\ back", "Second page\nline two"])
    assert data.startswith(b"%PDF-1.4\n") and data.endswith(b"%%EOF\n")
    assert pdf_text(data) == "Hello (world) \\ back\n\nSecond page\nline two"
    assert b"(Hello \\(world\\) \\\\ back) Tj" in data
    # every xref entry points at its "N 0 obj"
    xref = data[int(data.rsplit(b"startxref\n", 1)[1].split()[0]) :]
    entries = xref.split(b"\n")[3:]
    for number, entry in enumerate(entries[: entries.index(b"trailer")], start=1):
        offset = int(entry.split()[0])
        assert data[offset:].startswith(b"%d 0 obj" % number)
    assert not is_encrypted(data)

    locked = make_pdf(["secret"], encrypted=True)
    assert is_encrypted(locked) and b"/Filter /Standard /V 1 /R 2" in locked
    assert re.search(rb"trailer\n<<.*/Encrypt \d+ 0 R", locked)

    big = make_pdf(["big"], pad_to=5 * 1024 * 1024)
    assert len(big) == 5 * 1024 * 1024 and pdf_text(big) == "big"
    assert pdf_text(b"<!doctype html><html></html>") is None
    assert pdf_text(make_pdf([])) == ""


async def test_pdf_parsed_once_per_conversation(fake: FakeOpenRouter) -> None:
    pdf = make_pdf(["The launch code is 1234.", "Page two."])
    digest = hashlib.sha256(pdf).hexdigest()
    first_user = user_with_file(pdf, "What is the code?")

    resp1 = await complete(fake, messages=[first_user], plugins=PDF_PLUGIN)

    sent = fake.last_request
    assert sent.body is not None
    assert sent.body["plugins"] == PDF_PLUGIN
    assert sent.body["messages"][0]["content"][1] == file_part(pdf)  # litellm passes it as is
    assert (sent.files, sent.parsed, fake.counters.parses) == ([digest], [digest], 1)
    assert fake.parse_engines == ["pdf-text"]
    assert sent.body_bytes > len(pdf)
    answer1 = resp1.choices[0].message.content
    assert answer1 == "From a.pdf: The launch code is 1234.\n\nPage two. | Q: What is the code?"
    annotations = resp1.choices[0].message.provider_specific_fields["annotations"]
    assert annotations == [
        {
            "type": "file",
            "file": {
                "hash": digest,
                "name": "a.pdf",
                "content": [{"type": "text", "text": "The launch code is 1234.\n\nPage two."}],
            },
        }
    ]

    # Sending the annotations back spares the parse; the answer still uses the document.
    assistant = {"role": "assistant", "content": answer1, "annotations": annotations}
    second = [first_user, assistant, {"role": "user", "content": "And page two?"}]
    resp2 = await complete(fake, messages=second, plugins=PDF_PLUGIN)

    sent = fake.last_request
    assert sent.body is not None and sent.body["messages"][1]["annotations"] == annotations
    assert (sent.files, sent.parsed, fake.counters.parses) == ([digest], [], 1)
    message2 = resp2.choices[0].message
    assert message2.content.startswith("From a.pdf: The launch code is 1234.")
    assert message2.content.endswith("| Q: And page two?")
    assert "annotations" not in (message2.provider_specific_fields or {})

    # Without the annotations OpenRouter parses the same file again.
    third = [first_user, {"role": "assistant", "content": answer1}, second[2]]
    resp3 = await complete(fake, messages=third, plugins=PDF_PLUGIN)
    assert fake.counters.parses == 2 and fake.last_request.parsed == [digest]
    assert "1234" in resp3.choices[0].message.content
    assert resp3.choices[0].message.provider_specific_fields["annotations"] == annotations
    assert fake.parse_engines == ["pdf-text", "pdf-text"]


async def test_pdf_engine_default_and_scripted_reply(fake: FakeOpenRouter) -> None:
    pdf = make_pdf(["Invoice total: 42 EUR"])
    fake.enqueue("scripted")
    resp = await complete(fake, messages=[user_with_file(pdf, "total?")])
    assert resp.choices[0].message.content == "scripted"  # the queue still wins
    assert resp.choices[0].message.provider_specific_fields["annotations"][0]["file"]["name"] == (
        "a.pdf"
    )
    ocr = [{"id": "file-parser", "pdf": {"engine": "mistral-ocr"}}]
    await complete(fake, messages=[user_with_file(pdf, "total?")], plugins=ocr)
    assert fake.parse_engines == ["native", "mistral-ocr"]
    assert fake.counters.parses == 2

    # Without files the echo is unchanged; a file_id part is not an inline file.
    by_id = {"type": "file", "file": {"file_id": "file-abc", "filename": "x.pdf"}}
    resp = await complete(
        fake, messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}, by_id]}]
    )
    assert resp.choices[0].message.content == "echo: hi"
    assert fake.last_request.files == [] and fake.counters.parses == 2


async def test_not_a_pdf_is_400(fake: FakeOpenRouter) -> None:
    html = b"<!doctype html><html><body>Login required</body></html>"
    fake.enqueue("not used")
    with pytest.raises(BadRequestError) as caught:
        await complete(fake, messages=[user_with_file(html, "q", "page.pdf")], plugins=PDF_PLUGIN)
    assert caught.value.status_code == 400
    assert "Failed to parse page.pdf: not a PDF" in str(caught.value)
    assert fake.last_request.status == 400
    assert (fake.counters.parses, fake.counters.parse_failures, fake.pending()) == (0, 1, 1)


async def test_encrypted_pdf_is_400(fake: FakeOpenRouter) -> None:
    locked = make_pdf(["secret"], encrypted=True)
    with pytest.raises(BadRequestError, match=r"Failed to parse locked\.pdf: PDF is encrypted"):
        await complete(fake, messages=[user_with_file(locked, "q", "locked.pdf")])
    assert fake.counters.parses == 0 and fake.counters.statuses[400] == 1


async def test_streaming_pdf_annotations_on_first_delta(fake: FakeOpenRouter) -> None:
    pdf = make_pdf(["Streaming document"])
    stream = await complete(
        fake, messages=[user_with_file(pdf, "q")], plugins=PDF_PLUGIN, stream=True
    )
    chunks: list[Any] = []
    await drain(stream, chunks)

    assert text_of(chunks) == "From a.pdf: Streaming document | Q: q"
    with_annotations = [
        c.choices[0].delta.annotations
        for c in chunks
        if c.choices and getattr(c.choices[0].delta, "annotations", None)
    ]
    assert len(with_annotations) == 1
    assert with_annotations[0][0]["file"]["hash"] == hashlib.sha256(pdf).hexdigest()
    assert with_annotations[0][0]["file"]["content"] == [
        {"type": "text", "text": "Streaming document"}
    ]
    assert fake.counters.parses == 1 and fake.last_request.stream


async def test_big_pdf_body_bytes_and_prompt_tokens() -> None:
    pdf = make_pdf(["short text"], pad_to=5 * 1024 * 1024)
    async with FakeOpenRouter(record_bodies=False) as fake:
        resp = await complete(fake, messages=[user_with_file(pdf, "q")], plugins=PDF_PLUGIN)
    sent = fake.last_request
    assert sent.body is None and sent.body_bytes > 5 * 1024 * 1024 * 4 // 3
    assert sent.parsed == sent.files and fake.counters.parses == 1
    assert resp.choices[0].message.content == "From a.pdf: short text | Q: q"
    assert sent.usage is not None and sent.usage["prompt_tokens"] < 1000  # text, not base64
