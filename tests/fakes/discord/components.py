"""Message components as Discord checks them, for the ones the bot sends: action rows (type 1)
holding buttons (type 2). Another component type is refused as not emulated, rather than
half-emulated.

Limits from Discord's component reference: at most 5 action rows a message, 1 to 5 buttons a
row; a button has a ``style`` 1 to 5; a link button (5) has a ``url`` and no ``custom_id``,
every other one a ``custom_id`` of 1 to 100 characters, unique in the message; a ``label``
of at most 80 characters, and a label or an emoji.
"""

from __future__ import annotations

from typing import Any, Final

from tests.fakes.discord.constants import JSONDict
from tests.fakes.discord.wire import form_error

ACTION_ROW: Final = 1
BUTTON: Final = 2
LINK_STYLE: Final = 5
MAX_ROWS: Final = 5
MAX_BUTTONS: Final = 5
CUSTOM_ID_LIMIT: Final = 100
LABEL_LIMIT: Final = 80


def validate_components(components: Any, *, prefix: str) -> None:
    """``components`` of a message body (``prefix``: where the body sits, e.g. ``data.``)."""
    at = f"{prefix}components"
    if not isinstance(components, list):
        raise form_error(at, "BASE_TYPE_LIST", "Must be a list.")
    if len(components) > MAX_ROWS:
        raise form_error(at, "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ROWS} or fewer in length.")
    seen: set[str] = set()
    for r, row in enumerate(components):
        row_at = f"{at}.{r}"
        if not isinstance(row, dict) or row.get("type") != ACTION_ROW:
            raise form_error(f"{row_at}.type", "COMPONENT_TYPE_INVALID", "not emulated here")
        buttons = row.get("components")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= MAX_BUTTONS:
            raise form_error(
                f"{row_at}.components",
                "BASE_TYPE_BAD_LENGTH",
                f"Must be between 1 and {MAX_BUTTONS} in length.",
            )
        for b, button in enumerate(buttons):
            _button(button, f"{row_at}.components.{b}", seen)


def _button(button: Any, at: str, seen: set[str]) -> None:
    if not isinstance(button, dict) or button.get("type") != BUTTON:
        raise form_error(f"{at}.type", "COMPONENT_TYPE_INVALID", "not emulated here")
    style = button.get("style")
    if not isinstance(style, int) or not 1 <= style <= LINK_STYLE:
        raise form_error(
            f"{at}.style", "BASE_TYPE_CHOICES", "Value must be one of (1, 2, 3, 4, 5)."
        )
    custom_id, url = button.get("custom_id"), button.get("url")
    if style == LINK_STYLE:
        if not isinstance(url, str) or custom_id is not None:
            raise form_error(f"{at}.url", "BUTTON_COMPONENT_URL_REQUIRED", "A url is required")
    else:
        if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= CUSTOM_ID_LIMIT:
            raise form_error(
                f"{at}.custom_id",
                "BASE_TYPE_BAD_LENGTH",
                f"Must be between 1 and {CUSTOM_ID_LIMIT} in length.",
            )
        if custom_id in seen:
            raise form_error(
                f"{at}.custom_id",
                "COMPONENT_CUSTOM_ID_DUPLICATED",
                "Component custom id is duplicated",
            )
        seen.add(custom_id)
    label, emoji = button.get("label"), button.get("emoji")
    if label is not None and (not isinstance(label, str) or len(label) > LABEL_LIMIT):
        raise form_error(
            f"{at}.label", "BASE_TYPE_MAX_LENGTH", f"Must be {LABEL_LIMIT} or fewer in length."
        )
    if not label and not (isinstance(emoji, dict) and (emoji.get("name") or emoji.get("id"))):
        raise form_error(
            at, "BUTTON_COMPONENT_LABEL_OR_EMOJI_REQUIRED", "A label or emoji is required"
        )


def find_button(components: list[JSONDict], custom_id: str) -> JSONDict:
    """The button with ``custom_id`` on a message: what a user can click."""
    for row in components:
        for component in row.get("components", ()):
            if component.get("type") == BUTTON and component.get("custom_id") == custom_id:
                return dict(component)
    raise LookupError(f"no button {custom_id!r} on that message")
