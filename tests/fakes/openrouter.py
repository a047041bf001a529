"""A fake OpenRouter (OpenAI-compatible chat completions) on 127.0.0.1, for tests and benchmarks.

It speaks the wire format the real clients parse (litellm, the ``openai`` SDK): JSON responses,
SSE streams in the OpenAI chunk format, OpenRouter's ``usage.cost`` and error bodies. Replies are
scripted with a FIFO queue (global and per model); when the queue is empty a default responder
answers (``"echo: <last user text>"`` unless configured), so load tests need no script.

Usage::

    async with FakeOpenRouter() as fake:
        fake.enqueue(TextReply("Hello there", chunks=3))
        fake.enqueue(ErrorReply(503), model="openai/gpt-5-mini")  # only for that model
        resp = await litellm.acompletion(
            model="openrouter/openai/gpt-5-mini",
            base_url=fake.base_url,
            api_key=fake.api_key,
            messages=[{"role": "user", "content": "hi"}],
        )
        assert fake.chat_requests[-1].body["model"] == "openai/gpt-5-mini"

PDFs (OpenRouter's file-parser plugin): a user message part ``{"type": "file", "file":
{"filename": "x.pdf", "file_data": "data:application/pdf;base64,..."}}`` is parsed (text via
``tests.fakes.pdf.pdf_text``; ``counters.parses``, ``parse_engines``) unless an assistant message of
the same request carries an ``annotations`` entry ``{"type": "file", "file": {"hash": <sha256 hex
of the bytes>, ...}}`` for it. The answer carries ``annotations`` for the files parsed by that
request; non-PDFs and encrypted PDFs get OpenRouter's 400. The default answer for a request with
files is ``"From x.pdf: <text[:500]> | Q: <last user text>"``.

Reasoning models: ``TextReply(..., reasoning=Reasoning("thinking..."))`` (and ``ToolCallReply``)
answer with ``reasoning`` and ``reasoning_details`` (streamed a piece per chunk) and count the
reasoning tokens; with ``require_reasoning_replay`` a tool follow-up whose assistant message lost
its ``reasoning_details`` gets the provider's 400 (``tests.fakes.openrouter_reasoning``).
Web search (OpenRouter's ``web`` plugin): see ``tests.fakes.openrouter_web``; the results are
the first ``max_results`` of ``web_pages``, cited in ``url_citation`` annotations, and cost more.

Run it standalone for manual checks: ``python -m tests.fakes.openrouter --port 8099``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import hashlib
import inspect
import itertools
import json
import secrets
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web

from tests.fakes._server import LoopbackServer
from tests.fakes.openrouter_reasoning import (
    Reasoning,
    reasoning_deltas,
    reasoning_details,
    reasoning_usage,
    replay_problem,
)
from tests.fakes.openrouter_web import (
    DEFAULT_PAGES,
    WebPage,
    search_cost,
    searched,
    url_citations,
)
from tests.fakes.pdf import PDF_MAGIC, is_encrypted, pdf_text

__all__ = [
    "DEFAULT_API_KEY",
    "Counters",
    "DocumentFile",
    "ErrorReply",
    "FakeOpenRouter",
    "HangReply",
    "MidStreamErrorReply",
    "Reasoning",
    "RecordedRequest",
    "Reply",
    "Responder",
    "TextReply",
    "ToolCall",
    "ToolCallReply",
    "Usage",
    "WebPage",
    "document_answer",
    "echo_responder",
    "file_annotation",
    "last_user_text",
    "pdf_engine",
]

JSONDict = dict[str, Any]

DEFAULT_API_KEY: Final = "sk-or-v1-fake-test-key"
DEFAULT_MODELS: Final = ("openai/gpt-5-mini", "openai/gpt-5", "anthropic/claude-sonnet-4.5")
API_PREFIX: Final = "/api/v1"
REDACTED: Final = "[REDACTED]"
_SECRET_HEADERS: Final = frozenset({"authorization", "x-api-key", "api-key", "proxy-authorization"})

# gpt-5-mini list prices on OpenRouter (USD per token): $0.25/M in, $2/M out.
DEFAULT_PROMPT_PRICE: Final = 0.25e-6
DEFAULT_COMPLETION_PRICE: Final = 2e-6

_ERROR_MESSAGES: Final[Mapping[int, str]] = {
    400: "Bad Request",
    401: "User not found.",
    402: "Insufficient credits. Add more using https://openrouter.ai/credits",
    403: "Forbidden",
    404: "No endpoints found for this model.",
    408: "Request timed out",
    429: "Rate limit exceeded: free-models-per-min.",
    500: "Internal Server Error",
    502: "Provider returned error",
    503: "No instances available",
}


# --------------------------------------------------------------------------- scripted replies


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts and cost to report instead of the computed ones."""

    prompt_tokens: int
    completion_tokens: int
    cost: float


@dataclass(frozen=True, slots=True)
class TextReply:
    """An assistant text answer.

    Streaming sends ``chunks`` content deltas (the text split as evenly as possible) with ``delay``
    seconds between them; a non-streaming answer waits the same total time, then answers at once.
    """

    text: str
    chunks: int = 1
    delay: float = 0.0
    finish_reason: str = "stop"
    usage: Usage | None = None
    first_delay: float | None = None
    """Seconds before the first chunk, if not ``delay`` (e.g. 0 with a long ``delay``: a stream
    that shows its start, then stalls)."""
    reasoning: Reasoning | None = None
    """A reasoning model's thinking before the text (``tests.fakes.openrouter_reasoning``)."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call the model asks for; ``arguments`` is a JSON string or a mapping."""

    name: str
    arguments: str | Mapping[str, Any] = "{}"
    id: str | None = None

    @property
    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class ToolCallReply:
    """An assistant turn asking for one or more tool calls (``finish_reason: tool_calls``).

    Streaming splits each call's ``arguments`` into ``arg_chunks`` deltas (the first delta of a
    call carries ``id``, ``type`` and ``function.name`` with empty arguments, like OpenAI).
    """

    calls: Sequence[ToolCall]
    text: str = ""
    arg_chunks: int = 2
    delay: float = 0.0
    usage: Usage | None = None
    reasoning: Reasoning | None = None
    """A reasoning model's thinking before the calls; each call gets a thought signature."""

    @classmethod
    def single(
        cls, name: str, arguments: str | Mapping[str, Any] = "{}", *, id: str | None = None
    ) -> ToolCallReply:
        return cls(calls=(ToolCall(name, arguments, id),))


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An HTTP error with OpenRouter's body ``{"error": {"code", "message", "metadata"?}}``.

    ``retry_after`` (seconds) becomes a ``Retry-After`` header (OpenRouter sends it on 429/503).
    """

    status: int
    message: str | None = None
    retry_after: float | None = None
    metadata: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class HangReply:
    """Send nothing for ``seconds`` (``None``: until the client goes away or the fake stops), then
    answer with ``then`` (``None``: the default responder, not the queue)."""

    seconds: float | None = None
    then: Reply | None = None


@dataclass(frozen=True, slots=True)
class MidStreamErrorReply:
    """Stream ``text`` in ``chunks`` deltas, then an SSE error chunk and close (no ``[DONE]``).

    The error chunk is OpenRouter's: ``{"id", "object", ..., "error": {"code", "message"},
    "choices": [{"delta": {"content": ""}, "finish_reason": "error"}]}``. A non-streaming request
    gets the error as an HTTP status instead (``code`` if it is an int, else 502).
    """

    text: str = "partial answer"
    chunks: int = 2
    code: int | str = 502
    message: str = "Provider disconnected unexpectedly"
    delay: float = 0.0


Reply = TextReply | ToolCallReply | ErrorReply | HangReply | MidStreamErrorReply
Responder = Callable[[JSONDict], "Reply | str | Awaitable[Reply | str]"]
"""Called with the parsed request body when the queue is empty; may be async."""

_KINDS: Final[Mapping[type, str]] = {
    TextReply: "text",
    ToolCallReply: "tool_calls",
    ErrorReply: "error",
    HangReply: "hang",
    MidStreamErrorReply: "mid_stream_error",
}


def last_user_text(body: Mapping[str, Any]) -> str:
    """The text of the last ``user`` message (string content or the ``text`` parts joined)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(
                str(part.get("text", ""))
                for part in content
                if isinstance(part, dict) and part.get("type") == "text"
            )
        return ""
    return ""


def echo_responder(body: JSONDict) -> Reply:
    """The default responder: ``"echo: <last user text>"``."""
    return TextReply(f"echo: {last_user_text(body)}")


# --------------------------------------------------------------------------- files (PDF parsing)

DOCUMENT_ANSWER_CHARS: Final = 500
DEFAULT_PDF_ENGINE: Final = "native"


@dataclass(frozen=True, slots=True)
class DocumentFile:
    """A file a request carried, with its text (parsed now, or taken from an annotation)."""

    hash: str
    """Hex sha256 of the decoded bytes (the ``hash`` of OpenRouter's file annotation)."""
    name: str
    text: str
    parsed: bool
    """Parsed by this request (``False``: an assistant annotation made parsing unnecessary)."""


def file_annotation(file: DocumentFile) -> JSONDict:
    """OpenRouter's annotation for a parsed file, as sent on the assistant message."""
    return {
        "type": "file",
        "file": {
            "hash": file.hash,
            "name": file.name,
            "content": [{"type": "text", "text": file.text}],
        },
    }


@dataclass(frozen=True, slots=True)
class _Files:
    documents: list[DocumentFile]
    data_chars: int
    """Total length of the ``file_data`` strings (the prompt counts the text instead)."""


def _annotated_files(messages: list[Any]) -> dict[str, str]:
    """Hash -> text of the file annotations on the request's assistant messages."""
    known: dict[str, str] = {}
    for message in messages:
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        annotations = message.get("annotations")
        if not isinstance(annotations, list):
            continue
        for annotation in annotations:
            if not isinstance(annotation, dict) or annotation.get("type") != "file":
                continue
            file = annotation.get("file")
            if not isinstance(file, dict) or not isinstance(file.get("hash"), str):
                continue
            content = file.get("content")
            parts = content if isinstance(content, list) else []
            known[file["hash"]] = "".join(
                str(p.get("text", "")) for p in parts if isinstance(p, dict)
            )
    return known


def _file_parts(messages: list[Any]) -> list[tuple[str, str]]:
    """(filename, base64 payload) of the inline file parts of user messages, in order.

    Only ``file_data`` data URLs count; parts with a ``file_id`` or a remote URL are ignored.
    """
    found: list[tuple[str, str]] = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "file":
                continue
            file = part.get("file")
            if not isinstance(file, dict) or file.get("file_id") is not None:
                continue
            data = file.get("file_data")
            if not isinstance(data, str) or not data.startswith("data:"):
                continue
            header, sep, payload = data.partition(",")
            if not sep or not header.endswith(";base64"):
                continue
            found.append((str(file.get("filename") or "document.pdf"), payload))
    return found


def pdf_engine(body: Mapping[str, Any]) -> str:
    """The engine the ``file-parser`` plugin asks for (``"native"`` without one)."""
    plugins = body.get("plugins")
    for plugin in plugins if isinstance(plugins, list) else []:
        if isinstance(plugin, dict) and plugin.get("id") == "file-parser":
            pdf = plugin.get("pdf")
            if isinstance(pdf, dict) and isinstance(pdf.get("engine"), str):
                return str(pdf["engine"])
    return DEFAULT_PDF_ENGINE


def _read_files(body: JSONDict) -> _Files | ErrorReply:
    """The request's files, parsed unless annotated; OpenRouter's 400 for a file it can't parse."""
    messages = body["messages"]
    parts = _file_parts(messages)
    if not parts:
        return _Files([], 0)
    known = _annotated_files(messages)
    documents: dict[str, DocumentFile] = {}
    for name, payload in parts:
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            return ErrorReply(400, f"Failed to parse {name}: invalid base64 file_data")
        digest = hashlib.sha256(data).hexdigest()
        if digest in documents:
            continue
        if digest in known:
            documents[digest] = DocumentFile(digest, name, known[digest], parsed=False)
            continue
        text = pdf_text(data) if data.startswith(PDF_MAGIC) else None
        if text is None:
            return ErrorReply(400, f"Failed to parse {name}: not a PDF")
        if is_encrypted(data):
            return ErrorReply(400, f"Failed to parse {name}: PDF is encrypted")
        documents[digest] = DocumentFile(digest, name, text, parsed=True)
    return _Files(list(documents.values()), sum(len(p) for _, p in parts))


def document_answer(documents: Sequence[DocumentFile], body: Mapping[str, Any]) -> str:
    """The default answer to a request with files: ``"From x.pdf: <text> | Q: <question>"``."""
    sources = " | ".join(f"From {d.name}: {d.text[:DOCUMENT_ANSWER_CHARS]}" for d in documents)
    return f"{sources} | Q: {last_user_text(body)}"


# --------------------------------------------------------------------------- records


@dataclass(slots=True)
class RecordedRequest:
    """One request as received. ``headers`` has secret values (``Authorization``) redacted."""

    method: str
    path: str
    headers: dict[str, str]
    body: JSONDict | None
    received_at: float
    authorized: bool = False
    stream: bool = False
    served_model: str | None = None
    """The model that answered (differs from ``body["model"]`` after a ``models`` fallback)."""
    reply: str | None = None
    """Kind of reply used: ``text``, ``tool_calls``, ``error``, ``hang``, ``mid_stream_error``."""
    status: int | None = None
    usage: JSONDict | None = None
    """The ``usage`` object sent back (with ``cost``), if any."""
    disconnected: bool = False
    """The client went away before the reply was complete."""
    finished_at: float | None = None
    first_text_at: float | None = None
    """When the first text delta of a streamed answer was written (``time.monotonic()``): how
    soon a client could show text, measured where the model sends it."""
    body_bytes: int = 0
    """Size of the request body as received (recorded even with ``record_bodies=False``)."""
    files: list[str] = field(default_factory=list)
    """Hashes (hex sha256) of the inline files the request carried, each once."""
    parsed: list[str] = field(default_factory=list)
    """Hashes of the files this request made the fake parse (not already annotated)."""
    finished: asyncio.Event = field(default_factory=asyncio.Event, repr=False, compare=False)
    """Set once the fake is done with the request (answered, failed or client gone)."""

    @property
    def model(self) -> str | None:
        if self.body is None:
            return None
        model = self.body.get("model")
        return model if isinstance(model, str) else None


@dataclass(slots=True)
class Counters:
    requests: int = 0
    chat_completions: int = 0
    streams: int = 0
    unauthorized: int = 0
    disconnects: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    replies: Counter[str] = field(default_factory=Counter)
    parses: int = 0
    """Files parsed (PDF to text); a file annotated in the request is not parsed again."""
    parse_failures: int = 0
    """Files answered with a 400 (not a PDF, encrypted, bad base64)."""
    web_results: int = 0
    """Web results returned (and billed) by requests with the web plugin."""


# --------------------------------------------------------------------------- the server


class FakeOpenRouter(LoopbackServer):
    """An OpenRouter look-alike on ``127.0.0.1`` (ephemeral port unless ``port`` is given).

    ``base_url`` (``http://127.0.0.1:PORT/api/v1``) is the clients' ``base_url`` / ``api_base``.
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        port: int = 0,
        latency: float = 0.0,
        default_responder: Responder = echo_responder,
        models: Sequence[str] = DEFAULT_MODELS,
        provider: str = "OpenAI",
        prompt_price: float = DEFAULT_PROMPT_PRICE,
        completion_price: float = DEFAULT_COMPLETION_PRICE,
        processing_comments: bool = False,
        record_bodies: bool = True,
    ) -> None:
        self.api_key = api_key
        """The one key accepted (``Authorization: Bearer <key>``); anything else gets a 401."""
        self.latency = latency
        """Seconds before the first byte of every chat completion (mutable while running)."""
        self.default_responder: Responder = default_responder
        self.models = tuple(models)
        self.provider = provider
        self.prompt_price = prompt_price
        self.completion_price = completion_price
        self.processing_comments = processing_comments
        """Send ``: OPENROUTER PROCESSING`` before a stream's first chunk, as OpenRouter does."""
        self.record_bodies = record_bodies
        """Keep parsed bodies in ``requests`` (turn off for long benchmarks to save memory)."""
        self.require_reasoning_replay = False
        """Refuse (400) a request whose assistant tool-call message lacks the
        ``reasoning_details`` that call came with, as Gemini's thought signatures require."""
        self.issued_reasoning: dict[str, list[JSONDict]] = {}
        """Tool call id -> the ``reasoning_details`` its assistant message was answered with."""
        self.requests: list[RecordedRequest] = []
        self.counters = Counters()
        self.parse_engines: list[str] = []
        """The ``file-parser`` engine of every parse, in order (``"native"`` without a plugin)."""
        self.web_pages: list[WebPage] = list(DEFAULT_PAGES)
        """What a web search finds, best first (a request gets its ``max_results`` first)."""
        super().__init__(port=port)
        self._queue: deque[Reply] = deque()
        self._model_queues: dict[str, deque[Reply]] = {}
        self._stopping = asyncio.Event()
        self._new_request = asyncio.Event()
        self._ids = itertools.count(1)

    # ----------------------------------------------------------------- lifecycle

    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post(f"{API_PREFIX}/chat/completions", self._handle_chat)
        app.router.add_get(f"{API_PREFIX}/models", self._handle_models)
        app.router.add_get(f"{API_PREFIX}/models/user", self._handle_models)
        app.router.add_get(f"{API_PREFIX}/key", self._handle_key)
        return app

    def _runner_options(self) -> dict[str, Any]:
        return {"handler_cancellation": True}  # a client that leaves cancels its handler

    def _site_options(self) -> dict[str, Any]:
        return {"backlog": 2048}

    async def _on_started(self) -> None:
        self._stopping = asyncio.Event()  # fresh events: a restart may be on another loop
        self._new_request = asyncio.Event()

    async def _on_stopping(self) -> None:
        self._stopping.set()  # releases requests stuck in a HangReply

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    # ----------------------------------------------------------------- scripting

    def enqueue(self, *replies: Reply | str, model: str | None = None) -> None:
        """Append replies (a ``str`` means ``TextReply(str)``) to the FIFO queue.

        With ``model`` (``"openai/gpt-5-mini"``; an ``openrouter/`` prefix is ignored) they are
        used only for requests to that model, before the shared queue.
        """
        queue = self._queue if model is None else self._model_queue(model)
        queue.extend(TextReply(r) if isinstance(r, str) else r for r in replies)

    def pending(self, model: str | None = None) -> int:
        """How many scripted replies are left (shared queue, or the one for ``model``)."""
        if model is None:
            return len(self._queue)
        return len(self._model_queues.get(_bare_model(model), ()))

    def reset(self) -> None:
        """Forget scripted replies, recorded requests and counters (keeps settings)."""
        self._queue.clear()
        self._model_queues.clear()
        self.requests.clear()
        self.parse_engines.clear()
        self.issued_reasoning.clear()
        in_flight = self.counters.in_flight
        self.counters = Counters(in_flight=in_flight, max_in_flight=in_flight)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def last_request(self) -> RecordedRequest:
        if not self.requests:
            raise LookupError("no request recorded yet")
        return self.requests[-1]

    async def wait_for_requests(self, count: int) -> None:
        """Wait until at least ``count`` requests were received (e.g. to act during a hang).

        Wrap it in ``asyncio.timeout(...)``: it waits for ever otherwise.
        """
        while len(self.requests) < count:
            self._new_request.clear()
            await self._new_request.wait()

    def _model_queue(self, model: str) -> deque[Reply]:
        return self._model_queues.setdefault(_bare_model(model), deque())

    async def _pick(self, body: JSONDict, files: _Files) -> tuple[str, Reply]:
        """The reply for this request and the model that gives it.

        Order: the model's own queue, then the shared queue, then the default responder.
        OpenRouter's ``models`` fallback list is honoured: a scripted ``ErrorReply`` in one model's
        queue moves on to the next model of the list, as OpenRouter does server-side.
        """
        candidates = [_bare_model(str(body.get("model") or self.models[0]))]
        fallbacks = body.get("models")
        if isinstance(fallbacks, list):
            candidates += [
                m for m in map(_bare_model, filter(_is_str, fallbacks)) if m not in candidates
            ]
        for i, model in enumerate(candidates):
            queue = self._model_queues.get(model)
            if not queue:
                return model, await self._shared_or_default(body, files)
            reply = queue.popleft()
            if isinstance(reply, ErrorReply) and i + 1 < len(candidates):
                continue
            return model, reply
        raise AssertionError("unreachable: the last candidate always answers")

    async def _shared_or_default(self, body: JSONDict, files: _Files) -> Reply:
        if self._queue:
            return self._queue.popleft()
        return await self._default(body, files)

    async def _default(self, body: JSONDict, files: _Files) -> Reply:
        if files.documents and self.default_responder is echo_responder:
            return TextReply(document_answer(files.documents, body))
        reply = self.default_responder(body)
        if inspect.isawaitable(reply):
            reply = await reply
        return TextReply(reply) if isinstance(reply, str) else reply

    # ----------------------------------------------------------------- handlers

    async def _handle_key(self, request: web.Request) -> web.Response:
        """``GET /key``: the calling key's details (OpenRouter's "Get current API key")."""
        record = self._record(request)
        if not record.authorized:
            return self._error_response(record, ErrorReply(401, "User not found."))
        record.status = 200
        key = self.api_key
        return web.json_response(
            {
                "data": {
                    "label": f"{key[:10]}...{key[-3:]}",
                    "limit": None,
                    "limit_remaining": None,
                    "limit_reset": None,
                    "usage": 0.0,
                    "usage_daily": 0.0,
                    "usage_weekly": 0.0,
                    "usage_monthly": 0.0,
                    "is_free_tier": False,
                    "is_provisioning_key": False,
                    "include_byok_in_limit": False,
                }
            }
        )

    async def _handle_models(self, request: web.Request) -> web.Response:
        self._record(request)
        prompt, completion = f"{self.prompt_price:.10f}", f"{self.completion_price:.10f}"
        data = [
            {
                "id": m,
                "canonical_slug": m,
                "name": m,
                "created": 1_700_000_000,
                "context_length": 400_000,
                "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
                "pricing": {"prompt": prompt, "completion": completion},
                "supported_parameters": ["tools", "tool_choice", "temperature", "max_tokens"],
            }
            for m in self.models
        ]
        return web.json_response({"data": data})

    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        counters = self.counters
        counters.chat_completions += 1
        counters.in_flight += 1
        counters.max_in_flight = max(counters.max_in_flight, counters.in_flight)
        record = self._record(request)
        try:
            raw = await request.read()
            record.body_bytes = len(raw)
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            if self.record_bodies:
                record.body = body if isinstance(body, dict) else None
            if self.latency > 0:
                await asyncio.sleep(self.latency)
            if not record.authorized:
                counters.unauthorized += 1
                missing = "authorization" not in {k.lower() for k in request.headers}
                message = "No auth credentials found" if missing else "User not found."
                return self._error_response(record, ErrorReply(401, message))
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                return self._error_response(
                    record, ErrorReply(400, "Input required: specify 'messages' as a list")
                )
            record.stream = bool(body.get("stream"))
            if record.stream:
                counters.streams += 1
            files = _read_files(body)
            if isinstance(files, ErrorReply):
                counters.parse_failures += 1
                return self._error_response(record, files)
            record.files = [d.hash for d in files.documents]
            record.parsed = [d.hash for d in files.documents if d.parsed]
            counters.parses += len(record.parsed)
            self.parse_engines += [pdf_engine(body)] * len(record.parsed)
            if self.require_reasoning_replay:
                problem = replay_problem(body, self.issued_reasoning)
                if problem is not None:
                    message, metadata = problem
                    return self._error_response(record, ErrorReply(400, message, None, metadata))
            model, reply = await self._pick(body, files)
            record.served_model = model
            return await self._answer(request, record, body, files, model, reply)
        except asyncio.CancelledError:
            # handler_cancellation=True: the client disconnected while we were waiting.
            record.disconnected = True
            counters.disconnects += 1
            raise
        finally:
            counters.in_flight -= 1
            record.finished_at = time.monotonic()
            record.finished.set()
            if record.status is not None:
                counters.statuses[record.status] += 1
            if record.reply is not None:
                counters.replies[record.reply] += 1

    async def _answer(
        self,
        request: web.Request,
        record: RecordedRequest,
        body: JSONDict,
        files: _Files,
        model: str,
        reply: Reply,
    ) -> web.StreamResponse:
        while isinstance(reply, HangReply):
            record.reply = "hang"  # kept as the kind even if it answers later
            if reply.seconds is None:
                await self._stopping.wait()
                return self._error_response(record, ErrorReply(503, "fake server stopping"))
            await asyncio.sleep(reply.seconds)
            reply = reply.then if reply.then is not None else await self._default(body, files)
        if record.reply is None:
            record.reply = _KINDS[type(reply)]
        if isinstance(reply, ErrorReply):
            return self._error_response(record, reply)
        if isinstance(reply, MidStreamErrorReply) and not record.stream:
            status = reply.code if isinstance(reply.code, int) else 502
            return self._error_response(record, ErrorReply(status, reply.message))
        if record.stream:
            return await self._stream(request, record, body, files, model, reply)
        assert not isinstance(reply, MidStreamErrorReply)
        return await self._json(record, body, files, model, reply)

    # ----------------------------------------------------------------- response builders

    def _record(self, request: web.Request) -> RecordedRequest:
        self.counters.requests += 1
        auth = request.headers.get("Authorization", "")
        headers = {
            k: (_redact(v) if k.lower() in _SECRET_HEADERS else v)
            for k, v in request.headers.items()
        }
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            headers=headers,
            body=None,
            received_at=time.monotonic(),
            authorized=secrets.compare_digest(auth.encode(), f"Bearer {self.api_key}".encode()),
        )
        self.requests.append(record)
        self._new_request.set()
        return record

    def _error_response(self, record: RecordedRequest, error: ErrorReply) -> web.Response:
        payload: JSONDict = {
            "code": error.status,
            "message": error.message or _ERROR_MESSAGES.get(error.status, "Error"),
        }
        if error.metadata is not None:
            payload["metadata"] = dict(error.metadata)
        headers: dict[str, str] = {}
        if error.retry_after is not None:
            ra = error.retry_after
            headers["Retry-After"] = str(int(ra)) if float(ra).is_integer() else str(ra)
        record.status = error.status
        if record.reply is None:
            record.reply = "error"
        body: JSONDict = {"error": payload}
        if error.status != 401:
            body["user_id"] = "user_fake"
        return web.json_response(body, status=error.status, headers=headers)

    def _call_ids(self, reply: Reply) -> list[str]:
        """Ids for a reply's tool calls; those answered with reasoning are remembered with it
        (``issued_reasoning``)."""
        if not isinstance(reply, ToolCallReply):
            return []
        ids = [call.id or f"call_{secrets.token_hex(12)}" for call in reply.calls]
        if reply.reasoning is not None:
            details = reasoning_details(reply.reasoning, ids)
            self.issued_reasoning.update((call_id, details) for call_id in ids)
        return ids

    def _usage(
        self,
        body: JSONDict,
        files: _Files,
        completion_text: str,
        override: Usage | None,
        reasoning: Reasoning | None = None,
        results: Sequence[WebPage] = (),
    ) -> JSONDict:
        if override is not None:
            prompt_tokens, completion_tokens = override.prompt_tokens, override.completion_tokens
            cost = override.cost
        else:
            prompt_chars = len(json.dumps(body.get("messages", []), separators=(",", ":")))
            # The model reads a file's text, not its base64 bytes.
            prompt_chars += sum(len(d.text) for d in files.documents) - files.data_chars
            prompt_tokens = max(1, prompt_chars // 4)
            completion_tokens = max(1, len(completion_text) // 4)
            cost = prompt_tokens * self.prompt_price + completion_tokens * self.completion_price
        if reasoning is not None and override is None:
            cost += reasoning.token_count * self.completion_price
        cost += search_cost(results)  # OpenRouter's cost includes the plugin's
        prompt_cost = prompt_tokens * self.prompt_price
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "cost": round(cost, 12),
            "is_byok": False,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "cost_details": {
                "upstream_inference_cost": None,
                "upstream_inference_prompt_cost": round(prompt_cost, 12),
                "upstream_inference_completions_cost": round(max(0.0, cost - prompt_cost), 12),
            },
            "completion_tokens_details": {"reasoning_tokens": 0, "image_tokens": 0},
        }
        return usage if override is not None else reasoning_usage(usage, reasoning)

    def _search(self, body: JSONDict) -> list[WebPage]:
        results = searched(self.web_pages, body)
        self.counters.web_results += len(results)
        return results

    def _new_id(self) -> str:
        return f"gen-{int(time.time())}-{next(self._ids):06d}{secrets.token_hex(4)}"

    async def _json(
        self,
        record: RecordedRequest,
        body: JSONDict,
        files: _Files,
        model: str,
        reply: TextReply | ToolCallReply,
    ) -> web.Response:
        call_ids = self._call_ids(reply)
        if isinstance(reply, TextReply):
            wait = reply.delay * max(0, reply.chunks - 1)
            message: JSONDict = {"role": "assistant", "content": reply.text, "refusal": None}
            finish = reply.finish_reason
            generated = reply.text
        else:
            wait = reply.delay * max(0, reply.arg_chunks - 1) * len(reply.calls)
            calls = [
                _tool_call_json(i, call, call_id)
                for i, (call, call_id) in enumerate(zip(reply.calls, call_ids, strict=True))
            ]
            message = {
                "role": "assistant",
                "content": reply.text or None,
                "refusal": None,
                "tool_calls": calls,
            }
            finish = "tool_calls"
            generated = reply.text + "".join(c.name + c.arguments_json for c in reply.calls)
        if wait > 0:
            await asyncio.sleep(wait)
        message["reasoning"] = None
        if reply.reasoning is not None:
            message["reasoning"] = reply.reasoning.text
            message["reasoning_details"] = reasoning_details(reply.reasoning, call_ids)
        results = self._search(body)
        annotations = _annotations(files) + url_citations(results, reply.text)
        if annotations:
            message["annotations"] = annotations
        usage = self._usage(body, files, generated, reply.usage, reply.reasoning, results)
        gen_id = self._new_id()
        payload: JSONDict = {
            "id": gen_id,
            "provider": self.provider,
            "model": model,
            "object": "chat.completion",
            "created": int(time.time()),
            "choices": [
                {
                    "logprobs": None,
                    "finish_reason": finish,
                    "native_finish_reason": finish,
                    "index": 0,
                    "message": message,
                }
            ],
            "usage": usage,
        }
        record.status = 200
        record.usage = usage
        return web.json_response(payload, headers={"X-Generation-Id": gen_id})

    async def _stream(
        self,
        request: web.Request,
        record: RecordedRequest,
        body: JSONDict,
        files: _Files,
        model: str,
        reply: TextReply | ToolCallReply | MidStreamErrorReply,
    ) -> web.StreamResponse:
        options = body.get("stream_options")
        usage_opt = body.get("usage")
        include_usage = (isinstance(options, dict) and bool(options.get("include_usage"))) or (
            isinstance(usage_opt, dict) and bool(usage_opt.get("include"))
        )
        gen_id = self._new_id()
        base: JSONDict = {
            "id": gen_id,
            "provider": self.provider,
            "model": model,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
        }

        def chunk(delta: JSONDict, finish: str | None = None) -> bytes:
            choice = {
                "index": 0,
                "delta": delta,
                "finish_reason": finish,
                "native_finish_reason": finish,
                "logprobs": None,
            }
            payload = {**base, "choices": [choice]}
            if include_usage:
                payload["usage"] = None
            return _sse(payload)

        # Each step: (bytes, seconds to wait before sending them); waits flush what came before.
        steps: list[tuple[bytes, float]] = []
        if self.processing_comments:
            steps.append((b": OPENROUTER PROCESSING\n\n", 0.0))
        first: JSONDict = {"role": "assistant", "content": ""}
        annotations = _annotations(files)
        if annotations:
            first["annotations"] = annotations
        steps.append((chunk(first), 0.0))
        delay = reply.delay
        generated = ""
        reasoning = None if isinstance(reply, MidStreamErrorReply) else reply.reasoning
        call_ids = self._call_ids(reply)
        if reasoning is not None:
            pieces = _split(reasoning.text, reasoning.chunks)
            for delta in reasoning_deltas(reasoning, call_ids, pieces):
                steps.append((chunk(delta), delay))
        first_text = len(steps) if reply.text else None  # the step with the first text
        if isinstance(reply, TextReply | MidStreamErrorReply):
            for i, piece in enumerate(_split(reply.text, reply.chunks)):
                first_delay = getattr(reply, "first_delay", None)
                wait = first_delay if i == 0 and first_delay is not None else delay
                steps.append((chunk({"content": piece}), wait))
            generated = reply.text
        else:
            if reply.text:
                steps.append((chunk({"content": reply.text}), delay))
            for i, (call, call_id) in enumerate(zip(reply.calls, call_ids, strict=True)):
                head = {
                    "index": i,
                    "id": call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": ""},
                }
                steps.append((chunk({"tool_calls": [head]}), delay))
                for piece in _split(call.arguments_json, reply.arg_chunks):
                    part = {"index": i, "function": {"arguments": piece}}
                    steps.append((chunk({"tool_calls": [part]}), delay))
            generated = reply.text + "".join(c.name + c.arguments_json for c in reply.calls)
        results = self._search(body)
        if isinstance(reply, MidStreamErrorReply):
            error_payload = {
                **base,
                "error": {"code": reply.code, "message": reply.message},
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": ""},
                        "finish_reason": "error",
                        "native_finish_reason": "error",
                    }
                ],
            }
            steps.append((_sse(error_payload), 0.0))
        else:
            citations = url_citations(results, reply.text)
            if citations:  # after the text they cite, on a delta of their own
                steps.append((chunk({"content": "", "annotations": citations}), 0.0))
            finish = reply.finish_reason if isinstance(reply, TextReply) else "tool_calls"
            steps.append((chunk({}, finish), 0.0))
            if include_usage:
                usage = self._usage(body, files, generated, reply.usage, reasoning, results)
                record.usage = usage
                steps.append((_sse({**base, "choices": [], "usage": usage}), 0.0))
            steps.append((b"data: [DONE]\n\n", 0.0))

        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Generation-Id": gen_id,
            },
        )
        record.status = 200
        await response.prepare(request)
        try:
            pending: list[bytes] = []
            text_pending = False
            for i, (data, wait) in enumerate(steps):
                if wait > 0 and pending:
                    await response.write(b"".join(pending))
                    pending.clear()
                    if text_pending:
                        record.first_text_at, text_pending = time.monotonic(), False
                    await asyncio.sleep(wait)
                pending.append(data)
                text_pending = text_pending or i == first_text
            await response.write(b"".join(pending))
            if text_pending:
                record.first_text_at = time.monotonic()
            await response.write_eof()
        except ConnectionError:
            record.disconnected = True
            self.counters.disconnects += 1
        return response


# --------------------------------------------------------------------------- helpers


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _bare_model(model: str) -> str:
    return model.removeprefix("openrouter/")


def _redact(value: str) -> str:
    scheme, sep, _ = value.partition(" ")
    return f"{scheme} {REDACTED}" if sep and scheme.lower() == "bearer" else REDACTED


def _sse(payload: JSONDict) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _split(text: str, parts: int) -> list[str]:
    """``text`` in ``parts`` pieces of near-equal length (fewer if the text is shorter)."""
    if not text:
        return []
    parts = max(1, min(parts, len(text)))
    size, extra = divmod(len(text), parts)
    pieces, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


def _annotations(files: _Files) -> list[JSONDict]:
    return [file_annotation(d) for d in files.documents if d.parsed]


def _tool_call_json(index: int, call: ToolCall, call_id: str) -> JSONDict:
    return {
        "id": call_id,
        "index": index,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments_json},
    }


# --------------------------------------------------------------------------- standalone


async def _serve(port: int, latency: float, api_key: str) -> None:
    async with FakeOpenRouter(port=port, latency=latency, api_key=api_key) as fake:
        print(f"fake OpenRouter at {fake.base_url} (key {api_key!r}); Ctrl-C to stop", flush=True)
        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the fake OpenRouter on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, args.latency, args.api_key))


if __name__ == "__main__":
    main()
