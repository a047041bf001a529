"""Events shaped like the ones Slack sends to an app, and the envelope they come in."""

from __future__ import annotations

import html
import re
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

from tests.fakes.slack.constants import (
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    TEAM_ID,
    USER_ID,
    VERIFICATION_TOKEN,
    JSONDict,
)
from tests.fakes.slack.ids import block_id, channel_type_of, new_event_id, new_ts, slack_id

_ENTITY: Final = re.compile(
    r"<(@[UW][A-Z0-9]+(?:\|[^>]*)?|#[CG][A-Z0-9]+(?:\|[^>]*)?|![a-z]+(?:\^[^>|]*)?(?:\|[^>]*)?"
    r"|(?:https?|mailto):[^>|]+(?:\|[^>]*)?)>"
)


def rich_text_blocks(text: str) -> list[JSONDict]:
    """The ``rich_text`` block Slack attaches to a message typed in the client.

    Mentions (``<@U..>``), channel links (``<#C..|name>``), broadcasts (``<!here>``) and links
    (``<https://..|label>``) become their rich-text elements; the rest becomes text elements with
    Slack's ``&lt;``/``&gt;``/``&amp;`` escapes undone.
    """
    elements: list[JSONDict] = []
    pos = 0
    for match in _ENTITY.finditer(text):
        if match.start() > pos:
            elements.append({"type": "text", "text": html.unescape(text[pos : match.start()])})
        body = match.group(1)
        target, _, label = body.partition("|")
        if target.startswith("@"):
            elements.append({"type": "user", "user_id": target[1:]})
        elif target.startswith("#"):
            elements.append({"type": "channel", "channel_id": target[1:]})
        elif target.startswith("!"):
            elements.append({"type": "broadcast", "range": target[1:].split("^")[0]})
        else:
            link: JSONDict = {"type": "link", "url": target}
            if label:
                link["text"] = label
            elements.append(link)
        pos = match.end()
    if pos < len(text):
        elements.append({"type": "text", "text": html.unescape(text[pos:])})
    return [
        {
            "type": "rich_text",
            "block_id": block_id(),
            "elements": [{"type": "rich_text_section", "elements": elements}],
        }
    ]


def _user_message(
    text: str,
    *,
    event_type: str,
    user: str,
    channel: str,
    ts: str | None,
    thread_ts: str | None,
    parent_user_id: str | None,
    team: str,
    channel_type: str | None,
) -> JSONDict:
    ts = ts or new_ts()
    event: JSONDict = {
        "user": user,
        "type": event_type,
        "ts": ts,
        "client_msg_id": str(uuid.uuid4()),
        "text": text,
        "team": team,
        "blocks": rich_text_blocks(text),
        "channel": channel,
        "event_ts": ts,
    }
    if thread_ts is not None and thread_ts != ts:
        event["thread_ts"] = thread_ts
        event["parent_user_id"] = parent_user_id or user
    if event_type == "message":
        event["channel_type"] = channel_type or channel_type_of(channel)
    return event


def app_mention(
    text: str = f"<@{BOT_USER_ID}> hello",
    *,
    user: str = USER_ID,
    channel: str = "C123",
    ts: str | None = None,
    thread_ts: str | None = None,
    parent_user_id: str | None = None,
    team: str = TEAM_ID,
    files: Sequence[JSONDict] | None = None,
) -> JSONDict:
    """An ``app_mention`` event (``text`` is used verbatim: put ``<@BOT>`` in it).

    A mid-thread mention carries ``thread_ts`` (the root's ts) and ``parent_user_id``.
    """
    event = _user_message(
        text,
        event_type="app_mention",
        user=user,
        channel=channel,
        ts=ts,
        thread_ts=thread_ts,
        parent_user_id=parent_user_id,
        team=team,
        channel_type=None,
    )
    if files:
        event["files"] = [dict(f) for f in files]
        event["upload"] = False
        event["display_as_bot"] = False
    return event


def message_event(
    text: str = "hello",
    *,
    user: str = USER_ID,
    channel: str = "C123",
    ts: str | None = None,
    thread_ts: str | None = None,
    parent_user_id: str | None = None,
    team: str = TEAM_ID,
    channel_type: str | None = None,
) -> JSONDict:
    """A plain user ``message`` event; ``channel_type`` follows the ID (``D`` -> ``im``)."""
    return _user_message(
        text,
        event_type="message",
        user=user,
        channel=channel,
        ts=ts,
        thread_ts=thread_ts,
        parent_user_id=parent_user_id,
        team=team,
        channel_type=channel_type,
    )


def im_message(
    text: str = "hello",
    *,
    user: str = USER_ID,
    channel: str = "D123",
    ts: str | None = None,
    thread_ts: str | None = None,
    team: str = TEAM_ID,
) -> JSONDict:
    """A ``message`` event in the bot's DM (``channel_type: im``)."""
    return message_event(
        text, user=user, channel=channel, ts=ts, thread_ts=thread_ts, team=team, channel_type="im"
    )


def file_share_message(
    files: Sequence[JSONDict],
    text: str = "",
    *,
    user: str = USER_ID,
    channel: str = "C123",
    ts: str | None = None,
    thread_ts: str | None = None,
    team: str = TEAM_ID,
    channel_type: str | None = None,
) -> JSONDict:
    """A ``message`` with ``subtype: file_share`` and the file objects (from ``add_file``)."""
    event = message_event(
        text,
        user=user,
        channel=channel,
        ts=ts,
        thread_ts=thread_ts,
        team=team,
        channel_type=channel_type,
    )
    if not text:
        event.pop("blocks", None)  # a bare upload has no text, so no rich_text block
    event.update(
        {
            "subtype": "file_share",
            "files": [dict(f) for f in files],
            "upload": False,
            "display_as_bot": False,
        }
    )
    return event


def bot_message(
    text: str = "beep",
    *,
    bot_id: str = "B0OTHER",
    channel: str = "C123",
    user: str | None = None,
    app_id: str = "A0OTHER",
    username: str = "other-bot",
    ts: str | None = None,
    thread_ts: str | None = None,
    team: str = TEAM_ID,
) -> JSONDict:
    """A message posted by a bot.

    Without ``user``: the legacy shape (``subtype: bot_message``, ``username``, no ``user``), as
    webhooks and old integrations post. With ``user`` (a bot user): the shape of an app's
    ``chat.postMessage`` (no subtype, ``user``, ``bot_id``, ``bot_profile``), which is how our own
    replies come back as ``message`` events.
    """
    ts = ts or new_ts()
    event: JSONDict = {
        "type": "message",
        "text": text,
        "ts": ts,
        "bot_id": bot_id,
        "app_id": app_id,
        "channel": channel,
        "event_ts": ts,
        "channel_type": channel_type_of(channel),
    }
    if user is None:
        event.update({"subtype": "bot_message", "username": username})
    else:
        event.update(
            {
                "user": user,
                "team": team,
                "blocks": rich_text_blocks(text),
                "bot_profile": bot_profile(bot_id, app_id, username, team),
            }
        )
    if thread_ts is not None and thread_ts != ts:
        event["thread_ts"] = thread_ts
    return event


def message_changed(
    new_text: str,
    *,
    previous_text: str = "hello",
    message_ts: str | None = None,
    user: str = USER_ID,
    channel: str = "C123",
    thread_ts: str | None = None,
    team: str = TEAM_ID,
) -> JSONDict:
    """A ``message_changed`` event (hidden): the edited ``message`` and ``previous_message``."""
    message_ts = message_ts or new_ts()
    event_ts = new_ts()
    client_msg_id = str(uuid.uuid4())
    previous: JSONDict = {
        "client_msg_id": client_msg_id,
        "type": "message",
        "text": previous_text,
        "user": user,
        "ts": message_ts,
        "team": team,
        "blocks": rich_text_blocks(previous_text),
    }
    current: JSONDict = {
        **previous,
        "text": new_text,
        "blocks": rich_text_blocks(new_text),
        "edited": {"user": user, "ts": event_ts},
        "source_team": team,
        "user_team": team,
    }
    if thread_ts is not None:
        for m in (previous, current):
            m["thread_ts"] = thread_ts
            m["parent_user_id"] = user
    return {
        "type": "message",
        "subtype": "message_changed",
        "message": current,
        "previous_message": previous,
        "channel": channel,
        "hidden": True,
        "ts": event_ts,
        "event_ts": event_ts,
        "channel_type": channel_type_of(channel),
    }


def app_home_opened(
    *,
    user: str = USER_ID,
    channel: str = "D123",
    tab: Literal["home", "messages"] = "messages",
    team: str = TEAM_ID,
    app_id: str = APP_ID,
) -> JSONDict:
    """``app_home_opened``: ``tab == "messages"`` when the user opens the bot's DM."""
    event: JSONDict = {
        "type": "app_home_opened",
        "user": user,
        "channel": channel,
        "tab": tab,
        "event_ts": new_ts(),
    }
    if tab == "home":
        event["view"] = {
            "id": slack_id("V"),
            "team_id": team,
            "type": "home",
            "blocks": [],
            "private_metadata": "",
            "callback_id": "",
            "hash": secrets.token_hex(8),
            "app_id": app_id,
            "bot_id": BOT_ID,
        }
    return event


def event_envelope(
    event: Mapping[str, Any],
    *,
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
    bot_user_id: str = BOT_USER_ID,
    event_id: str | None = None,
    event_time: int | None = None,
) -> JSONDict:
    """The ``event_callback`` body Slack posts to the request URL (and wraps in Socket Mode)."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": api_app_id,
        "event": dict(event),
        "type": "event_callback",
        "event_id": event_id or new_event_id(),
        "event_time": event_time if event_time is not None else int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + secrets.token_urlsafe(24),
    }


def bot_profile(bot_id: str, app_id: str, name: str, team: str) -> JSONDict:
    return {
        "id": bot_id,
        "app_id": app_id,
        "name": name,
        "icons": {"image_36": "", "image_48": "", "image_72": ""},
        "deleted": False,
        "updated": 1_700_000_000,
        "team_id": team,
    }
