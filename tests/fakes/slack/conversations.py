"""Reading Slack: ``conversations.replies`` (paged), ``users.info`` (with the locale),
``conversations.open`` (a DM); and message shortcuts (``message_action``) delivered to an app,
signed over HTTP or in a Socket Mode envelope."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any, Final
from urllib.parse import urlencode

from tests.fakes.slack.constants import TEAM_ID, USER_ID, VERIFICATION_TOKEN, JSONDict
from tests.fakes.slack.events import EventDelivery
from tests.fakes.slack.ids import new_trigger_id, new_ts
from tests.fakes.slack.params import (
    ApiError,
    as_str,
    bot_workspace,
    channel_param,
    public,
    required,
)
from tests.fakes.slack.records import SocketAck, Workspace
from tests.fakes.slack.signing import signed_headers
from tests.fakes.slack.socket_mode import SocketMode

REPLIES_DEFAULT_LIMIT: Final = 1000
REPLIES_MAX_LIMIT: Final = 1000
"""``conversations.replies``: ``limit`` defaults to 1000 and is capped there (Slack suggests
no more than 200 per page)."""


class Conversations(EventDelivery, SocketMode):
    """The reading side of the Web API and the shortcuts a user clicks."""

    # ----------------------------------------------------------------- set-up

    def add_user(self, user_id: str, *, name: str, locale: str = "en-US", **extra: Any) -> JSONDict:
        """Register a user for ``users.info`` (``locale`` is returned with
        ``include_locale=true`` only, as Slack does); ``extra`` keys are merged in."""
        user: JSONDict = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": False,
            "real_name": name.title(),
            "tz": "Europe/London",
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "profile": {"real_name": name.title(), "display_name": name, "team": self.team_id},
            "is_admin": False,
            "is_owner": False,
            "is_bot": False,
            "is_app_user": False,
            "updated": 1_700_000_000,
            "locale": locale,
            **extra,
        }
        self._users[user_id] = user
        return user

    def dm_channel_of(self, user_id: str) -> str:
        """The id of the bot's DM with ``user_id`` (what ``conversations.open`` answers)."""
        return "D" + user_id.lstrip("UW")[:10].upper().rjust(8, "0")

    # ----------------------------------------------------------------- Web API methods

    def _conversations_replies(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        bot_workspace(workspace)
        channel = channel_param(params, "channel")
        ts = required(params, "ts")
        if self._find(channel, ts) is None:
            raise ApiError("thread_not_found")
        try:
            limit = int(params.get("limit") or REPLIES_DEFAULT_LIMIT)
        except (TypeError, ValueError):
            raise ApiError("invalid_limit") from None
        limit = max(1, min(limit, REPLIES_MAX_LIMIT))
        start = _decode_cursor(as_str(params.get("cursor")))
        found = [public(m) for m in self.thread(channel, ts)]
        page = found[start : start + limit]
        more = start + limit < len(found)
        cursor = _encode_cursor(start + limit) if more else ""
        return {"messages": page, "has_more": more, "response_metadata": {"next_cursor": cursor}}

    def _users_info(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        bot_workspace(workspace)
        user_id = required(params, "user")
        user = self._users.get(user_id)
        if user is None:
            raise ApiError("user_not_found")
        shown = dict(user)
        if as_str(params.get("include_locale")).lower() not in ("true", "1"):
            shown.pop("locale", None)
        return {"user": shown}

    def _conversations_open(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        bot_workspace(workspace)
        users = [u for u in as_str(params.get("users")).split(",") if u]
        if len(users) != 1:
            raise ApiError("not_enough_users" if not users else "too_many_users")
        if users[0] not in self._users and users[0] != USER_ID:
            raise ApiError("user_not_found")
        return {"channel": {"id": self.dm_channel_of(users[0])}}

    # ----------------------------------------------------------------- shortcuts

    def message_action(
        self,
        callback_id: str,
        message: JSONDict,
        *,
        channel: str = "C123",
        user: str = USER_ID,
        team_id: str = TEAM_ID,
    ) -> JSONDict:
        """The ``message_action`` payload of a message shortcut clicked on ``message`` (as
        stored, e.g. from ``add_message``) in ``channel``."""
        workspace = self._workspace(team_id)
        return {
            "type": "message_action",
            "token": VERIFICATION_TOKEN,
            "action_ts": new_ts(),
            "team": {"id": team_id, "domain": workspace.domain},
            "user": {"id": user, "username": f"user-{user.lower()}", "team_id": team_id},
            "channel": {"id": channel, "name": f"channel-{channel.lower()}"},
            "is_enterprise_install": False,
            "enterprise": None,
            "callback_id": callback_id,
            "trigger_id": new_trigger_id(),
            "response_url": self.new_response_url(),
            "message_ts": message["ts"],
            "message": public(dict(message)),
            "api_app_id": self.app_id,
        }

    async def deliver_shortcut(
        self, url: str, signing_secret: str, payload: JSONDict
    ) -> tuple[int, str]:
        """POST a shortcut as Slack does: form-encoded ``payload=<json>``, signed."""
        body = urlencode({"payload": json.dumps(payload, separators=(",", ":"))})
        headers = signed_headers(
            signing_secret, body, content_type="application/x-www-form-urlencoded"
        )
        return await self._deliver("interactive", url, payload, body, headers)

    async def deliver_socket_shortcut(self, payload: JSONDict) -> SocketAck:
        """The same shortcut in a Socket Mode ``interactive`` envelope."""
        envelope = {
            "envelope_id": str(uuid.uuid4()),
            "payload": payload,
            "type": "interactive",
            "accepts_response_payload": True,
        }
        return await self._send_envelope(envelope, 5.0)


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}:{time.time_ns()}".encode()).decode()


def _decode_cursor(cursor: str) -> int:
    if not cursor:
        return 0
    try:
        kind, offset, _ = base64.urlsafe_b64decode(cursor.encode()).decode().split(":")
        if kind == "offset" and int(offset) >= 0:
            return int(offset)
    except (ValueError, UnicodeDecodeError):
        pass
    raise ApiError("invalid_cursor")
