"""PDFs through the real path: the core, the Agents SDK calling ``read_document``, and the
document request through litellm to the fake OpenRouter, which parses a PDF only when a request
carries it without the annotations of an earlier parse. PDFs are made by the tests."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.core import Core
from bot.results import TurnResult
from bot.wiring import build_core, open_services
from storage import Store
from tests.conftest import make_settings
from tests.fakes.open_meteo import FakeOpenMeteo
from tests.fakes.openrouter import FakeOpenRouter, RecordedRequest, ToolCallReply
from tests.fakes.pdf import make_pdf
from tests.helpers import RecordingReply, bytes_attachment, message

CONVERSATION = "test:T1:C1:100.1"
REPORT = make_pdf(["Quarterly report. Revenue grew 42 percent.", "Page two: costs fell."])


@dataclass
class Stack:
    core: Core
    store: Store
    openrouter: FakeOpenRouter

    async def ask(
        self, text: str, *, files: tuple[Any, ...] = (), read: str | None = None
    ) -> tuple[TurnResult, RecordingReply]:
        """One turn; with ``read``, the model first asks read_document that question."""
        if read is not None:
            self.openrouter.enqueue(
                ToolCallReply.single("read_document", {"question": read, "document": ""})
            )
        reply = RecordingReply()
        result = await self.core.handle(
            message(text, conversation=CONVERSATION, attachments=files), reply
        )
        return result, reply

    def document_requests(self) -> list[RecordedRequest]:
        return [r for r in self.openrouter.chat_requests if r.files]


StackFactory = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[StackFactory]:
    async with AsyncExitStack() as stack:
        openrouter = await stack.enter_async_context(FakeOpenRouter())
        meteo = await stack.enter_async_context(FakeOpenMeteo())

        async def factory(**values: Any) -> Stack:
            settings = make_settings(
                tmp_path,
                OPENROUTER_API_KEY=openrouter.api_key,
                OPENROUTER_BASE_URL=openrouter.base_url,
                OPEN_METEO_URL=meteo.base_url,
                OPEN_METEO_GEOCODING_URL=meteo.base_url,
                **values,
            )
            services = await stack.enter_async_context(open_services(settings))
            core = await build_core(services)
            stack.push_async_callback(core.close)
            return Stack(core, services.store, openrouter)

        yield factory


def tool_outputs(request: RecordedRequest) -> list[str]:
    assert request.body is not None
    return [str(m["content"]) for m in request.body["messages"] if m["role"] == "tool"]


def pdf(name: str = "report.pdf", data: bytes = REPORT) -> Any:
    return bytes_attachment(name, data, "application/pdf")


async def test_a_pdf_is_parsed_once_for_a_question_and_three_follow_ups(
    start: StackFactory,
) -> None:
    s = await start()
    result, reply = await s.ask("what does it say?", files=(pdf(),), read="What does it say?")
    assert result.outcome == "answered", reply.calls
    assert reply.of("progress") == [
        "in_progress: Reading the documents",
        "complete: Reading the documents",
    ]
    for question in ("How much did revenue grow?", "What fell?", "Summarise page two."):
        result, _ = await s.ask(question, read=question)
        assert result.outcome == "answered"

    assert s.openrouter.counters.parses == 1
    documents = s.document_requests()
    assert len(documents) == 4
    assert [len(r.parsed) for r in documents] == [1, 0, 0, 0]
    for request in documents[1:]:
        assert request.body is not None
        assistant = [m for m in request.body["messages"] if m["role"] == "assistant"]
        assert assistant and assistant[0]["annotations"][0]["type"] == "file"
        assert request.body["plugins"] == [{"id": "file-parser", "pdf": {"engine": "pdf-text"}}]
    # The agent got the document's text back from the tool.
    final = s.openrouter.chat_requests[-1]
    assert "Revenue grew 42 percent" in tool_outputs(final)[-1]
    # History names the file; turns that do not read it never carry its bytes.
    agent_requests = [r for r in s.openrouter.chat_requests if not r.files]
    assert all("base64" not in str(r.body) for r in agent_requests)
    assert "[Attached document: report.pdf]" in str(agent_requests[-1].body)


async def test_annotations_survive_a_restart_and_the_same_file_is_reused(
    start: StackFactory,
) -> None:
    first = await start()
    await first.ask("read this", files=(pdf(),), read="What is it?")
    second = await start()  # a new core over the same SQLite file
    await second.ask("and revenue?", read="How much did revenue grow?")
    await second.ask("again", files=(pdf("copy-of-report.pdf"),), read="Costs?")

    assert first.openrouter.counters.parses == 1
    files = await second.store.list_files(conversation=CONVERSATION)
    assert len(files) == 1 and files[0].name == "copy-of-report.pdf"  # one file, by hash


async def test_weather_still_works_in_a_conversation_with_a_pdf(start: StackFactory) -> None:
    s = await start()
    await s.ask("read this", files=(pdf(),), read="What is it?")
    s.openrouter.enqueue(ToolCallReply.single("get_weather", {"location": "Tokyo"}))
    result, reply = await s.ask("weather in Tokyo?")

    assert result.outcome == "answered", reply.calls
    assert reply.of("progress") == [
        "in_progress: Checking the weather in Tokyo",
        "complete: Checking the weather in Tokyo",
    ]
    assert "Tokyo" in tool_outputs(s.openrouter.chat_requests[-1])[-1]
    assert s.openrouter.counters.parses == 1
    assert "base64" not in str(s.openrouter.chat_requests[-1].body)


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("page.pdf", b"<!DOCTYPE html><html>Sign in</html>", "a web page saved as .pdf"),
        ("archive.pdf", b"PK\x03\x04" + b"\x00" * 100, "a ZIP archive named .pdf"),
        ("secret.pdf", make_pdf(["classified"], encrypted=True), "password-protected"),
        ("cut.pdf", REPORT[: len(REPORT) // 2], "looks damaged"),
    ],
)
async def test_files_that_cannot_be_read_as_pdfs_are_named_and_never_sent(
    start: StackFactory, name: str, data: bytes, reason: str
) -> None:
    s = await start()
    good = bytes_attachment("notes.txt", b"plain notes")
    result, reply = await s.ask("see these", files=(pdf(name, data), good))

    assert result.outcome == "answered"
    [notice] = reply.of("notice")
    assert notice.startswith(f"Skipped {name}: ") and reason in notice
    assert s.document_requests() == []
    assert "plain notes" in str(s.openrouter.chat_requests[-1].body)
    assert await s.store.list_files(conversation=CONVERSATION) == []


async def test_an_oversize_pdf_is_refused_before_download(start: StackFactory) -> None:
    s = await start(MAX_FILE_MB=0.01)
    big = pdf("big.pdf", make_pdf(["x"], pad_to=50_000))
    _, reply = await s.ask("big one", files=(big,))
    assert "over the 0.01 MB limit" in reply.of("notice")[0]
    assert s.document_requests() == []


async def test_the_files_command_lists_the_documents(start: StackFactory) -> None:
    from tests.helpers import command

    s = await start()
    reply = RecordingReply()
    await s.core.handle(command("files", conversation=CONVERSATION), reply)
    assert "No documents" in reply.text
    await s.ask("read", files=(pdf(),), read="What is it?")
    reply = RecordingReply()
    await s.core.handle(command("files", conversation=CONVERSATION), reply)
    assert "report.pdf" in reply.text and "application/pdf" in reply.text


async def test_reset_forgets_the_documents_too(start: StackFactory) -> None:
    """``/reset`` said it forgot the conversation while ``/files`` still listed its documents
    and their parses were reused: now both go, and the next question starts without them."""
    from tests.helpers import command

    s = await start()
    await s.ask("read", files=(pdf(),), read="What is it?")

    reply = RecordingReply()
    await s.core.handle(command("reset", conversation=CONVERSATION), reply)
    assert reply.text == (
        "Done — I've forgotten this conversation and its 1 document. The next message starts fresh."
    )
    reply = RecordingReply()
    await s.core.handle(command("files", conversation=CONVERSATION), reply)
    assert "No documents" in reply.text
    assert await s.store.get_file_bytes(sha256=hashlib.sha256(REPORT).hexdigest()) is None

    # The same PDF attached again is a new document: parsed again, not an old parse reused.
    await s.ask("read it again", files=(pdf(),), read="What is it?")
    assert s.openrouter.counters.parses == 2
