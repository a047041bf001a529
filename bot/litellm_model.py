"""The Agents SDK's ``LitellmModel`` keeping OpenRouter's ``reasoning_details`` with the turn and
sending them back, as the default client does (``bot.reasoning`` says why they matter).

Neither library carries them through (litellm 1.110, openai-agents 0.24):

- **Streamed**, litellm drops every chunk whose delta has no text, no reasoning text and no
  tool call (its stream wrapper counts such a chunk as empty). OpenRouter sends each
  ``reasoning.encrypted`` block (Gemini's thought signatures, OpenAI's encrypted reasoning)
  in exactly such a chunk, so those never reach the SDK; the blocks that ride with reasoning
  text do, as a field the SDK's stream handler ignores. So the blocks are read from each raw
  chunk where litellm parses it, before that filter (``_fetch_response``, the one seam:
  litellm hands the stream to the SDK inside it).
- **Whole**, litellm keeps them in ``message.provider_specific_fields``; the SDK's converter
  reads neither. Read there too.
- **Sent back**, the SDK's converter can only put a string on an assistant message (its
  ``reasoning_content`` replay hook), and litellm sends message dicts as given. So when the
  history holds blocks for this model, the request's messages are the ones the default
  client sends (``bot.reasoning.items_to_messages``), placed through ``extra_body``, which
  litellm merges into the request body last. Other requests are LitellmModel's own.

Each call collects its blocks in its own list (a ContextVar: one model serves many turns at
once), kept on the response's reasoning item like the default client's.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import suppress
from contextvars import ContextVar
from typing import Any

from bot.settings import prepare_library_environment

prepare_library_environment()  # before litellm is imported (below, through the SDK)

from agents import ModelResponse, ModelSettings  # noqa: E402
from agents.extensions.models.litellm_model import LitellmModel  # noqa: E402

from bot import reasoning  # noqa: E402

log = logging.getLogger(__name__)

_CALL_DETAILS: ContextVar[list[dict[str, Any]] | None] = ContextVar(
    "litellm_reasoning_details", default=None
)


class ReasoningLitellmModel(LitellmModel):
    """``LitellmModel`` for OpenRouter models that need their ``reasoning_details`` back."""

    async def get_response(
        self,
        system_instructions: str | None,
        input: Any,
        model_settings: ModelSettings,
        *args: Any,
        **kwargs: Any,
    ) -> ModelResponse:
        details: list[dict[str, Any]] = []
        token = _CALL_DETAILS.set(details)
        try:
            response = await super().get_response(
                system_instructions,
                input,
                self._replaying(system_instructions, input, model_settings),
                *args,
                **kwargs,
            )
        finally:
            _CALL_DETAILS.reset(token)
        response.output = reasoning.with_details(list(response.output), details, self.model)
        return response

    async def stream_response(
        self,
        system_instructions: str | None,
        input: Any,
        model_settings: ModelSettings,
        *args: Any,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        details: list[dict[str, Any]] = []
        token = _CALL_DETAILS.set(details)
        try:
            async for event in super().stream_response(
                system_instructions,
                input,
                self._replaying(system_instructions, input, model_settings),
                *args,
                **kwargs,
            ):
                if event.type == "response.completed":
                    # The stream has ended: every block is in.
                    event.response.output = reasoning.with_details(
                        list(event.response.output), details, self.model
                    )
                yield event
        finally:
            # ValueError: closed from another context (the loop's finalizer), nothing to undo
            with suppress(ValueError):
                _CALL_DETAILS.reset(token)

    async def _fetch_response(self, *args: Any, **kwargs: Any) -> Any:
        result = await super()._fetch_response(*args, **kwargs)
        details = _CALL_DETAILS.get()
        if details is None:
            return result
        if isinstance(result, tuple):  # streamed: (the SDK's response, litellm's stream)
            _tap_chunks(result[1], details)
        else:
            choices = getattr(result, "choices", None) or []
            message = getattr(choices[0], "message", None) if choices else None
            fields = getattr(message, "provider_specific_fields", None) or {}
            reasoning.merge_details(details, fields.get(reasoning.DETAILS_KEY))
        return result

    def _replaying(
        self, system_instructions: str | None, input: Any, model_settings: ModelSettings
    ) -> ModelSettings:
        """``model_settings``, with the default client's messages in ``extra_body`` when the
        history holds blocks for this model (else unchanged)."""
        if not reasoning.has_details_for(input, self.model):
            return model_settings
        messages = reasoning.items_to_messages(input, model=self.model)
        if system_instructions:
            messages.insert(0, {"role": "system", "content": system_instructions})
        current = model_settings.extra_body
        if current is not None and not isinstance(current, Mapping):
            log.warning("extra_body is not a mapping: reasoning_details are not sent back")
            return model_settings
        return model_settings.resolve(
            ModelSettings(extra_body={**(current or {}), "messages": messages})
        )


def _tap_chunks(stream: Any, details: list[dict[str, Any]]) -> None:
    """Have litellm's parser of ``stream``'s raw chunks (OpenRouter's JSON, one per SSE event)
    hand each chunk's blocks to ``details`` first."""
    source = getattr(stream, "completion_stream", None)
    parse: Callable[[dict[str, Any]], Any] | None = getattr(source, "chunk_parser", None)
    if source is None or parse is None:
        log.warning(
            "litellm's stream has no chunk parser to read reasoning_details from (%s): "
            "models that need them back will refuse tool follow-ups",
            type(source).__name__,
        )
        return

    def parse_and_keep(chunk: dict[str, Any]) -> Any:
        for choice in chunk.get("choices") or () if isinstance(chunk, dict) else ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict):
                reasoning.merge_details(details, delta.get(reasoning.DETAILS_KEY))
        return parse(chunk)

    source.chunk_parser = parse_and_keep
