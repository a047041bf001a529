"""MCP servers while the bot runs: a server that drops is reconnected in the background (and
left out of the turns meanwhile), ``tools/list_changed`` refreshes its tools, and ``/help``
and ``python -m bot check`` list the tools of a channel. Real servers
(``tests/mcp_servers/notes.py``: stdio children, and Streamable HTTP processes the tests kill
and start again on the same port), the real model client over the fake OpenRouter."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import bot.mcp
from bench._shared import free_port
from bot.core import Core
from bot.mcp import McpHub
from tests import test_mcp
from tests.fakes.openrouter import FakeOpenRouter, TextReply, ToolCallReply
from tests.helpers import RecordingReply, command, eventually, message
from tests.test_mcp import (
    NOTES,
    Start,
    ask,
    stdio_server,
    tool_names,
    tool_output,
    write_config,
)

openrouter = test_mcp.openrouter
start = test_mcp.start


@pytest.fixture(autouse=True)
def quick_reconnects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bot.mcp, "RECONNECT_FIRST_S", 0.05)
    monkeypatch.setattr(bot.mcp, "RECONNECT_MAX_S", 0.4)


def hub_of(core: Core) -> McpHub:
    hub = core._stack.result().mcp
    assert hub is not None
    return hub


def pid_of(path: Path) -> int:
    return int(path.read_text())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class NotesOverHttp:
    """``notes.py http PORT``: a Streamable HTTP MCP server in its own process, killed and
    started again on the same port as a restarted server would be."""

    def __init__(self, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.env = {**os.environ, **env}
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, NOTES, "http", str(self.port),
            env=self.env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await eventually(self._accepts, timeout=20)

    async def _accepts(self) -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        writer.close()
        return True

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self.proc = None


@pytest.fixture
async def notes_http() -> AsyncIterator[NotesOverHttp]:
    server = NotesOverHttp()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


# --------------------------------------------------------------------------- reconnect


async def test_http_server_restarted_is_reconnected_and_meanwhile_left_out(
    start: Start,
    openrouter: FakeOpenRouter,
    notes_http: NotesOverHttp,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bot.mcp")
    openrouter.enqueue(
        ToolCallReply.single("lookup_note", {"topic": "a"}, id="call_1"),
        TextReply("first"),
        TextReply("second, without notes"),
        ToolCallReply.single("lookup_note", {"topic": "c"}, id="call_3"),
        TextReply("third"),
    )
    core = await start({"notes": {"url": notes_http.url, "timeout": 5}})
    hub = hub_of(core)
    result, reply = await ask(core)
    assert result.outcome == "answered" and reply.text == "first", reply.calls
    assert "Note on a" in tool_output(openrouter.chat_requests[1])

    await notes_http.stop()
    await eventually(lambda: not hub.status["notes"].started)
    result, reply = await ask(core, "again")
    assert result.outcome == "answered" and reply.text == "second, without notes"
    names = tool_names(openrouter.chat_requests[2])
    assert "lookup_note" not in names and "get_weather" in names

    await notes_http.start()  # the same port: the bot was not restarted
    await eventually(lambda: hub.status["notes"].started, timeout=10)
    result, reply = await ask(core, "and now?")
    assert result.outcome == "answered" and reply.text == "third", reply.calls
    assert "lookup_note" in tool_names(openrouter.chat_requests[3])
    assert "Note on c" in tool_output(openrouter.chat_requests[4])
    assert reply.of("progress")[0] == "in_progress: Calling notes.lookup_note"

    lines = [r.getMessage() for r in caplog.records if r.name == "bot.mcp"]
    dropped = [line for line in lines if "dropped" in line]
    back = [line for line in lines if "is back" in line]
    assert len(dropped) == 1 and "MCP server notes dropped" in dropped[0], lines
    assert back == ["MCP server notes is back with 6 tools"], lines
    noise = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("openai.agents") and r.levelno >= logging.WARNING
    ]
    assert not noise, noise


async def test_a_turn_paused_across_a_drop_goes_on_without_the_server(
    start: Start, openrouter: FakeOpenRouter, notes_http: NotesOverHttp
) -> None:
    """The turn's next model step lists its servers' tools again: one that dropped meanwhile
    (its reconnect under way) gives none, rather than failing the turn."""
    openrouter.enqueue(
        ToolCallReply.single("delete_note", {"topic": "a"}, id="call_1"),
        TextReply("The notes service is down; nothing was deleted."),
    )
    core = await start(
        {"notes": {"url": notes_http.url, "timeout": 5, "require_approval": ["delete_note"]}}
    )
    hub = hub_of(core)
    reply = RecordingReply()
    turn = asyncio.create_task(core.handle(message("delete a", user="U1"), reply))
    await asyncio.wait_for(reply.asked.wait(), 10)
    await notes_http.stop()
    await eventually(lambda: not hub.status["notes"].started)
    server = hub._servers["notes"]
    await eventually(lambda: getattr(server, "session", None) is None)  # reconnecting

    await core.decide_approval(
        message("", user="U1"), approval_id=reply.approvals[0].id, approve=True
    )
    result = await asyncio.wait_for(turn, 20)
    assert result.outcome == "answered", reply.calls
    assert reply.text == "The notes service is down; nothing was deleted."
    assert reply.of("progress")[-1] == "error: Calling notes.delete_note"
    assert "delete_note" not in tool_names(openrouter.chat_requests[1])


async def test_server_without_listen_stream_is_checked_after_a_failed_call(
    start: Start, openrouter: FakeOpenRouter
) -> None:
    """An older server (no ``subscriptions/listen``): the drop shows when a call to it fails
    (a short error for the model), then the hub finds it gone and reconnects."""
    server = NotesOverHttp(NOTES_NO_LISTEN="1")
    await server.start()
    try:
        openrouter.enqueue(
            ToolCallReply.single("lookup_note", {"topic": "a"}, id="call_1"),
            TextReply("down"),
            ToolCallReply.single("lookup_note", {"topic": "b"}, id="call_2"),
            TextReply("back"),
        )
        core = await start({"notes": {"url": server.url, "timeout": 3}})
        hub = hub_of(core)
        await server.stop()
        result, reply = await ask(core)
        assert result.outcome == "answered" and reply.text == "down", reply.calls
        output = tool_output(openrouter.chat_requests[1])
        assert "error" in output.lower() and len(output) < 500
        await eventually(lambda: not hub.status["notes"].started, timeout=10)
        await server.start()
        await eventually(lambda: hub.status["notes"].started, timeout=10)
        result, reply = await ask(core, "again")
        assert reply.text == "back" and "Note on b" in tool_output(openrouter.chat_requests[3])
    finally:
        await server.stop()


async def test_stdio_server_that_dies_is_started_again(
    start: Start, openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    pid_file = tmp_path / "notes.pid"
    openrouter.enqueue(
        ToolCallReply.single("crash", {}, id="call_1"),
        TextReply("The notes server is down."),
        ToolCallReply.single("lookup_note", {"topic": "x"}, id="call_2"),
        TextReply("It is back."),
    )
    core = await start({"notes": stdio_server(env={"NOTES_PID_FILE": str(pid_file)})})
    hub = hub_of(core)
    first = pid_of(pid_file)
    result, reply = await ask(core)
    assert result.outcome == "answered" and reply.text == "The notes server is down."
    assert reply.of("progress")[-1] == "error: Calling notes.crash"

    await eventually(lambda: pid_of(pid_file) != first and hub.status["notes"].started, timeout=10)
    assert not alive(first)
    result, reply = await ask(core, "again")
    assert reply.text == "It is back." and "Note on x" in tool_output(openrouter.chat_requests[3])


async def test_shutdown_stops_reconnecting_and_leaves_no_process(
    start: Start, openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    pid_file = tmp_path / "notes.pid"
    core = await start(
        {
            "notes": stdio_server(env={"NOTES_PID_FILE": str(pid_file)}),
            "gone": {"url": "http://127.0.0.1:9/mcp", "timeout": 1},  # retried in the background
        }
    )
    hub = hub_of(core)
    await asyncio.sleep(0.3)  # a few reconnect attempts of "gone"
    pid = pid_of(pid_file)
    await core.close()
    left = [t for t in asyncio.all_tasks() if (t.get_name() or "").startswith("mcp-")]
    assert not left and not hub.tool_servers
    assert await eventually(lambda: not alive(pid)), "the stdio server outlived the bot"


# --------------------------------------------------------------------------- list_changed


async def test_list_changed_offers_the_new_tool_on_the_next_turn(
    start: Start, openrouter: FakeOpenRouter
) -> None:
    openrouter.enqueue(
        ToolCallReply.single("learn_tool", {"name": "weather_alerts"}, id="call_1"),
        TextReply("learned"),
        ToolCallReply.single("weather_alerts", {}, id="call_2"),
        TextReply("used it"),
        ToolCallReply.single("forget_tool", {"name": "weather_alerts"}, id="call_3"),
        TextReply("forgot"),
        TextReply("without it"),
    )
    core = await start({"notes": stdio_server()})
    hub = hub_of(core)
    await ask(core, "learn")
    await eventually(lambda: "weather_alerts" in hub.tool_servers)
    result, reply = await ask(core, "use it")
    assert result.outcome == "answered" and reply.text == "used it", reply.calls
    assert "weather_alerts" in tool_names(openrouter.chat_requests[2])
    assert "weather_alerts says hello" in tool_output(openrouter.chat_requests[3])
    assert reply.of("progress")[0] == "in_progress: Calling notes.weather_alerts"

    await ask(core, "forget")
    await eventually(lambda: "weather_alerts" not in hub.tool_servers)
    await ask(core, "and now")
    assert "weather_alerts" not in tool_names(openrouter.chat_requests[6])
    assert "lookup_note" in tool_names(openrouter.chat_requests[6])


async def test_list_changed_over_http(
    start: Start, openrouter: FakeOpenRouter, notes_http: NotesOverHttp
) -> None:
    openrouter.enqueue(
        ToolCallReply.single("learn_tool", {"name": "alerts"}, id="call_1"),
        TextReply("learned"),
        TextReply("next turn"),
    )
    core = await start({"notes": {"url": notes_http.url}})
    await ask(core, "learn")
    await eventually(lambda: "alerts" in hub_of(core).tool_servers)
    await ask(core, "next")
    assert "alerts" in tool_names(openrouter.chat_requests[2])


async def test_changed_tools_that_take_a_name_in_use_leave_the_server_out(
    start: Start, openrouter: FakeOpenRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.mcp")
    openrouter.enqueue(
        ToolCallReply.single("learn_tool", {"name": "get_weather"}, id="call_1"),
        TextReply("learned"),
        TextReply("without notes"),
        ToolCallReply.single("forget_tool", {"name": "get_weather"}, id="call_2"),
    )
    core = await start({"notes": stdio_server()})
    hub = hub_of(core)
    await ask(core, "learn")
    await eventually(lambda: not hub.status["notes"].started)
    assert "MCP server notes not used: tool names already taken: get_weather" in caplog.text
    assert "collision" not in caplog.text  # the turn in progress never saw the clash
    await ask(core, "next")
    names = tool_names(openrouter.chat_requests[2])
    assert "lookup_note" not in names and names.count("get_weather") == 1


# --------------------------------------------------------------------------- /help and check


async def test_of_two_servers_with_one_tool_name_the_earlier_in_the_file_keeps_it(
    start: Start,
) -> None:
    """Servers start in parallel; their tools are offered in the file's order, so which one a
    clash leaves out does not depend on which connected first."""
    core = await start(
        {
            "slow": stdio_server(env={"NOTES_START_DELAY": "1.5"}, allowed_tools=["lookup_note"]),
            "fast": stdio_server(allowed_tools=["lookup_note", "slow"]),
        }
    )
    hub = hub_of(core)
    assert hub.status["slow"].started and hub.tool_servers["lookup_note"] == "slow"
    assert not hub.status["fast"].started
    assert hub.status["fast"].problem == "tool names already taken: lookup_note"


async def test_help_lists_the_tools_of_the_channel(start: Start) -> None:
    core = await start(
        {
            "notes": stdio_server(channels=["C2"], allowed_tools=["lookup_note", "slow"]),
            "tickets": {"url": "http://127.0.0.1:9/mcp", "timeout": 1},  # down
        }
    )

    async def help_in(channel: str) -> str:
        reply = RecordingReply()
        await core.handle(command("help", conversation=f"test:T1:{channel}:100.1"), reply)
        return reply.text

    here = await help_in("C1")
    tools = here.split("**Tools**")[1]
    assert "• Mine: `get_weather`, `get_current_time`, `read_document`" in tools
    assert "• `tickets`: unavailable right now" in tools
    assert "notes" not in tools  # not a server of this channel

    there = (await help_in("C2")).split("**Tools**")[1]
    assert "• `notes`: `notes.lookup_note`, `notes.slow`" in there
    assert "• `tickets`: unavailable right now" in there


async def test_help_in_the_terminal_chat_lists_mcp_tools(
    openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    from tests.test_console import bot_env

    config = write_config(
        tmp_path,
        {
            "notes": stdio_server(allowed_tools=["lookup_note"]),
            "elsewhere": stdio_server(channels=["C9"]),
        },
    )
    env = bot_env(tmp_path, openrouter, BOT_MCP_CONFIG=config)
    openrouter.enqueue(TextReply("Hello."))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "chat",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    # A question first, answered once the agent stack (which knows the tools) has loaded.
    proc.stdin.write(b"hi\n")
    assert b"Hello." in await asyncio.wait_for(proc.stdout.readline(), 60)
    out_b, err_b = await asyncio.wait_for(proc.communicate(b"/help\n"), 60)
    out, err = out_b.decode(), err_b.decode()
    assert proc.returncode == 0, err
    tools = out.split("Tools")[1]
    assert "• Mine: get_weather, get_current_time, read_document" in tools, out
    assert "• notes: notes.lookup_note" in tools and "elsewhere" not in tools, out + err


async def test_check_names_each_servers_tools_and_channels(
    openrouter: FakeOpenRouter, tmp_path: Path
) -> None:
    from tests.test_console import bot_env, run_bot

    write_config(tmp_path, {"notes": stdio_server(allowed_tools=["slow"], channels=["C1", "C2"])})
    code, out, err = await run_bot(["check"], bot_env(tmp_path, openrouter), tmp_path)
    assert code == 0, out + err
    assert (
        f"mcp:       ok: notes (stdio, {sys.executable}): 1 tool (notes.slow); channels C1, C2"
        in (out)
    ), out


def test_help_right_after_start_says_the_tools_are_not_known_yet() -> None:
    from bot.commands import ToolsHere, help_text

    text = help_text("discord", ToolsHere(own=(), loading=True))
    assert text.endswith("**Tools**\n• Still starting: ask `/help` again in a few seconds.")
    assert "**Tools**" not in help_text("discord")  # Slack's App Home: no channel
