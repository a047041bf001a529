"""What the fake records, and the installation a bot token acts in."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from tests.fakes.slack.constants import BOT_ID, BOT_USER_ID, JSONDict


@dataclass(frozen=True, slots=True)
class Workspace:
    """One installation: a team and the bot token that acts in it."""

    team_id: str
    bot_token: str
    team: str = "Fake Team"
    domain: str = "fake-team"
    bot_user_id: str = BOT_USER_ID
    bot_id: str = BOT_ID
    bot_name: str = "fakebot"

    @property
    def url(self) -> str:
        return f"https://{self.domain}.slack.com/"


@dataclass(slots=True)
class ApiCall:
    """One Web API request as received (tokens redacted) and what the fake answered."""

    method: str
    http_method: str
    params: JSONDict
    """Query, form and JSON parameters merged; a ``token`` parameter shows as ``[REDACTED]``."""
    content_type: str
    auth: Literal["bot", "app", "invalid", "missing"]
    auth_header: bool
    """The token came in ``Authorization: Bearer`` (not as a ``token`` parameter)."""
    team_id: str | None
    status: int
    response: JSONDict
    at: float
    """``time.monotonic()`` when received."""

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        error = self.response.get("error")
        return error if isinstance(error, str) else None


@dataclass(frozen=True, slots=True)
class FileDownload:
    """One GET of a private file URL. The token itself is never kept."""

    path: str
    file_id: str | None
    authorization_present: bool
    authorized: bool
    status: int
    content_type: str
    at: float


@dataclass(frozen=True, slots=True)
class ResponsePost:
    """One POST to a ``response_url``."""

    response_id: str
    url: str
    body: JSONDict
    status: int
    at: float


@dataclass(frozen=True, slots=True)
class Delivery:
    """One request the fake sent to an app.

    ``kind`` is ``event``, ``command`` or ``interaction``.
    """

    kind: str
    url: str
    payload: JSONDict
    headers: dict[str, str]
    status: int
    body: str
    at: float


@dataclass(frozen=True, slots=True)
class SocketAck:
    """An app's acknowledgement of a Socket Mode envelope (``payload`` may carry a response)."""

    envelope_id: str
    type: str
    message: JSONDict
    at: float


@dataclass(slots=True)
class StreamState:
    """One native stream (``chat.startStream`` .. ``chat.stopStream``) and what it accumulated."""

    channel: str
    ts: str
    thread_ts: str | None
    recipient_user_id: str | None
    recipient_team_id: str | None
    started_at: float
    state: Literal["in_progress", "completed", "expired"] = "in_progress"
    text: str = ""
    """All markdown appended so far (the ``markdown_text`` of every call)."""


@dataclass(slots=True)
class ScriptedFailure:
    """A failure ``fail_next`` / ``rate_limit`` queued for a method."""

    status: int
    error: str
    retry_after: int | None


@dataclass(slots=True)
class RandomLimit:
    """``rate_limit_randomly``'s setting."""

    fraction: float
    methods: frozenset[str] | None
    retry_after: int
    rng: random.Random

    def hits(self, method: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        return self.rng.random() < self.fraction


@dataclass(slots=True)
class OpenSocket:
    """A Socket Mode connection."""

    ws: web.WebSocketResponse
    opened_at: float
