"""The app's Home tab: published on ``app_home_opened`` (tab ``home``), edited by admins in a
modal, and published again when a setting it shows changes.

- Everyone allowed sees what the bot can do, their usage today against the budgets in force
  and the channels' settings; admins (``BOT_ADMINS``) get an Edit button per channel, which
  opens the settings modal (``views.open`` on the click's trigger id, valid 3 seconds).
- The modal's submission is checked and saved by the core with ``/settings``' own checks
  (``Core.change_channel_settings``); its problems go back to the modal
  (``response_action: errors``), nothing saved. Slack waits 3 seconds for that answer.
- A user the allowlists refuse gets a one-line Home; a click or submission of theirs does
  nothing (the buttons are never shown to them, but payloads are not trusted).
- After a change (the modal, ``/model``, ``/settings``: ``Core.settings_changed``), the Home
  of the user who made it is published again, and of those who opened theirs in the last
  ``RECENT_S`` (at most ``RECENT_MAX``, the latest), so what they see stays true.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.common.inflight import InFlight
from adapters.slack.home_view import (
    CHANNEL_BLOCK,
    EDIT_ACTION,
    MODAL_CALLBACK,
    NEW_ACTION,
    home_view,
    settings_modal,
    submitted,
)
from adapters.slack.reply import slack_error
from adapters.slack.translate import PLATFORM, channel_key, command_event
from bot.commands import is_admin
from bot.events import Author, Event, EventKind

if TYPE_CHECKING:
    from bot.core import Core

log = logging.getLogger(__name__)

RECENT_S = 3600.0
"""Whose Home is refreshed after a change: those who opened it this recently..."""
RECENT_MAX = 50
"""...and at most this many of them, the latest."""
CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]+$")


def home_event(team: str, user: str) -> Event:
    """``user`` on their Home tab, as the core sees them: in a private space of their own, as
    in a DM (the channel allowlist does not apply; the workspace and user lists do)."""
    where = channel_key(team, "home")
    return Event(
        platform=PLATFORM,
        event_id=f"{PLATFORM}:home:{team}:{user}",
        conversation=where,
        channel=where,
        kind=EventKind.DIRECT_MESSAGE,
        author=Author(id=user, display_name=user),
        text="",
        workspace=team,
    )


class HomeTab:
    def __init__(self, core: Core, client: AsyncWebClient, *, inflight: InFlight) -> None:
        self.core = core
        self._client = client
        self._inflight = inflight
        self._recent: OrderedDict[tuple[str, str], float] = OrderedDict()
        """(team, user) -> when they last opened their Home, oldest first."""
        self._refreshing: set[asyncio.Task[None]] = set()
        core.settings_changed.append(self.settings_changed)

    def register(self, app: AsyncApp) -> None:
        # app_home_opened is one listener for both tabs (bolt runs the first that matches):
        # ``AssistantThreads`` hands the "home" tab to ``opened``.
        app.action(re.compile(f"^({EDIT_ACTION}|{NEW_ACTION})$"))(self.on_edit)
        app.view(MODAL_CALLBACK)(self.on_submit)

    async def opened(self, team: str, user: str) -> None:
        """The user opened the Home tab: show it, and remember them for later refreshes."""
        self._recent.pop((team, user), None)
        self._recent[(team, user)] = time.monotonic()
        while len(self._recent) > RECENT_MAX:
            self._recent.popitem(last=False)
        await self.publish(team, user)

    async def publish(self, team: str, user: str) -> None:
        try:
            home = await self.core.home(home_event(team, user))
            await self._client.views_publish(user_id=user, view=home_view(home))
        except SlackApiError as exc:
            log.warning("could not publish a Home tab: %s", slack_error(exc))

    async def settings_changed(self, event: Event) -> None:
        """The core's notice that ``event``'s channel settings may have changed: refresh, in
        the background, the Homes that show them."""
        if event.platform != PLATFORM or not event.workspace:
            return
        team = event.workspace
        now = time.monotonic()
        users = [event.author.id]
        users += [
            u for (t, u), at in reversed(self._recent.items()) if t == team and now - at < RECENT_S
        ]
        task = asyncio.create_task(self._refresh(team, list(dict.fromkeys(users))))
        self._refreshing.add(task)
        task.add_done_callback(self._refreshing.discard)

    async def _refresh(self, team: str, users: list[str]) -> None:
        with self._inflight.track():
            for user in users:
                await self.publish(team, user)

    async def on_edit(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        with self._inflight.track():
            team, user = _team_and_user(body)
            trigger = body.get("trigger_id")
            if not (team and user and isinstance(trigger, str)):
                return
            who = home_event(team, user)
            if not (self.core.allows(who) and is_admin(self.core.settings, who)):
                log.info("slack: a Home edit from someone who may not edit; Home refreshed")
                await self.publish(team, user)  # their Home was stale: show them what is true
                return
            action = (body.get("actions") or [{}])[0]
            channel = str(action.get("value") or "")
            channel_id = channel if CHANNEL_ID.match(channel) else None
            current = (
                await self.core.channel_settings(channel_key(team, channel_id))
                if channel_id
                else None
            )
            modal = settings_modal(self.core.settings, current, channel_id=channel_id)
            try:
                await self._client.views_open(trigger_id=trigger, view=modal)
            except SlackApiError as exc:
                log.warning("could not open the channel settings: %s", slack_error(exc))

    async def on_submit(self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        with self._inflight.track():
            team, user = _team_and_user(body)
            channel, values = submitted(view)
            first_input = CHANNEL_BLOCK if not view.get("private_metadata") else "model"
            if not (team and user):
                await ack()
                return
            if not (channel and CHANNEL_ID.match(channel)):
                await ack(
                    response_action="errors",
                    errors={first_input: "Choose a channel (public or private)."},
                )
                return
            event = command_event({"team_id": team, "channel_id": channel, "user_id": user})
            try:
                problems = await self.core.change_channel_settings(event, values)
            except Exception:
                log.exception("could not save a channel's settings")
                problems = {"": "Sorry, I couldn't save that. Please try again."}
            if problems:
                errors = {name or first_input: text for name, text in problems.items()}
                await ack(response_action="errors", errors=errors)
                return
            await ack()


def _team_and_user(body: dict[str, Any]) -> tuple[str, str]:
    team = body.get("team") or {}
    user = body.get("user") or {}
    team_id = team.get("id") if isinstance(team, dict) else None
    team_id = team_id or (user.get("team_id") if isinstance(user, dict) else None)
    user_id = user.get("id") if isinstance(user, dict) else None
    return str(team_id or ""), str(user_id or "")
