"""The platform-neutral surface the core answers through; every adapter implements it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bot.feedback import FinishedAnswer
    from bot.web_search import Source


class StepState(StrEnum):
    """Where one step of the answer (a tool call) stands."""

    RUNNING = "in_progress"
    COMPLETE = "complete"
    ERROR = "error"
    """The step could not do what was asked (a service down, a refused or unknown tool); the
    answer goes on without it."""


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the answer as people see it: ``RUNNING`` first, then the same ``id`` once
    more, ``COMPLETE`` or ``ERROR``. Each platform renders it natively (Slack: a task card in
    the stream's timeline; Discord: a ticking subtext line; the terminal: a dim line)."""

    id: str
    """Unique within the answer (the model's tool call id)."""
    title: str
    """What the step does, as a person would say it: "Checking the weather in Tokyo" (no
    trailing ellipsis: adapters add their own "working" mark)."""
    state: StepState


class Verdict(StrEnum):
    """How a request for approval ended."""

    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    """Nobody decided within ``BOT_APPROVAL_TIMEOUT``: the turn is cancelled."""


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A tool call that waits for a person's approval, shown in place with two buttons
    (Slack and Discord: action ids ``approval:<id>`` / custom ids ``ap:<yes|no>:<id>``; the
    terminal: a y/N prompt). A click goes to ``Core.decide_approval`` with ``id``."""

    id: str
    tool: str
    """As people see it: ``notes.delete_note``."""
    arguments: str
    """The call's arguments, shortened and with secrets masked: ``topic="deploys"``."""
    requester: str
    """The platform user id of who asked (Slack ``U…``, Discord's snowflake): named in the
    prompt; they, or an admin, may decide."""
    timeout_s: float

    @property
    def question(self) -> str:
        """The prompt's text (Markdown)."""
        call = f"`{self.tool}`" + (f" with {self.arguments}" if self.arguments else "")
        return f"May I run {call}?"

    def who_may_answer(self, asker: str) -> str:
        """The line under the buttons; ``asker``: the requester as the platform mentions them."""
        minutes = max(1, round(self.timeout_s / 60))
        return f"Only {asker} or an admin can answer. No answer in {minutes} min cancels it."


def approval_outcome(verdict: Verdict, by: str | None) -> str:
    """What replaces the buttons once a request is closed; ``by``: who answered, as the
    platform mentions them."""
    who = f" by {by}" if by else ""
    if verdict is Verdict.APPROVED:
        return f"✅ Approved{who}"
    if verdict is Verdict.DENIED:
        return f"🚫 Denied{who}"
    return "⌛ Nobody answered in time: cancelled"


class Undeliverable(Exception):
    """The platform will not take this answer: the channel is gone, the bot was removed or may
    not post there. Not a bug: the core logs one warning line (``str()`` says why), no traceback.
    """


class Reply(Protocol):
    """One answer to one event, rendered by the adapter.

    The core calls, in order: ``start`` once, then any number of ``stream`` and ``progress``,
    then exactly one of ``finish`` or ``fail``. Or, for an event the bot will not answer (the
    allowlists, the rate limit, a budget), only ``refuse``, before anything else. ``notice``
    may come at any time after ``start`` for side remarks (skipped files, trimmed history) that
    are not part of the answer.
    """

    async def start(self) -> None:
        """Show that the bot is working (Slack status, Discord typing, a spinner)."""

    async def stream(self, delta: str) -> None:
        """Append a piece of the answer's Markdown text."""

    async def progress(self, step: Step) -> None:
        """Show a step of the answer starting or ending, e.g. "Checking the weather in Tokyo".

        A step reported ``RUNNING`` is reported again, ``COMPLETE`` or ``ERROR``, before the
        next text, unless the answer ends first: ``finish`` and ``fail`` then close whatever
        step is still shown as running. No step is left behind once the answer is done.
        """

    async def notice(self, text: str) -> None:
        """A short remark outside the answer text (e.g. a file that was skipped)."""

    async def finish(
        self, answer: FinishedAnswer | None = None, sources: Sequence[Source] = ()
    ) -> None:
        """The answer is complete: flush what is pending and clear any working state.

        ``answer`` comes with a model's answer (not with a command's): the adapter tells it
        which messages the answer went out as (``answer.posted``), then shows the feedback
        buttons under the last one. ``sources`` (web pages the answer cites) are listed at its
        end, numbered in order."""

    async def fail(self, message: str) -> None:
        """End with a short, user-facing line; text already streamed stays visible."""

    async def ask_approval(self, request: ApprovalRequest) -> bool:
        """Ask, in place (below the answer so far), whether a tool may run: the question with
        Approve and Deny buttons, naming the person who may decide. Called between ``start`` and
        the end of the answer, while the turn waits; ``approval_closed`` follows. False: this
        surface cannot ask (a command's one-off response): the call is refused at once."""

    async def approval_closed(
        self, request: ApprovalRequest, verdict: Verdict, by: str | None
    ) -> None:
        """The request was decided (``by``: the platform user id of who clicked) or expired:
        the buttons go, the outcome is shown in their place."""

    async def refuse(self, message: str) -> None:
        """Say why the bot will not answer, to the author only (Slack: ephemeral; Discord: an
        ephemeral response or a DM) and never in the channel: the channel sees nothing."""
