"""Views: ``views.publish`` (a user's Home tab), ``views.open`` (a modal, on a trigger id), and
the interactivity payloads a user's clicks and submissions in them send to the app.

- Trigger ids come with what Slack sends an app (slash commands, ``block_actions``); each
  opens one view within 3 seconds (``expired_trigger_id``, ``exchanged_trigger_id``).
- The payloads are built from the view as the fake holds it, as Slack does: a click names a
  button that is there (with its ``block_id`` and ``value``); a submission carries the state
  of every input block of the modal (a value the test leaves out keeps its initial one).
- ``deliver_interaction`` (``events``) posts a payload as Slack does, form-encoded
  (``payload=<json>``) and signed; over Socket Mode it goes in an ``interactive`` envelope
  (``deliver_socket_payload``), and a ``view_submission``'s answer (``response_action``)
  comes back in the ack.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Final

from tests.fakes.slack.constants import BOT_ID, TEAM_ID, VERIFICATION_TOKEN, JSONDict
from tests.fakes.slack.ids import new_ts, slack_id
from tests.fakes.slack.params import ApiError, bot_workspace, required
from tests.fakes.slack.records import Workspace
from tests.fakes.slack.state import SlackState
from tests.fakes.slack.view_blocks import check_view

TRIGGER_LIFETIME: Final = 3.0
"""Seconds a trigger id can open a view."""


class Views(SlackState):
    """The views the app published or opened, and what users do in them."""

    # ----------------------------------------------------------------- Web API

    def _views_publish(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        ws = bot_workspace(workspace)
        user = required(params, "user_id")
        view = check_view(params.get("view"), surface="home")
        previous = self._homes.get((ws.team_id, user))
        expected = params.get("hash")
        if expected and previous is not None and expected != previous["hash"]:
            raise ApiError("hash_conflict")
        stored = self._stored_view(ws, view, view_id=previous["id"] if previous else None)
        self._homes[(ws.team_id, user)] = stored
        self._home_history.setdefault((ws.team_id, user), []).append(stored)
        return {"view": stored}

    def _views_open(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        ws = bot_workspace(workspace)
        trigger = required(params, "trigger_id")
        issued = self._triggers.get(trigger)
        if issued is None:
            raise ApiError("invalid_trigger_id")
        if issued < 0:
            raise ApiError("exchanged_trigger_id")
        if time.monotonic() - issued > TRIGGER_LIFETIME:
            raise ApiError("expired_trigger_id")
        view = check_view(params.get("view"), surface="modal")
        self._triggers[trigger] = -1.0  # one view per trigger
        stored = self._stored_view(ws, view)
        self._modals[stored["id"]] = stored
        return {"view": stored}

    def _stored_view(
        self, ws: Workspace, view: JSONDict, *, view_id: str | None = None
    ) -> JSONDict:
        view_id = view_id or slack_id("V")
        return {
            "id": view_id,
            "team_id": ws.team_id,
            "type": view["type"],
            "blocks": view["blocks"],
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{time.time():.6f}.{secrets.token_hex(4)}",
            "title": view.get("title"),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": ws.team_id,
            "bot_id": ws.bot_id or BOT_ID,
        }

    # ----------------------------------------------------------------- inspection

    def home(self, user: str, team_id: str = TEAM_ID) -> JSONDict | None:
        """The Home tab ``user`` sees now (the last view published for them)."""
        return self._homes.get((team_id, user))

    def homes_published(self, user: str, team_id: str = TEAM_ID) -> list[JSONDict]:
        return list(self._home_history.get((team_id, user), ()))

    def modals(self) -> list[JSONDict]:
        """Modals opened, oldest first."""
        return list(self._modals.values())

    # ----------------------------------------------------------------- what users do

    def home_click(
        self, user: str, action_id: str, *, value: str | None = None, team_id: str = TEAM_ID
    ) -> JSONDict:
        """The ``block_actions`` payload of ``user`` clicking the button ``action_id`` (the
        one with ``value``, when several share an action id across blocks) on their Home."""
        home = self.home(user, team_id)
        if home is None:
            raise LookupError(f"no Home tab was published for {user}")
        block, button = _find_button(home, action_id, value)
        return {
            "type": "block_actions",
            "user": self._user(user, team_id),
            "api_app_id": self.app_id,
            "token": VERIFICATION_TOKEN,
            "container": {"type": "view", "view_id": home["id"]},
            "trigger_id": self._new_trigger(),
            "team": {"id": team_id, "domain": self._workspace(team_id).domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "view": home,
            "actions": [
                {
                    "action_id": button["action_id"],
                    "block_id": block.get("block_id", ""),
                    "text": button["text"],
                    **({"value": button["value"]} if "value" in button else {}),
                    "type": "button",
                    "action_ts": new_ts(),
                }
            ],
        }

    def view_submission(
        self,
        view_id: str,
        user: str,
        values: Mapping[str, str | None] | None = None,
        *,
        team_id: str = TEAM_ID,
    ) -> JSONDict:
        """The ``view_submission`` payload of ``user`` pressing Submit in modal ``view_id``,
        with ``values`` typed or chosen (input ``block_id`` -> text, option value or channel;
        ``None`` empties it). Like Slack's client, a required input left empty cannot be
        submitted (``ValueError``)."""
        view = self._modals.get(view_id)
        if view is None:
            raise LookupError(f"no modal {view_id}")
        values = dict(values or {})
        state: JSONDict = {}
        for block in view["blocks"]:
            if block["type"] != "input":
                continue
            block_id = block.get("block_id", "")
            element = block["element"]
            given = values.pop(block_id, _initial(element))
            if given in (None, "") and not block.get("optional", False):
                raise ValueError(f"the required input {block_id!r} is empty")
            state[block_id] = {element.get("action_id", ""): _state_of(element, given)}
        if values:
            raise LookupError(f"no input blocks {sorted(values)} in the modal")
        return {
            "type": "view_submission",
            "team": {"id": team_id, "domain": self._workspace(team_id).domain},
            "user": self._user(user, team_id),
            "api_app_id": self.app_id,
            "token": VERIFICATION_TOKEN,
            "trigger_id": self._new_trigger(),
            "view": {**view, "state": {"values": state}},
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }

    def _user(self, user: str, team_id: str) -> JSONDict:
        return {"id": user, "username": user.lower(), "name": user.lower(), "team_id": team_id}


def _find_button(view: JSONDict, action_id: str, value: str | None) -> tuple[JSONDict, JSONDict]:
    for block in view["blocks"]:
        elements = [block["accessory"]] if "accessory" in block else block.get("elements", [])
        for element in elements:
            if (
                isinstance(element, dict)
                and element.get("type") == "button"
                and element.get("action_id") == action_id
                and (value is None or element.get("value") == value)
            ):
                return block, element
    raise LookupError(f"no button {action_id!r} (value {value!r}) in the view")


def _initial(element: JSONDict) -> str | None:
    kind = element["type"]
    if kind == "plain_text_input":
        return element.get("initial_value")
    if kind == "static_select":
        option = element.get("initial_option")
        return option["value"] if option else None
    return element.get("initial_conversation")


def _state_of(element: JSONDict, given: str | None) -> JSONDict:
    """One input's entry in ``view.state.values``, shaped as Slack sends it."""
    kind = element["type"]
    if kind == "plain_text_input":
        return {"type": kind, "value": given or None}
    if kind == "static_select":
        chosen = next((o for o in element["options"] if o["value"] == given), None)
        if given is not None and chosen is None:
            raise LookupError(f"{given!r} is not one of the options")
        return {"type": kind, "selected_option": chosen}
    return {"type": kind, "selected_conversation": given}
