"""Slack's slash commands: ``/ask`` in public, the others answered to their user alone.

- The command names come from the one registry (``bot.commands.COMMANDS``); the manifest is
  tested against them.
- ``/ask`` posts the question in the channel and answers in its thread, like a mention. The
  post is public, so access, rate limit and budget are checked before it; when Slack refuses
  the post, the user is told why in words (``ASK_POST_FAILURES``).
- A command cannot be typed in a thread: ``/reset`` and ``/files`` mean the user's latest
  conversation in the channel.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.common.inflight import InFlight
from adapters.slack.reply import slack_error
from adapters.slack.translate import channel_key, command_event, conversation_key, defuse_mentions
from bot.commands import commands_for
from bot.events import ConversationKey, Event
from bot.reply import ApprovalRequest, Step, Verdict
from bot.web_search import Source

if TYPE_CHECKING:
    from bot.core import Core
    from bot.feedback import FinishedAnswer
    from bot.results import TurnResult

log = logging.getLogger(__name__)

COMMANDS = tuple(f"/{c.name}" for c in commands_for("slack"))
"""Slack's slash commands, from the one registry (the manifest is tested against it)."""
ASK_USAGE = "Ask a question after the command, e.g. `/ask what's the weather in Oslo?`"
NOT_IN_CHANNEL = (
    "I can't post in this channel yet. Invite me first (`/invite @me`), or ask me in a DM."
)
ASK_POST_FAILURES = {
    "not_in_channel": NOT_IN_CHANNEL,
    "channel_not_found": NOT_IN_CHANNEL,
    "is_archived": "This channel is archived, so I can't post your question in it.",
    "msg_too_long": "Your question is too long for me to post here. Please shorten it, "
    "or send it to me in a DM (a long text works best as a file).",
    "restricted_action": "This channel only lets some people post, and I'm not one of them. "
    "Ask me in a DM instead.",
    "ratelimited": "Slack is rate-limiting me in this channel right now. Please try again in "
    "a minute.",
}
"""What ``/ask`` tells its user when Slack refuses to post the question, by Slack's error."""

Responder = Callable[..., Awaitable[Any]]


class Answer(Protocol):
    """``EventListeners.answer``: a turn answered in a thread, as a mention is."""

    async def __call__(
        self, event: Event, *, thread_ts: str, admitted: bool = False
    ) -> TurnResult: ...


def ask_post_failure(error: str) -> str:
    return ASK_POST_FAILURES.get(
        error,
        f"I couldn't post your question here (Slack said `{error}`). Please try again, "
        "or ask me in a DM.",
    )


class CommandReply:
    """``Reply`` for a command's answer: collected, then sent once as an ephemeral response."""

    def __init__(self, respond: Responder) -> None:
        self._respond = respond
        self._parts: list[str] = []

    async def start(self) -> None:
        pass

    async def stream(self, delta: str) -> None:
        self._parts.append(delta)

    async def progress(self, step: Step) -> None:
        pass  # one ephemeral response at the end: nothing to show steps in

    async def notice(self, text: str) -> None:
        self._parts.append(f"_{text}_\n")

    async def finish(
        self, answer: FinishedAnswer | None = None, sources: Sequence[Source] = ()
    ) -> None:
        await self._respond(text="".join(self._parts), response_type="ephemeral")

    async def fail(self, message: str) -> None:
        await self._respond(text=message, response_type="ephemeral")

    async def refuse(self, message: str) -> None:
        await self.fail(message)  # a command's answer is ephemeral already

    async def ask_approval(self, request: ApprovalRequest) -> bool:
        return False  # commands run no model: nothing asks (False refuses the call)

    async def approval_closed(
        self, request: ApprovalRequest, verdict: Verdict, by: str | None
    ) -> None:
        pass


class SlashCommands:
    """Every slash command of the registry, answered through the core."""

    def __init__(
        self,
        core: Core,
        client: AsyncWebClient,
        *,
        answer: Answer,
        inflight: InFlight,
        outcomes: Counter[str],
    ) -> None:
        self.core = core
        self._client = client
        self._answer = answer
        self._inflight = inflight
        self._outcomes = outcomes

    def register(self, app: AsyncApp) -> None:
        for name in COMMANDS:
            app.command(name)(self.on_command)

    async def on_command(
        self, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        with self._inflight.track():
            await self._command(command, respond)

    async def _command(self, command: dict[str, Any], respond: AsyncRespond) -> None:
        name = str(command.get("command") or "").lstrip("/").lower()
        try:
            if name == "ask":
                await self._ask(command, respond)
                return
            conversation: ConversationKey | None = None
            if name in ("reset", "files"):
                conversation = await self._latest_conversation(command)
            result = await self.core.handle(
                command_event(command, conversation=conversation), CommandReply(respond)
            )
            self._outcomes[result.outcome.value] += 1
        except Exception:
            log.exception("slash command failed", extra={"command": name})
            await respond(text="Sorry, that command failed. Please try again.")

    async def _latest_conversation(self, command: Mapping[str, Any]) -> ConversationKey | None:
        """A command cannot be typed in a thread: ``/reset`` means the user's latest one here."""
        team, channel = str(command.get("team_id")), str(command.get("channel_id"))
        return await self.core.conversations.latest_of(
            user=f"slack:{command.get('user_id')}", channel=channel_key(team, channel)
        )

    async def _ask(self, command: Mapping[str, Any], respond: AsyncRespond) -> None:
        question = str(command.get("text") or "").strip()
        if not question:
            await respond(text=ASK_USAGE, response_type="ephemeral")
            return
        team = str(command.get("team_id") or "")
        channel = str(command.get("channel_id") or "")
        user = str(command.get("user_id") or "")
        event = command_event(command)

        async def tell_privately(line: str) -> None:
            await respond(text=line, response_type="ephemeral")

        # The echo is public: access, rate limit and budget are checked before it is posted.
        refused = await self.core.admit(event, tell_privately)
        if refused is not None:
            self._outcomes[refused.outcome.value] += 1
            return
        try:
            posted = await self._client.chat_postMessage(
                channel=channel, text=f"<@{user}> asked: {defuse_mentions(question)}"
            )
        except SlackApiError as exc:
            error = slack_error(exc)
            log.info("/ask could not post in %s: %s", channel, error)
            await tell_privately(ask_post_failure(error))
            return
        root = str(posted["ts"])
        event = dataclasses.replace(event, conversation=conversation_key(team, channel, root))
        await self._answer(event, thread_ts=root, admitted=True)
