"""MCP servers (``BOT_MCP_CONFIG``) through the real path: ``build_core`` with the real model
client over the fake OpenRouter, a real stdio MCP server (``tests/mcp_servers/notes.py``, a
child process the bot starts) and a real Streamable HTTP MCP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from bench._shared import free_port
from bot.approvals import DENIED_TO_MODEL, UNKNOWN, describe_arguments
from bot.core import Core
from bot.mcp_config import McpConfigError, parse_mcp_config
from bot.reply import ApprovalRequest
from bot.settings import ConfigError, load_settings
from bot.wiring import build_core, open_services
from tests.conftest import make_settings
from tests.fakes.openrouter import FakeOpenRouter, RecordedRequest, TextReply, ToolCallReply
from tests.helpers import RecordingReply, eventually, message

NOTES = str(Path(__file__).parent / "mcp_servers" / "notes.py")


def stdio_server(**extra: Any) -> dict[str, Any]:
    return {"command": sys.executable, "args": [NOTES], **extra}


def write_config(tmp_path: Path, servers: dict[str, Any]) -> str:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": servers}))
    return str(path)


def tool_names(request: RecordedRequest) -> list[str]:
    assert request.body is not None
    return sorted(t["function"]["name"] for t in request.body.get("tools", []))


def tool_output(request: RecordedRequest) -> str:
    assert request.body is not None
    return str(request.body["messages"][-1]["content"])


Start = Callable[..., Awaitable[Core]]


@pytest.fixture
async def openrouter() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter() as fake:
        yield fake


@pytest.fixture
async def start(tmp_path: Path, openrouter: FakeOpenRouter) -> AsyncIterator[Start]:
    async with AsyncExitStack() as stack:

        async def factory(servers: dict[str, Any], **values: Any) -> Core:
            settings = make_settings(
                tmp_path,
                OPENROUTER_API_KEY=openrouter.api_key,
                OPENROUTER_BASE_URL=openrouter.base_url,
                BOT_MCP_CONFIG=write_config(tmp_path, servers),
                **values,
            )
            services = await stack.enter_async_context(open_services(settings))
            core = await build_core(services)
            stack.push_async_callback(core.close)
            return core

        yield factory


async def ask(core: Core, text: str = "question") -> tuple[Any, RecordingReply]:
    reply = RecordingReply()
    result = await core.handle(message(text), reply)
    return result, reply


# --------------------------------------------------------------------------- config


def test_config_parses_both_transports_and_expands_variables() -> None:
    text = json.dumps(
        {
            "mcpServers": {
                "notes": {"command": "python", "args": ["n.py"], "env": {"K": "${SECRET}"}},
                "web": {
                    "url": "http://127.0.0.1:1/mcp",
                    "headers": {"Authorization": "Bearer ${TOKEN}"},
                    "blocked_tools": ["x"],
                    "timeout": 5,
                    "channels": ["C1"],
                },
            }
        }
    )
    config = parse_mcp_config(text, {"SECRET": "s3", "TOKEN": "t0k"})
    notes, web = config.servers
    assert notes.transport == "stdio" and notes.env == {"K": "s3"} and notes.timeout == 30
    assert web.transport == "http" and web.headers == {"Authorization": "Bearer t0k"}
    assert web.serves("test:T1:C1") and not web.serves("test:T1:C2")
    assert not web.offers("x") and web.offers("y")
    assert config.secrets == ()  # values this short are not masked (they would mask words)


def test_tokens_from_variables_are_masked_in_logs(
    tmp_cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKETS_TOKEN", "tok-123456")
    headers = {"Authorization": "Bearer ${TICKETS_TOKEN}"}
    write_config(tmp_cwd, {"t": {"url": "http://127.0.0.1:1/mcp", "headers": headers}})
    assert "tok-123456" in load_settings().secrets


@pytest.mark.parametrize(
    ("servers", "expected"),
    [
        ({"a": {"url": "http://h/mcp", "timeout": -1}}, "server 'a', key 'timeout'"),
        ({"a": {"command": "x", "colour": 1}}, "server 'a', key 'colour'"),
        ({"a": {}}, "server 'a', key 'command'"),
        ({"a": {"command": "x", "url": "http://h"}}, "server 'a', key 'command'"),
        ({"a": {"url": "ftp://h"}}, "server 'a', key 'url'"),
        ({"a": {"command": "x", "env": {"K": "${NOPE}"}}}, "server 'a', key 'env.K'"),
        ({"a": {"command": "x", "require_approval": "sometimes"}}, "key 'require_approval"),
        ({"a b": {"command": "x"}}, "server 'a b'"),
    ],
)
def test_bad_config_names_server_and_key(servers: dict[str, Any], expected: str) -> None:
    with pytest.raises(McpConfigError, match=expected.replace("(", r"\(")):
        parse_mcp_config(json.dumps({"mcpServers": servers}), {})


def test_bad_config_is_refused_at_start(tmp_path: Path, tmp_cwd: Path) -> None:
    path = write_config(tmp_path, {"notes": {"command": "x", "timeout": "soon"}})
    with pytest.raises(ConfigError, match=r"BOT_MCP_CONFIG .* server 'notes', key 'timeout'"):
        load_settings(BOT_MCP_CONFIG=path)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_settings(BOT_MCP_CONFIG=str(tmp_path / "broken.json"))


def test_mcp_json_in_working_directory_is_the_default(
    tmp_cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().mcp is None
    monkeypatch.setenv("NOTES_SECRET", "from-env")
    write_config(tmp_cwd, {"notes": stdio_server(env={"NOTES_SECRET": "${NOTES_SECRET}"})})
    config = load_settings().mcp
    assert config is not None and config.servers[0].env == {"NOTES_SECRET": "from-env"}


# --------------------------------------------------------------------------- stdio


async def test_stdio_tool_listed_called_and_its_result_reaches_the_model(
    start: Start, openrouter: FakeOpenRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTES_SECRET", "s3cr3t-from-env")
    openrouter.enqueue(
        ToolCallReply.single("lookup_note", {"topic": "deploys"}, id="call_1"),
        TextReply("Fridays are fine."),
    )
    core = await start({"notes": stdio_server(env={"NOTES_SECRET": "${NOTES_SECRET}"})})

    result, reply = await ask(core, "Can we deploy on Friday?")

    assert result.outcome == "answered", reply.calls
    assert reply.text == "Fridays are fine."
    first, second = openrouter.chat_requests
    assert {"lookup_note", "delete_note", "crash", "slow"} <= set(tool_names(first))
    assert "get_weather" in tool_names(first)
    output = tool_output(second)
    assert "Note on deploys" in output and "s3cr3t-from-env" in output
    assert reply.of("progress") == [
        "in_progress: Calling notes.lookup_note",
        "complete: Calling notes.lookup_note",
    ]


async def test_allowed_and_blocked_tools(start: Start, openrouter: FakeOpenRouter) -> None:
    openrouter.enqueue(
        ToolCallReply.single("delete_note", {"topic": "x"}, id="call_1"),
        TextReply("I cannot delete it."),
    )
    core = await start(
        {
            "notes": stdio_server(
                allowed_tools=["lookup_note", "delete_note", "slow"], blocked_tools=["delete_note"]
            )
        }
    )
    result, _ = await ask(core)
    assert result.outcome == "answered"
    first, second = openrouter.chat_requests
    names = tool_names(first)
    assert "lookup_note" in names and "slow" in names
    assert "delete_note" not in names and "crash" not in names
    assert "deleted" not in tool_output(second)  # the blocked tool never ran


async def approval_asked(reply: RecordingReply) -> ApprovalRequest:
    await asyncio.wait_for(reply.asked.wait(), 10)
    reply.asked.clear()
    return reply.approvals[-1]


async def test_approval_approved_runs_the_tool_and_the_turn_goes_on(
    start: Start, openrouter: FakeOpenRouter
) -> None:
    openrouter.enqueue(
        ToolCallReply.single("delete_note", {"topic": "deploys"}, id="call_1"),
        TextReply("Deleted the note."),
    )
    core = await start({"notes": stdio_server(require_approval=["delete_note"])})
    reply = RecordingReply()
    turn = asyncio.create_task(core.handle(message("delete the deploys note", user="U1"), reply))

    request = await approval_asked(reply)
    assert request.tool == "notes.delete_note" and request.arguments == 'topic="deploys"'
    assert request.requester == "U1"
    assert len(openrouter.chat_requests) == 1  # paused: nothing ran, nothing was asked
    decided = await core.decide_approval(
        message("", user="U1"), approval_id=request.id, approve=True
    )
    assert decided.status == "decided" and "Approved" in decided.text
    result = await asyncio.wait_for(turn, 10)

    assert result.outcome == "answered", reply.calls
    assert reply.text == "Deleted the note."
    assert "deleted deploys" in tool_output(openrouter.chat_requests[1])
    assert reply.of("approval") == ['May I run `notes.delete_note` with topic="deploys"?']
    assert reply.of("approval_closed") == ["approved by U1"]
    assert 'bot_approvals_total{verdict="approved"} 1.0' in core.metrics.render().decode()
    assert reply.of("progress") == [
        "in_progress: Calling notes.delete_note",
        "complete: Calling notes.delete_note",
    ]
    # The history holds the call and its output, not the pause: the next turn replays it.
    openrouter.enqueue(TextReply("ok"))
    await ask(core, "thanks")
    messages = openrouter.chat_requests[-1].body["messages"]  # type: ignore[index]
    assert [m["role"] for m in messages[-4:]] == ["assistant", "tool", "assistant", "user"]


async def test_approval_denied_tells_the_model(start: Start, openrouter: FakeOpenRouter) -> None:
    openrouter.enqueue(
        ToolCallReply.single("delete_note", {"topic": "deploys"}, id="call_1"),
        TextReply("I did not delete it."),
    )
    core = await start({"notes": stdio_server(require_approval="always")})
    reply = RecordingReply()
    turn = asyncio.create_task(core.handle(message("delete it"), reply))
    request = await approval_asked(reply)
    decided = await core.decide_approval(message(""), approval_id=request.id, approve=False)
    assert decided.text == "Denied: `notes.delete_note` will not run."
    result = await asyncio.wait_for(turn, 10)

    assert result.outcome == "answered" and reply.text == "I did not delete it."
    output = tool_output(openrouter.chat_requests[1])
    assert output == DENIED_TO_MODEL and "deleted" not in output
    assert reply.of("approval_closed") == ["denied by U1"]
    assert reply.of("progress")[-1] == "error: Calling notes.delete_note"
    again = await core.decide_approval(message(""), approval_id=request.id, approve=True)
    assert again.status == "already" and "already denied by <@U1>" in again.text


async def test_approval_ignored_cancels_the_turn_with_a_line(
    start: Start, openrouter: FakeOpenRouter
) -> None:
    openrouter.enqueue(ToolCallReply.single("delete_note", {"topic": "x"}, id="call_1"))
    # The wait is not the turn's time: a turn limit shorter than the wait does not fire.
    core = await start(
        {"notes": stdio_server(require_approval="always")},
        BOT_APPROVAL_TIMEOUT="1.5",
        BOT_TURN_TIMEOUT="1",
    )
    reply = RecordingReply()
    result = await asyncio.wait_for(core.handle(message("delete it"), reply), 20)

    assert result.outcome != "answered"
    assert reply.failure is not None
    assert "Nobody answered the request to run `notes.delete_note`" in reply.failure
    assert reply.of("approval_closed") == ["expired by None"]
    assert len(openrouter.chat_requests) == 1  # the tool never ran, the model was not asked
    late = await core.decide_approval(message(""), approval_id=reply.approvals[0].id, approve=True)
    assert late.status == "already" and late.text == UNKNOWN
    # Nothing of the cancelled turn is history.
    openrouter.enqueue(TextReply("ok"))
    await ask(core, "next")
    assert [m["role"] for m in openrouter.chat_requests[-1].body["messages"]] == [  # type: ignore[index]
        "system",
        "user",
    ]


async def test_approval_clicked_by_someone_else_is_refused_but_an_admin_may(
    start: Start, openrouter: FakeOpenRouter
) -> None:
    openrouter.enqueue(
        ToolCallReply.single("delete_note", {"topic": "x"}, id="call_1"), TextReply("Done.")
    )
    core = await start(
        {"notes": stdio_server(require_approval=["delete_note"])}, BOT_ADMINS="test:UADMIN"
    )
    reply = RecordingReply()
    turn = asyncio.create_task(core.handle(message("delete it", user="U1"), reply))
    request = await approval_asked(reply)

    other = await core.decide_approval(message("", user="U2"), approval_id=request.id, approve=True)
    assert other.status == "not_yours"
    assert other.text == "Only <@U1> or an admin can answer this request."
    await asyncio.sleep(0.3)
    assert not turn.done() and len(openrouter.chat_requests) == 1
    admin = await core.decide_approval(
        message("", user="UADMIN"), approval_id=request.id, approve=True
    )
    assert admin.status == "decided"
    result = await asyncio.wait_for(turn, 10)
    assert result.outcome == "answered" and reply.of("approval_closed") == ["approved by UADMIN"]
    unknown = await core.decide_approval(message(""), approval_id="nope", approve=True)
    assert unknown.status == "unknown"


async def test_a_click_after_the_turn_stopped_finds_nobody_waiting(
    start: Start, openrouter: FakeOpenRouter
) -> None:
    openrouter.enqueue(ToolCallReply.single("delete_note", {"topic": "x"}, id="call_1"))
    core = await start({"notes": stdio_server(require_approval="always")})
    reply = RecordingReply()
    turn = asyncio.create_task(core.handle(message("delete it", user="U1"), reply))
    request = await approval_asked(reply)
    turn.cancel()  # Ctrl-C in the terminal, or a shutdown
    with contextlib.suppress(asyncio.CancelledError):
        await turn
    late = await core.decide_approval(message("", user="U1"), approval_id=request.id, approve=True)
    assert late.text == UNKNOWN
    assert len(openrouter.chat_requests) == 1  # nothing ran


async def test_a_turn_waiting_for_approval_gives_its_slot_to_others(
    start: Start, openrouter: FakeOpenRouter
) -> None:
    """Unanswered questions must not stop the bot: with one model slot, another conversation
    is answered while a turn waits for its approval, which then takes a slot back."""
    openrouter.enqueue(
        ToolCallReply.single("delete_note", {"topic": "x"}, id="call_1"),
        TextReply("Meanwhile, hello."),
        TextReply("Deleted."),
    )
    core = await start(
        {"notes": stdio_server(require_approval="always")}, BOT_MAX_CONCURRENT_TURNS="1"
    )
    reply = RecordingReply()
    paused = asyncio.create_task(core.handle(message("delete x", user="U1"), reply))
    request = await approval_asked(reply)
    assert core.running == 0 and core.waiting == 0

    other = await asyncio.wait_for(
        core.handle(message("hi", conversation="test:T1:C2:200.1"), RecordingReply()), 10
    )
    assert other.outcome == "answered" and other.text == "Meanwhile, hello."
    await core.decide_approval(message("", user="U1"), approval_id=request.id, approve=True)
    result = await asyncio.wait_for(paused, 10)
    assert result.outcome == "answered" and reply.text == "Deleted."
    assert core.running == 0 and core.waiting == 0


async def test_without_admins_nobody_else_may_answer(
    start: Start, openrouter: FakeOpenRouter
) -> None:
    """With no ``BOT_ADMINS`` everyone may change settings, but an approval stays the asker's."""
    openrouter.enqueue(
        ToolCallReply.single("delete_note", {"topic": "x"}, id="call_1"), TextReply("Done.")
    )
    core = await start({"notes": stdio_server(require_approval="always")})
    reply = RecordingReply()
    turn = asyncio.create_task(core.handle(message("delete it", user="U1"), reply))
    request = await approval_asked(reply)
    other = await core.decide_approval(message("", user="U2"), approval_id=request.id, approve=True)
    assert other.status == "not_yours"
    await core.decide_approval(message("", user="U1"), approval_id=request.id, approve=True)
    assert (await asyncio.wait_for(turn, 10)).outcome == "answered"


def test_arguments_are_shortened_and_secrets_masked() -> None:
    cases = {
        '{"topic": "deploys"}': 'topic="deploys"',
        '{"api_key": "sk-123", "n": 3}': "api_key=•••, n=3",
        '{"Authorization": "Bearer x", "q": "a"}': 'Authorization=•••, q="a"',
        '{"password": "hunter2"}': "password=•••",
        '{"query": "token is abcdef123456"}': 'query="token is •••"',
        '{"nested": {"a": [1, 2]}}': 'nested={"a": [1, 2]}',
        '{"text": "line one\\nline two"}': 'text="line one line two"',
        "": "",
        "not json": '"not json"',
    }
    for arguments, shown in cases.items():
        assert describe_arguments(arguments, ["abcdef123456"]) == shown, arguments
    long = describe_arguments('{"body": "' + "x" * 500 + '"}')
    assert len(long) < 100 and long.endswith("…")
    many = describe_arguments("{" + ", ".join(f'"k{i}": "{"v" * 70}"' for i in range(20)) + "}")
    assert len(many) <= 400 and many.endswith("…")


async def test_server_crashing_mid_call_gives_the_model_an_error(
    start: Start, openrouter: FakeOpenRouter
) -> None:
    openrouter.enqueue(
        ToolCallReply.single("crash", {}, id="call_1"),
        TextReply("The notes server is down."),
    )
    core = await start({"notes": stdio_server(timeout=5)})

    result, reply = await ask(core)
    assert result.outcome == "answered", reply.calls
    assert reply.text == "The notes server is down."
    output = tool_output(openrouter.chat_requests[1])
    assert "error" in output.lower() and len(output) < 500
    assert reply.of("progress")[-1] == "error: Calling notes.crash"
    # What follows (left out, then started again): tests/test_mcp_live.py


async def test_slow_tool_hits_its_timeout(start: Start, openrouter: FakeOpenRouter) -> None:
    openrouter.enqueue(
        ToolCallReply.single("slow", {"seconds": 10}, id="call_1"),
        TextReply("It took too long."),
    )
    core = await start({"notes": stdio_server(timeout=0.5)})
    loop = asyncio.get_running_loop()
    began = loop.time()
    result, reply = await ask(core)
    assert result.outcome == "answered", reply.calls
    assert loop.time() - began < 8
    output = tool_output(openrouter.chat_requests[1]).lower()
    assert "error" in output and "done" not in output


async def test_server_that_fails_to_start_is_a_log_line_and_the_bot_answers(
    start: Start, openrouter: FakeOpenRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    openrouter.enqueue(TextReply("Hello."))
    core = await start({"broken": {"command": "/nonexistent/mcp-server"}, "notes": stdio_server()})
    result, reply = await ask(core)
    assert result.outcome == "answered" and reply.text == "Hello."
    names = tool_names(openrouter.chat_requests[0])
    assert "lookup_note" in names
    lines = [r.getMessage() for r in caplog.records if "MCP server" in r.getMessage()]
    assert len(lines) == 1 and "MCP server broken did not start" in lines[0], lines


async def test_channels_limit_where_a_server_is_offered(
    start: Start, openrouter: FakeOpenRouter
) -> None:
    openrouter.enqueue(TextReply("one"), TextReply("two"))
    core = await start({"notes": stdio_server(channels=["C2"])})
    await ask(core)  # in test:T1:C1
    reply = RecordingReply()
    await core.handle(message("q", conversation="test:T1:C2:200.1"), reply)
    first, second = openrouter.chat_requests
    assert "lookup_note" not in tool_names(first)
    assert "lookup_note" in tool_names(second)


async def test_no_orphan_process_after_shutdown(tmp_path: Path, openrouter: FakeOpenRouter) -> None:
    pid_file = tmp_path / "notes.pid"
    settings = make_settings(
        tmp_path,
        OPENROUTER_API_KEY=openrouter.api_key,
        OPENROUTER_BASE_URL=openrouter.base_url,
        BOT_MCP_CONFIG=write_config(
            tmp_path, {"notes": stdio_server(env={"NOTES_PID_FILE": str(pid_file)})}
        ),
    )
    async with open_services(settings) as services:
        core = await build_core(services)
        pid = int(pid_file.read_text())
        os.kill(pid, 0)  # running
        await core.close()

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    assert await eventually(gone), f"the MCP server (pid {pid}) outlived the bot"


# --------------------------------------------------------------------------- HTTP


@pytest.fixture
async def http_server() -> AsyncIterator[tuple[str, list[str]]]:
    """A Streamable HTTP MCP server on 127.0.0.1 that wants a bearer token; yields its URL
    and the Authorization headers it saw."""
    import uvicorn
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("tickets")

    @server.tool()
    def search_issues(query: str) -> str:
        """Search the issue tracker."""
        return f"2 issues match {query}: #12 login fails, #15 slow search"

    seen: list[str] = []
    app = server.streamable_http_app()

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            auth = dict(scope["headers"]).get(b"authorization", b"").decode()
            seen.append(auth)
            if auth != "Bearer tok-123":
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await app(scope, receive, send)

    port = free_port()
    # The bot holds a subscriptions/listen stream open: shutdown waits for it at most 1 s.
    config = uvicorn.Config(
        guarded, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
    )
    web = uvicorn.Server(config)
    task = asyncio.create_task(web.serve())
    await eventually(lambda: web.started)
    try:
        yield f"http://127.0.0.1:{port}/mcp", seen
    finally:
        web.should_exit = True
        await task


async def test_http_server_with_bearer_token_from_the_environment(
    start: Start,
    openrouter: FakeOpenRouter,
    http_server: tuple[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, seen = http_server
    monkeypatch.setenv("TICKETS_TOKEN", "tok-123")
    openrouter.enqueue(
        ToolCallReply.single("search_issues", {"query": "login"}, id="call_1"),
        TextReply("Issue #12."),
    )
    core = await start(
        {"tickets": {"url": url, "headers": {"Authorization": "Bearer ${TICKETS_TOKEN}"}}}
    )
    result, reply = await ask(core)
    assert result.outcome == "answered", reply.calls
    assert "search_issues" in tool_names(openrouter.chat_requests[0])
    assert "#12 login fails" in tool_output(openrouter.chat_requests[1])
    assert reply.of("progress")[0] == "in_progress: Calling tickets.search_issues"
    assert seen and all(h == "Bearer tok-123" for h in seen)


# --------------------------------------------------------------------------- the command line


async def test_check_lists_servers_and_their_tools(
    tmp_path: Path, openrouter: FakeOpenRouter
) -> None:
    from tests.test_console import bot_env, run_bot

    write_config(
        tmp_path,
        {
            "notes": stdio_server(blocked_tools=["crash"], require_approval=["delete_note"]),
            "broken": {"command": "/nonexistent/mcp-server", "channels": ["C1"]},
        },
    )
    code, out, err = await run_bot(["check"], bot_env(tmp_path, openrouter), tmp_path)
    tools = "notes.lookup_note, notes.delete_note, notes.slow, notes.learn_tool, notes.forget_tool"
    assert f"mcp:       ok: notes (stdio, {sys.executable}): 5 tools ({tools}); every channel" in (
        out
    ), out + err
    assert "calls need approval: delete_note" in out
    assert "mcp:       PROBLEM: broken (/nonexistent/mcp-server): did not start" in out
    assert code == 2 and "1 problem found" in out


async def test_bad_config_stops_the_bot_at_start(tmp_path: Path) -> None:
    from tests.test_console import bot_env, run_bot

    write_config(tmp_path, {"notes": {"command": "x", "timeout": 0}})
    code, out, err = await run_bot(["chat"], bot_env(tmp_path), tmp_path, "hi\n")
    assert code == 2, out + err
    assert "server 'notes', key 'timeout'" in out + err and "Traceback" not in out + err
