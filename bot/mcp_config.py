"""``BOT_MCP_CONFIG``: the MCP servers the bot starts, in the file format MCP clients share.

    {"mcpServers": {
        "files": {"command": "npx", "args": ["-y", "@scope/server"], "env": {"KEY": "${KEY}"}},
        "github": {"url": "https://example.com/mcp",
                   "headers": {"Authorization": "Bearer ${GITHUB_TOKEN}"}}}}

A server has ``command`` (stdio: a child process) or ``url`` (Streamable HTTP), never both.
Per server: ``allowed_tools`` / ``blocked_tools``, ``require_approval``, ``timeout`` (seconds
per request, default 30) and ``channels`` (default all). ``${VAR}`` in any string value is
taken from the environment mapping passed in (``bot.settings`` reads it; this module never
touches ``os.environ``). Light: no MCP library is imported here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_TIMEOUT_S = 30.0
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class McpConfigError(ValueError):
    """The file is unusable; ``str()`` is one line naming the server and the key."""


class McpServerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = ""
    command: str | None = Field(default=None, min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    allowed_tools: list[str] | None = None
    blocked_tools: list[str] = Field(default_factory=list)
    require_approval: Literal["always", "never"] | list[str] = "never"
    timeout: float = Field(default=DEFAULT_TIMEOUT_S, gt=0, le=3600)
    channels: list[str] | None = None
    """Channel ids where the server's tools are offered (as the core names them, e.g.
    ``slack:T01:C012AB``, or the platform's bare id ``C012AB``); None: everywhere."""

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError("command: a server needs either command (stdio) or url (HTTP)")
        if self.url is not None and not re.match(r"^https?://[^/\s]+", self.url):
            raise ValueError("url: must be an http(s) URL")
        if self.command is None and (self.args or self.env or self.cwd):
            raise ValueError("args: args/env/cwd are for stdio servers (command)")
        if self.url is None and self.headers:
            raise ValueError("headers: headers are for HTTP servers (url)")
        return self

    @property
    def transport(self) -> Literal["stdio", "http"]:
        return "stdio" if self.command is not None else "http"

    @property
    def approval_tools(self) -> frozenset[str] | Literal["all"]:
        """The tools whose every call waits for the asker's approval (``bot.approvals``)."""
        if self.require_approval == "always":
            return "all"
        if self.require_approval == "never":
            return frozenset()
        return frozenset(self.require_approval)

    def offers(self, tool: str) -> bool:
        """Is ``tool`` (by the server's own name) given to the model?"""
        if self.allowed_tools is not None and tool not in self.allowed_tools:
            return False
        return tool not in self.blocked_tools

    def serves(self, channel: str) -> bool:
        if self.channels is None:
            return True
        return any(channel == c or channel.endswith(":" + c) for c in self.channels)


class McpConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    servers: tuple[McpServerConfig, ...] = ()
    path: str = ""
    secrets: tuple[str, ...] = ()
    """The values ``${VAR}`` brought in (tokens, keys), for the log redaction filter."""


def _expand(value: Any, env: Mapping[str, str], where: str, used: list[str]) -> Any:
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise McpConfigError(f"{where}: ${{{name}}} is not set in the environment")
            used.append(env[name])
            return env[name]

        return _VAR.sub(sub, value)
    if isinstance(value, list):
        return [_expand(v, env, where, used) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v, env, f"{where}.{k}", used) for k, v in value.items()}
    return value


def parse_mcp_config(text: str, env: Mapping[str, str], *, path: str = "") -> McpConfig:
    """The servers of a config file's text; ``McpConfigError`` (one line) when it is bad."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise McpConfigError(f"not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("mcpServers"), dict):
        raise McpConfigError('needs an object {"mcpServers": {"name": {...}}}')
    servers = []
    used: list[str] = []
    for name, raw in data["mcpServers"].items():
        if not _NAME.match(name):
            raise McpConfigError(
                f"server {name!r}: a name is 1-64 letters, digits, '_' or '-' "
                "(it prefixes its tools' names in progress lines)"
            )
        if not isinstance(raw, dict):
            raise McpConfigError(f"server {name!r}: must be an object")
        try:
            expanded = {k: _expand(v, env, k, used) for k, v in raw.items()}
            servers.append(McpServerConfig(**expanded, name=name))
        except ValidationError as exc:
            error = exc.errors()[0]
            key = str(error["loc"][0]) if error["loc"] else ""
            reason = str(error["msg"]).removeprefix("Value error, ")
            if not key and ":" in reason:
                key, _, reason = reason.partition(": ")
            raise McpConfigError(f"server {name!r}, key {key!r}: {reason}") from None
        except McpConfigError as exc:
            key, _, reason = str(exc).partition(": ")
            raise McpConfigError(f"server {name!r}, key {key!r}: {reason}") from None
    secrets = tuple(sorted({v for v in used if len(v) >= 4}))
    return McpConfig(servers=tuple(servers), path=path, secrets=secrets)


def load_mcp_config(path: str | None, env: Mapping[str, str]) -> McpConfig | None:
    """The config at ``path`` (``BOT_MCP_CONFIG``), else ``mcp.json`` in the working directory
    if present; None when there is none (no MCP)."""
    if path is None:
        if not Path("mcp.json").is_file():
            return None
        path = "mcp.json"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise McpConfigError(f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    return parse_mcp_config(text, env, path=path)
