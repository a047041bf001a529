"""adapters/slack/manifest.yml agrees with the adapter: the same commands, the scopes the bot
needs, and only events the adapter listens for (read from the listeners' own ``register``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import yaml  # type: ignore[import-untyped]

from adapters.slack.assistant import AssistantThreads
from adapters.slack.commands import COMMANDS, SlashCommands
from adapters.slack.home import HomeTab
from adapters.slack.home_view import EDIT_ACTION, MODAL_CALLBACK, NEW_ACTION
from adapters.slack.listeners import EventListeners
from bot.settings import DEFAULT_SUGGESTED_PROMPTS

MANIFEST = Path(__file__).resolve().parents[1] / "adapters" / "slack" / "manifest.yml"

BOT_SCOPES = [
    "app_mentions:read",
    "chat:write",
    "channels:history",
    "groups:history",
    "im:history",
    "mpim:history",
    "im:write",
    "files:read",
    "commands",
    "reactions:write",
    "users:read",
    "assistant:write",
]


class _Registrations:
    """Stands in for bolt's ``AsyncApp``: records what ``register`` subscribes to."""

    def __init__(self) -> None:
        self.events: set[str] = set()
        self.commands: set[str] = set()
        self.actions: list[Any] = []
        self.views: set[str] = set()

    def event(self, name: str) -> Callable[[Any], Any]:
        self.events.add(name)
        return lambda listener: listener

    def command(self, name: str) -> Callable[[Any], Any]:
        self.commands.add(name)
        return lambda listener: listener

    def action(self, constraint: Any) -> Callable[[Any], Any]:
        self.actions.append(constraint)
        return lambda listener: listener

    def view(self, callback_id: str) -> Callable[[Any], Any]:
        self.views.add(callback_id)
        return lambda listener: listener


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    loaded = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def registered() -> _Registrations:
    seen = _Registrations()
    EventListeners.register(EventListeners.__new__(EventListeners), cast(Any, seen))
    AssistantThreads.register(AssistantThreads.__new__(AssistantThreads), cast(Any, seen))
    HomeTab.register(HomeTab.__new__(HomeTab), cast(Any, seen))
    SlashCommands.register(SlashCommands.__new__(SlashCommands), cast(Any, seen))
    return seen


def test_manifest_metadata_and_bot_user(manifest: dict[str, Any]) -> None:
    assert manifest["_metadata"] == {"major_version": 2, "minor_version": 1}
    features = manifest["features"]
    assert features["bot_user"] == {"display_name": "chatbot", "always_online": True}
    assert features["app_home"]["messages_tab_enabled"] is True
    assert features["app_home"]["messages_tab_read_only_enabled"] is False
    prompts = features["agent_view"]["suggested_prompts"]
    assert [(p["title"], p["message"]) for p in prompts] == list(DEFAULT_SUGGESTED_PROMPTS)


def test_home_tab_and_its_interactivity_are_enabled_and_handled(
    manifest: dict[str, Any], registered: _Registrations
) -> None:
    """The Home tab is on, app_home_opened is delivered and handled, and interactivity (its
    Edit buttons and settings modal) is on and handled."""
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert "app_home_opened" in manifest["settings"]["event_subscriptions"]["bot_events"]
    assert "app_home_opened" in registered.events
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    [buttons] = registered.actions
    assert buttons.match(EDIT_ACTION) and buttons.match(NEW_ACTION)
    assert MODAL_CALLBACK in registered.views


def test_commands_match_the_adapter(manifest: dict[str, Any], registered: _Registrations) -> None:
    commands = manifest["features"]["slash_commands"]
    names = [c["command"] for c in commands]
    assert len(names) == len(set(names))
    assert set(names) == set(COMMANDS) == registered.commands
    for command in commands:
        assert command["should_escape"] is False
        assert command["description"]
        assert command["url"].endswith("/slack/events")
    hints = {c["command"]: c.get("usage_hint") for c in commands}
    assert hints["/ask"] == "<question>"
    assert hints["/model"] == "[name]"


def test_scopes_are_exactly_the_bots(manifest: dict[str, Any]) -> None:
    assert manifest["oauth_config"]["scopes"]["bot"] == BOT_SCOPES


def test_every_bot_event_is_handled(manifest: dict[str, Any], registered: _Registrations) -> None:
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert len(events) == len(set(events))
    # Subscriptions name message events by channel type; bolt delivers them all as `message`.
    delivered = {"message" if e.startswith("message.") else e for e in events}
    assert delivered <= registered.events, delivered - registered.events
    assert {"message.channels", "message.groups", "message.im", "message.mpim"} <= set(events)
    assert {"app_mention", "app_home_opened"} <= set(events)


def test_request_urls_point_at_the_events_endpoint(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    assert settings["event_subscriptions"]["request_url"].endswith("/slack/events")
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"].endswith("/slack/events")
    assert settings["socket_mode_enabled"] is False
    assert settings["org_deploy_enabled"] is False
    assert settings["token_rotation_enabled"] is False


def test_slack_discord_and_help_name_the_same_commands(manifest: dict[str, Any]) -> None:
    """One registry: the Slack manifest, the Discord command tree and each platform's /help
    cannot drift apart."""
    import re

    import discord
    from discord import app_commands

    from adapters.discord.commands import SlashCommands
    from bot.commands import commands_for, help_text

    in_manifest = {c["command"].lstrip("/") for c in manifest["features"]["slash_commands"]}
    tree: app_commands.CommandTree[Any] = app_commands.CommandTree(
        discord.Client(intents=discord.Intents.none())
    )
    SlashCommands.register(cast(Any, object.__new__(SlashCommands)), tree)
    in_discord = {c.name for c in tree.get_commands()}

    def in_help(platform: str) -> set[str]:
        return set(re.findall(r"• `/([a-z]+)", help_text(platform)))

    assert in_manifest == {c.name for c in commands_for("slack")} == in_help("slack")
    assert in_discord == {c.name for c in commands_for("discord")} == in_help("discord")
    assert in_manifest == in_discord
    assert in_help("console") == {c.name for c in commands_for("console")}
