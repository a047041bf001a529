"""The Block Kit an answer carries: its feedback buttons, and its text beside them.

The buttons are ``feedback_buttons`` in a ``context_actions`` block, under the last message of
each finished answer. A message that has blocks shows only its blocks, so a posted or updated
message carries its text in a ``markdown`` block above them (``answer_blocks``); a natively
streamed one keeps its streamed text and gets the buttons appended when the stream stops
(``button_blocks``).
"""

from __future__ import annotations

from typing import Any

from bot.feedback import Vote

FEEDBACK_ACTION = "answer_feedback"
"""The ``action_id`` of the buttons: what the click's listener matches."""


def answer_message_id(channel: str, ts: str) -> str:
    """How a Slack message is named to the core: a ``ts`` is unique within its channel only."""
    return f"{channel}:{ts}"


def button_blocks() -> list[dict[str, Any]]:
    """The thumbs up / down under an answer."""
    return [
        {
            "type": "context_actions",
            "elements": [
                {
                    "type": "feedback_buttons",
                    "action_id": FEEDBACK_ACTION,
                    "positive_button": {
                        "text": {"type": "plain_text", "text": "👍"},
                        "value": Vote.UP.value,
                        "accessibility_label": "This answer was helpful",
                    },
                    "negative_button": {
                        "text": {"type": "plain_text", "text": "👎"},
                        "value": Vote.DOWN.value,
                        "accessibility_label": "This answer was not helpful",
                    },
                }
            ],
        }
    ]


def answer_blocks(text: str) -> list[dict[str, Any]]:
    """A posted or updated message of an answer with the buttons: its text in a ``markdown``
    block (a message with blocks shows only them), then the buttons."""
    return [{"type": "markdown", "text": text}, *button_blocks()]
