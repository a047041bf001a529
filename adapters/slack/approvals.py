"""Requests for approval of a tool call in Slack: the question with Approve / Deny buttons in
the answer's thread (``SlackReply.ask_approval``), and the clicks on them.

- The question is a ``section`` naming the asker, an ``actions`` block with two ``button``
  elements (``action_id`` ``approval_yes`` / ``approval_no``, the request's id as ``value``)
  and a ``context`` line saying who may answer and for how long.
- Once decided or expired, the same message is updated: the buttons go, the outcome is shown.
- A click arrives as a ``block_actions`` interaction (HTTP: at the events URL, the manifest's
  interactivity URL; Socket Mode: an ``interactive`` envelope). It is acked at once, decided
  through the core (which checks who clicked), and a click that decided nothing (someone
  else's request, already decided, expired) is explained to its clicker alone. A click that
  decided it needs no line: the turn updates the question on whichever instance waits on it.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from adapters.common.inflight import InFlight
from adapters.slack.blocks import APPROVE_ACTION, DENY_ACTION
from adapters.slack.feedback import clicked_by
from adapters.slack.reply import slack_error

if TYPE_CHECKING:
    from bot.core import Core

log = logging.getLogger(__name__)

_ACTIONS = re.compile(f"^({APPROVE_ACTION}|{DENY_ACTION})$")


class ApprovalActions:
    """The listener for clicks on Approve / Deny."""

    def __init__(self, core: Core, client: AsyncWebClient, *, inflight: InFlight) -> None:
        self.core = core
        self._client = client
        self._inflight = inflight

    def register(self, app: AsyncApp) -> None:
        app.action(_ACTIONS)(self.on_click)

    async def on_click(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()  # first: deciding waits for the store, Slack waits 3 s at most
        with self._inflight.track():
            await self._click(body, action)

    async def _click(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        clicked = clicked_by(body, "approval")
        approval_id = str(action.get("value") or "")
        if clicked is None or not approval_id:
            log.warning("slack: an approval click without its user, message or request, ignored")
            return
        click, where = clicked
        decided = await self.core.decide_approval(
            click,
            approval_id=approval_id,
            approve=action.get("action_id") == APPROVE_ACTION,
        )
        if decided.status == "decided":
            return  # the question itself shows the outcome, to everyone
        try:
            await self._client.chat_postEphemeral(
                channel=where.channel,
                user=click.author.id,
                thread_ts=where.thread_ts or None,
                text=decided.text,
            )
        except Exception as exc:
            log.info("slack: could not tell a clicker why nothing changed: %s", slack_error(exc))
