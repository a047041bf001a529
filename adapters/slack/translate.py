"""Slack payloads -> the core's normalized ``Event``: pure functions, tested over real shapes.

Which Slack messages are for the bot:

- ``app_mention``, and any channel message that mentions the bot (the same ``ts`` arrives as
  both; the store claims ``slack:TEAM:CHANNEL:TS`` once, so one answer);
- every user message in the bot's DM (``channel_type: im``);
- a reply in a channel thread the bot takes part in, without a mention: ``needs_membership``
  asks the store first, and the adapter applies the channel's mention rule
  (``/settings mention``, else ``SLACK_REQUIRE_MENTION``).

Other channel messages are not for the bot (``addressed`` False) but are remembered as context,
so that a mention in the middle of a thread sees what was said before it.

Ignored: the bot's own messages, edits, deletions and every subtype but ``file_share``,
``thread_broadcast`` and ``bot_message``. Other bots' messages are passed on marked ``is_bot``
(the core decides).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from bot.events import Author, ConversationKey, Event, EventKind

PLATFORM = "slack"
USER_SUBTYPES = frozenset({None, "file_share", "thread_broadcast", "bot_message"})
"""Subtypes that are someone speaking (``bot_message``: other bots, which the core ignores
unless ``BOT_ALLOW_BOTS``); edits, deletions, joins and the like are not."""

_ENTITY = re.compile(r"<([^<>\s][^<>]*)>")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_UNESCAPE = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))


@dataclass(frozen=True, slots=True)
class Incoming:
    """A Slack message that may be for the bot."""

    event: Event
    addressed: bool = True
    """False: a channel message for nobody in particular, only remembered as thread context."""
    needs_membership: bool = False
    """A thread reply without a mention: answered only if the bot takes part in the thread."""
    files: tuple[Mapping[str, Any], ...] = ()
    """Slack file objects, turned into ``Attachment``s by the adapter (it holds the token)."""


def scrub(text: str) -> str:
    """``text`` with each lone surrogate (a JSON ``"\\ud800"`` escape decodes to one) replaced
    by U+FFFD: UTF-8 cannot encode them, so SQLite and HTTP clients would fail on them later."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def slack_to_markdown(text: str) -> str:
    """Slack's ``mrkdwn`` wire text -> plain Markdown for the model.

    User mentions stay ``<@U123>`` so that an answer naming someone still renders as a mention;
    channels become ``#name``, broadcasts ``@here``, links ``[label](url)``; ``&lt;`` and friends
    are undone last (they never stand for markup).
    """

    def entity(match: re.Match[str]) -> str:
        target, _, label = match.group(1).partition("|")
        if target.startswith("@"):
            return f"<{target}>"
        if target.startswith("#"):
            return f"#{label}" if label else f"<{target}>"
        if target.startswith("!"):
            name = target[1:].split("^")[0]
            if label:
                return label if label.startswith("@") else f"@{label}"
            return f"@{name}"
        if label and label != target:
            return f"[{label}]({target})"
        return target

    out = _ENTITY.sub(entity, text)
    for escaped, plain in _UNESCAPE:
        out = out.replace(escaped, plain)
    return out


def strip_bot_mention(text: str, bot_user_id: str) -> str:
    """Remove ``<@BOT>`` (and ``<@BOT|name>``) wherever it stands, and tidy the spaces left."""
    out = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", "", text)
    return re.sub(r"[ \t]{2,}", " ", out).strip()


def conversation_key(team: str, channel: str, thread_ts: str) -> ConversationKey:
    return ConversationKey(PLATFORM, (team, channel, thread_ts))


def channel_key(team: str, channel: str) -> ConversationKey:
    return ConversationKey(PLATFORM, (team, channel))


def message_id(team: str, channel: str, ts: str) -> str:
    """The identity of one user message, shared by all its deliveries (mention, message, retry)."""
    return f"{PLATFORM}:{team}:{channel}:{ts}"


def _is_id(value: object) -> TypeGuard[str]:
    """A Slack id or ts usable as a conversation key part (a non-empty string without ``:``)."""
    return isinstance(value, str) and bool(value) and ":" not in value


def team_of(body: Mapping[str, Any], event: Mapping[str, Any]) -> str:
    """The workspace the channel lives in (the envelope's, which is right for shared channels)."""
    return str(body.get("team_id") or event.get("team") or "T0")


def route_message(
    body: Mapping[str, Any],
    event: Mapping[str, Any],
    *,
    bot_user_id: str,
) -> Incoming | None:
    """What an ``app_mention`` or ``message`` event means for the bot; None when not for it."""
    kind_of_event = event.get("type")
    subtype = event.get("subtype")
    if not isinstance(subtype, str | None) or subtype not in USER_SUBTYPES:
        return None
    user = event.get("user")
    channel = event.get("channel")
    ts = event.get("ts")
    thread_ts = event.get("thread_ts") or ts
    team = team_of(body, event)
    # A payload Slack would never send (wrong types, ids that cannot form a conversation key)
    # is dropped here rather than failing later in the listener.
    if not (_is_id(channel) and _is_id(ts) and _is_id(thread_ts) and _is_id(team)):
        return None
    is_bot = bool(event.get("bot_id")) or subtype == "bot_message"
    if user == bot_user_id or (not isinstance(user, str) and not is_bot):
        return None
    raw_text = event.get("text")
    files_field = event.get("files")
    if not isinstance(raw_text, str | None) or not isinstance(files_field, list | None):
        return None
    raw_text = raw_text or ""
    mentioned = f"<@{bot_user_id}" in raw_text
    in_dm = event.get("channel_type") == "im" or (
        kind_of_event == "message" and channel.startswith("D") and "channel_type" not in event
    )
    needs_membership, addressed = False, True
    if kind_of_event == "app_mention" or (mentioned and not in_dm):
        kind = EventKind.MENTION
    elif in_dm:
        kind = EventKind.DIRECT_MESSAGE
    else:
        kind = EventKind.THREAD_FOLLOW_UP
        if thread_ts != ts:
            needs_membership = True
        else:
            addressed = False
    author_id = str(user or event.get("bot_id") or "unknown")
    files = tuple(f for f in files_field or () if isinstance(f, Mapping))
    return Incoming(
        event=Event(
            platform=PLATFORM,
            event_id=message_id(team, channel, ts),
            conversation=conversation_key(team, channel, thread_ts),
            channel=channel_key(team, channel),
            kind=kind,
            author=Author(id=author_id, display_name=author_id, is_bot=is_bot),
            text=scrub(slack_to_markdown(strip_bot_mention(raw_text, bot_user_id))),
            workspace=team,
        ),
        addressed=addressed,
        needs_membership=needs_membership,
        files=files,
    )


def command_event(
    command: Mapping[str, Any],
    *,
    conversation: ConversationKey | None = None,
) -> Event:
    """A slash command (``/model gpt``) as a COMMAND event.

    ``conversation`` is where the command acts (``/ask``'s new thread, ``/reset``'s latest
    thread); by default the channel itself.
    """
    team = str(command.get("team_id") or "T0")
    channel = str(command.get("channel_id") or "C0")
    user = str(command.get("user_id") or "unknown")
    name = str(command.get("command") or "").lstrip("/").lower()
    args = scrub(str(command.get("text") or "")).strip()
    trigger = str(command.get("trigger_id") or "")
    return Event(
        platform=PLATFORM,
        event_id=f"{PLATFORM}:command:{team}:{trigger}",
        conversation=conversation or channel_key(team, channel),
        channel=channel_key(team, channel),
        kind=EventKind.COMMAND,
        author=Author(id=user, display_name=str(command.get("user_name") or user)),
        text=slack_to_markdown(args),
        command=name,
        command_args=slack_to_markdown(args),
        workspace=team,
    )


def defuse_broadcasts(text: str) -> str:
    """``<!here>``, ``<!channel>``, ``<!everyone>`` and ``<!subteam^..>`` shown as text, not sent
    as pings: a zero-width space after ``<`` breaks Slack's syntax. User mentions stay."""
    return text.replace("<!", "<\u200b!")


_PING = re.compile(r"<([@!])([^>|]*)(?:\|([^>]*))?>")
_BARE_BROADCAST = re.compile(r"(?<![\w@])@(here|channel|everyone)\b", re.IGNORECASE)


def defuse_mentions(text: str) -> str:
    """Someone else's words echoed by the bot (``/ask``'s question) ping no one: user and group
    mentions and ``@here``/``@channel``/``@everyone`` are shown as ``@name`` with a zero-width
    space after the ``@`` (``<@U1|ann>`` -> ``@ann``; without a label, the id)."""

    def plain(match: re.Match[str]) -> str:
        target, label = match.group(2), match.group(3)
        if match.group(1) == "!" and target.startswith("date^"):
            return label or ""  # a formatted date pings no one: keep its text
        if label:
            return "@\u200b" + label.lstrip("@")
        if match.group(1) == "!":
            target = target.split("^")[-1]  # subteam^S123 -> S123
        return "@\u200b" + target

    return _BARE_BROADCAST.sub("@\u200b\\1", _PING.sub(plain, text))
