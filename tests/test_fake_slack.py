"""The fake Slack, driven by the real clients: slack_sdk's AsyncWebClient and a slack_bolt AsyncApp
served over HTTP (and Socket Mode) on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltRequest, AsyncRespond, AsyncSay
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import (
    BOT_USER_ID,
    TEAM_ID,
    USER_ID,
    FakeSlack,
    app_home_opened,
    app_mention,
    bot_message,
    file_share_message,
    im_message,
    message_changed,
    message_event,
    new_ts,
    rich_text_blocks,
    sign,
)

SECRET = "test-signing-secret-abcdef0123456789"
FEEDBACK_BLOCK = {
    "type": "context_actions",
    "elements": [
        {
            "type": "feedback_buttons",
            "action_id": "feedback",
            "positive_button": {"text": {"type": "plain_text", "text": "Good"}, "value": "up"},
            "negative_button": {"text": {"type": "plain_text", "text": "Bad"}, "value": "down"},
        }
    ],
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        yield server


@pytest.fixture
async def client(fake: FakeSlack) -> AsyncIterator[AsyncWebClient]:
    web_client = AsyncWebClient(base_url=fake.api_url, token=fake.bot_token, timeout=5)
    yield web_client
    if web_client.session is not None:
        await web_client.session.close()


def error_of(exc: pytest.ExceptionInfo[SlackApiError]) -> str:
    return str(exc.value.response["error"])


# --------------------------------------------------------------------------- Web API basics


async def test_auth_test_and_auth_errors(fake: FakeSlack, client: AsyncWebClient) -> None:
    resp = await client.auth_test()

    assert resp["ok"] is True
    assert (resp["team_id"], resp["user_id"], resp["bot_id"]) == (TEAM_ID, BOT_USER_ID, "B0BOT")
    assert resp["url"] == "https://fake-team.slack.com/"
    assert "chat:write" in resp.headers["x-oauth-scopes"]
    call = fake.last_call("auth.test")
    assert (call.auth, call.auth_header, call.http_method) == ("bot", True, "POST")

    wrong = AsyncWebClient(base_url=fake.api_url, token="xoxb-wrong")
    with pytest.raises(SlackApiError) as exc:
        await wrong.auth_test()
    assert error_of(exc) == "invalid_auth"
    assert exc.value.response.status_code == 200  # Slack's API errors are HTTP 200

    with pytest.raises(SlackApiError) as exc:
        await AsyncWebClient(base_url=fake.api_url).auth_test()
    assert error_of(exc) == "not_authed"

    with pytest.raises(SlackApiError) as exc:  # an app-level token cannot post as the bot
        await AsyncWebClient(base_url=fake.api_url, token=fake.app_token).auth_test()
    assert error_of(exc) == "not_allowed_token_type"

    with pytest.raises(SlackApiError) as exc:
        await client.api_call("chat.frobnicate")
    assert error_of(exc) == "unknown_method"


async def test_form_encoded_call_with_token_field_is_redacted(fake: FakeSlack) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            fake.api_url + "chat.postMessage",
            data={"token": fake.bot_token, "channel": "C123", "text": "hi <@U9>"},
        ) as resp,
    ):
        body = await resp.json()

    assert body["ok"] is True
    assert body["message"]["blocks"][0]["elements"][0]["elements"][1] == {
        "type": "user",
        "user_id": "U9",
    }
    call = fake.last_call("chat.postMessage")
    assert call.content_type == "application/x-www-form-urlencoded"
    assert call.params["token"] == "[REDACTED]"
    assert fake.bot_token not in json.dumps([c.params for c in fake.api_calls])


async def test_post_update_and_ephemeral(fake: FakeSlack, client: AsyncWebClient) -> None:
    root = fake.add_message("C123", message_event("question", user=USER_ID))

    posted = await client.chat_postMessage(channel="C123", text="thinking", thread_ts=root["ts"])
    ts = posted["ts"]
    assert posted["channel"] == "C123"
    assert posted["message"]["thread_ts"] == root["ts"]
    assert posted["message"]["parent_user_id"] == USER_ID
    assert posted["message"]["bot_id"] == fake.bot_id

    updated = await client.chat_update(channel="C123", ts=ts, text="x" * 4000)
    assert updated["text"] == "x" * 4000
    with pytest.raises(SlackApiError) as exc:
        await client.chat_update(channel="C123", ts=ts, text="x" * 4001)
    assert error_of(exc) == "msg_too_long"
    with pytest.raises(SlackApiError) as exc:
        await client.chat_update(channel="C123", ts="1.000001", text="hi")
    assert error_of(exc) == "message_not_found"
    with pytest.raises(SlackApiError) as exc:  # not ours
        await client.chat_update(channel="C123", ts=root["ts"], text="hijack")
    assert error_of(exc) == "cant_update_message"

    thread = fake.thread("C123", root["ts"])
    assert [m["text"] for m in thread] == ["question", "x" * 4000]
    assert thread[0]["reply_count"] == 1
    assert fake.message("C123", ts)["edited"]["user"] == BOT_USER_ID

    eph = await client.chat_postEphemeral(channel="C123", user=USER_ID, text="only you")
    assert fake.ephemerals("C123")[0]["ts"] == eph["message_ts"]

    with pytest.raises(SlackApiError) as exc:
        await client.chat_postMessage(channel="not-a-channel", text="hi")
    assert error_of(exc) == "channel_not_found"


# --------------------------------------------------------------------------- assistant + streaming


async def test_assistant_status_and_prompts(fake: FakeSlack, client: AsyncWebClient) -> None:
    root = fake.add_message("D123", im_message("hello"))
    await client.assistant_threads_setStatus(
        channel_id="D123",
        thread_ts=root["ts"],
        status="is thinking...",
        loading_messages=["Reading", "Writing"],
    )
    assert fake.status("D123", root["ts"]) == "is thinking..."
    assert fake.last_call("assistant.threads.setStatus").params["loading_messages"] == [
        "Reading",
        "Writing",
    ]

    await client.chat_postMessage(channel="D123", thread_ts=root["ts"], text="answer")
    assert fake.status("D123", root["ts"]) is None  # a reply clears it, as in Slack

    await client.assistant_threads_setStatus(channel_id="D123", thread_ts=root["ts"], status="")
    assert fake.status_history("D123", root["ts"]) == ["is thinking...", ""]

    prompts = [{"title": "Summarize", "message": "Summarize this channel"}]
    fake.agent_view = False  # a thread's prompts belong to the legacy assistant view
    await client.assistant_threads_setSuggestedPrompts(
        channel_id="D123", thread_ts=root["ts"], prompts=prompts, title="Try:"
    )
    assert fake.suggested_prompts("D123", root["ts"]) == {"title": "Try:", "prompts": prompts}


async def test_streaming_trio(fake: FakeSlack, client: AsyncWebClient) -> None:
    root = fake.add_message("C123", message_event("long question"))

    with pytest.raises(SlackApiError) as exc:
        await client.chat_startStream(channel="C123", thread_ts=root["ts"], markdown_text="x")
    assert error_of(exc) == "missing_recipient_user_id"
    with pytest.raises(SlackApiError) as exc:
        await client.chat_startStream(
            channel="C123", thread_ts=root["ts"], recipient_user_id=USER_ID, markdown_text="x"
        )
    assert error_of(exc) == "missing_recipient_team_id"

    started = await client.chat_startStream(
        channel="C123",
        thread_ts=root["ts"],
        recipient_user_id=USER_ID,
        recipient_team_id=TEAM_ID,
        markdown_text="Hello",
    )
    ts = started["ts"]
    await client.chat_appendStream(channel="C123", ts=ts, markdown_text=", **world**")
    assert fake.message("C123", ts)["text"] == "Hello, **world**"  # visible while streaming

    with pytest.raises(SlackApiError) as exc:
        await client.chat_appendStream(channel="C123", ts=ts, markdown_text="y" * 12_001)
    assert error_of(exc) == "msg_too_long"
    await client.chat_appendStream(channel="C123", ts=ts, markdown_text="!" * 12_000)

    await client.chat_stopStream(channel="C123", ts=ts)
    stream = fake.stream("C123", ts)
    assert stream.state == "completed"
    assert stream.text == "Hello, **world**" + "!" * 12_000
    assert fake.thread("C123", root["ts"])[-1]["ts"] == ts

    with pytest.raises(SlackApiError) as exc:
        await client.chat_appendStream(channel="C123", ts=ts, markdown_text="late")
    assert error_of(exc) == "message_not_in_streaming_state"

    # DMs need no recipient; an expired stream refuses appends.
    dm_root = fake.add_message("D123", im_message("hi"))
    dm = await client.chat_startStream(channel="D123", thread_ts=dm_root["ts"])
    fake.expire_stream("D123", dm["ts"])
    with pytest.raises(SlackApiError) as exc:
        await client.chat_stopStream(channel="D123", ts=dm["ts"], markdown_text="bye")
    assert error_of(exc) == "message_not_in_streaming_state"


async def test_blocks_attachments_and_chunks_are_not_emulated(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    root = fake.add_message("D123", im_message("go"))
    chunks = [{"type": "markdown_text", "text": "hi"}]
    with pytest.raises(SlackApiError) as exc:
        await client.chat_startStream(channel="D123", thread_ts=root["ts"], chunks=chunks)
    assert error_of(exc) == "invalid_arguments"
    assert fake.streams() == []
    with pytest.raises(SlackApiError) as exc:
        await client.chat_postMessage(channel="D123", text="x", blocks=[FEEDBACK_BLOCK])
    assert "blocks is not emulated" in str(exc.value.response["response_metadata"])
    with pytest.raises(SlackApiError) as exc:
        await client.chat_postMessage(channel="D123", text="x", attachments=[{"text": "a"}])
    assert error_of(exc) == "invalid_arguments"
    assert fake.messages("D123") == [root]


async def test_rate_limit_is_honoured_by_the_retry_handler(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.rate_limit("chat.postMessage", retry_after=0)
    with pytest.raises(SlackApiError) as exc:  # slack_sdk does not retry 429 by default
        await client.chat_postMessage(channel="C123", text="hi")
    assert exc.value.response.status_code == 429
    assert exc.value.response.headers["Retry-After"] == "0"
    assert error_of(exc) == "ratelimited"

    fake.rate_limit("chat.postMessage", retry_after=0)
    patient = AsyncWebClient(
        base_url=fake.api_url,
        token=fake.bot_token,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    resp = await patient.chat_postMessage(channel="C123", text="hi")

    assert resp["ok"] is True
    assert [c.status for c in fake.calls("chat.postMessage")] == [429, 429, 200]
    assert len(fake.messages("C123")) == 1

    fake.fail_next("chat.update", "ratelimited", status=429, retry_after=30)
    fake.fail_next("*", "fatal_error")
    with pytest.raises(SlackApiError) as exc:
        await client.auth_test()
    assert error_of(exc) == "fatal_error"


# --------------------------------------------------------------------------- files and events


async def test_private_file_needs_the_bot_token(fake: FakeSlack) -> None:
    file = fake.add_file(TEAM_ID, "notes v2.txt", "hello file", "text/plain")
    assert file["url_private"].startswith(fake.base_url + f"/files-pri/{TEAM_ID}-F")
    assert file["url_private_download"].endswith("/download/notes%20v2.txt")
    assert file["size"] == len("hello file")
    other = fake.add_workspace("T2", bot_token="xoxb-team-two")

    async with aiohttp.ClientSession() as session:
        auth = {"Authorization": f"Bearer {fake.bot_token}"}
        async with session.get(file["url_private_download"], headers=auth) as resp:
            assert (resp.status, resp.content_type) == (200, "text/plain")
            assert await resp.read() == b"hello file"
        async with session.get(file["url_private"]) as resp:
            assert (resp.status, resp.content_type) == (200, "text/html")
            assert "Sign in to Slack" in await resp.text()
        for token in ("xoxb-wrong", other.bot_token):  # another team's token is no good either
            headers = {"Authorization": f"Bearer {token}"}
            async with session.get(file["url_private"], headers=headers) as resp:
                assert resp.content_type == "text/html"

    assert [(d.authorization_present, d.authorized) for d in fake.downloads] == [
        (True, True),
        (False, False),
        (True, False),
        (True, False),
    ]


def test_event_builders_have_slacks_shapes() -> None:
    ts = new_ts()
    mention = app_mention(f"<@{BOT_USER_ID}> what's <b> & up?", ts=ts)
    assert mention["event_ts"] == ts and len(ts.split(".")[1]) == 6
    section = mention["blocks"][0]["elements"][0]["elements"]
    assert section == [
        {"type": "user", "user_id": BOT_USER_ID},
        {"type": "text", "text": " what's <b> & up?"},
    ]
    reply = message_event("more", thread_ts=ts)
    assert (reply["thread_ts"], reply["channel_type"]) == (ts, "channel")
    assert im_message("x")["channel_type"] == "im"
    shared = file_share_message([{"id": "F1"}], "see file")
    assert (shared["subtype"], shared["files"]) == ("file_share", [{"id": "F1"}])
    assert bot_message("x")["subtype"] == "bot_message"
    assert "subtype" not in bot_message("x", user="U0OTHERBOT")
    changed = message_changed("new", previous_text="old")
    assert changed["message"]["text"] == "new" and changed["hidden"] is True
    assert app_home_opened(tab="home")["view"]["type"] == "home"
    elements = rich_text_blocks("<https://x.io|X> <#C1|gen> <!here>")[0]["elements"][0]
    assert elements["elements"][::2] == [
        {"type": "link", "url": "https://x.io", "text": "X"},
        {"type": "channel", "channel_id": "C1"},
        {"type": "broadcast", "range": "here"},
    ]
    expected = "v0=" + hmac.new(b"s", b"v0:1:{}", hashlib.sha256).hexdigest()
    assert sign("s", "{}", 1) == expected


# --------------------------------------------------------------------------- a real bolt app


@dataclass
class BoltServer:
    app: AsyncApp
    url: str
    seen_headers: list[dict[str, str]] = field(default_factory=list)


@pytest.fixture
async def bolt(fake: FakeSlack) -> AsyncIterator[BoltServer]:
    web_client = AsyncWebClient(base_url=fake.api_url, token=fake.bot_token)
    app = AsyncApp(signing_secret=SECRET, client=web_client)  # token= too would log a warning

    async def on_mention(event: dict[str, Any], say: AsyncSay) -> None:
        await say(text=f"you said: {event['text']}", thread_ts=event.get("thread_ts", event["ts"]))

    async def on_ask(ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]) -> None:
        await ack()
        await respond(text=f"answer to {command['text']}", response_type="in_channel")

    app.event("app_mention")(on_mention)
    app.command("/ask")(on_ask)

    server = BoltServer(app=app, url="")

    async def handle(request: web.Request) -> web.Response:
        server.seen_headers.append(dict(request.headers))
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    web_app = web.Application()
    web_app.router.add_post("/slack/events", handle)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    yield server
    await runner.cleanup()


async def test_bolt_app_replies_in_the_thread(fake: FakeSlack, bolt: BoltServer) -> None:
    root = fake.add_message("C123", message_event("first"))
    event = app_mention(f"<@{BOT_USER_ID}> summarize", thread_ts=root["ts"])

    status, _ = await fake.deliver_event(bolt.url, SECRET, event, event_id="Ev0001")

    assert status == 200
    call = await fake.wait_for_call("chat.postMessage")
    assert call.ok
    assert call.params["thread_ts"] == root["ts"]  # the root's ts, not the mention's
    assert call.params["channel"] == "C123"
    assert fake.calls("auth.test")  # bolt's single-team authorization, on the fake too
    assert [m["text"] for m in fake.thread("C123", root["ts"])] == [
        "first",
        event["text"],
        f"you said: {event['text']}",
    ]
    assert fake.deliveries[-1].payload["authorizations"][0]["user_id"] == BOT_USER_ID

    status, _ = await fake.deliver_event(
        bolt.url, SECRET, event, event_id="Ev0001", retry_num=1, retry_reason="http_timeout"
    )
    assert status == 200
    assert bolt.seen_headers[-1]["X-Slack-Retry-Num"] == "1"
    assert bolt.seen_headers[-1]["X-Slack-Retry-Reason"] == "http_timeout"


async def test_bolt_rejects_bad_signatures(fake: FakeSlack, bolt: BoltServer) -> None:
    status, _ = await fake.deliver_event(bolt.url, "not-the-secret", app_mention())
    assert status == 401
    stale = int(time.time()) - 6 * 60
    status, _ = await fake.deliver_event(bolt.url, SECRET, app_mention(), timestamp=stale)
    assert status == 401
    assert not fake.calls("chat.postMessage")


async def test_bolt_slash_command_responds_via_response_url(
    fake: FakeSlack, bolt: BoltServer
) -> None:
    status, _ = await fake.deliver_command(bolt.url, SECRET, "/ask", "life?")

    assert status == 200
    sent = fake.deliveries[-1].payload
    assert sent["response_url"].startswith(fake.base_url + "/response/")
    assert sent["trigger_id"]
    posts = await fake.wait_for(lambda: fake.responses(sent["response_url"]))
    assert posts[0].body["text"] == "answer to life?"
    assert posts[0].body["response_type"] == "in_channel"


async def test_bolt_over_socket_mode(fake: FakeSlack) -> None:
    web_client = AsyncWebClient(base_url=fake.api_url, token=fake.bot_token)
    app = AsyncApp(signing_secret=SECRET, client=web_client)  # token= too would log a warning
    home_events: list[str | None] = []
    retry_headers: list[tuple[str, str]] = []

    async def record_retry(
        req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        if num := req.headers.get("x-slack-retry-num"):  # events only: commands are not retried
            retry_headers.append((num[0], req.headers["x-slack-retry-reason"][0]))
        return await next()

    async def on_mention(event: dict[str, Any], say: AsyncSay) -> None:
        await say(text="pong", thread_ts=event["ts"])

    async def on_home(body: dict[str, Any]) -> None:
        home_events.append(body.get("event_id"))

    app.middleware(record_retry)
    app.event("app_mention")(on_mention)
    app.event("app_home_opened")(on_home)
    handler = AsyncSocketModeHandler(app, app_token=fake.app_token)
    await handler.connect_async()  # type: ignore[no-untyped-call]
    try:
        await fake.wait_for_socket()
        event = app_mention(f"<@{BOT_USER_ID}> ping")
        ack = await fake.deliver_socket_event(event)
        assert ack.message["envelope_id"] == ack.envelope_id
        call = await fake.wait_for_call("chat.postMessage")
        assert call.params["thread_ts"] == event["ts"]
        await fake.deliver_socket_event(
            app_home_opened(), event_id="EvHOME", retry_attempt=1, retry_reason="timeout"
        )
        await fake.wait_for(lambda: home_events)
        assert home_events == ["EvHOME"]
        # Bolt turns Socket Mode's retry_attempt into X-Slack-Retry-Num, "0" on a FIRST delivery:
        # an adapter must test the number, not the header's presence.
        assert retry_headers == [("0", ""), ("1", "timeout")]
        assert fake.last_call("apps.connections.open").auth == "app"
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
