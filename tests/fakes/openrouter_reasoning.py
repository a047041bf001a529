"""Reasoning models for the fake OpenRouter: ``reasoning`` text and ``reasoning_details`` blocks,
whole on a JSON answer and streamed a piece per chunk, and the check that makes a model refuse
a tool follow-up without the blocks it was given.

The wire shapes are OpenRouter's (its reasoning-tokens guide): the message (or stream delta)
carries ``reasoning`` (plain text) and ``reasoning_details``, a list of typed blocks, each with
``type``, ``format``, ``index`` and ``id``:

- ``reasoning.text``: ``text`` and a ``signature`` over it; streamed, the text comes a piece per
  chunk under the same ``index`` (``signature`` null until the last piece carries it);
- ``reasoning.encrypted``: opaque ``data``; for Gemini a thought signature whose ``id`` is the
  tool call it belongs to.

Streamed, a reasoning chunk's delta is ``{"content": "", "reasoning": piece, "reasoning_details":
[piece block]}``, as OpenRouter sends them. Usage counts reasoning as output tokens and names
them in ``completion_tokens_details.reasoning_tokens``.

Models that need their reasoning back (Gemini's thought signatures, Anthropic's signed thinking)
refuse a request whose assistant tool-call message lacks the blocks that call came with: OpenRouter
passes the provider's 400 on. ``FakeOpenRouter.require_reasoning_replay`` turns that check on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

JSONDict = dict[str, Any]

GEMINI_FORMAT: Final = "google-gemini-v1"
MISSING_SIGNATURE: Final = (
    "Function call is missing a thought_signature in functionCall parts. This is required for "
    "tools to work correctly, and missing thought_signature may lead to degraded model "
    "performance. Additional data, function call `default_api:{name}`, position {position}. "
    "Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
)


@dataclass(frozen=True, slots=True)
class Reasoning:
    """What a reasoning model thought before its answer or tool calls.

    Streamed, ``text`` comes in ``chunks`` pieces; the answer's tool calls each get a
    ``reasoning.encrypted`` thought signature (``encrypted=True``) after the text block."""

    text: str
    chunks: int = 1
    tokens: int | None = None
    """Reasoning tokens to report (default: a token per 4 characters of ``text``)."""
    format: str = GEMINI_FORMAT
    encrypted: bool = True

    @property
    def token_count(self) -> int:
        return self.tokens if self.tokens is not None else max(1, len(self.text) // 4)

    @property
    def signature(self) -> str:
        return "sig-" + hashlib.sha256(self.text.encode()).hexdigest()[:24]


def reasoning_details(reasoning: Reasoning, call_ids: Sequence[str]) -> list[JSONDict]:
    """The whole blocks, as a JSON answer carries them (and as a stream's pieces add up)."""
    blocks: list[JSONDict] = [
        {
            "type": "reasoning.text",
            "text": reasoning.text,
            "signature": reasoning.signature,
            "id": None,
            "format": reasoning.format,
            "index": 0,
        }
    ]
    if reasoning.encrypted:
        blocks += [
            {
                "type": "reasoning.encrypted",
                "data": _thought_signature(call_id),
                "id": call_id,
                "format": reasoning.format,
                "index": i + 1,
            }
            for i, call_id in enumerate(call_ids)
        ]
    return blocks


def reasoning_deltas(
    reasoning: Reasoning, call_ids: Sequence[str], pieces: Sequence[str]
) -> list[JSONDict]:
    """The stream deltas: the text a piece a chunk (signature on the last piece), then each
    tool call's thought signature."""
    deltas: list[JSONDict] = []
    for i, piece in enumerate(pieces):
        block = {
            "type": "reasoning.text",
            "text": piece,
            "signature": reasoning.signature if i == len(pieces) - 1 else None,
            "id": None,
            "format": reasoning.format,
            "index": 0,
        }
        deltas.append({"content": "", "reasoning": piece, "reasoning_details": [block]})
    whole = reasoning_details(reasoning, call_ids)
    for block in whole[1:]:
        deltas.append({"content": "", "reasoning": None, "reasoning_details": [block]})
    return deltas


def replay_problem(
    body: Mapping[str, Any], issued: Mapping[str, list[JSONDict]]
) -> tuple[str, JSONDict] | None:
    """The provider's refusal when an assistant message with a tool call this fake answered
    with reasoning does not carry those blocks back unchanged; None when all are there."""
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        calls = message.get("tool_calls")
        for position, call in enumerate(calls if isinstance(calls, list) else []):
            call_id = call.get("id") if isinstance(call, dict) else None
            if not isinstance(call_id, str) or call_id not in issued:
                continue
            if message.get("reasoning_details") == issued[call_id]:
                continue
            name = str((call.get("function") or {}).get("name") or "tool")
            raw = {
                "error": {
                    "code": 400,
                    "message": MISSING_SIGNATURE.format(name=name, position=position + 1),
                    "status": "INVALID_ARGUMENT",
                }
            }
            metadata = {"raw": json.dumps(raw), "provider_name": "Google AI Studio"}
            return "Provider returned error", metadata
    return None


def reasoning_usage(usage: JSONDict, reasoning: Reasoning | None) -> JSONDict:
    """``usage`` with the reasoning counted as output, and named as such."""
    if reasoning is None:
        return usage
    tokens = reasoning.token_count
    usage = {**usage, "completion_tokens": usage["completion_tokens"] + tokens}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    usage["completion_tokens_details"] = {
        **usage.get("completion_tokens_details", {}),
        "reasoning_tokens": tokens,
    }
    return usage


def _thought_signature(call_id: str) -> str:
    return "EtYB" + hashlib.sha256(call_id.encode()).hexdigest()[:32]
