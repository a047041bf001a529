"""``chat.*`` (posts, updates, ephemerals, native streams) and ``assistant.threads.*``."""

from __future__ import annotations

import time

from tests.fakes.slack.builders import bot_profile, rich_text_blocks
from tests.fakes.slack.constants import (
    POST_TEXT_LIMIT,
    STREAM_CHUNK_LIMIT,
    STREAM_LIFETIME,
    SUGGESTED_PROMPTS_MAX,
    JSONDict,
)
from tests.fakes.slack.ids import channel_type_of, new_ts
from tests.fakes.slack.params import (
    ApiError,
    as_str,
    bot_workspace,
    channel_param,
    missing,
    public,
    required,
)
from tests.fakes.slack.records import StreamState, Workspace
from tests.fakes.slack.state import SlackState


class Chat(SlackState):
    """The methods that post, edit and stream messages, and set a thread's status and prompts."""

    def expire_stream(self, channel: str, ts: str) -> None:
        """End a stream as Slack does after its lifetime: later calls get
        ``message_not_in_streaming_state``."""
        self.stream(channel, ts).state = "expired"

    def _chat_post_message(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        ws = bot_workspace(workspace)
        channel = channel_param(params, "channel")
        text = as_str(params.get("text"))
        markdown = as_str(params.get("markdown_text"))
        if not (text or markdown):
            raise ApiError("no_text")
        thread_ts = as_str(params.get("thread_ts")) or None
        message = self._bot_message(ws, text=(text or markdown)[:POST_TEXT_LIMIT])
        if markdown:
            message["blocks"] = [{"type": "markdown", "text": markdown}]
        self._post(channel, message, thread_ts)
        return {"channel": channel, "ts": message["ts"], "message": public(message)}

    def _chat_update(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        ws = bot_workspace(workspace)
        channel = channel_param(params, "channel")
        ts = required(params, "ts")
        message = self._find(channel, ts)
        if message is None:
            raise ApiError("message_not_found")
        if message.get("bot_id") != ws.bot_id:
            raise ApiError("cant_update_message")
        text = as_str(params.get("text"))
        markdown = as_str(params.get("markdown_text"))
        if len(text) > self.update_text_limit or len(markdown) > self.update_text_limit:
            raise ApiError("msg_too_long")
        if text or markdown:
            message["text"] = text or markdown
        if markdown:
            message["blocks"] = [{"type": "markdown", "text": markdown}]
        elif text:
            message["blocks"] = rich_text_blocks(text)
        message["edited"] = {"user": ws.bot_user_id, "ts": new_ts()}
        return {"channel": channel, "ts": ts, "text": message["text"], "message": public(message)}

    def _chat_post_ephemeral(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        ws = bot_workspace(workspace)
        channel = channel_param(params, "channel")
        user = required(params, "user")
        text = as_str(params.get("text")) or as_str(params.get("markdown_text"))
        if not text:
            raise ApiError("no_text")
        message = self._bot_message(ws, text=text)
        message["user_to"] = user  # the fake's note of who sees it
        if thread_ts := as_str(params.get("thread_ts")):
            message["thread_ts"] = thread_ts
        self._ephemeral.setdefault(channel, []).append(message)
        return {"message_ts": message["ts"]}

    def _chat_start_stream(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        ws = bot_workspace(workspace)
        channel = channel_param(params, "channel")
        thread_ts = required(params, "thread_ts")  # streamed messages are always thread replies
        recipient_user = as_str(params.get("recipient_user_id")) or None
        recipient_team = as_str(params.get("recipient_team_id")) or None
        if channel_type_of(channel) != "im":
            if recipient_user is None:
                raise ApiError("missing_recipient_user_id")
            if recipient_team is None:
                raise ApiError("missing_recipient_team_id")
        stream = StreamState(
            channel=channel,
            ts="",
            thread_ts=thread_ts,
            recipient_user_id=recipient_user,
            recipient_team_id=recipient_team,
            started_at=time.monotonic(),
        )
        self._absorb_markdown(stream, params)
        message = self._bot_message(ws, text=stream.text)
        stream.ts = message["ts"]
        self._streams[(channel, stream.ts)] = stream
        self._post(channel, message, thread_ts)
        return {"channel": channel, "ts": stream.ts}

    def _chat_append_stream(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        stream, message = self._live_stream(params)
        if not params.get("markdown_text"):
            raise ApiError("no_text")
        self._absorb_markdown(stream, params)
        message["text"] = stream.text
        return {"channel": stream.channel, "ts": stream.ts}

    def _chat_stop_stream(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        stream, message = self._live_stream(params)
        self._absorb_markdown(stream, params)
        message["text"] = stream.text
        stream.state = "completed"
        return {"channel": stream.channel, "ts": stream.ts, "message": public(message)}

    def _assistant_set_status(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        channel = channel_param(params, "channel_id")
        thread_ts = required(params, "thread_ts")
        if "status" not in params:
            raise missing("status")
        status = as_str(params.get("status"))
        self._status[(channel, thread_ts)] = status
        self._status_history.setdefault((channel, thread_ts), []).append(status)
        return {}

    def _assistant_set_prompts(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        channel = channel_param(params, "channel_id")
        prompts = params.get("prompts")
        if not isinstance(prompts, list) or not prompts:
            raise missing("prompts")
        if any(
            not isinstance(p, dict) or not p.get("title") or not p.get("message") for p in prompts
        ):
            raise ApiError("invalid_arguments")
        if len(prompts) > SUGGESTED_PROMPTS_MAX:
            raise ApiError("invalid_arguments")
        thread_ts = as_str(params.get("thread_ts")) or None
        if thread_ts is not None and self.agent_view:
            return {}  # Slack's docs: with thread_ts, an agent-view app's call silently fails
        self._prompts[(channel, thread_ts)] = {"title": params.get("title"), "prompts": prompts}
        return {}

    def _assistant_set_title(self, params: JSONDict, workspace: Workspace | None) -> JSONDict:
        channel = channel_param(params, "channel_id")
        thread_ts = required(params, "thread_ts")
        title = required(params, "title")
        self._titles.setdefault((channel, thread_ts), []).append(title)
        return {}

    def _bot_message(self, ws: Workspace, *, text: str) -> JSONDict:
        return {
            "user": ws.bot_user_id,
            "type": "message",
            "ts": new_ts(),
            "bot_id": ws.bot_id,
            "app_id": self.app_id,
            "text": text,
            "team": ws.team_id,
            "bot_profile": bot_profile(ws.bot_id, self.app_id, ws.bot_name, ws.team_id),
            "blocks": rich_text_blocks(text),
        }

    def _live_stream(self, params: JSONDict) -> tuple[StreamState, JSONDict]:
        channel = channel_param(params, "channel")
        ts = required(params, "ts")
        stream = self._streams.get((channel, ts))
        message = self._find(channel, ts)
        if stream is None or message is None:
            raise ApiError("message_not_found")
        if stream.state == "in_progress" and (
            time.monotonic() - stream.started_at > STREAM_LIFETIME
        ):
            stream.state = "expired"
        if stream.state != "in_progress":
            raise ApiError("message_not_in_streaming_state")
        return stream, message

    def _absorb_markdown(self, stream: StreamState, params: JSONDict) -> None:
        """Append the call's ``markdown_text``; a rejected call changes nothing."""
        markdown = params.get("markdown_text")
        if markdown is None:
            return
        if not isinstance(markdown, str):
            raise ApiError("invalid_arguments")
        if len(markdown) > STREAM_CHUNK_LIMIT:
            raise ApiError("msg_too_long")
        stream.text += markdown
