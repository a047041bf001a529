"""The fake Slack's AI-app surfaces, driven by the real clients: assistant thread titles and
prompts (agent view vs the legacy assistant view), views.publish / views.open with their
Block Kit checks and trigger ids, and a real bolt app taking a Home click and a modal
submission, over HTTP and Socket Mode."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import (
    USER_ID,
    FakeSlack,
    assistant_thread_context_changed,
    assistant_thread_started,
    im_message,
)
from tests.test_fake_slack import error_of

SECRET = "test-signing-secret-abcdef0123456789"
PROMPTS = [{"title": "Weather", "message": "Weather in Oslo?"}]
BUTTON = {
    "type": "button",
    "action_id": "edit",
    "value": "C1",
    "text": {"type": "plain_text", "text": "Edit"},
}
HOME = {
    "type": "home",
    "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "Hello"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}, "accessory": BUTTON},
        {"type": "divider"},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "small"}]},
    ],
}
OPTIONS = [
    {"text": {"type": "plain_text", "text": t}, "value": t} for t in ("optional", "required")
]
MODAL = {
    "type": "modal",
    "callback_id": "settings",
    "private_metadata": "slack:T1:C1",
    "title": {"type": "plain_text", "text": "Settings"},
    "submit": {"type": "plain_text", "text": "Save"},
    "blocks": [
        {
            "type": "input",
            "block_id": "model",
            "label": {"type": "plain_text", "text": "Model"},
            "optional": True,
            "element": {"type": "plain_text_input", "action_id": "value", "initial_value": "a/b"},
        },
        {
            "type": "input",
            "block_id": "mention",
            "label": {"type": "plain_text", "text": "Mention"},
            "element": {
                "type": "static_select",
                "action_id": "value",
                "options": OPTIONS,
                "initial_option": OPTIONS[0],
            },
        },
        {
            "type": "input",
            "block_id": "channel",
            "label": {"type": "plain_text", "text": "Channel"},
            "element": {
                "type": "conversations_select",
                "action_id": "value",
                "filter": {"include": ["public", "private"]},
            },
        },
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


async def test_prompts_with_a_thread_do_nothing_in_the_agent_view(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    root = fake.add_message("D123", im_message("hi"))
    await client.assistant_threads_setSuggestedPrompts(
        channel_id="D123", thread_ts=root["ts"], prompts=PROMPTS
    )
    assert fake.suggested_prompts("D123", root["ts"]) is None  # ok, and silently nothing
    await client.assistant_threads_setSuggestedPrompts(channel_id="D123", prompts=PROMPTS)
    assert fake.suggested_prompts("D123") == {"title": None, "prompts": PROMPTS}
    with pytest.raises(SlackApiError) as exc:
        await client.assistant_threads_setSuggestedPrompts(channel_id="D123", prompts=PROMPTS * 5)
    assert error_of(exc) == "invalid_arguments"


async def test_set_title_needs_channel_thread_and_title(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    root = fake.add_message("D123", im_message("hi"))
    await client.assistant_threads_setTitle(channel_id="D123", thread_ts=root["ts"], title="Hi")
    assert fake.titles("D123", root["ts"]) == ["Hi"]
    with pytest.raises(SlackApiError) as exc:
        await client.assistant_threads_setTitle(channel_id="D123", thread_ts=root["ts"], title="")
    assert error_of(exc) == "invalid_arguments"


def test_assistant_thread_event_builders_have_slacks_shapes() -> None:
    started = assistant_thread_started(thread_ts="1.2", context_channel="C9")
    assert started["assistant_thread"] == {
        "user_id": USER_ID,
        "context": {"channel_id": "C9", "team_id": "T1", "enterprise_id": None},
        "channel_id": "D123",
        "thread_ts": "1.2",
    }
    changed = assistant_thread_context_changed(thread_ts="1.2", context_channel="C7")
    assert changed["type"] == "assistant_thread_context_changed"
    assert changed["assistant_thread"]["context"]["channel_id"] == "C7"


async def test_views_publish_checks_blocks_and_keeps_the_view_id(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    first = await client.views_publish(user_id=USER_ID, view=HOME)
    second = await client.views_publish(user_id=USER_ID, view=HOME)
    assert first["view"]["id"] == second["view"]["id"]  # one Home per user, updated
    assert fake.home(USER_ID) == second["view"] and len(fake.homes_published(USER_ID)) == 2

    long_text = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    bad = [
        ({**HOME, "type": "modal"}, "/view/type"),
        ({**HOME, "blocks": [long_text]}, "/view/blocks/0/text/text"),
        ({**HOME, "blocks": [{"type": "table"}]}, "/view/blocks/0/type"),
        ({**HOME, "blocks": [{"type": "divider"}] * 101}, "/view/blocks"),
        ({**HOME, "blocks": [{**long_text, "block_id": "b"}] * 2}, "/view/blocks/0/text/text"),
        ({**HOME, "blocks": [{"type": "divider", "block_id": "b"}] * 2}, "/view/blocks/1/block_id"),
        (
            {**HOME, "blocks": [{"type": "actions", "elements": [BUTTON, BUTTON]}]},
            "/view/blocks/0/elements/1/action_id",
        ),
    ]
    for view, pointer in bad:
        with pytest.raises(SlackApiError) as exc:
            await client.views_publish(user_id=USER_ID, view=view)
        assert error_of(exc) == "invalid_arguments"
        assert f"[json-pointer:{pointer}]" in str(exc.value.response["response_metadata"])
    assert len(fake.homes_published(USER_ID)) == 2


async def test_views_open_takes_a_fresh_trigger_once(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    with pytest.raises(SlackApiError) as exc:
        await client.views_open(trigger_id="1.2.made-up", view=MODAL)
    assert error_of(exc) == "invalid_trigger_id"
    await client.views_publish(user_id=USER_ID, view=HOME)
    trigger = fake.home_click(USER_ID, "edit")["trigger_id"]
    with pytest.raises(SlackApiError) as exc:
        await client.views_open(trigger_id=trigger, view={**MODAL, "title": None})
    assert error_of(exc) == "invalid_arguments"
    opened = await client.views_open(trigger_id=trigger, view=MODAL)
    assert fake.modals() == [opened["view"]]
    with pytest.raises(SlackApiError) as exc:
        await client.views_open(trigger_id=trigger, view=MODAL)
    assert error_of(exc) == "exchanged_trigger_id"


async def _bolt_app(fake: FakeSlack, seen: list[dict[str, Any]]) -> AsyncApp:
    web_client = AsyncWebClient(base_url=fake.api_url, token=fake.bot_token)
    app = AsyncApp(signing_secret=SECRET, client=web_client)

    async def on_edit(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        seen.append(body)
        await client.views_open(trigger_id=body["trigger_id"], view=MODAL)

    async def on_submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        seen.append(body)
        model = view["state"]["values"]["model"]["value"]["value"]
        if model and " " in model:
            await ack(response_action="errors", errors={"model": "No spaces"})
        else:
            await ack()

    app.action("edit")(on_edit)
    app.view("settings")(on_submit)
    return app


async def test_a_bolt_app_takes_a_click_and_a_submission_over_http(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    seen: list[dict[str, Any]] = []
    app = await _bolt_app(fake, seen)

    async def handle(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    server = web.Application()
    server.router.add_post("/slack/events", handle)
    runner = web.AppRunner(server, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    try:
        await client.views_publish(user_id=USER_ID, view=HOME)
        status, _ = await fake.deliver_interaction(url, SECRET, fake.home_click(USER_ID, "edit"))
        assert status == 200
        [modal] = await fake.wait_for(fake.modals)
        assert seen[0]["actions"][0]["value"] == "C1"
        assert fake.deliveries[-1].kind == "interaction"

        with pytest.raises(ValueError, match="required input 'channel'"):
            fake.view_submission(modal["id"], USER_ID)
        bad = fake.view_submission(modal["id"], USER_ID, {"model": "a b", "channel": "C5"})
        status, body = await fake.deliver_interaction(url, SECRET, bad)
        assert (status, json.loads(body)) == (
            200,
            {"response_action": "errors", "errors": {"model": "No spaces"}},
        )
        values = bad["view"]["state"]["values"]
        assert values["mention"]["value"]["selected_option"] == OPTIONS[0]
        assert values["channel"]["value"] == {
            "type": "conversations_select",
            "selected_conversation": "C5",
        }
        good = fake.view_submission(modal["id"], USER_ID, {"channel": "C5", "model": None})
        status, body = await fake.deliver_interaction(url, SECRET, good)
        assert (status, body) == (200, "")
        assert good["view"]["state"]["values"]["model"]["value"]["value"] is None
        status, _ = await fake.deliver_interaction(url, "wrong-secret", good)
        assert status == 401
    finally:
        await runner.cleanup()
        if app.client.session is not None:
            await app.client.session.close()


async def test_a_bolt_app_answers_a_submission_in_the_socket_ack(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    seen: list[dict[str, Any]] = []
    app = await _bolt_app(fake, seen)
    handler = AsyncSocketModeHandler(app, app_token=fake.app_token)
    await handler.connect_async()  # type: ignore[no-untyped-call]
    try:
        await fake.wait_for_socket()
        await client.views_publish(user_id=USER_ID, view=HOME)
        await fake.deliver_socket_payload(fake.home_click(USER_ID, "edit"))
        [modal] = await fake.wait_for(fake.modals)
        bad = fake.view_submission(modal["id"], USER_ID, {"model": "a b", "channel": "C5"})
        ack = await fake.deliver_socket_payload(bad)
        assert ack.message["payload"] == {
            "response_action": "errors",
            "errors": {"model": "No spaces"},
        }
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
