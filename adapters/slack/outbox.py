"""Which text of a streamed Slack answer goes into which message, and where each message ends.

The answer text not yet in a message waits here, with the message it goes into next. Each
round, ``SlackReply`` takes a piece (what fits the current message under its budget), makes
one Web API call with it, and reports what Slack accepted: a message ``opened``, text
``placed`` in the current message, a message Slack ``refused`` to grow, text ``posted`` whole.
No I/O here, so these rules need no Slack to reason about.

A message ends at a paragraph or line boundary, with a code fence that is open there closed in
it and reopened in the next. The whitespace at such a cut is dropped, so a message cut once
takes no more text: what waits goes on in a new message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from adapters.common.text import cut_markdown, open_fence

MIN_ROOM = 200
"""Less room than this left in a message: close it and continue in a new one."""
NEAR_FULL = 1_500
"""Less room than this left after the pending text: send whole lines only."""


@dataclass
class Message:
    """The message being streamed or updated now."""

    ts: str
    text: str
    full: bool = False
    """Its text ends at a cut (the separator there dropped): nothing more goes into it."""


@dataclass(frozen=True, slots=True)
class Piece:
    """One round's share of the pending text."""

    snapshot: str
    """The pending text when the piece was taken (more may arrive during the call)."""
    head: str
    """What goes into the current message (or opens a new one) now."""
    tail: str
    """What of ``snapshot`` waits for a later round."""
    full: bool
    """The current message has no more room after ``head``: it is closed, the rest goes on in
    a new one."""


class Outbox:
    def __init__(self) -> None:
        self.pending = ""
        """Answer text in no message yet."""
        self.message: Message | None = None

    def add(self, text: str) -> None:
        self.pending += text

    def take(self, budget: int, *, final: bool = False) -> Piece:
        """The piece of the pending text for this round, the current message (if any) holding
        at most ``budget`` characters. Without ``final``, a nearly full message gets whole lines
        only, so that it can end at a line break."""
        snapshot = self.pending
        message = self.message
        current = message.text if message else ""
        room = 0 if message and message.full else budget - len(current)
        fence = open_fence(current) if current else None
        if len(snapshot) <= room:
            if final or room - len(snapshot) >= NEAR_FULL:
                return Piece(snapshot, snapshot, "", False)
            keep = snapshot.rfind("\n") + 1
            return Piece(snapshot, snapshot[:keep], snapshot[keep:], False)
        if room >= MIN_ROOM:
            head, tail = cut_markdown(snapshot, room, fence=fence)
            return Piece(snapshot, head, tail, True)
        if fence is None:
            return Piece(snapshot, "", snapshot, True)
        marker = re.match(r"\s*([`~]{3,})", fence)
        close = "\n" + (marker.group(1) if marker else "```")
        return Piece(snapshot, close, f"{fence}\n{snapshot}", True)

    def opened(self, ts: str, piece: Piece) -> bool:
        """A new message ``ts`` holds ``piece.head``. True when nothing is left.

        A piece cut to fit (``full``) ends its message: the next round closes it and goes on
        in another. Appending to it would glue ``piece.tail`` onto ``piece.head``, the
        paragraph break between them dropped by the cut.
        """
        self.message = Message(ts, piece.head, piece.full)
        self._consume(piece.snapshot, piece.tail)
        return not piece.tail

    def placed(self, piece: Piece, *, close: bool) -> bool:
        """Slack took ``piece.head`` into the current message; with ``close`` that message is
        finished. True unless a full message left text for the next one."""
        self._consume(piece.snapshot, piece.tail)
        if close:
            self.message = None
        elif self.message is not None:
            self.message.text += piece.head
        return not (piece.full and piece.tail)

    def refused(self) -> None:
        """Slack took nothing more into the current message: the pending text, all of it
        still waiting, goes into a new one."""
        self.message = None

    def posted(self, snapshot: str) -> None:
        """``snapshot`` (the pending text, taken whole) was posted as messages of its own."""
        self._consume(snapshot, "")

    def _consume(self, snapshot: str, tail: str) -> None:
        """``snapshot`` was handled, ``tail`` of it still waits; text that arrived meanwhile
        (``SlackReply.stream`` runs while a call is in flight) stays after it."""
        self.pending = tail + self.pending[len(snapshot) :]
