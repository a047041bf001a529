"""Is this a payload Slack would send? Checked before bolt sees it.

bolt trusts the shape of what it dispatches: a correctly signed body with a ``view`` that is a
string, ``actions`` that are not a list of objects or a slash command without ``response_url``
made its middleware raise (a 500 with a traceback). The checks here are only the fields bolt
and the adapter read, typed as Slack's documentation gives them; anything else a payload
carries is left alone, so new fields Slack adds never break the bot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Fields of an event that bolt reads and expects as strings (or objects, in some event types).
_EVENT_FIELDS = ("type", "user", "channel", "ts", "thread_ts", "team", "subtype", "bot_id")
_COMMAND_FIELDS = ("team_id", "channel_id", "user_id", "trigger_id")
INTERACTIVE_TYPES = frozenset(
    {
        "block_actions",
        "block_suggestion",
        "view_submission",
        "view_closed",
        "shortcut",
        "message_action",
        "interactive_message",
        "dialog_submission",
        "dialog_cancellation",
        "dialog_suggestion",
        "workflow_step_edit",
    }
)
_NEEDS_CALLBACK_ID = frozenset({"shortcut", "message_action"})
_OPTIONAL_STRINGS = ("callback_id", "trigger_id", "response_url", "action_ts", "token")


def well_formed(payload: object) -> bool:
    """A JSON object Slack could have sent: an Events API envelope, a slash command or an
    interactivity payload whose fields bolt reads have the types Slack gives them."""
    if not isinstance(payload, dict):
        return False
    if "command" in payload:
        return _command(payload)
    if payload.get("type") in INTERACTIVE_TYPES:
        return _interactive(payload)
    if "event" not in payload:
        return True
    event = payload["event"]
    if not isinstance(event, dict):
        return False
    return all(isinstance(event.get(k), str | dict | None) for k in _EVENT_FIELDS)


def _command(payload: Mapping[str, Any]) -> bool:
    command, response_url = payload.get("command"), payload.get("response_url")
    return (
        isinstance(command, str)
        and command.startswith("/")
        and len(command) > 1
        and _http_url(response_url)
        and all(_id(payload.get(k)) for k in _COMMAND_FIELDS)
    )


def _interactive(payload: Mapping[str, Any]) -> bool:
    kind = payload["type"]
    user, team = payload.get("user"), payload.get("team")
    if not (isinstance(user, dict) and _id(user.get("id"))):
        return False
    if team is not None and not (isinstance(team, dict) and _optional_id(team.get("id"))):
        return False
    if not all(isinstance(payload.get(k), str | None) for k in _OPTIONAL_STRINGS):
        return False
    if kind in _NEEDS_CALLBACK_ID and not _id(payload.get("callback_id")):
        return False
    if "response_url" in payload and not _http_url(payload["response_url"]):
        return False
    for name in ("channel", "message", "container", "state"):
        if not isinstance(payload.get(name), dict | None):
            return False
    actions = payload.get("actions")
    if actions is not None and not (
        isinstance(actions, list)
        and all(isinstance(a, dict) and isinstance(a.get("action_id", ""), str) for a in actions)
    ):
        return False
    response_urls = payload.get("response_urls")
    if response_urls is not None and not (
        isinstance(response_urls, list) and all(isinstance(u, dict) for u in response_urls)
    ):
        return False
    return _view(payload.get("view"), required=kind in ("view_submission", "view_closed"))


def _view(view: object, *, required: bool) -> bool:
    if view is None:
        return not required
    if not isinstance(view, dict) or not _id(view.get("id")):
        return False
    fields = ("callback_id", "private_metadata", "hash", "team_id", "app_installed_team_id")
    if not all(isinstance(view.get(k), str | None) for k in fields):
        return False
    state = view.get("state")
    return state is None or (isinstance(state, dict) and isinstance(state.get("values"), dict))


def _id(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def _optional_id(value: object) -> bool:
    return value is None or _id(value)


def _http_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://"))
