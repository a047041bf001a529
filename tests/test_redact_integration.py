"""PII redaction over the real request path: ``build_core`` and the real model client (both
paths, see ``BOTH_CLIENTS_MODULES``) against the fake OpenRouter, which records every request
body exactly as it arrived. What must never be in one: the values, in any of their forms."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from bot.core import Core
from bot.redact import NOTE
from bot.wiring import build_core, open_services
from storage import Store
from tests.conftest import make_settings
from tests.fakes.openrouter import FakeOpenRouter, TextReply, ToolCall, ToolCallReply
from tests.fakes.pdf import make_pdf
from tests.helpers import RecordingReply, bytes_attachment, message

CONVERSATION = "test:T1:C1:100.1"
MESSAGE = (
    "Please e-mail Jane.Doe@Example.com or call +1 (415) 555-2671. "
    "Refund card 4111 1111 1111 1111 to IBAN DE89 3704 0044 0532 0130 00."
)
FILE = (
    "name,email,phone,iban\n"
    "Jane,jane.doe@example.com,415-555-2671,DE89370400440532013000\n"
    "Bob,bob@example.org,+44 20 7946 0958,GB82WEST12345698765432\n"
)
THREAD = "earlier: reach carol@example.net or +33 6 12 34 56 78, card 5555-5555-5555-4444"
RAW = [
    # every form any value above takes, and its digits run together
    "jane.doe@example.com",
    "bob@example.org",
    "carol@example.net",
    "415",
    "4155552671",
    "7946",
    "12 34 56 78",
    "4111",
    "5555",
    "DE89",
    "3704",
    "GB82",
    "WEST1234",
]
PLACEHOLDER = re.compile(r"\[(email|phone|card|IBAN) ([a-z]{6})\]")


class Stack:
    def __init__(self, core: Core, store: Store) -> None:
        self.core, self.store = core, store

    async def ask(
        self, text: str, *, conversation: str = CONVERSATION, attachments: tuple[Any, ...] = ()
    ) -> RecordingReply:
        reply = RecordingReply()
        result = await self.core.handle(
            message(text, conversation=conversation, attachments=attachments), reply
        )
        assert result.outcome == "answered", reply.calls
        return reply

    async def history(self, conversation: str = CONVERSATION) -> str:
        items = await self.store.load_history(
            conversation=conversation, max_items=100, max_tokens=1_000_000
        )
        return json.dumps([h.item for h in items], ensure_ascii=False)


StackFactory = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def openrouter() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter() as fake:  # its default model echoes the user's message
        yield fake


@pytest.fixture
async def start(tmp_path: Path, openrouter: FakeOpenRouter) -> AsyncIterator[StackFactory]:
    """``await start(**settings)``: one more core on the same database (another instance)."""
    async with AsyncExitStack() as stack:

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
            return Stack(core, services.store)

        yield factory


def sent(openrouter: FakeOpenRouter) -> str:
    """Every chat request body the model got, as one string."""
    assert openrouter.chat_requests
    return json.dumps([r.body for r in openrouter.chat_requests], ensure_ascii=False)


def assert_no_raw_value(text: str) -> None:
    lowered = text.lower()
    for value in RAW:
        pattern = re.escape(value.lower())
        if value.isdigit() and len(value) < 6:
            # A short fragment counts alone, not inside a longer run of digits: a response id
            # carries a timestamp, and "1796415214" holds no phone number.
            pattern = rf"(?<!\d){pattern}(?!\d)"
        assert re.search(pattern, lowered) is None, value


async def test_off_by_default_nothing_changes(
    start: StackFactory, openrouter: FakeOpenRouter
) -> None:
    s = await start()
    assert s.core.redaction is None
    reply = await s.ask(MESSAGE)
    assert reply.of("notice") == []
    assert openrouter.chat_requests[-1].body["messages"][-1]["content"] == MESSAGE  # type: ignore[index]
    assert MESSAGE in await s.history()


async def test_no_value_reaches_the_model_or_the_history(
    start: StackFactory, openrouter: FakeOpenRouter
) -> None:
    s = await start(BOT_REDACT_PII="true")
    await s.core.observe(message(THREAD, conversation=CONVERSATION))
    observed = await s.store.observed_messages(conversation=CONVERSATION)
    assert_no_raw_value(observed[0].text)  # kept redacted: a later turn replays nothing raw
    assert len(PLACEHOLDER.findall(observed[0].text)) == 3

    reply = await s.ask(MESSAGE, attachments=(bytes_attachment("people.csv", FILE.encode()),))

    body = sent(openrouter)
    assert_no_raw_value(body)
    user = openrouter.chat_requests[-1].body["messages"][-1]["content"]  # type: ignore[index]
    tags = PLACEHOLDER.findall(user)
    kinds = {kind for kind, _ in tags}
    assert kinds == {"email", "phone", "card", "IBAN"}, user
    # The same value, however it was written, in the message, the file and the thread: one
    # placeholder. Jane's address, phone and IBAN are each in the message and the file.
    by_kind: dict[str, set[str]] = {}
    for kind, tag in tags:
        by_kind.setdefault(kind, set()).add(tag)
    assert len(by_kind["email"]) == 3  # Jane, Bob, Carol
    assert len(by_kind["phone"]) == 3  # Jane, Bob, Carol
    assert len(by_kind["IBAN"]) == 2  # Jane, Bob
    assert len(by_kind["card"]) == 2  # the refund card, Carol's
    history = await s.history()
    assert_no_raw_value(history)
    assert "people.csv" in history and "[IBAN " in history
    assert_no_raw_value(reply.text)  # the echo model answered with the placeholders

    # The next turn: the same address gets the same placeholder; the replayed history is the
    # redacted one.
    await s.ask("And jane.doe@EXAMPLE.com again?")
    assert_no_raw_value(sent(openrouter))
    last = openrouter.chat_requests[-1].body["messages"]  # type: ignore[index]
    jane = PLACEHOLDER.findall(last[-1]["content"])
    assert len(jane) == 1 and jane[0][1] in by_kind["email"]
    assert any(jane[0][1] in str(m.get("content")) for m in last[:-1])  # also in the history


async def test_the_note_comes_once_per_conversation_across_instances(
    start: StackFactory,
) -> None:
    one = await start(BOT_REDACT_PII="true")
    first = await one.ask("hello")
    assert first.of("notice") == [NOTE]
    assert (await one.ask("again")).of("notice") == []

    two = await start(BOT_REDACT_PII="true")  # another instance on the same database
    assert (await two.ask("and again")).of("notice") == []
    other = "test:T1:C1:200.2"
    assert (await two.ask("hi", conversation=other)).of("notice") == [NOTE]
    assert (await one.ask("hi", conversation=other)).of("notice") == []
    # Both instances tag alike: the key is the store's.
    a = PLACEHOLDER.findall((await one.ask("x@example.com", conversation="test:T1:C1:3")).text)
    b = PLACEHOLDER.findall((await two.ask("x@example.com", conversation="test:T1:C1:3")).text)
    assert a == b and len(a) == 1


async def test_pdfs_are_not_sent_while_redaction_is_on(
    start: StackFactory, openrouter: FakeOpenRouter
) -> None:
    s = await start(BOT_REDACT_PII="true")
    pdf = make_pdf(["Invoice for jane@example.com"])
    reply = await s.ask(
        "what is in it?",
        attachments=(bytes_attachment("invoice.pdf", pdf, "application/pdf"),),
    )
    assert any("Skipped invoice.pdf: PII redaction is on" in n for n in reply.of("notice"))
    assert await s.store.list_files(conversation=CONVERSATION) == []
    assert openrouter.counters.parses == 0
    assert "base64" not in sent(openrouter)


async def test_a_pdf_stored_before_redaction_is_not_read_after(
    start: StackFactory, openrouter: FakeOpenRouter
) -> None:
    before = await start()
    pdf = make_pdf(["Invoice for jane@example.com"])
    await before.ask(
        "keep this", attachments=(bytes_attachment("invoice.pdf", pdf, "application/pdf"),)
    )
    assert len(await before.store.list_files(conversation=CONVERSATION)) == 1

    after = await start(BOT_REDACT_PII="true")
    openrouter.enqueue(
        ToolCallReply([ToolCall("read_document", {"question": "who?", "document": ""})]),
        TextReply("I cannot read it now."),
    )
    await after.ask("who is the invoice for?")
    assert openrouter.counters.parses == 0
    tool_result = openrouter.chat_requests[-1].body["messages"][-1]  # type: ignore[index]
    assert tool_result["role"] == "tool"
    assert "not read while PII redaction is on" in tool_result["content"]
