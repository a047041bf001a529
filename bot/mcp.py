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

from bot.mcp_config import McpConfig, McpServerConfig
from bot.tools.failure import tool_failed

log = logging.getLogger("bot.mcp")
CONNECT_TIMEOUT_S = 30.0
CLEANUP_TIMEOUT_S = 5.0


class _OurLineInstead(logging.Filter):
    """The SDK logs a failed start without the server's name; ``McpHub.start`` logs it with
    the name and the reason: one line, not two."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Failed to connect MCP server")


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
        return MCPServerStdio(
            stdio,
            name=config.name,
            cache_tools_list=True,
            client_session_timeout_seconds=config.timeout,
            tool_filter=tool_filter,
            require_approval=require_approval,
        )
    assert config.url is not None
    return MCPServerStreamableHttp(
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
        self._manager: MCPServerManager | None = None
        self._agents: dict[tuple[str, ...], Agent[Any]] = {}

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
        self._manager = MCPServerManager(
            self._servers.values(),
            connect_timeout_seconds=CONNECT_TIMEOUT_S,
            cleanup_timeout_seconds=CLEANUP_TIMEOUT_S,
            drop_failed_servers=True,
            connect_in_parallel=True,
        )
        await self._manager.connect_all()
        errors = self._manager.errors
        for name, server in self._servers.items():
            status = self.status[name]
            if server in errors:
                exc = errors[server]
                status.problem = f"did not start ({_short(exc)})"
                log.warning("MCP server %s did not start: %s", name, _short(exc))
                continue
            try:
                tools = await asyncio.wait_for(server.list_tools(), status.config.timeout)
            except Exception as exc:
                status.problem = f"could not list its tools ({_short(exc)})"
                log.warning("MCP server %s could not list its tools: %s", name, _short(exc))
                continue
            taken = reserved | self.tool_servers.keys()
            clashes = sorted(t.name for t in tools if t.name in taken)
            if clashes:
                status.problem = f"tool names already taken: {', '.join(clashes)}"
                log.warning("MCP server %s not used: tool names already taken: %s", name, clashes)
                continue
            status.started = True
            status.tools = [t.name for t in tools]
            for tool in tools:
                self.tool_servers[tool.name] = name
            log.info("MCP server %s started with %d tools", name, len(tools))

    def servers_for(self, channel: str) -> list[MCPServer]:
        return [
            self._servers[name]
            for name, status in self.status.items()
            if status.started and status.config.serves(channel)
        ]

    def agent_for(self, agent: Agent[Any], channel: str) -> Agent[Any]:
        """``agent`` with the servers ``channel`` may use (one clone per set, kept)."""
        servers = self.servers_for(channel)
        key = tuple(server.name for server in servers)
        if not key:
            return agent
        cloned = self._agents.get(key)
        if cloned is None:
            cloned = self._agents[key] = agent.clone(
                mcp_servers=servers,
                mcp_config={**agent.mcp_config, "failure_error_function": mcp_tool_error},
            )
        return cloned

    async def close(self) -> None:
        if self._manager is not None:
            manager, self._manager = self._manager, None
            try:
                await manager.cleanup_all()
            except Exception as exc:
                log.warning("MCP servers did not stop cleanly: %s", _short(exc))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
