"""The Block Kit an answer carries: its feedback buttons, and its text beside them; and the
question with Approve / Deny buttons a tool call that needs approval asks
(``adapters.slack.approvals`` takes the clicks).

The buttons are ``feedback_buttons`` in a ``context_actions`` block, under the last message of
each finished answer. A message that has blocks shows only its blocks, so a posted or updated
message carries its text in a ``markdown`` block above them (``answer_blocks``); a natively
streamed one keeps its streamed text and gets the buttons appended when the stream stops
(``button_blocks``).
"""

from __future__ import annotations

from typing import Any

from bot.feedback import Vote
from bot.reply import ApprovalRequest, Verdict, approval_outcome

FEEDBACK_ACTION = "answer_feedback"
"""The ``action_id`` of the buttons: what the click's listener matches."""
APPROVE_ACTION = "approval_yes"
DENY_ACTION = "approval_no"
"""The ``action_id`` of an approval's buttons; their ``value`` is the request's id."""


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


def escape(text: str) -> str:
    """Text for ``mrkdwn`` that cannot mention, link or ping (a model wrote the arguments)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def question_blocks(request: ApprovalRequest) -> list[dict[str, Any]]:
    """The question, its two buttons and who may answer."""
    who = request.who_may_answer(f"<@{request.requester}>")
    return [
        _question(request),
        {
            "type": "actions",
            "elements": [
                _button(APPROVE_ACTION, "Approve", "primary", request.id),
                _button(DENY_ACTION, "Deny", "danger", request.id),
            ],
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": who}]},
    ]


def closed_blocks(request: ApprovalRequest, verdict: Verdict, by: str | None) -> list[Any]:
    """The question once answered: the outcome in place of the buttons."""
    outcome = {"type": "mrkdwn", "text": outcome_text(verdict, by)}
    return [_question(request), {"type": "context", "elements": [outcome]}]


def outcome_text(verdict: Verdict, by: str | None) -> str:
    return approval_outcome(verdict, f"<@{by}>" if by else None)


def _question(request: ApprovalRequest) -> dict[str, Any]:
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": f"<@{request.requester}> {escape(request.question)}"},
    }


def _button(action_id: str, label: str, style: str, value: str) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": label},
        "style": style,
        "value": value,
    }
