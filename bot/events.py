"""The one normalized event every adapter produces, and the key that names a conversation.

Nothing in here knows a platform: adapters translate into these types and the core only
ever sees them.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

FetchBytes = Callable[[], Awaitable[bytes]]


class EventKind(enum.StrEnum):
    MENTION = "mention"
    DIRECT_MESSAGE = "direct_message"
    THREAD_FOLLOW_UP = "thread_follow_up"
    COMMAND = "command"
    ACTION = "action"
    """An action on a message (summarize, translate): a question to the model, so the rate
    limit and the budgets apply, but nothing is kept as a conversation."""


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """A conversation's name that round-trips through a string.

    ``slack:T1:C1:1700000000.000100`` -> platform ``slack``, parts ``(T1, C1, 1700000000.000100)``.
    Parts may not contain ``:`` (platform ids never do), which is what makes parsing unambiguous.
    """

    platform: str
    parts: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.platform or ":" in self.platform:
            raise ValueError(f"invalid platform {self.platform!r}")
        if not self.parts:
            raise ValueError("a conversation key needs at least one part")
        for part in self.parts:
            if not part or ":" in part:
                raise ValueError(f"invalid key part {part!r}")

    def __str__(self) -> str:
        return ":".join((self.platform, *self.parts))

    @classmethod
    def parse(cls, text: str) -> ConversationKey:
        platform, *parts = text.split(":")
        return cls(platform, tuple(parts))


@dataclass(frozen=True, slots=True)
class Author:
    id: str
    display_name: str
    is_bot: bool = False
    roles: tuple[str, ...] = ()
    """Discord role ids in the guild (for role allowlists); empty elsewhere."""


class AttachmentUnavailable(Exception):
    """An adapter could not fetch a file; ``str()`` is a short reason to show the user."""


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file on a user message; the bytes are fetched only when the core needs them.

    ``fetch`` raises ``AttachmentUnavailable`` with a reason the user may read (sign-in page
    instead of the file, host not trusted with the token, too large); anything else it raises
    is reported as "could not download".
    """

    name: str
    declared_type: str
    size: int
    fetch: FetchBytes = field(compare=False, repr=False)


class QuoteKind(enum.StrEnum):
    FORWARDED = "forwarded"
    REPLIED_TO = "replied_to"


@dataclass(frozen=True, slots=True)
class Quote:
    """Another message the user's message brings along: one they forwarded, or the one they
    replied to when the bot never saw it. Read as context for the turn, marked as such."""

    kind: QuoteKind
    text: str
    author: str | None = None
    """Its author's display name, when the platform says (a forward does not)."""


@dataclass(frozen=True, slots=True)
class Event:
    """A message or command addressed to the bot, with no platform objects inside."""

    platform: str
    event_id: str
    """Identity of the user message (not of a delivery): two deliveries of one message share it."""
    conversation: ConversationKey
    channel: ConversationKey
    """Where per-channel settings (model, ...) live; the conversation's channel."""
    kind: EventKind
    author: Author
    text: str
    """Bot mention stripped, platform markup turned into plain Markdown."""
    attachments: tuple[Attachment, ...] = ()
    command: str | None = None
    """For ``EventKind.COMMAND``: the command's name without the slash, e.g. ``model``."""
    command_args: str = ""
    workspace: str | None = None
    """Slack team / Discord guild, for per-workspace limits; None for DMs where unknown."""
    address: str | None = None
    """Where the adapter can later say something about this message (its own JSON: channel,
    thread, message). Kept with the claim, so a turn cut short by a crash is told after the
    restart instead of silently dropped."""
    quotes: tuple[Quote, ...] = ()
    """Forwarded or replied-to messages read with this one (their files are in
    ``attachments``)."""
