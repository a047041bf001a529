"""Clicks on the feedback buttons under Slack answers (``blocks`` renders the buttons,
``SlackReply`` puts them under the last message of each finished answer).

- A click arrives as a ``block_actions`` interaction (HTTP: at the events URL, form-encoded;
  Socket Mode: an ``interactive`` envelope). It is acked at once (Slack wants it within 3 s),
  then recorded through the core, and the clicker alone is told the outcome (an ephemeral
  message in the answer's thread).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from adapters.common.inflight import InFlight
from adapters.slack.blocks import FEEDBACK_ACTION, answer_message_id
from adapters.slack.reply import slack_error
from adapters.slack.translate import command_event
from bot.events import Event
from bot.feedback import Vote

if TYPE_CHECKING:
    from bot.core import Core

log = logging.getLogger(__name__)


class FeedbackActions:
    """The listener for clicks on the buttons."""

    def __init__(self, core: Core, client: AsyncWebClient, *, inflight: InFlight) -> None:
        self.core = core
        self._client = client
        self._inflight = inflight

    def register(self, app: AsyncApp) -> None:
        app.action(FEEDBACK_ACTION)(self.on_click)

    async def on_click(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()  # first: recording waits for the store, Slack waits 3 s at most
        with self._inflight.track():
            await self._click(body, action)

    async def _click(self, body: Mapping[str, Any], action: Mapping[str, Any]) -> None:
        try:
            value = Vote(str(action.get("value")))
        except ValueError:
            log.warning("slack: a feedback click with an unknown value, ignored")
            return
        clicked = clicked_by(body, "feedback")
        if clicked is None:
            log.warning("slack: a feedback click without its user, channel or message, ignored")
            return
        click, where = clicked
        voted = await self.core.vote(
            click, message_id=answer_message_id(where.channel, where.ts), value=value
        )
        try:
            await self._client.chat_postEphemeral(
                channel=where.channel,
                user=click.author.id,
                thread_ts=where.thread_ts or None,
                text=voted.text,
            )
        except Exception as exc:
            log.info("slack: could not confirm a vote to its user: %s", slack_error(exc))


@dataclass(frozen=True, slots=True)
class ClickedMessage:
    """The message a button was clicked on."""

    channel: str
    ts: str
    thread_ts: str


def clicked_by(body: Mapping[str, Any], name: str) -> tuple[Event, ClickedMessage] | None:
    """A ``block_actions`` click as an event of its clicker (a command ``name``, so the
    allowlists apply to it as to anything else), and the message clicked; None if the payload
    lacks its user, channel or message."""
    container = _object(body.get("container"))
    user = _object(body.get("user"))
    message = _object(body.get("message"))
    user_id = str(user.get("id") or "")
    channel = str(container.get("channel_id") or _object(body.get("channel")).get("id") or "")
    ts = str(container.get("message_ts") or message.get("ts") or "")
    thread_ts = str(container.get("thread_ts") or message.get("thread_ts") or "")
    if not (user_id and channel and ts):
        return None
    team = str(_object(body.get("team")).get("id") or user.get("team_id") or "")
    click = command_event(
        {
            "team_id": team,
            "channel_id": channel,
            "user_id": user_id,
            "user_name": user.get("username") or user.get("name"),
            "command": name,
            "trigger_id": body.get("trigger_id") or "",
        }
    )
    return click, ClickedMessage(channel, ts, thread_ts)


def _object(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
