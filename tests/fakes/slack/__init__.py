"""A fake Slack on 127.0.0.1: the Web API, file hosting, response URLs, event delivery, Socket Mode.

It speaks the wire formats the real clients use, so the adapter is tested through the REAL
``slack_bolt.AsyncApp`` and ``slack_sdk.AsyncWebClient`` pointed at it:

- the Web API methods the bot calls (``auth.test``, ``chat.postMessage``, ``chat.update``,
  ``chat.postEphemeral``, ``chat.startStream`` / ``appendStream`` / ``stopStream``,
  ``assistant.threads.setStatus`` / ``setSuggestedPrompts`` / ``setTitle``, ``views.publish``
  / ``views.open`` (their blocks checked in ``view_blocks``), ``apps.connections.open``; any
  other is ``unknown_method``; message ``blocks``, ``attachments`` and stream ``chunks``, which
  the bot never sends, are refused) at ``{base_url}/api/<method>`` (``api_url`` is the clients'
  ``base_url``): JSON, form-encoded and query parameters alike; ``Authorization: Bearer`` or a
  ``token`` field; HTTP 200 ``{"ok": false, "error": ...}`` for API errors and HTTP 429 +
  ``Retry-After`` for scripted rate limits (``rate_limit``) or a random fraction of calls
  (``rate_limit_randomly``), as Slack does;
- a message store per channel (threads, edits, native streams);
- private files at ``/files-pri/T...-F.../name`` that need the bot token (else a 200 HTML
  sign-in page, as Slack answers);
- ``response_url`` endpoints for slash commands (``new_response_url()``);
- signed Events API / slash command / interactivity delivery to an app's request URL
  (``deliver_event``, ``deliver_command``, ``deliver_interaction`` with the payloads of
  ``home_click`` and ``view_submission``) and Socket Mode (``apps.connections.open`` gives a
  ``ws://`` URL on this server; ``deliver_socket_event`` / ``deliver_socket_payload``).

Builders at module level (``app_mention``, ``message_event``, ``file_share_message``,
``bot_message``, ``message_changed``, ``app_home_opened``, ``assistant_thread_started``,
``assistant_thread_context_changed``) make events shaped like Slack's.

Usage::

    async with FakeSlack() as fake:
        client = AsyncWebClient(base_url=fake.api_url, token=fake.bot_token)
        app = AsyncApp(token=fake.bot_token, signing_secret=SECRET, client=client)
        ...  # serve the app on 127.0.0.1, then:
        status, _ = await fake.deliver_event(url, SECRET, app_mention("<@U0BOT> hi"))
        reply = await fake.wait_for(lambda: fake.calls("chat.postMessage"))
        assert fake.thread("C123", event_ts)[-1]["text"] == "..."

Run it standalone for manual checks: ``python -m tests.fakes.slack --port 8098``.

The modules: ``constants`` and ``ids`` (the default world, id and timestamp shapes),
``builders`` and ``signing`` (what Slack sends an app), ``records`` (what the fake records),
``state`` (the store, set-up, inspection and waits), and the protocol mixins over it:
``web_api`` (tokens, scripted failures, ``auth.test``) with ``params``, ``chat``,
``views`` (Home tabs, modals, clicks and submissions) with ``view_blocks``, ``hosting``
(files, response URLs), ``events`` (HTTP delivery) and ``socket_mode``;
``server`` puts them together as ``FakeSlack``.
"""

from tests.fakes.slack.assistant_events import (
    assistant_thread_context_changed,
    assistant_thread_started,
)
from tests.fakes.slack.builders import (
    app_home_opened,
    app_mention,
    bot_message,
    event_envelope,
    file_share_message,
    im_message,
    message_changed,
    message_event,
    rich_text_blocks,
)
from tests.fakes.slack.constants import (
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    DEFAULT_APP_TOKEN,
    DEFAULT_BOT_TOKEN,
    DEFAULT_SIGNING_SECRET,
    TEAM_ID,
    USER_ID,
)
from tests.fakes.slack.ids import new_ts
from tests.fakes.slack.records import (
    ApiCall,
    Delivery,
    FileDownload,
    ResponsePost,
    SocketAck,
    StreamState,
    Workspace,
)
from tests.fakes.slack.server import FakeSlack
from tests.fakes.slack.signing import sign, signed_headers

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "DEFAULT_APP_TOKEN",
    "DEFAULT_BOT_TOKEN",
    "DEFAULT_SIGNING_SECRET",
    "TEAM_ID",
    "USER_ID",
    "ApiCall",
    "Delivery",
    "FakeSlack",
    "FileDownload",
    "ResponsePost",
    "SocketAck",
    "StreamState",
    "Workspace",
    "app_home_opened",
    "app_mention",
    "assistant_thread_context_changed",
    "assistant_thread_started",
    "bot_message",
    "event_envelope",
    "file_share_message",
    "im_message",
    "message_changed",
    "message_event",
    "new_ts",
    "rich_text_blocks",
    "sign",
    "signed_headers",
]
