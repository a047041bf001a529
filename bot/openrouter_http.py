"""OpenRouter over HTTP: one request (``post_completion``), a streamed response's server-sent
events (``SSEReader``), the errors both raise (``bot.errors`` classifies them), and each call's
cost reported to the turn (``TurnStats``, through ``TURN_STATS``).

``bot.openrouter_model`` builds the model on these; the document reader's file-parser call
uses ``post_completion`` directly.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

from bot.turn_stats import TURN_STATS

log = logging.getLogger(__name__)

PROVIDER_PREFIX = "openrouter/"
MAX_EVENT_BYTES = 16 * 1024 * 1024
"""A streamed line longer than this is a broken stream, not a chunk to keep reading."""


class ModelHTTPError(Exception):
    """OpenRouter answered with an error status (or sent an error in the stream)."""

    def __init__(self, status_code: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(f"OpenRouter error {status_code}: {message}")
        self.status_code = status_code
        self.headers = dict(headers or {})


class ModelConnectionError(Exception):
    """The connection to OpenRouter failed or broke before the answer was complete."""


def wire_model(name: str) -> str:
    """The id OpenRouter expects: ``openrouter/openai/gpt-5-mini`` -> ``openai/gpt-5-mini``."""
    return name.removeprefix(PROVIDER_PREFIX)


async def post_completion(
    session: aiohttp.ClientSession,
    *,
    base_url: str,
    api_key: str,
    body: dict[str, Any],
    headers: Mapping[str, str],
    timeout_s: float,
) -> dict[str, Any]:
    """One chat completion, not streamed: OpenRouter's JSON answer, its cost reported to the
    turn. Failures raise ``ModelHTTPError`` or ``ModelConnectionError`` (``bot.errors`` knows
    both). The document reader's file-parser call uses it, on the tools' session."""
    call_started()
    post = Post(
        session,
        base_url=base_url,
        api_key=api_key,
        body=body,
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=timeout_s),
    )
    async with post as response:
        try:
            payload = json.loads(await response.read())
        except aiohttp.ClientError as exc:
            raise ModelConnectionError(f"OpenRouter connection failed: {exc}") from exc
    if not isinstance(payload, dict):
        raise ModelHTTPError(502, "the response is not a JSON object")
    if isinstance(payload.get("error"), dict):
        raise stream_error(payload["error"])
    if not report_cost(payload.get("usage")):
        report_cost({})
    return payload


class Post:
    """``async with`` one POST of ``body`` to ``{base_url}/chat/completions``: the response once
    its status is known to be a success. The key goes in the Authorization header only (a
    DEBUG line shows the request with it masked); OpenRouter is asked for the call's cost."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: str,
        body: dict[str, Any],
        headers: Mapping[str, str],
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> None:
        url = base_url.rstrip("/") + "/chat/completions"
        sent = {**headers, "Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "model request: POST %s model=%s stream=%s headers=%s",
                url,
                body.get("model"),
                bool(body.get("stream")),
                {**sent, "Authorization": "Bearer ***"},
            )
        data = json.dumps({"usage": {"include": True}, **body}, default=_jsonable)
        if timeout is None:  # the session's
            self._request = session.post(url, data=data, headers=sent)
        else:
            self._request = session.post(url, data=data, headers=sent, timeout=timeout)

    async def __aenter__(self) -> aiohttp.ClientResponse:
        try:
            response = await self._request.__aenter__()
        except aiohttp.ClientError as exc:
            raise ModelConnectionError(f"OpenRouter connection failed: {exc}") from exc
        if response.status >= 400:
            try:
                payload = await response.json(content_type=None)
                error = payload.get("error") if isinstance(payload, dict) else None
                message = str(error.get("message")) if isinstance(error, dict) else str(payload)
            except (aiohttp.ClientError, ValueError):
                message = response.reason or "no details"
            await self._request.__aexit__(None, None, None)
            raise ModelHTTPError(response.status, message, response.headers)
        return response

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._request.__aexit__(*exc_info)


class SSEReader:
    """Server-sent events from a response: each read gives the JSON payloads of the events that
    have arrived complete (waiting for some if none has), or None at the end."""

    def __init__(self, http: aiohttp.ClientResponse, *, idle_s: float) -> None:
        self._content = http.content
        self._idle_s = idle_s
        self._tail = b""
        self._data: list[bytes] = []
        self._done = False

    async def gather(self, seconds: float) -> None:
        """Let the stream gather for up to ``seconds``, less if it ends (its last chunks, the
        finish and the usage, are not held back). A failure meanwhile is raised by ``read``."""
        if seconds <= 0:
            return
        window = asyncio.timeout(seconds)
        try:
            async with window:
                await self._content.wait_eof()
        except (TimeoutError, aiohttp.ClientError):
            pass

    async def read(self) -> list[dict[str, Any]] | None:
        events: list[dict[str, Any]] = []
        while not events:
            if self._done:
                return None
            try:
                async with asyncio.timeout(self._idle_s):  # the provider went silent: TIMEOUT
                    block = await self._content.readany()  # all that is buffered, or the next
            except TimeoutError:
                raise
            except aiohttp.ClientError as exc:
                raise ModelConnectionError(f"OpenRouter stream broke: {exc}") from exc
            if not block:
                self._done = True
                return events or None
            lines = (self._tail + block).split(b"\n")
            self._tail = lines.pop()
            if len(self._tail) > MAX_EVENT_BYTES:
                raise ModelHTTPError(502, "the stream sent a line without end")
            for line in lines:
                line = line.rstrip(b"\r")
                if not line:  # an event ends
                    if self._data:
                        payload = b"\n".join(self._data)
                        self._data = []
                        if payload == b"[DONE]":
                            self._done = True
                            break
                        parsed = json.loads(payload)
                        if isinstance(parsed, dict):
                            events.append(parsed)
                elif line.startswith(b"data:"):
                    self._data.append(line[5:].lstrip(b" "))
                # comments (": OPENROUTER PROCESSING") and other fields are ignored
        return events


def stream_error(error: dict[str, Any]) -> ModelHTTPError:
    code = error.get("code")
    status = code if isinstance(code, int) and 400 <= code < 600 else 502
    return ModelHTTPError(status, str(error.get("message") or "the provider failed"))


def call_started() -> None:
    stats = TURN_STATS.get()
    if stats is not None:
        stats.calls_started += 1


def report_cost(usage: Any) -> bool:
    """Add a usage object's ``cost`` to the turn; False if ``usage`` is no usage object."""
    if not isinstance(usage, dict):
        return False
    stats = TURN_STATS.get()
    if stats is not None:
        cost = usage.get("cost")
        try:
            stats.add_cost(float(cost) if cost is not None else None)
        except (TypeError, ValueError):
            stats.add_cost(None)
    return True


def _jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(exclude_unset=True)
    if isinstance(value, set | tuple | frozenset) or hasattr(value, "__iter__"):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
