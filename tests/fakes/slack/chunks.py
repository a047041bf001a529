"""Stream ``chunks`` (``chat.startStream`` / ``appendStream`` / ``stopStream``) and the
``loading_messages`` of ``assistant.threads.setStatus``, checked as Slack checks them.

The chunk types the bot sends are emulated: ``markdown_text`` (``text``, at most 12,000
characters) and ``task_update`` (``id``, ``title``, ``status`` one of pending / in_progress /
complete / error, optional ``details`` and ``output`` of at most 256 characters). The other
types Slack knows (``plan_update``, ``blocks``) and task ``sources`` are refused with
``invalid_arguments`` rather than half-emulated; a type Slack does not know, or a chunk
without its fields, is ``invalid_chunks``. A call is checked whole before anything changes.
"""

from __future__ import annotations

from typing import Final

from tests.fakes.slack.constants import STREAM_CHUNK_LIMIT, JSONDict
from tests.fakes.slack.params import ApiError

TASK_STATUSES: Final = frozenset({"pending", "in_progress", "complete", "error"})
TASK_DISPLAY_MODES: Final = frozenset({"timeline", "plan"})
TASK_TEXT_LIMIT: Final = 256
"""Characters of a task's ``details`` or ``output``."""
NOT_EMULATED_CHUNKS: Final = frozenset({"plan_update", "blocks"})
LOADING_MESSAGES_LIMIT: Final = 10


def stream_content(params: JSONDict) -> list[JSONDict]:
    """A stream call's content in the order shown: its ``markdown_text`` (as a
    ``markdown_text`` chunk), then its ``chunks``; raises ``ApiError`` for anything invalid."""
    content: list[JSONDict] = []
    markdown = params.get("markdown_text")
    if markdown is not None:
        if not isinstance(markdown, str):
            raise ApiError("invalid_arguments")
        if len(markdown) > STREAM_CHUNK_LIMIT:
            raise ApiError("msg_too_long")
        if markdown:
            content.append({"type": "markdown_text", "text": markdown})
    chunks = params.get("chunks")
    if chunks is None:
        return content
    if not isinstance(chunks, list) or not chunks:
        raise _invalid("chunks must be a non-empty array")
    content.extend(_checked(chunk) for chunk in chunks)
    return content


def display_mode(params: JSONDict) -> str:
    mode = params.get("task_display_mode", "timeline")
    if mode not in TASK_DISPLAY_MODES:
        raise ApiError("invalid_arguments")
    return str(mode)


def loading_messages(params: JSONDict) -> list[str] | None:
    messages = params.get("loading_messages")
    if messages is None:
        return None
    if (
        not isinstance(messages, list)
        or len(messages) > LOADING_MESSAGES_LIMIT
        or not all(isinstance(m, str) and m for m in messages)
    ):
        raise ApiError("invalid_arguments")
    return list(messages)


def _checked(chunk: object) -> JSONDict:
    if not isinstance(chunk, dict):
        raise _invalid("a chunk must be an object")
    kind = chunk.get("type")
    if kind in NOT_EMULATED_CHUNKS:
        raise ApiError(
            "invalid_arguments",
            response_metadata={"messages": [f"[ERROR] {kind} chunks are not emulated"]},
        )
    if kind == "markdown_text":
        text = chunk.get("text")
        if not isinstance(text, str) or not text or set(chunk) - {"type", "text"}:
            raise _invalid("markdown_text needs text")
        if len(text) > STREAM_CHUNK_LIMIT:
            raise ApiError("msg_too_long")
        return dict(chunk)
    if kind == "task_update":
        if "sources" in chunk:
            raise ApiError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] task sources are not emulated"]},
            )
        if set(chunk) - {"type", "id", "title", "status", "details", "output"}:
            raise _invalid("unknown task_update field")
        if not all(isinstance(chunk.get(k), str) and chunk[k] for k in ("id", "title")):
            raise _invalid("task_update needs id and title")
        if chunk.get("status") not in TASK_STATUSES:
            raise _invalid("task_update status")
        for key in ("details", "output"):
            value = chunk.get(key)
            if value is not None and (not isinstance(value, str) or len(value) > TASK_TEXT_LIMIT):
                raise _invalid(f"task_update {key}")
        return dict(chunk)
    raise _invalid(f"unknown chunk type {kind!r}")


def _invalid(why: str) -> ApiError:
    return ApiError("invalid_chunks", response_metadata={"messages": [f"[ERROR] {why}"]})
