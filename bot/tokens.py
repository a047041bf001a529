"""How much history fits: a model's context size from litellm's registry, token estimates.

Both come from files litellm ships (its model registry and tiktoken's cl100k encoding), read
directly: importing litellm itself costs ~200 MB and seconds of start-up, and the default
model path does not need it.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import json
import logging
from pathlib import Path
from typing import Any

import tiktoken

from bot.settings import prepare_library_environment

log = logging.getLogger(__name__)

UNKNOWN_CONTEXT_TOKENS = 32_000
"""Assumed context size of a model the registry does not know: small, so history stays safe."""
OUTPUT_RESERVE_TOKENS = 8_000
PROMPT_RESERVE_TOKENS = 2_000
"""Instructions and tool schemas, sent on every call."""


def _litellm_file(relative: str) -> Path:
    """A data file inside the installed litellm package, found without importing it."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("litellm is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / relative


@functools.cache
def _registry() -> dict[str, tuple[int, bool]]:
    """litellm's model registry as {name: (context tokens, takes images)}, known sizes only.

    Read once (a 3.5 MB JSON file, ~60 ms): ``bot.wiring`` does it off the event loop at start.
    """
    try:
        raw = json.loads(_litellm_file("model_prices_and_context_window_backup.json").read_bytes())
    except (OSError, ValueError) as exc:
        log.warning("litellm's model registry is unreadable: %s", exc)
        return {}
    table: dict[str, tuple[int, bool]] = {}
    for name, info in raw.items():
        if not isinstance(info, dict):
            continue
        size = info.get("max_input_tokens") or info.get("max_tokens")
        if isinstance(size, int) and size > 0:
            table[name] = (size, bool(info.get("supports_vision")))
    return table


@functools.lru_cache(maxsize=256)
def model_info(model: str) -> tuple[int, bool] | None:
    """(context tokens, takes images) for an OpenRouter model, None when the registry does not
    know it (never raises).

    The registry names models by provider (``gpt-5-mini``, ``gemini/gemini-2.5-pro``), so
    ``openrouter/openai/gpt-5-mini`` is tried as itself, as ``openai/gpt-5-mini`` and as
    ``gpt-5-mini``.
    """
    bare = model.removeprefix("openrouter/")
    candidates = [model, bare]
    if "/" in bare:
        candidates.append(bare.split("/", 1)[1])
    registry = _registry()
    for name in candidates:
        if name in registry:
            return registry[name]
    log.info("model not in litellm's registry; assuming a small context", extra={"model": model})
    return None


def supports_vision(model: str) -> bool | None:
    """Whether litellm's registry says the model takes images; None when the model is unknown."""
    info = model_info(model)
    return None if info is None else info[1]


def context_tokens(model: str) -> int:
    info = model_info(model)
    return UNKNOWN_CONTEXT_TOKENS if info is None else info[0]


def history_budget(model: str, cap: int, new_message_tokens: int) -> int:
    """Tokens history may use on a turn: what the context leaves, never more than ``cap``."""
    room = context_tokens(model) - OUTPUT_RESERVE_TOKENS - PROMPT_RESERVE_TOKENS
    return max(0, min(cap, room - new_message_tokens))


@functools.cache
def _encoding() -> tiktoken.Encoding:
    """tiktoken's cl100k encoding from the copy litellm ships (offline; litellm does the same)."""
    prepare_library_environment()  # TIKTOKEN_CACHE_DIR: the copy litellm ships
    return tiktoken.get_encoding("cl100k_base")


def load_token_tables() -> None:
    """Read the registry and the encoding now (blocking: call it in a worker thread)."""
    _registry()
    _encoding()


LARGE_TEXT_CHARS = 20_000
"""Above this, counting tokens takes milliseconds: do it off the event loop."""


async def estimate_tokens_off_loop(item: Any) -> int:
    """``estimate_tokens`` that moves large items to a worker thread."""
    text = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
    if len(text) > LARGE_TEXT_CHARS:
        return await asyncio.to_thread(estimate_tokens, text)
    return estimate_tokens(text)


def estimate_tokens(item: Any) -> int:
    """Prompt tokens of one history item (tiktoken's cl100k; a chars/4 guess on failure)."""
    text = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
    try:
        return len(_encoding().encode(text, disallowed_special=())) + 4
    except Exception:
        return len(text) // 4 + 4
