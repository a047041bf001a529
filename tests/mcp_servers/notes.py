"""A small MCP server over stdio for the tests (``python -m tests.mcp_servers.notes``).

Tools: ``lookup_note`` (a fixed answer, with the value of ``NOTES_SECRET`` from its env),
``delete_note`` (for block lists), ``crash`` (the process dies mid-call) and ``slow`` (sleeps).
Writes its pid to ``$NOTES_PID_FILE`` when set, so a test can check it is gone after shutdown.
"""

from __future__ import annotations

import os
import time

from mcp.server.mcpserver import MCPServer

server = MCPServer("notes")


@server.tool()
def lookup_note(topic: str) -> str:
    """Look up the team's note on a topic."""
    return f"Note on {topic}: ship on Fridays is fine. secret={os.environ.get('NOTES_SECRET', '')}"


@server.tool()
def delete_note(topic: str) -> str:
    """Delete the team's note on a topic."""
    return f"deleted {topic}"


@server.tool()
def crash() -> str:
    """Crash the server."""
    os._exit(3)


@server.tool()
async def slow(seconds: float) -> str:
    """Wait, then answer."""
    import asyncio

    await asyncio.sleep(seconds)
    return "done"


if __name__ == "__main__":
    pid_file = os.environ.get("NOTES_PID_FILE")
    if pid_file:
        with open(pid_file, "w") as f:
            f.write(str(os.getpid()))
    time.sleep(0)
    server.run("stdio")
