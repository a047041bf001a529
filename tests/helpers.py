"""Test doubles of our own interfaces (not of libraries): a recording Reply, event builders."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.events import Attachment, Author, ConversationKey, Event, EventKind
from bot.feedback import FinishedAnswer
from bot.reply import ApprovalRequest, Step, Verdict
from bot.web_search import Source
from storage import NewItem, SQLStore, Store

_ids = itertools.count(1)


@dataclass
class RecordingReply:
    """Implements bot.reply.Reply and remembers every call in order."""

    calls: list[tuple[str, str]] = field(default_factory=list)
    """Each call and its text; a step as ``"<state>: <title>"``."""
    steps: list[Step] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    """What ``finish`` was given to list under the answer."""
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    answer: FinishedAnswer | None = None
    """What the core gave ``finish`` (a model's answer, for its feedback buttons)."""
    approvals: list[ApprovalRequest] = field(default_factory=list)
    """Each request for approval shown, in order (a test clicks with its ``id``)."""
    asked: asyncio.Event = field(default_factory=asyncio.Event)
    """Set at each request for approval (clear it to wait for the next)."""

    async def start(self) -> None:
        self.calls.append(("start", ""))

    async def stream(self, delta: str) -> None:
        self.calls.append(("stream", delta))

    async def progress(self, step: Step) -> None:
        self.steps.append(step)
        self.calls.append(("progress", f"{step.state}: {step.title}"))

    async def notice(self, text: str) -> None:
        self.calls.append(("notice", text))

    async def finish(
        self, answer: FinishedAnswer | None = None, sources: Sequence[Source] = ()
    ) -> None:
        self.calls.append(("finish", ""))
        self.answer = answer
        self.sources = list(sources)
        self.finished.set()

    async def fail(self, message: str) -> None:
        self.calls.append(("fail", message))
        self.finished.set()

    async def refuse(self, message: str) -> None:
        self.calls.append(("refuse", message))
        self.finished.set()

    async def ask_approval(self, request: ApprovalRequest) -> bool:
        self.approvals.append(request)
        self.calls.append(("approval", request.question))
        self.asked.set()
        return True

    async def approval_closed(
        self, request: ApprovalRequest, verdict: Verdict, by: str | None
    ) -> None:
        self.calls.append(("approval_closed", f"{verdict.value} by {by}"))

    @property
    def text(self) -> str:
        return "".join(v for k, v in self.calls if k == "stream")

    def of(self, kind: str) -> list[str]:
        return [v for k, v in self.calls if k == kind]

    @property
    def failure(self) -> str | None:
        """The failure line, if the reply failed."""
        failed = self.of("fail")
        return failed[-1] if failed else None

    @property
    def refusal(self) -> str | None:
        """The line that refused the event (to its author only), if it was refused."""
        refused = self.of("refuse")
        return refused[-1] if refused else None


def message(
    text: str,
    *,
    conversation: str = "test:T1:C1:100.1",
    event_id: str | None = None,
    user: str = "U1",
    is_bot: bool = False,
    attachments: tuple[Attachment, ...] = (),
    kind: EventKind = EventKind.MENTION,
) -> Event:
    key = ConversationKey.parse(conversation)
    return Event(
        platform=key.platform,
        event_id=event_id or f"ev-{next(_ids)}",
        conversation=key,
        channel=ConversationKey(key.platform, key.parts[:2] if len(key.parts) > 2 else key.parts),
        kind=kind,
        author=Author(id=user, display_name=f"user {user}", is_bot=is_bot),
        text=text,
        attachments=attachments,
        workspace=key.parts[0],
    )


def command(
    name: str, args: str = "", *, conversation: str = "test:T1:C1:100.1", user: str = "U1"
) -> Event:
    base = message(
        f"/{name} {args}".strip(), conversation=conversation, user=user, kind=EventKind.COMMAND
    )
    return Event(
        platform=base.platform,
        event_id=base.event_id,
        conversation=base.conversation,
        channel=base.channel,
        kind=EventKind.COMMAND,
        author=base.author,
        text=base.text,
        command=name,
        command_args=args,
        workspace=base.workspace,
    )


def bytes_attachment(name: str, data: bytes, declared_type: str = "text/plain") -> Attachment:
    async def fetch() -> bytes:
        return data

    return Attachment(name=name, declared_type=declared_type, size=len(data), fetch=fetch)


async def eventually(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:  # noqa: ASYNC109
    """Poll until ``predicate()`` (awaited, if it is a coroutine) is truthy and return it;
    fail with its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {value!r}")
        await asyncio.sleep(0.01)


async def pending(store: Any) -> list[tuple[str, str]]:
    """(event_id, conversation) of the store's unfinished events, oldest first."""
    return [(e.event_id, e.conversation) for e in await store.unfinished_events()]


async def as_restarted(core: Any) -> None:
    """Make ``core`` a new instance, as after its process was killed and started again: its
    old lease is given up (so its claims are a dead instance's) and it holds a new one."""
    from bot.instance import Instance

    old = core.instance
    await old.close()
    core.instance = Instance(
        core.store, instance_id=None, lease_s=old.lease_s, longest_turn_s=old.longest_turn_s
    )


async def append_items(store: Store, *, conversation: str, items: Sequence[NewItem]) -> None:
    """Write history as the bot does (one finished turn), without usage or an event to close."""
    await store.complete_turn(conversation=conversation, items=items, usage=None, event_id=None)


async def count_items(store: Store, *, conversation: str) -> int:
    """How many history items the conversation holds, all of them (``load_history`` returns
    only a fitted window). Read from the table: the bot itself never needs to count."""
    assert isinstance(store, SQLStore)
    async with store._db.locked() as db:  # as a store method would: in no other's transaction
        rows = await db.fetchall(
            "SELECT COUNT(*) FROM history_items"
            " WHERE conversation_id = (SELECT id FROM conversations WHERE key = ?)",
            (conversation,),
        )
    return int(rows[0][0])


async def wait_healthy(port: int, timeout: float = 120.0) -> None:  # noqa: ASYNC109
    """Poll ``GET /healthz`` on 127.0.0.1 until it answers 200 (a bot process starting up)."""
    import aiohttp  # here, so the helpers stay importable without it

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"the bot on port {port} did not become healthy in {timeout} s")
