"""The MCP servers of ``BOT_MCP_CONFIG`` at run time, through the Agents SDK's MCP support.

Imported only when MCP is configured (the ``mcp`` package costs ~0.5 s at import). The
servers start with the agent stack: stdio servers as child processes, HTTP servers as one
session each; each runs in its own worker task (the SDK's ``MCPServerManager``), so shutdown
closes it in the task that opened it and no child outlives the bot. A server that fails to
start is one log line; the bot answers without its tools. Tools are listed once (cached); a
call to a server that died gives the model the SDK's short tool error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from agents import Agent, RunContextWrapper
from agents.mcp import (
    MCPServer,
    MCPServerManager,
    MCPServerStdio,
    MCPServerStreamableHttp,
    create_static_tool_filter,
)
from mcp.client.subscriptions import ListenNotSupportedError, SubscriptionLost, listen
from mcp.shared.exceptions import MCPError as McpError
from mcp_types import PaginatedRequestParams

from bot.mcp_config import McpConfig, McpServerConfig
from bot.tools.failure import tool_failed

log = logging.getLogger("bot.mcp")
CONNECT_TIMEOUT_S = 30.0
CLEANUP_TIMEOUT_S = 5.0
MAX_TOOL_PAGES = 20
RECONNECT_FIRST_S = 1.0
RECONNECT_MAX_S = 60.0
"""A server that dropped is tried again after 1 s, then 2, 4 ... at most every minute."""


class _OurLineInstead(logging.Filter):
    """The SDK logs a failed start without the server's name; ``McpHub.start`` logs it with
    the name and the reason: one line, not two."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        # A server whose connection is already gone fails its cleanup too: the drop's line says it.
        return not text.startswith("Failed to connect MCP server") and (
            "error during cleanup of MCP server" not in text
        )


logging.getLogger("openai.agents").addFilter(_OurLineInstead())


@dataclass
class ServerStatus:
    """What ``python -m bot check`` says of one server."""

    config: McpServerConfig
    started: bool = False
    tools: list[str] = field(default_factory=list)
    problem: str = ""
    notes: list[str] = field(default_factory=list)


def mcp_tool_error(ctx: RunContextWrapper[Any], error: Exception) -> str:
    """What the model reads when an MCP tool call fails (the server died, timed out or said
    so): one short line, and the step shows as failed."""
    return tool_failed(ctx, f"The tool failed: {_short(error)}. Do not retry it now.")


class _ListsNothingWhileDown(MCPServer):
    """A turn lists its servers' tools again at each model step. One that started before its
    server dropped would fail there while the reconnect is under way (the SDK raises for a
    server without a session): it goes on without that server's tools instead, and a call the
    model still makes to one gets the tool-not-found answer."""

    async def list_tools(
        self, run_context: RunContextWrapper[Any] | None = None, agent: Any = None
    ) -> list[Any]:
        if getattr(self, "session", None) is None:
            log.info("MCP server %s is not connected: this step goes without its tools", self.name)
            return []
        return await super().list_tools(run_context, agent)  # type: ignore[safe-super]


class _Stdio(_ListsNothingWhileDown, MCPServerStdio):
    pass


class _Http(_ListsNothingWhileDown, MCPServerStreamableHttp):
    pass


def _make_server(config: McpServerConfig) -> MCPServer:
    tool_filter = create_static_tool_filter(
        allowed_tool_names=config.allowed_tools,
        blocked_tool_names=list(config.blocked_tools) or None,
    )
    # The SDK pauses the run at a call of these (an interruption); the turn asks the asker.
    approval = config.approval_tools
    require_approval: Any = (
        "always"
        if approval == "all"
        else {"always": {"tool_names": sorted(approval)}}
        if approval
        else None
    )
    if config.command is not None:
        stdio: Any = {"command": config.command, "args": list(config.args), "env": config.env}
        if config.cwd:
            stdio["cwd"] = config.cwd
        return _Stdio(
            stdio,
            name=config.name,
            cache_tools_list=True,
            client_session_timeout_seconds=config.timeout,
            tool_filter=tool_filter,
            require_approval=require_approval,
        )
    assert config.url is not None
    return _Http(
        {"url": config.url, "headers": dict(config.headers), "timeout": config.timeout},
        name=config.name,
        cache_tools_list=True,
        client_session_timeout_seconds=config.timeout,
        tool_filter=tool_filter,
        require_approval=require_approval,
    )


class McpHub:
    """The configured servers: started once, their tools listed once, an agent per set of
    servers a channel may use (the agent itself is built once; clones are cached)."""

    def __init__(self, config: McpConfig) -> None:
        self.config = config
        self.status: dict[str, ServerStatus] = {}
        self.tool_servers: dict[str, str] = {}
        """Tool name (as the model calls it) -> its server's name."""
        self._servers: dict[str, MCPServer] = {}
        self._links: dict[str, _Link] = {}
        self._agents: dict[tuple[str, ...], Agent[Any]] = {}
        self._reserved: frozenset[str] = frozenset()
        self._closing = False

    async def start(self, reserved: set[str] | frozenset[str] = frozenset()) -> None:
        """Start every server; never raises for a server's failure (it is logged).
        ``reserved``: the bot's own tool names, which a server's tool may not shadow."""
        for config in self.config.servers:
            status = self.status[config.name] = ServerStatus(config)
            approval = config.approval_tools
            if approval:
                status.notes.append(
                    "every call needs approval"
                    if approval == "all"
                    else f"calls need approval: {', '.join(sorted(approval))}"
                )
            self._servers[config.name] = _make_server(config)
        if not self._servers:
            return
        self._reserved = frozenset(reserved)
        for name, server in self._servers.items():
            self._links[name] = _Link(server, name)
            # Read by the session at each connect: list_changed reaches the hub on every era.
            server.message_handler = self._links[name].on_message  # type: ignore[attr-defined]
        listed = await asyncio.gather(
            *(self._connect(link, first=True) for link in self._links.values())
        )
        # Offered in the file's order, whichever connected first: of two servers with a tool
        # of the same name, the earlier one in the file keeps it.
        for link, tools in zip(self._links.values(), listed, strict=True):
            if tools is not None:
                self._offer(link, tools, first=True)
        for link in self._links.values():
            link.task = asyncio.create_task(self._supervise(link), name=f"mcp-{link.name}")

    async def _bring_up(self, link: _Link) -> bool:
        """Reconnect one server and offer its tools; False when it is not up."""
        tools = await self._connect(link)
        if tools is None:
            return False
        self._offer(link, tools, first=False)
        return True

    async def _connect(self, link: _Link, *, first: bool = False) -> list[str] | None:
        """Connect (or reconnect) one server: its tools' names, or None when it is not up.
        The first attempt logs its failure; the later ones, in the background, do not."""
        status = self.status[link.name]
        try:
            if first:
                await link.manager.connect_all()
            else:
                await link.manager.reconnect(failed_only=False)
            error = link.manager.errors.get(link.server)
        except Exception as exc:
            error = exc
        if error is not None or not link.manager.active_servers:
            reason = _short(error or RuntimeError("not connected"))
            if first or not link.was_up:
                status.problem = f"did not start ({reason})"
            if first:
                log.warning("MCP server %s did not start: %s", link.name, reason)
            return None
        link.connected = True
        try:
            tools = await asyncio.wait_for(link.server.list_tools(), status.config.timeout)
        except Exception as exc:
            status.problem = f"could not list its tools ({_short(exc)})"
            log.warning("MCP server %s could not list its tools: %s", link.name, _short(exc))
            return None
        return [tool.name for tool in tools]

    def _offer(self, link: _Link, tools: list[str], *, first: bool) -> None:
        """Offer a connected server's tools (a clash leaves it out until its list changes:
        ``_adopt`` logs it)."""
        if self._adopt(link, tools):
            verb = "started" if first or not link.was_up else "is back"
            log.info("MCP server %s %s with %d tools", link.name, verb, len(tools))
            link.was_up = True

    def _adopt(self, link: _Link, tools: list[str]) -> bool:
        """Offer ``tools`` as ``link``'s, unless one's name is taken (by one of the bot's own
        tools or another server's): then the server is not used until its list changes."""
        status = self.status[link.name]
        taken = self._reserved | {t for t, s in self.tool_servers.items() if s != link.name}
        clashes = sorted(t for t in tools if t in taken)
        self._forget_tools(link.name)
        if clashes:
            if status.problem != (problem := f"tool names already taken: {', '.join(clashes)}"):
                status.problem = problem
                log.warning(
                    "MCP server %s not used: tool names already taken: %s",
                    link.name,
                    ", ".join(clashes),
                )
            status.started = False
            return False
        status.problem = ""
        status.started = True
        status.tools = list(tools)
        for tool in tools:
            self.tool_servers[tool] = link.name
        return True

    def _forget_tools(self, name: str) -> None:
        for tool in [t for t, s in self.tool_servers.items() if s == name]:
            del self.tool_servers[tool]

    async def _supervise(self, link: _Link) -> None:
        """Keep one server up for the bot's life: watch its connection, refresh its tools
        when it says they changed, and reconnect with a backoff when it drops."""
        delay = RECONNECT_FIRST_S
        while not self._closing:
            if link.connected:
                reason = await self._watch(link)
                link.connected = False
                status = self.status[link.name]
                if status.started:
                    log.warning(
                        "MCP server %s dropped (%s); answering without its tools, reconnecting",
                        link.name,
                        reason,
                    )
                status.started = False
                status.problem = f"unavailable ({reason}); reconnecting"
                self._forget_tools(link.name)
                delay = RECONNECT_FIRST_S
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)
            if not self._closing and await self._bring_up(link):
                delay = RECONNECT_FIRST_S

    async def _watch(self, link: _Link) -> str:
        """Refresh the server's tools on each list_changed until its connection is lost;
        returns why it was lost."""
        lost = asyncio.create_task(self._until_lost(link))
        try:
            while True:
                changed = asyncio.create_task(link.changed.wait())
                await asyncio.wait({lost, changed}, return_when=asyncio.FIRST_COMPLETED)
                changed.cancel()
                if lost.done():
                    return lost.result()
                link.changed.clear()
                await self._refresh(link)
        finally:
            lost.cancel()
            with contextlib.suppress(BaseException):
                await lost

    async def _until_lost(self, link: _Link) -> str:
        """Returns when the server's connection is lost. A server of the current protocol
        is held to a ``subscriptions/listen`` stream (which also asks for its list_changed
        notifications): the stream breaks when the server goes. Older servers (no listen) are
        asked for their tools after a call to them failed."""
        session: Any = getattr(link.server, "session", None)
        if session is None:
            return "no session"
        try:
            async with listen(session, tools_list_changed=True) as subscription:
                async for _event in subscription:
                    pass  # the notification also reaches ``on_message``, which refreshes
            return "the server closed the connection"
        except SubscriptionLost:
            return "connection lost"
        except (ListenNotSupportedError, McpError):
            pass
        except Exception as exc:
            return _short(exc)
        while True:
            await link.suspect.wait()
            link.suspect.clear()
            try:
                await asyncio.wait_for(session.list_tools(), self.status[link.name].config.timeout)
            except Exception as exc:
                return _short(exc)

    async def _refresh(self, link: _Link) -> None:
        """The server said its tools changed: list them again (the next turn sees them).
        The new list is checked before the SDK's cache is cleared, so a turn in progress
        never sees a tool whose name is taken."""
        config = self.status[link.name].config
        try:
            listed = await asyncio.wait_for(self._list_raw(link), config.timeout)
            names = [name for name in listed if config.offers(name)]
            if not self._adopt(link, names):
                return
            link.server.invalidate_tools_cache()  # type: ignore[attr-defined]
            await asyncio.wait_for(link.server.list_tools(), config.timeout)
        except Exception as exc:
            log.warning(
                "MCP server %s could not list its changed tools: %s", link.name, _short(exc)
            )
            link.suspect.set()
            return
        log.info("MCP server %s changed its tools: %s", link.name, ", ".join(names) or "none")

    @staticmethod
    async def _list_raw(link: _Link) -> list[str]:
        """The server's tool names, asked of its session (the SDK's cache left as it is)."""
        session: Any = getattr(link.server, "session", None)
        if session is None:
            raise RuntimeError("not connected")
        names: list[str] = []
        cursor: str | None = None
        for _page in range(MAX_TOOL_PAGES):
            params = PaginatedRequestParams(cursor=cursor) if cursor else None
            result = await session.list_tools(params=params)
            names += [tool.name for tool in result.tools]
            cursor = result.next_cursor
            if not cursor:
                break
        return names

    def servers_for(self, channel: str) -> list[MCPServer]:
        """The servers whose tools ``channel`` is offered now (up, and serving it)."""
        return [
            self._servers[name]
            for name, status in self.status.items()
            if status.started and status.config.serves(channel)
        ]

    def tools_for(self, channel: str) -> dict[str, str]:
        """The MCP tools offered in ``channel`` now: tool name -> its server's name."""
        served = {s.name for s in self.servers_for(channel)}
        return {tool: server for tool, server in self.tool_servers.items() if server in served}

    def tools_by_server(self, channel: str) -> list[tuple[str, tuple[str, ...] | None]]:
        """Each server ``channel`` may use, with its tools offered now (None: it is down)."""
        return [
            (name, tuple(status.tools) if status.started else None)
            for name, status in self.status.items()
            if status.config.serves(channel)
        ]

    def agent_for(self, agent: Agent[Any], channel: str) -> Agent[Any]:
        """``agent`` with the servers ``channel`` may use and that are up (one clone per
        set, kept: a set comes back when its servers do)."""
        servers = self.servers_for(channel)
        key = tuple(server.name for server in servers)
        if not key:
            return agent
        cloned = self._agents.get(key)
        if cloned is None:
            cloned = self._agents[key] = agent.clone(
                mcp_servers=servers,
                mcp_config={**agent.mcp_config, "failure_error_function": self._tool_error},
            )
        return cloned

    def _tool_error(self, ctx: RunContextWrapper[Any], error: Exception) -> str:
        """``mcp_tool_error``, and a server that does not watch its connection by a stream is
        checked after a call to it failed."""
        server = self.tool_servers.get(getattr(ctx, "tool_name", ""))
        if server in self._links:
            self._links[server].suspect.set()
        return mcp_tool_error(ctx, error)

    async def close(self) -> None:
        """Stop the reconnect loops, then every server (stdio children included)."""
        self._closing = True
        tasks = [link.task for link in self._links.values() if link.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CLEANUP_TIMEOUT_S)
        for status in self.status.values():
            status.started = False
        self.tool_servers.clear()
        links = list(self._links.values())
        self._links.clear()
        results = await asyncio.gather(
            *(link.manager.cleanup_all() for link in links), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                log.warning("MCP servers did not stop cleanly: %s", _short(result))


class _Link:
    """One server's connection: its own manager (so it reconnects alone, in the manager's
    worker task that owns its transport) and the loop that keeps it up."""

    def __init__(self, server: MCPServer, name: str) -> None:
        self.server = server
        self.name = name
        self.manager = MCPServerManager(
            [server],
            connect_timeout_seconds=CONNECT_TIMEOUT_S,
            cleanup_timeout_seconds=CLEANUP_TIMEOUT_S,
            drop_failed_servers=True,
            connect_in_parallel=True,  # a worker task per server: cleanup where it connected
            suppress_cancelled_error=False,  # shutdown cancels a reconnect in progress
        )
        self.task: asyncio.Task[None] | None = None
        self.connected = False
        self.was_up = False
        self.changed = asyncio.Event()
        """The server sent ``notifications/tools/list_changed``."""
        self.suspect = asyncio.Event()
        """A call to the server failed: is it still there?"""

    async def on_message(self, message: Any) -> None:
        """The session's message handler (runs in its receive loop: must not wait on it)."""
        if getattr(message, "method", None) == "notifications/tools/list_changed":
            self.changed.set()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
