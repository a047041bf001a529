"""How much history fits: a model's context size from litellm's registry, token estimates."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from typing import Any

from bot.settings import prepare_library_environment

prepare_library_environment()

import litellm  # noqa: E402

# litellm's copy of tiktoken's cl100k encoding, loaded from the files litellm ships (offline).
# Calling it directly costs a quarter of ``litellm.token_counter`` per item; an estimate is all
# history fitting needs, and it must not depend on knowing the model.
from litellm.litellm_core_utils.default_encoding import encoding as _encoding  # noqa: E402

log = logging.getLogger(__name__)

UNKNOWN_CONTEXT_TOKENS = 32_000
"""Assumed context size of a model the registry does not know: small, so history stays safe."""
OUTPUT_RESERVE_TOKENS = 8_000
PROMPT_RESERVE_TOKENS = 2_000
"""Instructions and tool schemas, sent on every call."""


@functools.lru_cache(maxsize=256)
def model_info(model: str) -> dict[str, Any]:
    """litellm's registry entry for an OpenRouter model, {} when unknown (never raises).

    The registry often has ``openrouter/x/y`` with empty fields but ``x/y`` filled in, so both
    names are tried.
    """
    candidates = [model]
    if model.startswith("openrouter/"):
        candidates.append(model.removeprefix("openrouter/"))
    for name in candidates:
        try:
            info = dict(litellm.get_model_info(name))
        except Exception:
            continue
        if info.get("max_input_tokens") or info.get("max_tokens"):
            return info
    log.info("model not in litellm's registry; assuming a small context", extra={"model": model})
    return {}


def supports_vision(model: str) -> bool | None:
    """Whether litellm's registry says the model takes images; None when the model is unknown."""
    info = model_info(model)
    if not info:
        return None
    return bool(info.get("supports_vision"))


def context_tokens(model: str) -> int:
    info = model_info(model)
    value = info.get("max_input_tokens") or info.get("max_tokens")
    return int(value) if value else UNKNOWN_CONTEXT_TOKENS


def history_budget(model: str, cap: int, new_message_tokens: int) -> int:
    """Tokens history may use on a turn: what the context leaves, never more than ``cap``."""
    room = context_tokens(model) - OUTPUT_RESERVE_TOKENS - PROMPT_RESERVE_TOKENS
    return max(0, min(cap, room - new_message_tokens))


LARGE_TEXT_CHARS = 20_000
"""Above this, counting tokens takes milliseconds: do it off the event loop."""


async def estimate_tokens_off_loop(item: Any) -> int:
    """``estimate_tokens`` that moves large items to a worker thread."""
    text = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
    if len(text) > LARGE_TEXT_CHARS:
        return await asyncio.to_thread(estimate_tokens, text)
    return estimate_tokens(text)


def estimate_tokens(item: Any) -> int:
    """Prompt tokens of one history item (tiktoken via litellm; a chars/4 guess on failure)."""
    text = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
    try:
        return len(_encoding.encode(text, disallowed_special=())) + 4
    except Exception:
        return len(text) // 4 + 4
