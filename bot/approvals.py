"""Tool calls that wait for a person's approval (MCP servers' ``require_approval``).

The Agents SDK pauses the run at such a call (an interruption); the turn asks here and waits:

- **ask**: the request is kept in the store (undecided) and shown in place by the reply, with
  the tool's name and its arguments (shortened; secrets masked), naming who asked;
- **decide**: a click, on whichever instance receives it, decides it once in the store: only
  the person who asked, or one of ``BOT_ADMINS``, may; everyone else is told so privately;
- **wait**: the turn sees the decision at once on this instance (a local wake-up) or within
  ``POLL_S`` from another; after ``BOT_APPROVAL_TIMEOUT`` it is expired (in the same single
  write, so a last-second click and the expiry cannot both win).

A paused turn lives in its process: a restart or a crash ends it (the user is told, as for any
interrupted turn), and a redelivery of the message does not ask again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.admission import Admission
from bot.events import Event
from bot.metrics import Metrics
from bot.reply import ApprovalRequest, Reply, Verdict
from bot.results import user_key
from bot.settings import Settings
from storage.base import ApprovalRecord, Store

log = logging.getLogger(__name__)

POLL_S = 0.5
"""How often a waiting turn reads its request's decision (a click on another instance)."""
MASK = "•••"
SECRET_KEYS = re.compile(
    r"(pass(word|wd|phrase)?|secret|token|api[_-]?key|auth(orization)?|cookie|credential"
    r"|private[_-]?key|session)",
    re.IGNORECASE,
)
"""Argument names whose values are never shown."""
MAX_VALUE_CHARS = 80
MAX_ARGUMENTS_CHARS = 400

REFUSAL = "You may not use this bot here."
UNKNOWN = "This request is no longer waiting for an answer."
DENIED_TO_MODEL = (
    "The user denied this tool call: it was not run. Do not call it again for this request; "
    "say it was not done, and offer another way if there is one."
)


@dataclass(frozen=True, slots=True)
class Decided:
    """What a click did, and the line its clicker alone is shown."""

    status: str
    """``decided``, ``not_yours``, ``already``, ``unknown``, ``refused`` or ``failed``."""
    text: str


def describe_arguments(arguments: str, masked: Sequence[str] = ()) -> str:
    """A call's JSON arguments as a short line people can read: ``topic="deploys", n=3``.
    Values under secret-looking names, and any of ``masked`` (the bot's own secrets), are
    shown as ``•••``; long values and long lists are cut."""
    try:
        parsed: Any = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        parsed = arguments
    if isinstance(parsed, dict):
        parts = [
            f"{key}={MASK if SECRET_KEYS.search(str(key)) else _value(value)}"
            for key, value in parsed.items()
        ]
        text = ", ".join(parts)
    else:
        text = _value(parsed)
    for secret in masked:
        if len(secret) >= 6:
            text = text.replace(secret, MASK)
    if len(text) > MAX_ARGUMENTS_CHARS:
        text = text[: MAX_ARGUMENTS_CHARS - 1].rstrip() + "…"
    return text


def _value(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else f'"{value}"'
    text = " ".join(text.split())  # one line
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1].rstrip() + "…"
    return text


def is_explicit_admin(settings: Settings, event: Event) -> bool:
    """One of ``BOT_ADMINS`` (unlike ``/settings``, an empty list makes nobody an admin here:
    approving a tool is the asker's own decision)."""
    admins = settings.admin_users
    return f"{event.platform}:{event.author.id}" in admins or event.author.id in admins


class Approvals:
    """Asks, waits, decides. One per core; the waiting requests of this process by id."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        admission: Admission,
        metrics: Metrics,
        *,
        instance_id: str,
    ) -> None:
        self._store = store
        self._instance_id = instance_id
        self._settings = settings
        self._admission = admission
        self._metrics = metrics
        self._wake: dict[str, asyncio.Event] = {}

    async def ask(self, event: Event, reply: Reply, *, tool: str, arguments: str) -> Verdict:
        """Ask ``event``'s author whether ``tool`` may run with ``arguments`` (its JSON) and wait
        for the decision, or ``BOT_APPROVAL_TIMEOUT``. Raises only what the store or the reply
        raise (the turn fails with its usual line)."""
        approval_id = secrets.token_hex(8)
        request = ApprovalRequest(
            id=approval_id,
            tool=tool,
            arguments=describe_arguments(arguments, self._settings.secrets),
            requester=event.author.id,
            timeout_s=self._settings.approval_timeout_s,
        )
        now = time.time()
        record = ApprovalRecord(
            id=approval_id,
            conversation=str(event.conversation),
            requester=user_key(event),
            tool=tool,
            owner=self._instance_id,
            created_at=now,
            expires_at=now + self._settings.approval_timeout_s,
        )
        wake = self._wake[approval_id] = asyncio.Event()
        try:
            await self._store.open_approval(record)
            if not await reply.ask_approval(request):
                log.info("approval not askable here: refused", extra={"tool": tool})
                await self._close(approval_id, Verdict.DENIED)
                return Verdict.DENIED
            log.info("approval asked", extra={"tool": tool, "approval": approval_id})
            try:
                verdict, by = await self._wait(approval_id, wake)
            except asyncio.CancelledError:
                # The turn was stopped (shutdown, Ctrl-C): a later click finds it closed.
                await self._close_quietly(approval_id)
                raise
        finally:
            del self._wake[approval_id]
        log.info("approval %s", verdict.value, extra={"tool": tool, "approval": approval_id})
        self._metrics.approvals.labels(verdict.value).inc()
        await reply.approval_closed(request, verdict, by)
        return verdict

    async def _close(self, approval_id: str, verdict: Verdict) -> bool:
        """The turn's own decision (nobody clicked): True if it came before any click."""
        return await self._store.decide_approval(
            approval_id=approval_id, decision=verdict.value, by="", now=time.time()
        )

    async def _close_quietly(self, approval_id: str) -> None:
        try:
            await asyncio.wait_for(self._close(approval_id, Verdict.EXPIRED), 2.0)
        except Exception:
            log.info("could not close a request for approval whose turn stopped")

    async def _wait(self, approval_id: str, wake: asyncio.Event) -> tuple[Verdict, str | None]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.approval_timeout_s
        while True:
            record = await self._store.approval(approval_id=approval_id)
            if record is not None and record.decision is not None:
                return Verdict(record.decision), _platform_id(record.decided_by)
            left = deadline - loop.time()
            if left <= 0:
                if await self._close(approval_id, Verdict.EXPIRED):
                    return Verdict.EXPIRED, None
                continue  # a click won the race: read what it decided
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), min(POLL_S, left))
            wake.clear()

    async def decide(self, click: Event, *, approval_id: str, approve: bool) -> Decided:
        """``click``'s author approves or denies the request ``approval_id`` (the click as an
        event: its author and place decide the allowlists). Never raises."""
        if not self._admission.allows(click):
            log.info("an approval click refused by the allowlists")
            return Decided("refused", REFUSAL)
        try:
            record = await self._store.approval(approval_id=approval_id)
            if record is None:
                return Decided("unknown", UNKNOWN)
            if record.requester != user_key(click) and not is_explicit_admin(self._settings, click):
                log.info("an approval click by someone else than the asker, refused")
                asker = _platform_id(record.requester)
                return Decided("not_yours", f"Only <@{asker}> or an admin can answer this request.")
            verdict = Verdict.APPROVED if approve else Verdict.DENIED
            decided = record.decision is None and await self._store.decide_approval(
                approval_id=approval_id,
                decision=verdict.value,
                by=user_key(click),
                now=time.time(),
            )
            if not decided:
                record = await self._store.approval(approval_id=approval_id) or record
                if record.decision is None:  # past its time, or its instance is gone
                    return Decided("unknown", UNKNOWN)
                return Decided("already", _already(record))
        except Exception:
            log.exception("could not record an approval's decision")
            return Decided("failed", "I could not record that. Please try again.")
        wake = self._wake.get(approval_id)
        if wake is not None:
            wake.set()
        if approve:
            return Decided("decided", f"Approved: running `{record.tool}`.")
        return Decided("decided", f"Denied: `{record.tool}` will not run.")


def _already(record: ApprovalRecord) -> str:
    if record.decision == Verdict.EXPIRED:  # timed out, or its turn stopped
        return UNKNOWN
    by = _platform_id(record.decided_by)
    return f"This request was already {record.decision}" + (f" by <@{by}>." if by else ".")


def _platform_id(key: str | None) -> str | None:
    """``slack:U1`` -> ``U1``; None or "" -> None."""
    if not key:
        return None
    return key.split(":", 1)[1] if ":" in key else key
