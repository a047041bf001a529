"""The fake's state: workspaces and tokens, recordings, the message store, and the waits."""

from __future__ import annotations

import asyncio
import itertools
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import aiohttp

from tests.fakes._server import LoopbackServer
from tests.fakes.slack.constants import (
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    DEFAULT_APP_TOKEN,
    DEFAULT_BOT_TOKEN,
    TEAM_ID,
    UPDATE_TEXT_LIMIT,
    JSONDict,
)
from tests.fakes.slack.ids import new_trigger_id, new_ts
from tests.fakes.slack.records import (
    ApiCall,
    Delivery,
    FileDownload,
    OpenSocket,
    RandomLimit,
    ResponsePost,
    ScriptedFailure,
    StreamState,
    Workspace,
)

T = TypeVar("T")
Method = Callable[[JSONDict, Workspace | None], JSONDict]
"""A Web API method: the call's parameters and the bot's workspace (None: an app token)."""


class SlackState(LoopbackServer):
    """All of the fake's state, what tests set up and read, and the message store.

    The Web API, file hosting, event delivery and Socket Mode are mixins over this
    (``tests.fakes.slack.server.FakeSlack`` puts them together).
    """

    def __init__(
        self,
        *,
        bot_token: str = DEFAULT_BOT_TOKEN,
        app_token: str = DEFAULT_APP_TOKEN,
        team_id: str = TEAM_ID,
        team: str = "Fake Team",
        bot_user_id: str = BOT_USER_ID,
        bot_id: str = BOT_ID,
        app_id: str = APP_ID,
        port: int = 0,
        update_text_limit: int = UPDATE_TEXT_LIMIT,
    ) -> None:
        self.app_id = app_id
        self.update_text_limit = update_text_limit
        self.latency = 0.0
        """Seconds every Web API call waits before answering (mutable while running)."""

        self._workspaces: dict[str, Workspace] = {}
        self._tokens: dict[str, Workspace] = {}
        self._app_tokens: set[str] = {app_token}
        self.default_workspace = self.add_workspace(
            team_id, bot_token=bot_token, team=team, bot_user_id=bot_user_id, bot_id=bot_id
        )
        self.app_token = app_token

        self.api_calls: list[ApiCall] = []
        self.downloads: list[FileDownload] = []
        self.response_posts: list[ResponsePost] = []
        self.deliveries: list[Delivery] = []
        self.connection_per_delivery = False
        """True: each delivery opens its own connection, as Slack's many senders do, so several
        processes sharing the request URL's port (``SO_REUSEPORT``) each get some."""

        self._messages: dict[str, list[JSONDict]] = {}
        self._ephemeral: dict[str, list[JSONDict]] = {}
        self._streams: dict[tuple[str, str], StreamState] = {}
        self._status: dict[tuple[str, str], str] = {}
        self._status_history: dict[tuple[str, str], list[str]] = {}
        self._prompts: dict[tuple[str, str | None], JSONDict] = {}
        self._titles: dict[tuple[str, str], list[str]] = {}
        self.agent_view = True
        """The app has the agent messaging view (``features.agent_view``, as our manifest
        says): ``setSuggestedPrompts`` with a ``thread_ts`` then silently does nothing, as
        Slack documents. False: the legacy assistant view (``assistant_view``)."""
        self._homes: dict[tuple[str, str], JSONDict] = {}
        self._home_history: dict[tuple[str, str], list[JSONDict]] = {}
        self._modals: dict[str, JSONDict] = {}
        self._triggers: dict[str, float] = {}
        """Trigger id -> when it was issued (``time.monotonic()``); -1 once it opened a view."""
        self._files: dict[str, tuple[JSONDict, bytes]] = {}
        self._response_urls: dict[str, int] = {}
        self._failures: dict[str, deque[ScriptedFailure]] = {}
        self._random_limit: RandomLimit | None = None
        self.random_429s = 0
        """How many calls ``rate_limit_randomly`` answered with a 429."""
        self._tickets: set[str] = set()
        self._sockets: list[OpenSocket] = []
        self._pending_acks: dict[str, asyncio.Future[JSONDict]] = {}
        self._socket_turn = itertools.count()
        self._file_ids = itertools.count(1)

        super().__init__(port=port)
        self._session: aiohttp.ClientSession | None = None
        self._changed = asyncio.Event()

        self._methods = self._method_table()

    def _method_table(self) -> dict[str, Method]:
        """Web API method name -> handler (``FakeSlack`` fills it from the mixins)."""
        return {}

    # ----------------------------------------------------------------- identity

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash): the host of files and response URLs."""
        return self.host_url

    @property
    def api_url(self) -> str:
        """``http://127.0.0.1:PORT/api/``: pass as ``AsyncWebClient(base_url=...)``."""
        return f"{self.base_url}/api/"

    @property
    def bot_token(self) -> str:
        return self.default_workspace.bot_token

    @property
    def team_id(self) -> str:
        return self.default_workspace.team_id

    @property
    def bot_user_id(self) -> str:
        return self.default_workspace.bot_user_id

    @property
    def bot_id(self) -> str:
        return self.default_workspace.bot_id

    # ----------------------------------------------------------------- set-up

    def add_workspace(
        self,
        team_id: str,
        *,
        bot_token: str,
        team: str | None = None,
        bot_user_id: str = BOT_USER_ID,
        bot_id: str = BOT_ID,
    ) -> Workspace:
        """Install the app in another team (multi-workspace): ``bot_token`` acts in ``team_id``."""
        name = team or f"Team {team_id}"
        workspace = Workspace(
            team_id=team_id,
            bot_token=bot_token,
            team=name,
            domain=re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "team",
            bot_user_id=bot_user_id,
            bot_id=bot_id,
        )
        self._workspaces[team_id] = workspace
        self._tokens[bot_token] = workspace
        return workspace

    def revoke_token(self, token: str) -> None:
        """Calls with this token now get ``invalid_auth``."""
        self._tokens.pop(token, None)
        self._app_tokens.discard(token)

    def add_message(self, channel: str, message: Mapping[str, Any]) -> JSONDict:
        """Put a message (e.g. a user's, from a builder) in ``channel`` as if it had been sent."""
        stored = {
            k: v for k, v in message.items() if k not in ("channel", "event_ts", "channel_type")
        }
        stored["type"] = "message"
        stored.setdefault("ts", new_ts())
        existing = self._find(channel, str(stored["ts"]))
        if existing is not None:
            return existing
        self._store(channel, stored)
        return stored

    def new_response_url(self) -> str:
        """A fresh ``response_url`` on this fake (usable ``RESPONSE_URL_USES`` times)."""
        response_id = secrets.token_hex(12)
        self._response_urls[response_id] = 0
        return f"{self.base_url}/response/{response_id}"

    # ----------------------------------------------------------------- inspection

    def calls(self, method: str | None = None) -> list[ApiCall]:
        """Recorded Web API calls, oldest first (of ``method`` only if given)."""
        return [c for c in self.api_calls if method is None or c.method == method]

    def last_call(self, method: str | None = None) -> ApiCall:
        found = self.calls(method)
        if not found:
            raise LookupError(f"no {method or 'API'} call recorded")
        return found[-1]

    def messages(self, channel: str) -> list[JSONDict]:
        """Messages in ``channel`` (top-level and replies) in posting order."""
        return list(self._messages.get(channel, ()))

    def thread(self, channel: str, thread_ts: str) -> list[JSONDict]:
        """The root (if known) and the replies of one thread, oldest first."""
        return [
            m
            for m in self._messages.get(channel, ())
            if m.get("ts") == thread_ts or m.get("thread_ts") == thread_ts
        ]

    def message(self, channel: str, ts: str) -> JSONDict:
        found = self._find(channel, ts)
        if found is None:
            raise LookupError(f"no message {ts} in {channel}")
        return found

    def bot_messages(self, channel: str) -> list[JSONDict]:
        """Messages the bot posted (or streamed) in ``channel``."""
        return [m for m in self._messages.get(channel, ()) if m.get("bot_id")]

    def ephemerals(self, channel: str) -> list[JSONDict]:
        return list(self._ephemeral.get(channel, ()))

    def stream(self, channel: str, ts: str) -> StreamState:
        try:
            return self._streams[(channel, ts)]
        except KeyError:
            raise LookupError(f"no stream {ts} in {channel}") from None

    def streams(self, channel: str | None = None) -> list[StreamState]:
        return [s for s in self._streams.values() if channel is None or s.channel == channel]

    def status(self, channel_id: str, thread_ts: str) -> str | None:
        """The assistant status shown in a thread now (``None``: unset, or cleared by a reply)."""
        return self._status.get((channel_id, thread_ts)) or None

    def status_history(self, channel_id: str, thread_ts: str) -> list[str]:
        """Every status set in a thread, ``""`` for explicit clears."""
        return list(self._status_history.get((channel_id, thread_ts), ()))

    def suggested_prompts(self, channel_id: str, thread_ts: str | None = None) -> JSONDict | None:
        """The prompts shown: for the DM itself (``thread_ts`` None, the agent view) or one
        thread of it (the legacy assistant view)."""
        return self._prompts.get((channel_id, thread_ts))

    def titles(self, channel_id: str, thread_ts: str) -> list[str]:
        """Every title ``assistant.threads.setTitle`` gave the thread, oldest first."""
        return list(self._titles.get((channel_id, thread_ts), ()))

    # The waits below take a ``timeout`` (ASYNC109) on purpose: a hung fake must fail a test with
    # a message saying what was awaited, not hang it.
    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:  # noqa: ASYNC109
        """Wait until ``predicate()`` is truthy (checked after every change) and return it.

        Raises ``TimeoutError`` with the predicate's last value after ``timeout`` seconds.
        """
        result = predicate()
        try:
            async with asyncio.timeout(timeout):
                while not result:
                    self._changed.clear()
                    await self._changed.wait()
                    result = predicate()
        except TimeoutError:
            raise TimeoutError(f"condition not met within {timeout}s (last: {result!r})") from None
        return result

    async def wait_for_call(
        self,
        method: str,
        *,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> ApiCall:
        """The ``count``-th call of ``method`` once it has been answered."""
        await self.wait_for(lambda: len(self.calls(method)) >= count, timeout)
        return self.calls(method)[count - 1]

    # ----------------------------------------------------------------- the store

    def _new_trigger(self) -> str:
        """A trigger id for what Slack sends an app, good for one view for 3 seconds."""
        trigger = new_trigger_id()
        self._triggers[trigger] = time.monotonic()
        return trigger

    def _workspace(self, team_id: str) -> Workspace:
        return self._workspaces.get(team_id, self.default_workspace)

    def _find(self, channel: str, ts: str) -> JSONDict | None:
        for message in self._messages.get(channel, ()):
            if message.get("ts") == ts:
                return message
        return None

    def _post(self, channel: str, message: JSONDict, thread_ts: str | None) -> None:
        if thread_ts:
            message["thread_ts"] = thread_ts
            root = self._find(channel, thread_ts)
            if root is not None:
                message["parent_user_id"] = root.get("user")
                root["thread_ts"] = thread_ts
                root["reply_count"] = int(root.get("reply_count", 0)) + 1
                users = root.setdefault("reply_users", [])
                if message["user"] not in users:
                    users.append(message["user"])
                root["reply_users_count"] = len(users)
                root["latest_reply"] = message["ts"]
            # Slack clears the assistant status when the app replies in the thread.
            self._status.pop((channel, thread_ts), None)
        self._store(channel, message)

    def _store(self, channel: str, message: JSONDict) -> None:
        self._messages.setdefault(channel, []).append(message)

    def _absorb_event(self, event: Mapping[str, Any]) -> None:
        channel = event.get("channel")
        if not isinstance(channel, str):
            return
        subtype = event.get("subtype")
        if event.get("type") in ("message", "app_mention") and subtype in (None, "file_share"):
            self.add_message(channel, event)
        elif subtype == "message_changed" and isinstance(event.get("message"), dict):
            changed = event["message"]
            existing = self._find(channel, str(changed.get("ts")))
            if existing is not None:
                existing.update(changed)
