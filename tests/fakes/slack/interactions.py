"""Interactivity: a user's click on a button (a feedback button, or a ``button`` element of an
``actions`` block), as Slack sends it to the app.

Slack posts a ``block_actions`` payload to the app's interactivity URL (here the events URL, as
the manifest says), form-encoded as one ``payload`` field and signed like events; over Socket
Mode it comes in an ``interactive`` envelope (``deliver_socket_payload``). A click can only
happen on a button the message shows: ``block_actions`` looks it up in the stored message.
"""

from __future__ import annotations

import time

from tests.fakes.slack.blocks import find_action
from tests.fakes.slack.constants import TEAM_ID, USER_ID, VERIFICATION_TOKEN, JSONDict
from tests.fakes.slack.events import EventDelivery
from tests.fakes.slack.ids import new_trigger_id
from tests.fakes.slack.params import public


class Interactions(EventDelivery):
    """``block_actions`` payloads for clicks, and their delivery over HTTP."""

    def block_actions(
        self,
        channel: str,
        ts: str,
        *,
        action_id: str,
        value: str,
        user_id: str = USER_ID,
        user_name: str = "alice",
        team_id: str = TEAM_ID,
    ) -> JSONDict:
        """The payload of ``user_id`` clicking the button worth ``value`` (element
        ``action_id``) on message ``ts`` in ``channel``. ``LookupError`` if the message shows
        no such button."""
        message = self.message(channel, ts)
        block, element = find_action(list(message.get("blocks") or []), action_id, value)
        if element.get("type") == "button":
            button = element
        else:
            button = next(
                b
                for b in (element["positive_button"], element["negative_button"])
                if b["value"] == value
            )
        action: JSONDict = {
            "type": element["type"],
            "action_id": element.get("action_id", ""),
            "block_id": block.get("block_id", ""),
            "value": value,
            "text": button["text"],
            "action_ts": f"{time.time():.6f}",
        }
        if button.get("style"):
            action["style"] = button["style"]
        workspace = self._workspace(team_id)
        container: JSONDict = {
            "type": "message",
            "message_ts": ts,
            "channel_id": channel,
            "is_ephemeral": False,
        }
        if message.get("thread_ts"):
            container["thread_ts"] = message["thread_ts"]
        return {
            "type": "block_actions",
            "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
            "api_app_id": self.app_id,
            "token": VERIFICATION_TOKEN,
            "container": container,
            "trigger_id": new_trigger_id(),
            "team": {"id": team_id, "domain": workspace.domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": "general"},
            "message": public(message),
            "state": {"values": {}},
            "response_url": self.new_response_url(),
            "actions": [action],
        }
