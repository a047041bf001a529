"""A small MCP server for the tests: over stdio (``python notes.py``), or Streamable HTTP on
127.0.0.1 (``python notes.py http PORT``), as a process a test can kill and start again.

Tools: ``lookup_note`` (a fixed answer, with the value of ``NOTES_SECRET`` from its env),
``delete_note`` (for block lists), ``crash`` (the process dies mid-call), ``slow`` (sleeps),
and ``learn_tool`` / ``forget_tool``, which add or remove a tool and send
``notifications/tools/list_changed`` (to the clients listening: ``subscriptions/listen``).
Writes its pid to ``$NOTES_PID_FILE`` when set, so a test can check it is gone after shutdown.
With ``NOTES_NO_LISTEN=1`` it does not serve ``subscriptions/listen`` (as older servers);
``NOTES_START_DELAY`` seconds it waits before serving (a server slow to start).
"""

from __future__ import annotations

import os
import sys
import time

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("notes", subscriptions=False if os.environ.get("NOTES_NO_LISTEN") else None)


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


@server.tool()
async def learn_tool(name: str, ctx: Context) -> str:
    """Add a tool of that name (it answers with its name), and tell the clients."""

    def learned() -> str:
        return f"{name} says hello"

    server.add_tool(learned, name=name, description=f"The {name} tool.")
    await ctx.notify_tools_changed()
    return f"learned {name}"


@server.tool()
async def forget_tool(name: str, ctx: Context) -> str:
    """Remove the tool of that name, and tell the clients."""
    server.remove_tool(name)
    await ctx.notify_tools_changed()
    return f"forgot {name}"


if __name__ == "__main__":
    pid_file = os.environ.get("NOTES_PID_FILE")
    if pid_file:
        with open(pid_file, "w") as f:
            f.write(str(os.getpid()))
    time.sleep(float(os.environ.get("NOTES_START_DELAY", "0")))  # a server slow to start
    if sys.argv[1:2] == ["http"]:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")
