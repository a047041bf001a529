"""Feedback on answers: a thumbs up or down, recorded once per user and answer.

- When a turn's answer is complete, the core gives the reply a ``FinishedAnswer``. The adapter
  says which platform messages the answer went out as (``posted``) and then shows the buttons
  under the last one, so that a click can always be tied to the answer, its model and channel.
- A click comes back as ``Feedback.vote``, with the clicked message: the allowlists apply (a
  refused user gets the usual refusal), the answer is looked up by that message, and the vote
  is stored, one row per user and answer (a second click changes it). What comes back is the
  line to show the clicker alone.
- ``/usage`` and ``/stats`` show the share of thumbs up per model (``share_lines``).
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bot.access import REFUSAL
from bot.admission import Admission
from bot.events import Event
from bot.metrics import Metrics
from bot.results import user_key
from storage.base import AnswerRecord, Store, VoteShare

log = logging.getLogger(__name__)


class Vote(enum.StrEnum):
    UP = "up"
    DOWN = "down"

    @property
    def emoji(self) -> str:
        return "👍" if self is Vote.UP else "👎"


UNKNOWN_ANSWER = "I can't find that answer any more, so I couldn't record your vote."
NOT_RECORDED = "Sorry, I couldn't record your vote just now. Please try again in a moment."

VoteOutcome = Literal["recorded", "changed", "unchanged", "unknown", "refused", "failed"]


@dataclass(frozen=True, slots=True)
class Voted:
    """What a click came to, and the line to show the clicker (and only them)."""

    outcome: VoteOutcome
    text: str


class FinishedAnswer:
    """A complete answer of a turn, given to ``Reply.finish``: what a click on it ties to."""

    def __init__(self, store: Store, record: AnswerRecord, platform: str) -> None:
        self._store = store
        self.record = record
        self.platform = platform

    async def posted(self, message_ids: Sequence[str]) -> bool:
        """The answer went out as these messages (ids as the adapter later passes them to
        ``Feedback.vote``). False when the store would not keep them: the adapter then shows
        no buttons, as a click on them could not be tied to the answer. Never raises."""
        if not message_ids:
            return False
        try:
            await self._store.save_answer(
                answer=self.record, platform=self.platform, message_ids=message_ids
            )
        except Exception:
            log.exception("could not keep a posted answer; it gets no feedback buttons")
            return False
        return True


class Feedback:
    def __init__(self, store: Store, admission: Admission, metrics: Metrics) -> None:
        self._store = store
        self._admission = admission
        self._metrics = metrics

    def finished(self, event: Event, model: str) -> FinishedAnswer:
        """The handle on ``event``'s answer, once it is complete."""
        record = AnswerRecord(
            event_id=event.event_id,
            conversation=str(event.conversation),
            channel=str(event.channel),
            model=model,
            created_at=time.time(),
        )
        return FinishedAnswer(self._store, record, event.platform)

    async def vote(self, click: Event, *, message_id: str, value: Vote) -> Voted:
        """``click``'s author votes ``value`` on the answer posted as ``message_id`` (the click
        as an event: its author, channel and workspace decide the allowlists). Never raises."""
        if not self._admission.allows(click):
            log.info("a vote refused by the allowlists")
            return Voted("refused", REFUSAL)
        try:
            answer = await self._store.answer_of_message(
                platform=click.platform, message_id=message_id
            )
            if answer is None:
                log.info("a vote on an answer the store does not know")
                return Voted("unknown", UNKNOWN_ANSWER)
            before = await self._store.vote(
                event_id=answer.event_id, user_id=user_key(click), value=value, now=time.time()
            )
        except Exception:
            log.exception("could not record a vote")
            return Voted("failed", NOT_RECORDED)
        if before == value:
            return Voted("unchanged", f"You already gave this answer a {value.emoji}.")
        self._metrics.feedback.labels(click.platform, value.value).inc()
        log.info("vote", extra={"model": answer.model, "value": value.value})
        if before is None:
            return Voted("recorded", f"Thanks for the {value.emoji}! I've noted it.")
        return Voted("changed", f"Changed your vote on this answer to {value.emoji}.")


def share_lines(shares: Sequence[VoteShare], *, with_channel: bool) -> list[str]:
    """One line per model (and channel): the share of thumbs up among its votes."""
    lines = []
    for share in shares:
        votes = share.up + share.down
        where = f"`{share.channel}` · " if with_channel else ""
        lines.append(
            f"• {where}`{share.model}`: 👍 {round(100 * share.up / votes)}% "
            f"of {votes} vote{'s' if votes != 1 else ''}"
        )
    return lines
