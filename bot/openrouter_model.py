"""A lean model on the Agents SDK's ``Model`` interface: OpenRouter's OpenAI-compatible chat
completions over one aiohttp session, its stream coalesced before the SDK sees it.

Why not ``LitellmModel`` or the ``openai`` client: both build several pydantic objects per
streamed chunk, and a real answer is one chunk per token. Measured on this project's 2-core
machines for a 500-token answer through Slack (``python -m bench.load --scenario answers``):
~200 ms of CPU through ``LitellmModel``, ~12 ms here (chunks back to back). The SDK's own
request converter and stream handler do the protocol work (tool calls, refusals, usage), so
this module only merges text; ``bot.openrouter_http`` moves the bytes and parses each SSE
line with ``json.loads``.

**Coalescing.** No platform renders more than once a second, so consecutive text deltas are
merged: the first text of a response goes out at once (first visible text is not delayed);
after anything is handed on, the stream is next read when ``coalesce_s`` has passed (or at
once when the response has ended), and all that came meanwhile is handed on together, text
merged. Reasoning deltas (``delta.reasoning``, a token per chunk too) are merged the same way,
apart from the answer's text; their ``reasoning_details`` blocks are joined on the side and
kept on the response's reasoning item (``bot.reasoning``), which the next request sends back.
Anything else (a tool call, the finish, usage, an error) goes after the text before it, so
order never changes, and text is never dropped: whatever is pending is handed on before the
stream ends or fails.

Cost: OpenRouter reports each call's ``usage.cost`` in the stream's last chunk (asked for with
``usage: {include: true}``); it goes straight to the turn's ``TurnStats``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from agents import ModelResponse, ModelSettings, ModelTracing, Usage
from agents.models.chatcmpl_converter import Converter
from agents.models.chatcmpl_stream_handler import ChatCmplStreamHandler
from agents.models.fake_id import FAKE_RESPONSES_ID
from agents.models.interface import Model
from agents.tracing import generation_span
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response
from openai.types.responses.response_usage import OutputTokensDetails

from bot import reasoning
from bot.openrouter_http import (
    ModelHTTPError,
    Post,
    SSEReader,
    call_started,
    post_completion,
    report_cost,
    stream_error,
    wire_model,
)

DEFAULT_COALESCE_S = 0.1
_TEXT_KEYS = frozenset({"content", "role"})
_REASONING_KEYS = frozenset({"reasoning", "reasoning_details", "content", "role"})


class OpenRouterModel(Model):
    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key: str,
        timeout_s: float = 90.0,
        coalesce_s: float = DEFAULT_COALESCE_S,
    ) -> None:
        self.model = wire_model(model)
        self._base_url = base_url
        self._timeout_s = timeout_s
        self._api_key = api_key
        # No sock_read: aiohttp re-arms that timer on every packet (a token, when streaming);
        # the stream's reads carry the idle timeout instead, one timer per read (SSEReader.read).
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
        self.coalesce_s = coalesce_s
        self._session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------ the SDK's interface

    async def get_response(
        self,
        system_instructions: str | None,
        input: Any,
        model_settings: ModelSettings,
        tools: list[Any],
        output_schema: Any,
        handoffs: list[Any],
        tracing: ModelTracing,
        *args: Any,
        **kwargs: Any,
    ) -> ModelResponse:
        body = self._body(
            system_instructions, input, model_settings, tools, output_schema, handoffs
        )
        with generation_span(model=self.model, disabled=tracing.is_disabled()) as span:
            payload = await post_completion(
                self._open_session(),
                base_url=self._base_url,
                api_key=self._api_key,
                body=body,
                headers=_str_headers(model_settings),
                timeout_s=self._timeout_s,
            )
            completion = ChatCompletion.model_validate(payload)
            usage = completion.usage
            if usage is not None:
                span.span_data.usage = {
                    "input_tokens": usage.prompt_tokens,
                    "output_tokens": usage.completion_tokens,
                }
        if not completion.choices:
            raise ModelHTTPError(502, "the response has no choices")
        message = completion.choices[0].message
        items = Converter.message_to_output_items(
            message, provider_data={"model": self.model, "response_id": completion.id}
        )
        details: list[dict[str, Any]] = []
        reasoning.merge_details(details, getattr(message, reasoning.DETAILS_KEY, None))
        details_of = usage.completion_tokens_details if usage else None
        return ModelResponse(
            output=reasoning.with_details(list(items), details, self.model),
            usage=Usage(
                requests=1,
                input_tokens=usage.prompt_tokens if usage else 0,
                output_tokens=usage.completion_tokens if usage else 0,
                total_tokens=usage.total_tokens if usage else 0,
                output_tokens_details=OutputTokensDetails(
                    reasoning_tokens=(details_of.reasoning_tokens or 0) if details_of else 0
                ),
            ),
            response_id=None,
        )

    async def stream_response(
        self,
        system_instructions: str | None,
        input: Any,
        model_settings: ModelSettings,
        tools: list[Any],
        output_schema: Any,
        handoffs: list[Any],
        tracing: ModelTracing,
        *args: Any,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        body = self._body(
            system_instructions, input, model_settings, tools, output_schema, handoffs
        )
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        call_started()
        response = Response(
            id=FAKE_RESPONSES_ID,
            created_at=time.time(),
            model=self.model,
            object="response",
            output=[],
            tool_choice="auto",
            top_p=model_settings.top_p,
            temperature=model_settings.temperature,
            tools=[],
            parallel_tool_calls=False,
        )
        with generation_span(model=self.model, disabled=tracing.is_disabled()) as span:
            async with self._post(body, model_settings) as http:
                details: list[dict[str, Any]] = []
                chunks = self._coalesced(http, details)
                async for event in ChatCmplStreamHandler.handle_stream(
                    response,
                    chunks,  # type: ignore[arg-type]  # the handler only iterates it
                    model=self.model,
                ):
                    if event.type == "response.completed":
                        # The stream has ended: every block is in.
                        event.response.output = reasoning.with_details(
                            list(event.response.output), details, self.model
                        )
                        if event.response.usage is not None:
                            span.span_data.usage = {
                                "input_tokens": event.response.usage.input_tokens,
                                "output_tokens": event.response.usage.output_tokens,
                            }
                    yield event

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    # ------------------------------------------------------------------ the request

    def _body(
        self,
        system_instructions: str | None,
        input: Any,
        model_settings: ModelSettings,
        tools: list[Any],
        output_schema: Any,
        handoffs: list[Any],
    ) -> dict[str, Any]:
        messages = reasoning.items_to_messages(input, model=self.model)
        if system_instructions:
            messages.insert(0, {"role": "system", "content": system_instructions})
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        converted = [Converter.tool_to_openai(tool) for tool in tools]
        converted += [Converter.convert_handoff_tool(handoff) for handoff in handoffs]
        if converted:
            body["tools"] = converted
            if model_settings.parallel_tool_calls is not None:
                body["parallel_tool_calls"] = model_settings.parallel_tool_calls
        choice = Converter.convert_tool_choice(model_settings.tool_choice)
        if isinstance(choice, str | dict):
            body["tool_choice"] = choice
        response_format = Converter.convert_response_format(output_schema)
        if isinstance(response_format, dict):
            body["response_format"] = response_format
        for key in ("temperature", "top_p", "frequency_penalty", "presence_penalty", "max_tokens"):
            value = getattr(model_settings, key)
            if value is not None:
                body[key] = value
        if model_settings.reasoning is not None and model_settings.reasoning.effort is not None:
            body["reasoning"] = {"effort": model_settings.reasoning.effort}
        if isinstance(model_settings.extra_body, dict):
            body.update(model_settings.extra_body)
        # ``timeout`` is litellm's name for the HTTP timeout; here the session has it.
        body.update({k: v for k, v in (model_settings.extra_args or {}).items() if k != "timeout"})
        return body

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # No connection cap (aiohttp's default is 100): the core's turn slots
            # (BOT_MAX_CONCURRENT_TURNS) bound the calls in flight, and a cap below them
            # queued turns the core counted as running.
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(limit=0)
            )
        return self._session

    def _post(self, body: dict[str, Any], model_settings: ModelSettings) -> Post:
        return Post(
            self._open_session(),
            base_url=self._base_url,
            api_key=self._api_key,
            body=body,
            headers=_str_headers(model_settings),
        )

    # ------------------------------------------------------------------ the stream

    async def _coalesced(
        self, http: aiohttp.ClientResponse, details: list[dict[str, Any]]
    ) -> AsyncIterator[ChatCompletionChunk]:
        """The stream's chunks, consecutive text deltas merged, and consecutive reasoning deltas
        merged (see the module's docstring); the ``reasoning_details`` blocks go to ``details``.

        Once something has been handed on, the next read waits for the window to close and
        then takes every byte that came meanwhile: one wake-up per window instead of one per
        chunk (a token every few ms), which is most of a streamed chunk's cost."""
        pending: dict[str, Any] | None = None  # a text or reasoning chunk being added to
        pending_key = "content"  # which of the two it is: the delta's key that is merged
        texts: list[str] = []
        cost_reported = False
        handed_at: float | None = None
        sse = SSEReader(http, idle_s=self._timeout_s)
        while True:
            if handed_at is not None:
                await sse.gather(handed_at + self.coalesce_s - time.monotonic())
            events = await sse.read()
            if events is None:
                break
            for chunk in events:
                key, text = _mergeable(chunk)
                if key == "reasoning":
                    reasoning.merge_details(
                        details, chunk["choices"][0]["delta"].get(reasoning.DETAILS_KEY)
                    )
                if key is not None and text is not None:
                    if pending is not None and key != pending_key:
                        if any(texts):
                            yield _merged(pending, pending_key, texts)
                        pending = None
                    if pending is None:
                        pending, pending_key, texts = chunk, key, [text]
                    else:
                        texts.append(text)
                    continue
                if pending is not None:  # text first: order is kept
                    yield _merged(pending, pending_key, texts)
                    pending = None
                if isinstance(chunk.get("error"), dict):
                    raise stream_error(chunk["error"])
                cost_reported |= report_cost(chunk.get("usage"))
                yield ChatCompletionChunk.model_validate(chunk)
                handed_at = time.monotonic()
            if pending is not None and any(texts):
                yield _merged(pending, pending_key, texts)
                pending, handed_at = None, time.monotonic()
        if pending is not None and (pending_key == "content" or any(texts)):
            yield _merged(pending, pending_key, texts)
        if not cost_reported:
            report_cost({})  # a call that reported no cost still counts as reported


def _mergeable(chunk: dict[str, Any]) -> tuple[str | None, str | None]:
    """``("content", text)`` for a chunk that is only answer text, ``("reasoning", text)``
    for one that is only reasoning (its text may be "": blocks only), else ``(None, None)``."""
    text = _text_of(chunk)
    if text is not None:
        return "content", text
    choices = chunk.get("choices")
    if chunk.get("usage") or not isinstance(choices, list) or len(choices) != 1:
        return None, None
    choice = choices[0]
    if not isinstance(choice, dict) or choice.get("index", 0) != 0:
        return None, None
    if choice.get("finish_reason") is not None or choice.get("logprobs"):
        return None, None
    delta = choice.get("delta")
    if not isinstance(delta, dict) or delta.get("content"):
        return None, None
    if any(value for key, value in delta.items() if key not in _REASONING_KEYS):
        return None, None
    text = delta.get("reasoning")
    if text is None and not delta.get(reasoning.DETAILS_KEY):
        return None, None
    return "reasoning", text if isinstance(text, str) else ""


def _text_of(chunk: dict[str, Any]) -> str | None:
    """The chunk's text when it carries nothing else (so it may be merged), else None."""
    if chunk.get("usage"):
        return None
    choices = chunk.get("choices")
    if not isinstance(choices, list) or len(choices) != 1:
        return None
    choice = choices[0]
    if not isinstance(choice, dict) or choice.get("index", 0) != 0:
        return None
    if choice.get("finish_reason") is not None or choice.get("logprobs"):
        return None
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        return None
    content = delta.get("content")
    if not isinstance(content, str):
        return None
    if any(value for key, value in delta.items() if key not in _TEXT_KEYS):
        return None  # e.g. reasoning, tool calls, annotations: handed on as they are
    return content


def _merged(first: dict[str, Any], key: str, texts: list[str]) -> ChatCompletionChunk:
    """One chunk with the texts of the run that began with ``first``; a reasoning run drops
    its blocks here (they are joined on the side) and its empty ``content``."""
    choice = first["choices"][0]
    delta = {k: v for k, v in choice["delta"].items() if k in ("role", key)}
    merged = {**first, "choices": [{**choice, "delta": {**delta, key: "".join(texts)}}]}
    return ChatCompletionChunk.model_validate(merged)


def _str_headers(model_settings: ModelSettings) -> dict[str, str]:
    """The settings' extra headers (attribution: ``X-Title``, ``HTTP-Referer``)."""
    extra = model_settings.extra_headers or {}
    return {k: v for k, v in extra.items() if isinstance(v, str)}
