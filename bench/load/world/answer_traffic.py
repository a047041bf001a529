"""Realistic answers for the answers scenario: the model's side (an answer of N tokens streamed
one token a chunk, or a weather tool call first) and each platform's side (mentions sent, then
the fake's records read back into when the first text and the final text arrived and whether
the answer on screen is the one the model gave)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Protocol

from bench.load.world.fakes import SECRET
from bench.load.world.slack_traffic import SlackThread, SlackWatch, bot_text, squeeze
from tests.fakes.discord import FakeDiscord, FakeUser, RecordedRequest
from tests.fakes.openrouter import FakeOpenRouter, Reply, TextReply, ToolCallReply, last_user_text
from tests.fakes.openrouter import RecordedRequest as OpenRouterRequest
from tests.fakes.slack import FakeSlack, app_mention

JSONDict = dict[str, Any]

TOKEN = re.compile(r"\ba\d{6}\b")
"""Every question starts with its turn's token, ``a000042``: model requests map back to it."""
WORDS = (
    *("about", "above", "after", "again", "below", "bring", "carry", "clear", "could", "early"),
    *("every", "first", "found", "great", "house", "large", "learn", "never", "other", "place"),
    *("plant", "point", "right", "small", "sound", "spell", "still", "study", "their", "there"),
    *("these", "thing", "think", "three", "water", "where", "which", "world", "would", "write"),
)
"""Five letters each: with one separator a token is six characters, so the fake's even split
of the text into N chunks gives exactly one word a chunk."""
LINE_WORDS = 12
"""A line break every 12 words: the places where a long answer may be split."""
WEATHER_PLACE = "Tokyo"


def answer_text(tokens: int, seed: int) -> str:
    """``tokens`` words, deterministic per seed, a line break every ``LINE_WORDS``."""
    parts = []
    for i in range(tokens):
        parts.append(WORDS[(seed * 7 + i * 13 + i // 5) % len(WORDS)])
        if i < tokens - 1:
            parts.append("\n" if (i + 1) % LINE_WORDS == 0 else " ")
    return "".join(parts)


@dataclass
class AnswerTurn:
    """One question, the answer the model gives, and what the fakes saw of it."""

    idx: int
    tokens: int
    tool: bool = False
    channel: str = ""
    """Slack: the channel id; Discord: the channel id as str."""
    dispatched: float = 0.0
    answer_request: OpenRouterRequest | None = None
    """The fake OpenRouter's record of the request that streamed the answer's text."""
    tool_output_ok: bool = False
    """The model was handed the weather tool's real answer (from the fake Open-Meteo)."""
    first_visible_at: float | None = None
    final_at: float | None = None
    shown: str = ""
    """The answer's text as the platform shows it now (its messages joined)."""
    thread: SlackThread | None = None
    message_id: int = 0
    """Discord: the mention's id."""

    @property
    def token(self) -> str:
        return f"a{self.idx:06d}"

    @property
    def question(self) -> str:
        if self.tool:
            return f"{self.token} what is the weather in {WEATHER_PLACE} now?"
        return f"{self.token} please answer in {self.tokens} tokens"

    @property
    def answer(self) -> str:
        return answer_text(self.tokens, self.idx)

    @property
    def marker(self) -> str:
        """The answer's first word (the first token): found in the first call that shows any
        of the answer (a tool's status line is not the answer)."""
        return self.answer[:5]

    @property
    def correct(self) -> bool:
        return squeeze(self.shown) == squeeze(self.answer)

    @property
    def first_token_at(self) -> float | None:
        request = self.answer_request
        return None if request is None else request.first_text_at

    def first_text_ms(self) -> float | None:
        """First token written by the model -> first visible text reached the platform."""
        if self.first_token_at is None or self.first_visible_at is None:
            return None
        return (self.first_visible_at - self.first_token_at) * 1000

    def tail_ms(self) -> float | None:
        """The model's last byte -> the final text reached the platform."""
        request = self.answer_request
        if request is None or request.finished_at is None or self.final_at is None:
            return None
        return (self.final_at - request.finished_at) * 1000


class Model:
    """The fake model's responder: each turn's answer, one token a chunk; a weather question
    gets a ``get_weather`` call first, and its answer once the tool's output comes back."""

    def __init__(self, token_delay: float) -> None:
        self.token_delay = token_delay
        self.turns: dict[str, AnswerTurn] = {}

    def add(self, turns: list[AnswerTurn]) -> None:
        self.turns.update((t.token, t) for t in turns)

    def respond(self, body: JSONDict) -> Reply:
        found = TOKEN.search(last_user_text(body))
        turn = self.turns.get(found[0]) if found else None
        if turn is None:
            return TextReply("not a bench question")
        messages = body.get("messages") or []
        last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
        if turn.tool and last.get("role") != "tool":
            return ToolCallReply.single(
                "get_weather", {"location": WEATHER_PLACE, "units": "metric"}
            )
        if turn.tool:
            turn.tool_output_ok = str(last.get("content", "")).startswith(
                f"Weather for {WEATHER_PLACE}"
            )
        return TextReply(turn.answer, chunks=turn.tokens, delay=self.token_delay)

    def attribute(self, fake: FakeOpenRouter, since: int) -> None:
        """Each turn's answer request: the last streamed request carrying its token."""
        for request in fake.requests[since:]:
            if request.body is None or request.first_text_at is None:
                continue
            found = TOKEN.search(last_user_text(request.body))
            turn = self.turns.get(found[0]) if found else None
            if turn is not None:
                turn.answer_request = request
                request.body = None  # seen: let the memory go


class Side(Protocol):
    """A platform as the answers scenario drives it."""

    name: str

    def place(self, turn: AnswerTurn, channel: int) -> None: ...

    async def send(self, turn: AnswerTurn) -> None: ...

    def since(self) -> int: ...

    def collect(self, turns: list[AnswerTurn], since: int, *, sequential: bool) -> None: ...


# --------------------------------------------------------------------------- Slack


class SlackSide:
    """Mentions through Slack's HTTP mode (signed deliveries), each its own thread."""

    def __init__(self, fake: FakeSlack, url: str, *, native: bool) -> None:
        self.fake = fake
        self.url = url
        self.name = "Slack, native streaming" if native else "Slack, post-and-update"

    def place(self, turn: AnswerTurn, channel: int) -> None:
        turn.channel = f"CANSWER{channel:03d}"
        event = app_mention(f"<@{self.fake.bot_user_id}> {turn.question}", channel=turn.channel)
        turn.thread = SlackThread(turn.channel, str(event["ts"]), turn.answer, event)

    async def send(self, turn: AnswerTurn) -> None:
        assert turn.thread is not None
        turn.dispatched = turn.thread.started = time.monotonic()
        await self.fake.deliver_event(self.url, SECRET, turn.thread.event)

    def since(self) -> int:
        return len(self.fake.api_calls)

    def collect(self, turns: list[AnswerTurn], since: int, *, sequential: bool) -> None:
        threads = [t.thread for t in turns if t.thread is not None]
        SlackWatch(self.fake, threads, since=since).poll()
        for turn in turns:
            thread = turn.thread
            assert thread is not None
            turn.shown = bot_text(self.fake, thread)
            ok = [c for c in thread.calls if c.ok and c.method.startswith("chat.")]
            shown = [c for c in ok if turn.marker in str(c.params.get("markdown_text") or "")]
            turn.first_visible_at = shown[0].at if shown else None
            turn.final_at = ok[-1].at if ok else None


# --------------------------------------------------------------------------- Discord

MESSAGE_PATH = re.compile(r"/channels/(\d+)/messages(?:/(\d+))?$")


class DiscordSide:
    """Mentions dispatched over the fake gateway. A turn's messages: in a sequential run every
    bot message in its channel after its mention (a long answer goes on in plain messages
    after the reply); in a burst only the reply (answers must fit one message, 2,000
    characters, about 330 tokens)."""

    name = "Discord"

    def __init__(self, fake: FakeDiscord, channels: list[int], authors: list[FakeUser]) -> None:
        self.fake = fake
        self.channels = channels
        self.authors = authors

    def place(self, turn: AnswerTurn, channel: int) -> None:
        turn.channel = str(self.channels[channel % len(self.channels)])

    async def send(self, turn: AnswerTurn) -> None:
        turn.dispatched = time.monotonic()
        payload = await self.fake.send_user_message(
            int(turn.channel),
            self.authors[turn.idx % len(self.authors)],
            content=f"{self.fake.bot.mention} {turn.question}",
        )
        turn.message_id = int(payload["id"])

    def since(self) -> int:
        return len(self.fake.requests)

    def collect(self, turns: list[AnswerTurn], since: int, *, sequential: bool) -> None:
        owner: dict[int, AnswerTurn] = {}
        for turn in turns:
            channel = int(turn.channel)
            later = [t.message_id for t in turns if t.channel == turn.channel and t is not turn]
            window_end = min((m for m in later if m > turn.message_id), default=None)
            mine = []
            for message in self.fake.bot_messages(channel):
                if message.deleted or message.id < turn.message_id:
                    continue
                if sequential:
                    # Every message until the next mention's: a long answer goes on unreplied.
                    if window_end is None or message.id < window_end:
                        mine.append(message)
                elif message.reply_to == turn.message_id:
                    mine.append(message)
            turn.shown = "\n".join(m.content for m in mine)
            owner.update((m.id, turn) for m in mine)
        for request in self.fake.requests[since:]:
            owned, content = self._owner(request, owner)
            if owned is None:
                continue
            if owned.first_visible_at is None and owned.marker in content:
                owned.first_visible_at = request.received_at
            owned.final_at = max(owned.final_at or 0.0, request.received_at)

    @staticmethod
    def _owner(
        request: RecordedRequest, owner: dict[int, AnswerTurn]
    ) -> tuple[AnswerTurn | None, str]:
        """The turn whose message this (successful) POST created or PATCH edited."""
        found = MESSAGE_PATH.search(request.path)
        if found is None or request.status != 200 or request.method not in ("POST", "PATCH"):
            return None, ""
        if request.method == "POST":
            response = request.response if isinstance(request.response, dict) else {}
            message_id = int(response.get("id") or 0)
        else:
            message_id = int(found[2] or 0)
        body = request.body if isinstance(request.body, dict) else {}
        return owner.get(message_id), str(body.get("content") or "")
