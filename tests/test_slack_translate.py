"""The Slack adapter's pure parts, table-driven over payloads shaped like Slack's (from the fake's
builders): which messages are for the bot, conversation keys, text conversion, token hosts."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.slack.files import looks_like_html, token_may_go_to
from adapters.slack.translate import (
    command_event,
    route_message,
    slack_to_markdown,
    strip_bot_mention,
)
from bot.events import EventKind
from tests.fakes.slack import (
    BOT_USER_ID,
    app_mention,
    bot_message,
    event_envelope,
    file_share_message,
    im_message,
    message_changed,
    message_event,
)

BOT = f"<@{BOT_USER_ID}>"


def route(event: dict[str, Any]) -> Any:
    body = event_envelope(event)
    return route_message(body, event, bot_user_id=BOT_USER_ID)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("a &lt;b&gt; &amp; c", "a <b> & c"),
        ("see <https://example.com|the site>", "see [the site](https://example.com)"),
        ("see <https://example.com>", "see https://example.com"),
        ("mail <mailto:a@b.c|a@b.c>", "mail [a@b.c](mailto:a@b.c)"),
        ("hi <@U123> and <@U9|bob>", "hi <@U123> and <@U9>"),
        ("in <#C1|general>", "in #general"),
        ("<!here> <!channel> <!subteam^S1|@devs>", "@here @channel @devs"),
        ("code `a &amp;&amp; b`", "code `a && b`"),
    ],
)
def test_slack_to_markdown(text: str, expected: str) -> None:
    assert slack_to_markdown(text) == expected


def test_strip_bot_mention_anywhere() -> None:
    assert strip_bot_mention(f"{BOT} hi", BOT_USER_ID) == "hi"
    assert strip_bot_mention(f"hi {BOT} there", BOT_USER_ID) == "hi there"
    assert strip_bot_mention(f"<@{BOT_USER_ID}|bot> hi <@U1>", BOT_USER_ID) == "hi <@U1>"


def test_a_mention_is_for_the_bot_keyed_by_its_thread() -> None:
    top = app_mention(f"{BOT} hello", ts="100.000001")
    incoming = route(top)
    assert incoming.addressed and not incoming.needs_membership
    event = incoming.event
    assert event.kind is EventKind.MENTION
    assert str(event.conversation) == "slack:T1:C123:100.000001"
    assert str(event.channel) == "slack:T1:C123"
    assert event.event_id == "slack:T1:C123:100.000001"
    assert event.text == "hello" and event.workspace == "T1"

    mid = app_mention(f"{BOT} hi", ts="200.000002", thread_ts="100.000001")
    assert str(route(mid).event.conversation) == "slack:T1:C123:100.000001"
    assert route(mid).event.event_id == "slack:T1:C123:200.000002"


def test_the_message_twin_of_a_mention_has_the_same_identity() -> None:
    mention = app_mention(f"{BOT} twins")
    twin = message_event(mention["text"], ts=mention["ts"])
    assert route(twin).event.event_id == route(mention).event.event_id
    assert route(twin).event.kind is EventKind.MENTION


@pytest.mark.parametrize(
    ("event", "kind", "addressed", "needs_membership"),
    [
        (im_message("hi"), EventKind.DIRECT_MESSAGE, True, False),
        (im_message("more", thread_ts="1.000001"), EventKind.DIRECT_MESSAGE, True, False),
        (message_event("reply", thread_ts="1.000001"), EventKind.THREAD_FOLLOW_UP, True, True),
        (message_event("top level"), EventKind.THREAD_FOLLOW_UP, False, False),
        (
            message_event("group dm", channel="G123", channel_type="mpim"),
            EventKind.THREAD_FOLLOW_UP,
            False,
            False,
        ),
        (
            file_share_message([{"id": "F1", "name": "a.txt"}], "see file", channel="D1"),
            EventKind.DIRECT_MESSAGE,
            True,
            False,
        ),
    ],
)
def test_which_messages_are_for_the_bot(
    event: dict[str, Any], kind: EventKind, addressed: bool, needs_membership: bool
) -> None:
    incoming = route(event)
    assert incoming is not None
    assert incoming.event.kind is kind
    assert (incoming.addressed, incoming.needs_membership) == (addressed, needs_membership)


def test_files_ride_along() -> None:
    files = [{"id": "F1", "name": "a.txt"}, {"id": "F2", "name": "b.pdf"}]
    incoming = route(file_share_message(files, channel="D1", channel_type="im"))
    assert [f["id"] for f in incoming.files] == ["F1", "F2"]


@pytest.mark.parametrize(
    "event",
    [
        message_changed("edited"),
        message_event("bye") | {"subtype": "message_deleted"},
        message_event("joined") | {"subtype": "channel_join"},
        message_event("me", user=BOT_USER_ID),
        {"type": "message", "channel": "C1"},  # no ts
        {"type": "message", "ts": "1.0", "channel": "C1", "text": "no user"},
    ],
)
def test_ignored_messages(event: dict[str, Any]) -> None:
    assert route(event) is None


def test_other_bots_are_marked_for_the_core_to_decide() -> None:
    legacy = route(bot_message(f"{BOT} ping"))
    assert legacy.event.author.is_bot and legacy.event.author.id == "B0OTHER"
    app_bot = route(bot_message(f"{BOT} ping", user="U0OTHERBOT"))
    assert app_bot.event.author.is_bot and app_bot.event.author.id == "U0OTHERBOT"


def test_command_event() -> None:
    command = {
        "command": "/Model",
        "text": " openai/gpt-5 ",
        "team_id": "T1",
        "channel_id": "C9",
        "user_id": "U1",
        "user_name": "alice",
        "trigger_id": "123.456.abc",
    }
    event = command_event(command)
    assert (event.kind, event.command, event.command_args) == (
        EventKind.COMMAND,
        "model",
        "openai/gpt-5",
    )
    assert str(event.conversation) == str(event.channel) == "slack:T1:C9"
    assert event.event_id == "slack:command:T1:123.456.abc"


HOSTS = frozenset({"files.slack.com", "127.0.0.1:8080"})


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://files.slack.com/files-pri/T1-F1/download/a.txt", True),
        ("https://FILES.slack.com/files-pri/T1-F1/a.txt", True),
        ("http://files.slack.com/files-pri/T1-F1/a.txt", False),  # never the token in clear
        ("http://127.0.0.1:8080/files-pri/T1-F1/a.txt", True),  # a configured local fake
        ("http://127.0.0.1:9090/files-pri/T1-F1/a.txt", False),  # another port
        ("https://files.slack.com.evil.example/x", False),
        ("https://evil.example/files.slack.com/x", False),
        ("https://user@evil.example/x", False),
        ("https://files.slack.com@evil.example/x", False),
        ("ftp://files.slack.com/x", False),
        ("", False),
        ("not a url", False),
    ],
)
def test_token_goes_only_to_slack_file_hosts(url: str, allowed: bool) -> None:
    assert token_may_go_to(url, HOSTS) is allowed


def test_html_detection() -> None:
    assert looks_like_html(b"  <!DOCTYPE html><html>")
    assert looks_like_html(b"<html lang='en'>")
    assert not looks_like_html(b"%PDF-1.7")
