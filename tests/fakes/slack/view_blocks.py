"""Block Kit as Slack checks it in a view (``views.publish``, ``views.open``): the blocks and
elements the bot's Home tab and settings modal use, with Slack's limits.

Slack refuses a bad view with ``invalid_arguments`` and a message that points at the field
(``[ERROR] ... [json-pointer:/view/blocks/3/text/text]``); so does this. A block or element
type not listed here is refused as not emulated rather than half-checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from tests.fakes.slack.params import ApiError

VIEW_BLOCKS_MAX: Final = 100
MODAL_TEXT_MAX: Final = 24
"""A modal's ``title``, ``submit`` and ``close``."""
PRIVATE_METADATA_MAX: Final = 3000
SECTION_TEXT_MAX: Final = 3000
SECTION_FIELD_MAX: Final = 2000
HEADER_TEXT_MAX: Final = 150
BUTTON_TEXT_MAX: Final = 75
OPTION_TEXT_MAX: Final = 75
OPTION_VALUE_MAX: Final = 150
ID_MAX: Final = 255
"""``block_id``, ``action_id``, ``callback_id``."""
CONVERSATION_TYPES: Final = frozenset({"im", "mpim", "private", "public"})


class _Invalid(Exception):
    def __init__(self, pointer: str, problem: str) -> None:
        super().__init__(f"{problem} [json-pointer:{pointer}]")


def check_view(view: object, *, surface: str) -> dict[str, Any]:
    """``view`` as Slack would take it for ``surface`` (``home`` or ``modal``); else the
    ``invalid_arguments`` error Slack answers."""
    try:
        return _view(view, surface)
    except _Invalid as exc:
        raise ApiError(
            "invalid_arguments", response_metadata={"messages": [f"[ERROR] {exc}"]}
        ) from None


def _view(view: object, surface: str) -> dict[str, Any]:
    at = "/view"
    if not isinstance(view, dict):
        raise _Invalid(at, "must be an object")
    if view.get("type") != surface:
        raise _Invalid(f"{at}/type", f"must be {surface!r}")
    blocks = view.get("blocks")
    if not isinstance(blocks, list) or len(blocks) > VIEW_BLOCKS_MAX:
        raise _Invalid(f"{at}/blocks", f"must be a list of at most {VIEW_BLOCKS_MAX} blocks")
    for key in ("callback_id", "external_id"):
        _string(view, key, at, ID_MAX, required=False)
    _string(view, "private_metadata", at, PRIVATE_METADATA_MAX, required=False, empty=True)
    has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
    if surface == "modal":
        _text(view.get("title"), f"{at}/title", MODAL_TEXT_MAX, plain=True)
        for key in ("submit", "close"):
            if key in view or (key == "submit" and has_input):
                _text(view.get(key), f"{at}/{key}", MODAL_TEXT_MAX, plain=True)
    block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        # An action_id must be unique within its block (block_id + action_id name an input).
        _block(block, f"{at}/blocks/{index}", block_ids, set())
    return dict(view)


def _block(block: object, at: str, block_ids: set[str], action_ids: set[str]) -> None:
    if not isinstance(block, dict):
        raise _Invalid(at, "must be an object")
    if (block_id := _string(block, "block_id", at, ID_MAX, required=False)) is not None:
        if block_id in block_ids:
            raise _Invalid(f"{at}/block_id", "duplicate block_id")
        block_ids.add(block_id)
    kind = block.get("type")
    if kind == "header":
        _text(block.get("text"), f"{at}/text", HEADER_TEXT_MAX, plain=True)
    elif kind == "section":
        if "text" not in block and "fields" not in block:
            raise _Invalid(at, "a section needs text or fields")
        if "text" in block:
            _text(block["text"], f"{at}/text", SECTION_TEXT_MAX)
        if "fields" in block:
            fields = block["fields"]
            if not isinstance(fields, list) or not 1 <= len(fields) <= 10:
                raise _Invalid(f"{at}/fields", "must be a list of 1 to 10 text objects")
            for i, field in enumerate(fields):
                _text(field, f"{at}/fields/{i}", SECTION_FIELD_MAX)
        if "accessory" in block:
            _element(block["accessory"], f"{at}/accessory", action_ids, ("button",))
    elif kind == "divider":
        pass
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
            raise _Invalid(f"{at}/elements", "must be a list of 1 to 10 elements")
        for i, element in enumerate(elements):
            _text(element, f"{at}/elements/{i}", SECTION_TEXT_MAX)
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
            raise _Invalid(f"{at}/elements", "must be a list of 1 to 25 elements")
        for i, element in enumerate(elements):
            _element(element, f"{at}/elements/{i}", action_ids, ("button",))
    elif kind == "input":
        _text(block.get("label"), f"{at}/label", 2000, plain=True)
        if "hint" in block:
            _text(block["hint"], f"{at}/hint", 2000, plain=True)
        if not isinstance(block.get("optional", False), bool):
            raise _Invalid(f"{at}/optional", "must be a boolean")
        _element(
            block.get("element"),
            f"{at}/element",
            action_ids,
            ("plain_text_input", "static_select", "conversations_select"),
        )
    else:
        raise _Invalid(f"{at}/type", f"block type {kind!r} is not emulated by this fake")


def _element(element: object, at: str, action_ids: set[str], allowed: tuple[str, ...]) -> None:
    if not isinstance(element, dict):
        raise _Invalid(at, "must be an object")
    kind = element.get("type")
    if kind not in allowed:
        raise _Invalid(f"{at}/type", f"element type {kind!r} is not allowed here")
    if (action_id := _string(element, "action_id", at, ID_MAX, required=False)) is not None:
        if action_id in action_ids:
            raise _Invalid(f"{at}/action_id", "duplicate action_id")
        action_ids.add(action_id)
    if "placeholder" in element:
        _text(element["placeholder"], f"{at}/placeholder", 150, plain=True)
    if kind == "button":
        _text(element.get("text"), f"{at}/text", BUTTON_TEXT_MAX, plain=True)
        _string(element, "value", at, 2000, required=False)
        if element.get("style") not in (None, "primary", "danger"):
            raise _Invalid(f"{at}/style", "must be primary or danger")
    elif kind == "plain_text_input":
        _string(element, "initial_value", at, 3000, required=False, empty=True)
        if not isinstance(element.get("multiline", False), bool):
            raise _Invalid(f"{at}/multiline", "must be a boolean")
        limit = element.get("max_length", 3000)
        if not isinstance(limit, int) or not 1 <= limit <= 3000:
            raise _Invalid(f"{at}/max_length", "must be 1 to 3000")
    elif kind == "static_select":
        options = element.get("options")
        if not isinstance(options, list) or not 1 <= len(options) <= 100:
            raise _Invalid(f"{at}/options", "must be a list of 1 to 100 options")
        for i, option in enumerate(options):
            _option(option, f"{at}/options/{i}")
        if "initial_option" in element:
            _option(element["initial_option"], f"{at}/initial_option")
            if element["initial_option"] not in options:
                raise _Invalid(f"{at}/initial_option", "must be one of the options")
    else:  # conversations_select
        _string(element, "initial_conversation", at, ID_MAX, required=False)
        include = (element.get("filter") or {}).get("include", [])
        if not isinstance(include, list) or not set(include) <= CONVERSATION_TYPES:
            raise _Invalid(f"{at}/filter/include", f"must be some of {sorted(CONVERSATION_TYPES)}")


def _option(option: object, at: str) -> None:
    if not isinstance(option, dict):
        raise _Invalid(at, "must be an object")
    _text(option.get("text"), f"{at}/text", OPTION_TEXT_MAX, plain=True)
    _string(option, "value", at, OPTION_VALUE_MAX, required=True)


def _text(text: object, at: str, limit: int, *, plain: bool = False) -> None:
    """A text object: ``plain_text`` (or, unless ``plain``, ``mrkdwn``) of 1 to ``limit``
    characters."""
    if not isinstance(text, dict):
        raise _Invalid(at, "must be a text object")
    kinds = ("plain_text",) if plain else ("plain_text", "mrkdwn")
    if text.get("type") not in kinds:
        raise _Invalid(f"{at}/type", f"must be {' or '.join(kinds)}")
    _string(text, "text", at, limit, required=True)


def _string(
    obj: Mapping[str, Any], key: str, at: str, limit: int, *, required: bool, empty: bool = False
) -> str | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (not value and not empty):
        raise _Invalid(f"{at}/{key}", "must be a non-empty string")
    if len(value) > limit:
        raise _Invalid(f"{at}/{key}", f"must be at most {limit} characters")
    return value
