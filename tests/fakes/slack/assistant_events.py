"""The events of an assistant thread (Slack's AI app surface), shaped as Slack sends them."""

from __future__ import annotations

from tests.fakes.slack.constants import TEAM_ID, USER_ID, JSONDict
from tests.fakes.slack.ids import new_ts


def _assistant_thread(
    kind: str, *, user: str, channel: str, thread_ts: str, context_channel: str | None, team: str
) -> JSONDict:
    context: JSONDict = {}
    if context_channel is not None:
        context = {"channel_id": context_channel, "team_id": team, "enterprise_id": None}
    return {
        "type": kind,
        "assistant_thread": {
            "user_id": user,
            "context": context,
            "channel_id": channel,
            "thread_ts": thread_ts,
        },
        "event_ts": new_ts(),
    }


def assistant_thread_started(
    *,
    thread_ts: str,
    user: str = USER_ID,
    channel: str = "D123",
    context_channel: str | None = None,
    team: str = TEAM_ID,
) -> JSONDict:
    """The user opened a new assistant thread (the legacy assistant view; the agent view sends
    ``app_home_opened`` with tab ``messages`` instead), seeing ``context_channel``."""
    return _assistant_thread(
        "assistant_thread_started",
        user=user,
        channel=channel,
        thread_ts=thread_ts,
        context_channel=context_channel,
        team=team,
    )


def assistant_thread_context_changed(
    *,
    thread_ts: str,
    context_channel: str,
    user: str = USER_ID,
    channel: str = "D123",
    team: str = TEAM_ID,
) -> JSONDict:
    """The user, with the assistant thread open, went to ``context_channel``."""
    return _assistant_thread(
        "assistant_thread_context_changed",
        user=user,
        channel=channel,
        thread_ts=thread_ts,
        context_channel=context_channel,
        team=team,
    )
