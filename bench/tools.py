"""Tools: the CPU one tool round trip costs the bot, by kind of tool, and what a turn waiting for
an approval costs while it waits.

Each turn is the whole core path (``Core.handle``: claim, admission, history, the agent, the
record) over the default model client: the model calls one tool, then answers ``--tokens``
tokens one a chunk. The tool is the bot's own (``get_current_time``, no network), an MCP
server's over stdio (``tests/mcp_servers/notes.py`` as the bot's child process), or the same
server over Streamable HTTP (its own process on 127.0.0.1). The fake OpenRouter runs on a loop
of its own thread and the MCP servers in their own processes, so the figure is the bot's
thread alone (``time.thread_time``; SQLite's writer thread is not in it either, alike for
all). A waiting approval is one turn paused for ``--wait`` seconds: its CPU on this thread
per minute of waiting (it reads its decision from the store every 0.5 s).

    python -m bench.tools [--turns 30] [--tokens 50] [--wait 10]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.settings import prepare_library_environment

prepare_library_environment()

from agents import set_tracing_disabled  # noqa: E402

from bench._shared import free_port  # noqa: E402
from bench.reasoning import FakeInAThread  # noqa: E402
from bot.core import Core  # noqa: E402
from bot.wiring import build_core, open_services  # noqa: E402
from tests.conftest import make_settings  # noqa: E402
from tests.fakes.openrouter import TextReply, ToolCallReply  # noqa: E402
from tests.helpers import RecordingReply, message  # noqa: E402

NOTES = str(Path(__file__).resolve().parent.parent / "tests" / "mcp_servers" / "notes.py")
_turns = itertools.count(1)
TARGET_EXTRA_MS = 10.0
"""What an MCP round trip may cost over the bot's own tool, per turn."""
TARGET_WAIT_MS_PER_MIN = 100.0
"""What a turn waiting for its approval may cost per minute."""


async def http_server(port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, NOTES, "http", str(port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return proc
    raise RuntimeError("the MCP HTTP server did not start")


async def turn_cpu(core: Core, server: FakeInAThread, call: ToolCallReply, words: str) -> float:
    server.enqueue_many(call, TextReply(words, chunks=len(words.split())))
    reply = RecordingReply()
    start = time.thread_time()
    turn = next(_turns)
    result = await core.handle(message("question", conversation=f"test:T1:C1:{turn}.1"), reply)
    cpu = time.thread_time() - start
    assert result.outcome == "answered", reply.calls
    assert reply.text == words, "the answer must arrive whole"
    return cpu


async def measure_kind(
    name: str, servers: dict[str, Any], call: ToolCallReply, server: FakeInAThread, args: Any
) -> list[float]:
    words = "".join(f"w{i:03d} " for i in range(args.tokens)).rstrip()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "mcp.json"
        config.write_text(json.dumps({"mcpServers": servers}))
        settings = make_settings(
            Path(tmp),
            OPENROUTER_API_KEY=server.fake.api_key,
            OPENROUTER_BASE_URL=server.fake.base_url,
            BOT_MCP_CONFIG=str(config) if servers else "",
            BOT_USER_RATE_LIMIT=0,
        )
        async with open_services(settings) as services:
            core = await build_core(services)
            try:
                for _ in range(args.warmup):
                    await turn_cpu(core, server, call, words)
                return [await turn_cpu(core, server, call, words) for _ in range(args.turns)]
            finally:
                await core.close()


async def waiting_cpu(server: FakeInAThread, args: Any) -> float:
    """CPU ms on this thread per minute of a turn waiting for its approval."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "mcp.json"
        servers = {"notes": {"command": sys.executable, "args": [NOTES]}}
        servers["notes"]["require_approval"] = ["delete_note"]
        config.write_text(json.dumps({"mcpServers": servers}))
        settings = make_settings(
            Path(tmp),
            OPENROUTER_API_KEY=server.fake.api_key,
            OPENROUTER_BASE_URL=server.fake.base_url,
            BOT_MCP_CONFIG=str(config),
        )
        async with open_services(settings) as services:
            core = await build_core(services)
            try:
                server.enqueue_many(
                    ToolCallReply.single("delete_note", {"topic": "x"}), TextReply("Done.")
                )
                reply = RecordingReply()
                turn = asyncio.create_task(core.handle(message("delete x", user="U1"), reply))
                await asyncio.wait_for(reply.asked.wait(), 30)
                await asyncio.sleep(1)  # past the asking itself
                start = time.thread_time()
                await asyncio.sleep(args.wait)
                cpu = time.thread_time() - start
                await core.decide_approval(
                    message("", user="U1"), approval_id=reply.approvals[0].id, approve=True
                )
                assert (await turn).outcome == "answered"
            finally:
                await core.close()
    return cpu * 1000 * 60 / float(args.wait)


def line(name: str, values: list[float], baseline: float | None) -> str:
    median = statistics.median(values) * 1000
    p90 = statistics.quantiles(values, n=10)[-1] * 1000
    extra = ""
    if baseline is not None:
        over = median - baseline
        verdict = "met" if over <= TARGET_EXTRA_MS else "NOT met"
        extra = f"; {over:+.1f} ms over the bot's own (target ≤{TARGET_EXTRA_MS:.0f} ms: {verdict})"
    return f"{name:22} median {median:6.1f} ms CPU per turn (p90 {p90:.1f} ms){extra}"


async def run(args: argparse.Namespace, server: FakeInAThread) -> None:
    port = free_port()
    http = await http_server(port)
    stdio = {"command": sys.executable, "args": [NOTES]}
    kinds: list[tuple[str, dict[str, Any], Callable[[], ToolCallReply]]] = [
        ("bot's own tool", {}, lambda: ToolCallReply.single("get_current_time", {"place": "UTC"})),
        (
            "MCP tool over stdio",
            {"notes": stdio},
            lambda: ToolCallReply.single("lookup_note", {"topic": "x"}),
        ),
        (
            "MCP tool over HTTP",
            {"notes": {"url": f"http://127.0.0.1:{port}/mcp"}},
            lambda: ToolCallReply.single("lookup_note", {"topic": "x"}),
        ),
    ]
    try:
        baseline: float | None = None
        print(f"{args.turns} turns each: one tool call, then {args.tokens} tokens a chunk each")
        for name, servers, call in kinds:
            values = await measure_kind(name, servers, call(), server, args)
            print(line(name, values, baseline))
            if baseline is None:
                baseline = statistics.median(values) * 1000
        per_minute = await waiting_cpu(server, args)
        verdict = "met" if per_minute <= TARGET_WAIT_MS_PER_MIN else "NOT met"
        print(
            f"{'waiting for approval':22} {per_minute:6.1f} ms CPU per minute of waiting "
            f"(target ≤{TARGET_WAIT_MS_PER_MIN:.0f} ms: {verdict})"
        )
    finally:
        http.kill()
        await http.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--wait", type=float, default=10.0, help="seconds of approval wait")
    args = parser.parse_args()
    set_tracing_disabled(True)
    server = FakeInAThread()
    with server:
        asyncio.run(run(args, server))


if __name__ == "__main__":
    main()
