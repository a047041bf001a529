"""Block Kit as Slack checks it, for the blocks the bot sends: ``markdown``, ``section``,
``context`` (text elements), ``actions`` holding ``button`` elements and ``context_actions``
holding ``feedback_buttons``. Any other block or element type is refused
as not emulated (rather than half-emulated); a known one with a wrong shape gets Slack's
``invalid_blocks`` with a JSON pointer to it.

Limits from Slack's Block Kit reference: 50 blocks a message; a ``markdown`` block's text
counts towards 12,000 characters for all of them; a ``section``'s text 3,000; a
``context_actions`` block 1 to 5 elements; a feedback button's text (``plain_text`` only) 75,
its value 2,000, its accessibility label 75; ``block_id`` and ``action_id`` 255; an ``actions``
block 1 to 25 elements, a button's text 75 and its ``style`` ``primary`` or ``danger``; a
``context`` block 1 to 10 elements, each a text object.
"""

from __future__ import annotations

import json
from typing import Any, Final

from tests.fakes.slack.constants import JSONDict
from tests.fakes.slack.ids import block_id
from tests.fakes.slack.params import ApiError

MAX_BLOCKS: Final = 50
MARKDOWN_LIMIT: Final = 12_000
SECTION_TEXT_LIMIT: Final = 3_000
BUTTON_TEXT_LIMIT: Final = 75
BUTTON_VALUE_LIMIT: Final = 2_000
ID_LIMIT: Final = 255
MAX_ACTIONS: Final = 25
MAX_CONTEXT: Final = 10
EMULATED_BLOCKS: Final = frozenset({"markdown", "section", "context", "actions", "context_actions"})


def read_blocks(value: object) -> list[JSONDict]:
    """The ``blocks`` argument (a JSON array, or its text in a form body), checked."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _invalid("", "must be a JSON array") from None
    if not isinstance(value, list) or not all(isinstance(b, dict) for b in value):
        raise _invalid("", "must be an array of objects")
    if len(value) > MAX_BLOCKS:
        raise _invalid("", f"must have at most {MAX_BLOCKS} items")
    markdown = 0
    for index, block in enumerate(value):
        kind = block.get("type")
        if kind not in EMULATED_BLOCKS:
            raise ApiError(
                "invalid_arguments",
                response_metadata={"messages": [f"[ERROR] block {kind!r} is not emulated"]},
            )
        where = f"/{index}"
        _optional_id(block, "block_id", where)
        if kind == "markdown":
            text = block.get("text")
            if not isinstance(text, str) or not text:
                raise _invalid(f"{where}/text", "must be a non-empty string")
            markdown += len(text)
        elif kind == "section":
            _section(block, where)
        elif kind == "context":
            _context(block, where)
        elif kind == "actions":
            _actions(block, where)
        else:
            _context_actions(block, where)
    if markdown > MARKDOWN_LIMIT:
        raise ApiError("msg_blocks_too_long")
    # Slack names the blocks that have no block_id (a markdown block keeps none).
    return [
        b if b["type"] == "markdown" or b.get("block_id") else {**b, "block_id": block_id()}
        for b in value
    ]


def find_action(blocks: list[JSONDict], action_id: str, value: str) -> tuple[JSONDict, JSONDict]:
    """The block and element with ``action_id`` that a click worth ``value`` can come from: a
    ``feedback_buttons`` element one of whose buttons has it, or a ``button`` with it. What a
    user can click on this message."""
    for block in blocks:
        if block.get("type") == "actions":
            for element in block.get("elements", ()):
                if element.get("action_id") == action_id and element.get("value") == value:
                    return block, element
            continue
        if block.get("type") != "context_actions":
            continue
        for element in block.get("elements", ()):
            if element.get("action_id") != action_id:
                continue
            buttons = (element.get("positive_button"), element.get("negative_button"))
            if any(isinstance(b, dict) and b.get("value") == value for b in buttons):
                return block, element
    raise LookupError(f"no button {action_id!r} with value {value!r} on that message")


def _section(block: JSONDict, where: str) -> None:
    text = block.get("text")
    if not isinstance(text, dict) or text.get("type") not in ("mrkdwn", "plain_text"):
        raise _invalid(f"{where}/text", "must be a text object")
    body = text.get("text")
    if not isinstance(body, str) or not body or len(body) > SECTION_TEXT_LIMIT:
        raise _invalid(f"{where}/text/text", f"must be 1 to {SECTION_TEXT_LIMIT} characters")


def _context(block: JSONDict, where: str) -> None:
    elements = block.get("elements")
    if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_CONTEXT:
        raise _invalid(f"{where}/elements", f"must have 1 to {MAX_CONTEXT} items")
    for index, element in enumerate(elements):
        at = f"{where}/elements/{index}"
        if not isinstance(element, dict) or element.get("type") not in ("mrkdwn", "plain_text"):
            raise ApiError(
                "invalid_arguments",
                response_metadata={"messages": [f"[ERROR] context element at {at} not emulated"]},
            )
        text = element.get("text")
        if not isinstance(text, str) or not text or len(text) > SECTION_TEXT_LIMIT:
            raise _invalid(f"{at}/text", f"must be 1 to {SECTION_TEXT_LIMIT} characters")


def _actions(block: JSONDict, where: str) -> None:
    for at, element in _interactive(block, where, "button", MAX_ACTIONS):
        _button(element, at)
        style = element.get("style")
        if style is not None and style not in ("primary", "danger"):
            raise _invalid(f"{at}/style", "must be primary or danger")


def _context_actions(block: JSONDict, where: str) -> None:
    for at, element in _interactive(block, where, "feedback_buttons", 5):
        for name in ("positive_button", "negative_button"):
            _button(element.get(name), f"{at}/{name}")


def _interactive(block: JSONDict, where: str, kind: str, most: int) -> list[tuple[str, JSONDict]]:
    """A block's 1 to ``most`` elements, each of type ``kind`` (another one is not emulated),
    with an ``action_id`` unique in the block; with where each stands."""
    elements = block.get("elements")
    if not isinstance(elements, list) or not 1 <= len(elements) <= most:
        raise _invalid(f"{where}/elements", f"must have 1 to {most} items")
    seen: set[str] = set()
    checked: list[tuple[str, JSONDict]] = []
    for index, element in enumerate(elements):
        at = f"{where}/elements/{index}"
        if not isinstance(element, dict):
            raise _invalid(at, "must be an object")
        if element.get("type") != kind:
            raise ApiError(
                "invalid_arguments",
                response_metadata={
                    "messages": [f"[ERROR] element {element.get('type')!r} is not emulated"]
                },
            )
        _optional_id(element, "action_id", at)
        action_id = element.get("action_id")
        if isinstance(action_id, str):
            if action_id in seen:
                raise _invalid(f"{at}/action_id", "must be unique in its block")
            seen.add(action_id)
        checked.append((at, element))
    return checked


def _button(button: Any, at: str) -> None:
    if not isinstance(button, dict):
        raise _invalid(at, "is required")
    text = button.get("text")
    if not isinstance(text, dict) or text.get("type") != "plain_text":
        raise _invalid(f"{at}/text", "must be a plain_text object")
    label = text.get("text")
    if not isinstance(label, str) or not label or len(label) > BUTTON_TEXT_LIMIT:
        raise _invalid(f"{at}/text/text", f"must be 1 to {BUTTON_TEXT_LIMIT} characters")
    value = button.get("value")
    if not isinstance(value, str) or not value or len(value) > BUTTON_VALUE_LIMIT:
        raise _invalid(f"{at}/value", f"must be 1 to {BUTTON_VALUE_LIMIT} characters")
    label = button.get("accessibility_label")
    if label is not None and (not isinstance(label, str) or len(label) > BUTTON_TEXT_LIMIT):
        raise _invalid(f"{at}/accessibility_label", f"must be {BUTTON_TEXT_LIMIT} or fewer")


def _optional_id(obj: JSONDict, name: str, where: str) -> None:
    value = obj.get(name)
    if value is not None and (not isinstance(value, str) or not 0 < len(value) <= ID_LIMIT):
        raise _invalid(f"{where}/{name}", f"must be 1 to {ID_LIMIT} characters")


def _invalid(pointer: str, reason: str) -> ApiError:
    return ApiError(
        "invalid_blocks",
        errors=[f"{reason} [json-pointer:/blocks{pointer}]"],
        response_metadata={"messages": [f"[ERROR] {reason} [json-pointer:/blocks{pointer}]"]},
    )
