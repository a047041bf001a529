"""The storage protocol the core talks to, and the plain value types it exchanges.

``storage`` imports nothing from ``bot``, ``adapters`` or ``agents``: history items are plain
JSON-serialisable dicts (the Agents SDK's input-item format, but storage does not care).
Every method is keyword-only and named for its intent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

JSONDict = dict[str, Any]


class Outcome(StrEnum):
    """How the handling of one event ended: the core's ``TurnResult.outcome``, its ``outcome``
    metrics label and log field, and (``ANSWERED`` or ``FAILED`` only) the status a claimed
    event is finished with. The values are stored and exported as they are: never change one.

    It lives here, not in ``bot``, because storage imports nothing from ``bot``."""

    ANSWERED = "answered"
    FAILED = "failed"
    DUPLICATE = "duplicate"
    """A redelivery of an event claimed before: not answered twice."""
    IGNORED = "ignored"
    """Not taken up at all (another bot's message)."""
    REFUSED = "refused"
    """The allowlists keep its author out."""
    COMMAND = "command"
    """A slash command, answered by the bot itself (its event is finished ``ANSWERED``)."""


@dataclass(frozen=True, slots=True)
class NewItem:
    """One history item to append."""

    item: JSONDict
    tokens: int
    """Estimated prompt tokens of this item, used to fit history into the model's context."""
    turn_start: bool = False
    """True for the user message that opens a turn; history is only ever cut before one."""


@dataclass(frozen=True, slots=True)
class HistoryItem:
    seq: int
    item: JSONDict
    tokens: int
    turn_start: bool


@dataclass(frozen=True, slots=True)
class StoredFile:
    sha256: str
    name: str
    mime_type: str
    size: int
    created_at: float


@dataclass(frozen=True, slots=True)
class ObservedMessage:
    """A message seen in a conversation that was not addressed to the bot."""

    id: int
    message_id: str
    author: str
    text: str


@dataclass(frozen=True, slots=True)
class UsageRecord:
    conversation: str
    channel: str
    user_id: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    """OpenRouter's reported cost; None when the provider reported none."""
    created_at: float
    workspace: str | None = None
    reasoning_tokens: int = 0
    """Of ``output_tokens`` (not on top of them), those the model spent reasoning."""


@dataclass(frozen=True, slots=True)
class UnfinishedEvent:
    """An event claimed but never marked answered or failed (its process died mid-turn)."""

    event_id: str
    conversation: str
    address: str | None
    """What the adapter gave at claim time to say something in the right place later."""
    claimed_at: float


@dataclass(frozen=True, slots=True)
class Forgotten:
    """What ``forget_conversation`` removed."""

    items: int
    """History items."""
    files: int
    """Documents that were linked to the conversation (what ``/files`` listed)."""


@dataclass(frozen=True, slots=True)
class Expired:
    """What one ``expire_older_than`` batch deleted."""

    conversations: int
    files: int
    """Stored files deleted because no conversation links them any more."""
    usage_rows: int
    events: int
    observed: int
    answers: int
    """Posted answers (with the messages they went out as, and their votes)."""


@dataclass(frozen=True, slots=True)
class AnswerRecord:
    """An answer the bot posted: what a click on it is tied to."""

    event_id: str
    """The event it answered (one answer per event)."""
    conversation: str
    channel: str
    model: str
    created_at: float


@dataclass(frozen=True, slots=True)
class VoteShare:
    """The votes on one model's answers in one channel."""

    model: str
    channel: str
    up: int
    down: int


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    """A tool call waiting for (or given) a person's approval."""

    id: str
    conversation: str
    requester: str
    """Who asked the question (``platform:user``): they, or an admin, may decide."""
    tool: str
    """The tool as people see it, e.g. ``notes.delete_note``."""
    owner: str
    """The instance whose turn waits for it."""
    created_at: float
    expires_at: float
    decision: str | None = None
    """``approved``, ``denied``, ``expired``; None while it waits."""
    decided_by: str | None = None


@dataclass(frozen=True, slots=True)
class UsageTotals:
    turns: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    reasoning_tokens: int = 0
    """Of ``output_tokens``, those spent reasoning."""


class Store(Protocol):
    async def close(self) -> None: ...

    # --- conversation history -------------------------------------------------------------
    async def load_history(
        self, *, conversation: str, max_items: int, max_tokens: int
    ) -> list[HistoryItem]:
        """The newest items that fit both limits, oldest first, starting at a turn start.

        Reads only that window through an index, never the whole conversation. Returns [] for
        an unknown conversation, or if not even the newest turn fits.
        """
        ...

    async def complete_turn(
        self,
        *,
        conversation: str,
        items: Sequence[NewItem],
        usage: UsageRecord | None,
        event_id: str | None,
        observed_upto: int | None = None,
    ) -> None:
        """A finished turn in ONE transaction: its items, its usage, its event marked answered,
        and the observed messages it took in (ids up to ``observed_upto``) deleted.

        A crash leaves either all of it or none of it, so a restart never sees an answer in
        history whose event still looks unanswered (or the other way round).
        """
        ...

    async def forget_conversation(self, *, conversation: str) -> Forgotten:
        """Forget a conversation (``/reset``), in one transaction: its history, its links to
        files, its PDF annotations and its observed messages. A file's bytes go too unless
        another conversation still links them. Usage rows stay (they hold no text, and budgets
        and ``/usage`` count them)."""
        ...

    # --- messages seen but not addressed to the bot ---------------------------------------
    async def observe_message(
        self, *, conversation: str, message_id: str, author: str, text: str, keep: int
    ) -> None:
        """Remember a message (once per ``message_id``), keeping the newest ``keep`` of the
        conversation; rows older than a week are dropped as new ones come."""
        ...

    async def observed_messages(self, *, conversation: str) -> list[ObservedMessage]:
        """The conversation's observed messages not yet taken into a turn, oldest first."""
        ...

    # --- files and OpenRouter file annotations --------------------------------------------
    async def save_file(
        self, *, conversation: str, name: str, mime_type: str, data: bytes
    ) -> StoredFile:
        """Store the bytes once per content hash and link the file to the conversation."""
        ...

    async def get_file_bytes(self, *, sha256: str) -> bytes | None: ...

    async def list_files(self, *, conversation: str) -> list[StoredFile]: ...

    async def save_annotations(
        self, *, conversation: str, file_sha256: str, annotations: list[JSONDict]
    ) -> None: ...

    async def load_annotations(
        self, *, conversation: str, file_sha256: str
    ) -> list[JSONDict] | None: ...

    # --- exactly-once processing ----------------------------------------------------------
    async def claim_event(
        self,
        *,
        event_id: str,
        conversation: str,
        address: str | None = None,
        owner: str | None = None,
    ) -> bool:
        """Record that an event is being handled; False if it was claimed before.

        ``address`` (opaque to storage) says where to tell the user if the turn never ends;
        ``owner`` is the instance handling it (see ``adopt_orphans``).
        """
        ...

    async def finish_event(self, *, event_id: str, outcome: Outcome) -> None:
        """Mark a claimed event ``ANSWERED`` or ``FAILED`` (any other outcome: ``ValueError``)."""
        ...

    async def has_conversation(self, *, conversation: str) -> bool:
        """True once any event of this conversation was claimed (the bot takes part in it)."""
        ...

    async def unfinished_events(
        self, *, prefix: str = "", before: float | None = None
    ) -> list[UnfinishedEvent]:
        """Events claimed but never finished (e.g. after a crash), oldest first: those whose
        conversation starts with ``prefix`` and, if given, claimed before ``before``."""
        ...

    # --- several instances on one database ---------------------------------------------
    async def renew_lease(
        self, *, instance: str, now: float, lease_s: float, info: str = ""
    ) -> bool:
        """Hold ``instance``'s lease until ``now + lease_s``. True if it was held until now;
        False if it is new or had lapsed (what it held may have been taken over meanwhile).
        ``info`` (e.g. host and pid) is kept from its first lease."""
        ...

    async def end_lease(self, *, instance: str) -> None:
        """Give the lease up (a clean shutdown), with every conversation lock it holds: its
        unfinished claims are orphans from now on."""
        ...

    async def adopt_orphans(
        self, *, instance: str, prefix: str, now: float, unowned_before: float
    ) -> list[UnfinishedEvent]:
        """Take over, for ``instance``, the unfinished events of conversations starting with
        ``prefix`` whose owner is dead (its lease expired before ``now``, or it ended it), and
        those claimed without an owner before ``unowned_before``; oldest first. Each orphan
        goes to one caller, however many ask at once."""
        ...

    async def lock_conversation(
        self, *, conversation: str, instance: str, now: float, stale_before: float = 0.0
    ) -> bool:
        """Take the conversation's lock for ``instance``: True if it was free, held by a dead
        instance, by ``instance`` itself already, or taken before ``stale_before`` (longer ago
        than any turn runs: its release was lost); False while another live one holds it."""
        ...

    async def unlock_conversation(self, *, conversation: str, instance: str) -> None:
        """Release the lock if ``instance`` holds it."""
        ...

    async def hit_rate(self, *, key: str, limit: int, window_s: float, now: float) -> float:
        """One event of ``key`` at ``now``, against at most ``limit`` per ``window_s`` over a
        sliding window shared by every instance: 0 if it may go on (and is counted), else the
        seconds until it may."""
        ...

    async def sweep_instances(self, *, now: float, rate_window_s: float) -> None:
        """Delete rate hits older than the window, and dead instances' rows after a day."""
        ...

    # --- per-channel settings -------------------------------------------------------------
    async def get_channel_setting(self, *, channel: str, name: str) -> str | None: ...

    async def channel_settings(self, *, channel: str) -> dict[str, str]:
        """Every setting a channel has (name -> value), in one read."""
        ...

    async def set_channel_setting(self, *, channel: str, name: str, value: str | None) -> None:
        """Set a setting; ``None`` removes it (back to the default)."""
        ...

    async def channels_with_settings(self, *, prefix: str, limit: int) -> dict[str, dict[str, str]]:
        """The channels whose key starts with ``prefix`` (e.g. ``slack:T1:``) that have any
        setting, each with all of them: the ``limit`` changed most recently, newest first."""
        ...

    # --- usage ----------------------------------------------------------------------------
    async def record_usage(self, record: UsageRecord) -> None: ...

    async def usage_totals(
        self,
        *,
        user_id: str | None = None,
        channel: str | None = None,
        conversation: str | None = None,
        workspace: str | None = None,
        since: float | None = None,
    ) -> UsageTotals:
        """Sums over the rows matching every filter given."""
        ...

    async def latest_conversation(self, *, user_id: str, channel: str) -> str | None:
        """The conversation of this user's newest answered turn in ``channel`` (for ``/reset``
        where a command cannot say which thread it means)."""
        ...

    # --- feedback on answers -------------------------------------------------------------
    async def save_answer(
        self, *, answer: AnswerRecord, platform: str, message_ids: Sequence[str]
    ) -> None:
        """Keep a posted answer and the platform messages it went out as (a message id names
        one message on ``platform``), so that a click on one of them finds it. Saving the same
        answer again adds the messages not known yet."""
        ...

    async def answer_of_message(self, *, platform: str, message_id: str) -> AnswerRecord | None:
        """The answer a platform message belongs to; None if the store does not know it."""
        ...

    async def vote(self, *, event_id: str, user_id: str, value: str, now: float) -> str | None:
        """``user_id``'s vote (``up`` or ``down``) on the answer to ``event_id``: one row per
        answer and user, a second vote replacing the first, however many arrive at once.
        Returns the value it replaced, None for a first vote."""
        ...

    async def vote_shares(self, *, channel: str | None = None) -> list[VoteShare]:
        """The votes per model and channel (in ``channel`` only, if given), by channel and
        model; models and channels without votes are left out."""
        ...

    # --- approvals ----------------------------------------------------------------------
    async def open_approval(self, record: ApprovalRecord) -> None:
        """Keep a tool call waiting for approval (undecided); rows older than a day go."""
        ...

    async def approval(self, *, approval_id: str) -> ApprovalRecord | None:
        """The approval ``approval_id``, with its decision so far; None if unknown (swept)."""
        ...

    async def decide_approval(
        self, *, approval_id: str, decision: str, by: str, now: float
    ) -> bool:
        """Decide it (``approved``, ``denied`` or ``expired``) if nobody has yet: True if this
        call decided it; False if it was decided already, is unknown, or (for ``approved`` and
        ``denied``) is past its ``expires_at`` or its owner's lease has lapsed (nobody waits
        for it any more)."""
        ...

    # --- retention ----------------------------------------------------------------------
    async def expire_older_than(self, *, cutoff: float, limit: int) -> Expired:
        """Delete one batch of what is older than ``cutoff`` (unix seconds), in one transaction:
        up to ``limit`` conversations last active before it (with their history, file links and
        annotations, and the files no other conversation links), and up to ``limit`` each of
        usage rows, finished events, observed messages and posted answers (with their votes).
        Unfinished events stay (a restart
        tells their users). Call again until a batch deletes nothing."""
        ...

    # --- small key/value state (e.g. the hash of synced slash commands) -------------------
    async def get_state(self, *, key: str) -> str | None: ...

    async def set_state(self, *, key: str, value: str) -> None: ...
