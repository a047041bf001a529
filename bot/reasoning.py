"""OpenRouter's ``reasoning_details``: kept with the turn and sent back with the message they
came on.

Reasoning models on OpenRouter return their reasoning as typed blocks (``reasoning.text`` with
a signature, ``reasoning.encrypted``, ``reasoning.summary``; Gemini's thought signatures are
``reasoning.encrypted`` blocks). Some models refuse a tool call's follow-up whose assistant
message lacks the blocks they were given: the blocks must go back unchanged, in order, on that
assistant message.

The Agents SDK has a place for them but not the field: its Chat Completions path turns a
message's reasoning into a ``reasoning`` item placed before the assistant message (or tool
calls) of the same response, and that item is what history stores. So the blocks ride in that
item's ``provider_data["reasoning_details"]`` (JSON like the rest of the item), and on the next
request they are put back on the assistant message the SDK's converter builds after it.

Streamed, the blocks come in pieces (a text block a token at a time, its signature last):
``merge_details`` joins them as OpenRouter documents, by ``index``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agents.models.chatcmpl_converter import Converter
from agents.models.fake_id import FAKE_RESPONSES_ID
from agents.models.reasoning_content_replay import (
    ReasoningContentReplayContext,
    default_should_replay_reasoning_content,
)
from openai.types.responses import ResponseReasoningItem

DETAILS_KEY = "reasoning_details"
_MARKER = "\x00reasoning_details:"
_JOINED = ("text", "summary")
"""The fields a streamed block arrives in pieces of; others are whole (the last value wins)."""


def merge_details(merged: list[dict[str, Any]], pieces: Any) -> None:
    """Add a stream chunk's ``reasoning_details`` to ``merged``: a piece with the ``index`` of
    a block already there continues it, anything else is a new block."""
    if not isinstance(pieces, list):
        return
    for piece in pieces:
        if not isinstance(piece, dict):
            continue
        index = piece.get("index")
        block = next(
            (b for b in reversed(merged) if index is not None and b.get("index") == index),
            None,
        )
        if block is None or block.get("type") != piece.get("type"):
            merged.append(dict(piece))
            continue
        for key, value in piece.items():
            if key in _JOINED and isinstance(value, str):
                block[key] = (block.get(key) or "") + value
            elif value is not None:
                block[key] = value


def with_details(output: list[Any], details: list[dict[str, Any]], model: str) -> list[Any]:
    """The response's output items with ``details`` kept on its reasoning item (one is made,
    first, when the model sent blocks but no reasoning text)."""
    if not details:
        return output
    item = next((i for i in output if isinstance(i, ResponseReasoningItem)), None)
    if item is None:
        item = ResponseReasoningItem(id=FAKE_RESPONSES_ID, summary=[], type="reasoning")
        output = [item, *output]
    provider_data = getattr(item, "provider_data", None)
    data = dict(provider_data) if isinstance(provider_data, dict) else {"model": model}
    data[DETAILS_KEY] = details
    item.provider_data = data  # type: ignore[attr-defined]  # the SDK keeps it with the item
    return output


def items_to_messages(items: Any, *, model: str) -> list[Any]:
    """The SDK's conversion of input items to chat messages, each assistant message carrying
    the ``reasoning_details`` of the reasoning item before it.

    The converter decides which assistant message a reasoning item belongs to (text and tool
    calls of one response may be split over items); its public replay hook lets a reasoning
    item put a string on that message. That string is a marker here, swapped afterwards for
    the blocks it stands for. Other reasoning items replay as the SDK does by default."""
    if isinstance(items, str):
        return list(Converter.items_to_messages(items, model=model))
    blocks: dict[str, list[Any]] = {}
    prepared = [_marked(item, blocks, model) for item in items]

    def replay(context: ReasoningContentReplayContext) -> bool:
        if _marker_of(context.reasoning.item) is not None:
            return True
        return default_should_replay_reasoning_content(context)

    messages: list[Any] = list(
        Converter.items_to_messages(
            prepared,
            model=model,
            preserve_tool_output_all_content=True,
            should_replay_reasoning_content=replay,
        )
    )
    if blocks:
        for message in messages:
            marker = message.get("reasoning_content") if isinstance(message, dict) else None
            if isinstance(marker, str) and marker in blocks:
                del message["reasoning_content"]
                message[DETAILS_KEY] = blocks[marker]
    return messages


def has_details_for(items: Any, model: str) -> bool:
    """Whether ``items`` hold blocks that ``items_to_messages`` would send to ``model``."""
    return not isinstance(items, str) and any(_details_for(i, model) for i in items)


def _details_for(item: Any, model: str) -> list[Any] | None:
    """The blocks of a reasoning item from ``model``. Blocks of another model (the channel's
    ``/model`` changed) stay home: a signature is only good for the model that made it."""
    if not isinstance(item, dict) or item.get("type") != "reasoning":
        return None
    provider_data = item.get("provider_data")
    if not isinstance(provider_data, dict) or provider_data.get("model") != model:
        return None
    details = provider_data.get(DETAILS_KEY)
    return details if isinstance(details, list) and details else None


def _marked(item: Any, blocks: dict[str, list[Any]], model: str) -> Any:
    """``item``, or for a reasoning item with blocks from ``model`` a copy whose only
    replayable text is a marker for them (its plain text is not sent besides: the blocks carry
    it)."""
    details = _details_for(item, model)
    if details is None:
        return item
    marker = f"{_MARKER}{len(blocks)}"
    blocks[marker] = details
    provider_data = item["provider_data"]
    data = {k: v for k, v in provider_data.items() if k != "_chat_completions_reasoning_field"}
    return {
        **item,
        "summary": [{"type": "summary_text", "text": marker}],
        "content": [],
        "provider_data": data,
    }


def _marker_of(item: Any) -> str | None:
    summary = item.get("summary") if isinstance(item, dict) else None
    for part in summary if isinstance(summary, Iterable) else ():
        text = part.get("text") if isinstance(part, dict) else None
        if isinstance(text, str) and text.startswith(_MARKER):
            return text
    return None
