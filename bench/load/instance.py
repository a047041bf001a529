"""``python -m bench.load.instance CONFIG``: one bot process of several, started by a world that
leads them (``--scenario instances``, ``bench.load.world.instances``).

The same bot process as ``bench.load.host`` (``serve``: the real core and adapters, measuring
itself over each block), with the pipes the other way round: the world is the parent, and
this process's stdin and stdout are its link to it. What the bot process prints (its
description, its log counts) goes to stderr instead, each line marked with the process's
name, so that the stdout pipe carries protocol messages only.

CONFIG is JSON: ``{"name": "bot 1", "model_client": "openrouter", "event_loop": "uvloop",
"connection_limit": 0}``. A ``connection_limit`` other than 0 replaces aiohttp's default cap
of 100 connections per session (``TCPConnector(limit=100)``) in this process: the bot's
sessions (the model client's, Slack's Web API client's) take aiohttp's default, which caps
model calls in flight at 100 per process whatever BOT_MAX_CONCURRENT_TURNS says; lifting it
shows what the CPU and the store allow beyond that cap.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from typing import Any, TextIO


class Marked(io.TextIOBase):
    """A text stream that starts each line with a mark and writes it to another stream."""

    def __init__(self, out: TextIO, mark: str) -> None:
        self._out = out
        self._mark = mark
        self._at_line_start = True

    def write(self, text: str) -> int:
        for piece in text.splitlines(keepends=True):
            if self._at_line_start:
                self._out.write(self._mark)
            self._out.write(piece)
            self._at_line_start = piece.endswith("\n")
        return len(text)

    def flush(self) -> None:
        self._out.flush()


async def _serve(config: dict[str, Any], link_fd: int) -> bool:
    from bench.load.host import serve
    from bench.load.protocol import World, stdin_reader

    loop = asyncio.get_running_loop()
    reader = await stdin_reader()
    pipe = os.fdopen(link_fd, "wb", buffering=0)
    transport, _ = await loop.connect_write_pipe(asyncio.Protocol, pipe)
    try:
        result = await serve(World(reader, transport.write), model_client=config["model_client"])
    finally:
        transport.close()
    return bool(result.done.get("ok"))


def lift_connection_cap(limit: int) -> None:
    """Every aiohttp connector made without a ``limit`` gets this one instead of 100."""
    import aiohttp

    made = aiohttp.TCPConnector.__init__

    def init(self: aiohttp.TCPConnector, *args: Any, limit: int = limit, **kwargs: Any) -> None:
        made(self, *args, limit=limit, **kwargs)

    aiohttp.TCPConnector.__init__ = init  # type: ignore[method-assign]


def main() -> None:
    config = json.loads(sys.argv[1])
    # The link keeps the real stdout; fd 1 (and print) goes to stderr from here on.
    link_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = Marked(sys.stderr, f"[{config['name']}] ")

    from bot.settings import prepare_library_environment

    prepare_library_environment()  # before the agent stack is imported: litellm offline, quiet
    if config.get("connection_limit"):
        lift_connection_cap(int(config["connection_limit"]))
    if config["event_loop"] == "uvloop":
        import uvloop

        ok = uvloop.run(_serve(config, link_fd))
    else:
        ok = asyncio.run(_serve(config, link_fd))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
