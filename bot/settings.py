"""The one reader of the environment (and of ``.env``): every setting the bot has, validated.

Invalid values fail at start-up with one line naming the variable and what to do
(``load_settings`` raises ``ConfigError``; the entry point prints it without a traceback).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.mcp_config import McpConfig, McpConfigError, load_mcp_config
from storage import DEFAULT_POOL_SIZE, database_kind, sqlite_path_from_url, url_password

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant in a team chat (Slack or Discord). Answer concisely and "
    "accurately in Markdown. When you do not know something, say so."
)

# What each variable is for, shown when it is invalid: the one line a person needs to fix it.
HINTS: dict[str, str] = {
    "OPENROUTER_API_KEY": "create a key at https://openrouter.ai/settings/keys",
    "OPENROUTER_BASE_URL": "an http(s) URL such as https://openrouter.ai/api/v1",
    "BOT_MODEL": "an OpenRouter model such as openrouter/openai/gpt-5-mini",
    "BOT_FALLBACK_MODELS": "comma-separated models, e.g. openrouter/anthropic/claude-haiku-4.5",
    "BOT_TEMPERATURE": "a number from 0 to 2",
    "BOT_REASONING_EFFORT": "one of low, medium, high (or unset: the model's default)",
    "DATABASE_URL": (
        "sqlite:///data/bot.db (relative), sqlite:////abs/path.db (absolute) "
        "or postgresql://user:password@host:5432/dbname"
    ),
    "DATABASE_POOL_SIZE": "a whole number of connections, 1 to 100",
    "OPEN_METEO_URL": "a host URL such as https://api.open-meteo.com (no path)",
    "OPEN_METEO_GEOCODING_URL": "a host URL such as https://geocoding-api.open-meteo.com (no path)",
    "LOG_LEVEL": "one of DEBUG, INFO, WARNING, ERROR",
    "PDF_ENGINE": "one of pdf-text, mistral-ocr, native",
    "BOT_RETENTION_DAYS": "a whole number of days, or 0 to keep everything",
    "SLACK_API_URL": "an http(s) URL such as https://slack.com/api/",
    "PORT": "a TCP port number such as 3000",
    "BOT_OPS_PORT": "a TCP port number such as 9100",
    "DISCORD_API_BASE": "an http(s) URL such as https://discord.com/api/v10",
    "DISCORD_GATEWAY_URL": "a ws(s) URL such as wss://gateway.discord.gg/",
    "DISCORD_GUILD_ID": "a guild (server) id, a number",
    "BOT_ADMINS": "comma-separated platform:user_id, e.g. slack:U012AB,discord:81234",
    "BOT_ALLOWED_WORKSPACES": "comma-separated platform:id, e.g. slack:T012AB,discord:81234",
    "BOT_ALLOWED_CHANNELS": "comma-separated platform:id, e.g. slack:C012AB,discord:81234",
    "BOT_ALLOWED_USERS": "comma-separated platform:user_id, e.g. slack:U012AB,discord:81234",
    "BOT_ALLOWED_ROLES": "comma-separated discord:role_id, e.g. discord:81234",
    "WEB_CONCURRENCY": "1 to 64 bot processes, like --workers N",
    "BOT_REDACT_PHONE_REGION": "a two-letter country code such as US, GB or DE",
    "BOT_WEB_SEARCH": "true or false",
    "BOT_WEB_SEARCH_RESULTS": "a whole number of web results per search, 1 to 10",
    "BOT_SUGGESTED_PROMPTS": ('JSON such as [{"title": "Weather", "message": "Weather in Oslo?"}]'),
}

DEFAULT_SUGGESTED_PROMPTS: tuple[tuple[str, str], ...] = (
    ("Weather", "What's the weather in Lisbon this weekend?"),
    ("Time zones", "What time is it in Tokyo and in New York?"),
    ("Explain", "Explain how HTTP caching works, briefly."),
)
"""``BOT_SUGGESTED_PROMPTS`` by default (the Slack manifest's ``agent_view`` lists the same)."""
SUGGESTED_PROMPTS_MAX = 4
"""Slack shows at most four suggested prompts."""


class SuggestedPrompt(BaseModel):
    """One of ``BOT_SUGGESTED_PROMPTS``: a button's ``title`` and the ``message`` it sends."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str = Field(min_length=1, max_length=100)
    message: str = Field(min_length=1, max_length=2_000)


class ConfigError(Exception):
    """A setting is missing or invalid; ``str()`` is one line for the person running the bot."""


EXIT_CONFIG = 2
"""``python -m bot``'s exit code when a setting is missing, invalid or refused by its service:
fix the configuration (a restart will not help, so a ``--workers`` parent stops at once)."""
EXIT_RUNTIME = 1
"""The bot ran and failed (a platform connection died): a supervisor may restart it."""


def _http_url(value: str, *, host_only: bool = False) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL")
    if host_only and parts.path not in ("", "/"):
        raise ValueError("must be a host only (the bot appends the API path)")
    return value.rstrip("/")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    openrouter_api_key: SecretStr | None = Field(default=None, alias="OPENROUTER_API_KEY")
    openrouter_base_url: str = Field(
        default="https://openrouter.ai/api/v1", alias="OPENROUTER_BASE_URL"
    )
    bot_model: str = Field(default="openrouter/openai/gpt-5-mini", alias="BOT_MODEL")
    bot_fallback_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="BOT_FALLBACK_MODELS"
    )
    model_client: Literal["openrouter", "litellm"] = Field(
        default="openrouter", alias="BOT_MODEL_CLIENT"
    )
    """How model calls are made: ``openrouter`` (a lean streaming client of OpenRouter's
    OpenAI-compatible API) or ``litellm`` (the Agents SDK's ``LitellmModel``)."""
    event_loop: Literal["uvloop", "asyncio"] = Field(default="uvloop", alias="BOT_EVENT_LOOP")
    """uvloop (when installed) or asyncio's own loop; see ``bot/loop.py``."""
    bot_temperature: float = Field(default=0.2, ge=0, le=2, alias="BOT_TEMPERATURE")
    reasoning_effort: Literal["low", "medium", "high"] | None = Field(
        default=None, alias="BOT_REASONING_EFFORT"
    )
    """How hard reasoning models think (OpenRouter's ``reasoning.effort``); unset: each
    model's own default. A channel's ``/settings reasoning`` wins."""
    bot_system_prompt: str = Field(default=DEFAULT_SYSTEM_PROMPT, alias="BOT_SYSTEM_PROMPT")
    or_site_url: str | None = Field(default=None, alias="OR_SITE_URL")
    or_app_name: str = Field(default="chatbot", alias="OR_APP_NAME")
    database_url: str = Field(default="sqlite:///data/bot.db", alias="DATABASE_URL")
    database_pool_size: int = Field(
        default=DEFAULT_POOL_SIZE, ge=1, le=100, alias="DATABASE_POOL_SIZE"
    )
    """Connections to PostgreSQL each instance keeps (SQLite has one connection)."""
    open_meteo_url: str = Field(default="https://api.open-meteo.com", alias="OPEN_METEO_URL")
    open_meteo_geocoding_url: str = Field(
        default="https://geocoding-api.open-meteo.com", alias="OPEN_METEO_GEOCODING_URL"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", alias="LOG_LEVEL"
    )
    log_content: bool = Field(default=False, alias="LOG_CONTENT")

    # Model calls: time limits, retries and how much history a turn may carry.
    model_timeout_s: float = Field(default=90.0, gt=0, alias="BOT_MODEL_TIMEOUT")
    """Longest wait for a model's first byte and between two streamed chunks."""
    turn_timeout_s: float = Field(default=300.0, gt=0, alias="BOT_TURN_TIMEOUT")
    """Cap on one whole turn (all model calls and tools); a wait for an approval is not
    counted."""
    approval_timeout_s: float = Field(default=600.0, gt=0, alias="BOT_APPROVAL_TIMEOUT")
    """How long a tool call that needs approval waits for a click before the turn is cancelled."""
    model_retries: int = Field(default=2, ge=0, le=10, alias="BOT_MODEL_RETRIES")
    retry_backoff_s: float = Field(default=1.0, ge=0, alias="BOT_RETRY_BACKOFF")
    max_concurrent_turns: int = Field(default=32, ge=1, alias="BOT_MAX_CONCURRENT_TURNS")
    history_max_tokens: int = Field(default=50_000, ge=1_000, alias="BOT_HISTORY_MAX_TOKENS")
    history_max_items: int = Field(default=400, ge=2, alias="BOT_HISTORY_MAX_ITEMS")
    max_tool_rounds: int = Field(default=8, ge=1, alias="BOT_MAX_TOOL_ROUNDS")
    mcp_config_path: str | None = Field(default=None, alias="BOT_MCP_CONFIG")
    """The MCP servers' JSON file (``bot.mcp_config``); unset: ``mcp.json`` if present."""
    _mcp: tuple[McpConfig | None] | None = PrivateAttr(default=None)
    max_tool_calls_per_response: int = Field(
        default=8, ge=1, alias="BOT_MAX_TOOL_CALLS_PER_RESPONSE"
    )
    """Tool calls run from one model response; the model is told the rest were over the cap."""
    max_tool_calls_per_turn: int = Field(default=24, ge=1, alias="BOT_MAX_TOOL_CALLS_PER_TURN")
    """Tool calls run in one turn over all its model responses; later ones are told the same."""
    user_rate_limit: int = Field(default=10, ge=0, alias="BOT_USER_RATE_LIMIT")
    """Messages one user may send the bot per minute (commands excepted); 0: no limit."""
    # Daily budgets (UTC days), checked before each turn; 0: no budget.
    daily_user_tokens: int = Field(default=0, ge=0, alias="BOT_DAILY_TOKENS_PER_USER")
    daily_user_usd: float = Field(default=0.0, ge=0, alias="BOT_DAILY_USD_PER_USER")
    daily_workspace_tokens: int = Field(default=0, ge=0, alias="BOT_DAILY_TOKENS_PER_WORKSPACE")
    daily_workspace_usd: float = Field(default=0.0, ge=0, alias="BOT_DAILY_USD_PER_WORKSPACE")
    shutdown_grace_s: float = Field(default=25.0, ge=0, le=600, alias="BOT_SHUTDOWN_GRACE")
    """On SIGTERM/SIGINT, how long answers in flight may take to finish (Heroku kills at 30 s)."""
    tracing: bool = Field(default=False, alias="BOT_TRACING")
    admin_users: Annotated[list[str], NoDecode] = Field(default_factory=list, alias="BOT_ADMINS")
    """Who may change channel settings (``platform:user_id``); empty means everyone."""
    # Allowlists of ``platform:id`` (e.g. ``slack:T012AB``, ``discord:81234``); empty: anyone.
    allowed_workspaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="BOT_ALLOWED_WORKSPACES"
    )
    """Slack teams / Discord guilds the bot answers in."""
    allowed_channels: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="BOT_ALLOWED_CHANNELS"
    )
    """Channels the bot answers in (DMs are governed by the user and role lists)."""
    allowed_users: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="BOT_ALLOWED_USERS"
    )
    allowed_roles: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="BOT_ALLOWED_ROLES"
    )
    """Discord roles whose members may use the bot (alongside ``BOT_ALLOWED_USERS``)."""

    # Files on messages.
    max_file_mb: float = Field(default=20.0, gt=0, alias="MAX_FILE_MB")
    max_files_per_message: int = Field(default=10, ge=1, alias="MAX_FILES_PER_MESSAGE")
    max_text_file_chars: int = Field(default=100_000, ge=1_000, alias="MAX_TEXT_FILE_CHARS")
    pdf_engine: Literal["pdf-text", "mistral-ocr", "native"] = Field(
        default="pdf-text", alias="PDF_ENGINE"
    )
    """OpenRouter's PDF parser: pdf-text (free, text PDFs), mistral-ocr (scans), native."""
    web_search: bool = Field(default=False, alias="BOT_WEB_SEARCH")
    """Answers search the web first (OpenRouter's web plugin) and cite their sources; a channel
    may choose otherwise (``/settings web on|off``)."""
    web_search_results: int = Field(default=5, ge=1, le=10, alias="BOT_WEB_SEARCH_RESULTS")
    """Web results per search (OpenRouter bills each result)."""
    allow_bots: bool = Field(default=False, alias="BOT_ALLOW_BOTS")
    thread_context_messages: int = Field(default=20, ge=0, le=200, alias="BOT_THREAD_CONTEXT")
    """Unaddressed thread messages kept for a later mention in that thread; 0 keeps none."""
    redact_pii: bool = Field(default=False, alias="BOT_REDACT_PII")
    """Replace e-mail addresses, phone numbers, card numbers and IBANs with placeholders in
    everything sent to the model (``bot/redact.py``)."""
    redact_phone_region: str = Field(default="US", alias="BOT_REDACT_PHONE_REGION")
    """Whose national phone formats redaction recognises (international ones always)."""
    retention_days: int = Field(default=0, ge=0, alias="BOT_RETENTION_DAYS")
    """Conversations idle this many days are deleted with their files, and usage and event
    records older than that too, by a job in the running bot; 0 keeps everything."""

    # Several instances on one database.
    instance_id: str | None = Field(default=None, max_length=100, alias="BOT_INSTANCE_ID")
    """This process's name in the store, ``/healthz`` and ``/metrics``; by default
    ``host-pid-random``, new at every start."""
    lease_s: float = Field(default=15.0, ge=1, le=600, alias="BOT_LEASE_S")
    """An instance renews its lease every third of this; one not renewed for this long is
    dead: another instance tells the users whose turns it held, and takes its locks."""
    workers: int = Field(default=1, ge=1, le=64, alias="WEB_CONCURRENCY")
    """``python -m bot`` starts this many bot processes (``--workers`` wins), sharing ``PORT``
    through ``SO_REUSEPORT``; Heroku sets it from the dyno size."""

    suggested_prompts: Annotated[list[SuggestedPrompt], NoDecode] = Field(
        default_factory=lambda: [
            SuggestedPrompt(title=t, message=m) for t, m in DEFAULT_SUGGESTED_PROMPTS
        ],
        alias="BOT_SUGGESTED_PROMPTS",
    )
    """What a new assistant thread offers to ask (Slack): 1 to 4 titles and messages."""

    # Slack.
    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    """Set: Socket Mode. Unset: HTTP mode on ``PORT`` (needs ``SLACK_SIGNING_SECRET``)."""
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    """Base of every Web API call (auth.test and Socket Mode's apps.connections.open too)."""
    slack_file_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["files.slack.com"], alias="SLACK_FILE_HOSTS"
    )
    """Hosts that may receive the bot token to download files; SLACK_API_URL's host is added."""
    slack_require_mention: bool = Field(default=False, alias="SLACK_REQUIRE_MENTION")
    """True: follow-ups in a thread need a mention too (busy workspaces)."""
    slack_native_streaming: bool = Field(default=True, alias="SLACK_NATIVE_STREAMING")
    """Stream with chat.startStream/appendStream/stopStream; False: post, then chat.update."""
    slack_stream_interval_s: float = Field(default=1.0, ge=0, alias="SLACK_STREAM_INTERVAL")
    """Least time between two updates of one streamed answer."""
    port: int = Field(default=3000, ge=0, le=65535, alias="PORT")
    """HTTP mode: where Slack's requests (POST /slack/events) and GET /healthz are served."""
    host: str = Field(default="0.0.0.0", min_length=1, alias="HOST")
    """The address Slack's HTTP listener binds (``127.0.0.1`` behind a local reverse proxy)."""

    # Operations: GET /healthz and GET /metrics.
    ops_host_setting: str | None = Field(default=None, alias="BOT_OPS_HOST")
    """Where the ops endpoints listen; by default the same address as Slack's listener."""
    ops_port_setting: int | None = Field(default=None, ge=0, le=65535, alias="BOT_OPS_PORT")
    """Their port; by default ``PORT`` (in Slack's HTTP mode they then share its server)."""
    metrics_token: SecretStr | None = Field(default=None, alias="BOT_METRICS_TOKEN")
    """Set: ``GET /metrics`` needs ``Authorization: Bearer <token>``."""

    # Discord.
    discord_bot_token: SecretStr | None = Field(default=None, alias="DISCORD_BOT_TOKEN")
    discord_api_base: str = Field(default="https://discord.com/api/v10", alias="DISCORD_API_BASE")
    """REST base of every call (webhooks and interaction follow-ups too): a proxy or a fake."""
    discord_gateway_url: str = Field(
        default="wss://gateway.discord.gg/", alias="DISCORD_GATEWAY_URL"
    )
    """The gateway websocket (discord.py does not ask REST for it)."""
    discord_guild_id: int | None = Field(default=None, alias="DISCORD_GUILD_ID")
    """Sync slash commands to this guild only (instant, for development)."""
    discord_auto_thread: bool = Field(default=False, alias="DISCORD_AUTO_THREAD")
    """A mention in a channel opens a thread for the answer."""
    discord_shard_count: int | None = Field(default=None, ge=1, alias="DISCORD_SHARD_COUNT")
    """Split the guilds over this many gateway shards (several processes: each runs some)."""
    discord_shard_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, alias="DISCORD_SHARD_IDS"
    )
    """The shards this process runs, e.g. ``0,1``; empty: all of ``DISCORD_SHARD_COUNT``."""

    @field_validator(
        "bot_fallback_models",
        "admin_users",
        "slack_file_hosts",
        "allowed_workspaces",
        "allowed_channels",
        "allowed_users",
        "allowed_roles",
        mode="before",
    )
    @classmethod
    def _split_models(cls, value: object) -> object:
        if isinstance(value, str):
            return [m.strip() for m in value.split(",") if m.strip()]
        return value

    @field_validator("redact_phone_region")
    @classmethod
    def _phone_region(cls, value: str) -> str:
        value = value.strip().upper()
        if not (len(value) == 2 and value.isalpha()):
            raise ValueError("must be a two-letter country code")
        import phonenumbers  # only when the variable is set: most runs never load it

        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value} is not a country phonenumbers knows")
        return value

    @field_validator("suggested_prompts", mode="before")
    @classmethod
    def _prompts_json(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError("it is not valid JSON") from None
        if not isinstance(value, list) or not 1 <= len(value) <= SUGGESTED_PROMPTS_MAX:
            raise ValueError(f"it must be a JSON array of 1 to {SUGGESTED_PROMPTS_MAX} prompts")
        for number, prompt in enumerate(value, 1):
            if isinstance(prompt, SuggestedPrompt):
                continue
            if not (
                isinstance(prompt, dict)
                and set(prompt) == {"title", "message"}
                and all(isinstance(v, str) and v.strip() for v in prompt.values())
            ):
                raise ValueError(
                    f'prompt {number} must be {{"title": "...", "message": "..."}} '
                    "with two non-empty strings"
                )
        return value

    @field_validator("discord_shard_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(i) for i in value.replace(" ", "").split(",") if i]
        return value

    @field_validator("discord_shard_ids")
    @classmethod
    def _shards_fit(cls, value: list[int], info: ValidationInfo) -> list[int]:
        count = info.data.get("discord_shard_count")
        if value and count is None:
            raise ValueError("it needs DISCORD_SHARD_COUNT too")
        bad = [i for i in value if count is not None and not 0 <= i < count]
        if bad:
            raise ValueError(f"shard ids {bad} are not in 0..{(count or 1) - 1}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _empty_means_unset(cls, values: object) -> object:
        """``SLACK_BOT_TOKEN= python -m bot`` turns Slack off for one run: an empty variable is
        "not set" (its default), and as the environment outranks ``.env`` it wins over it."""
        if isinstance(values, dict):
            return {k: v for k, v in values.items() if not (isinstance(v, str) and not v.strip())}
        return values

    @field_validator(
        "admin_users", "allowed_workspaces", "allowed_channels", "allowed_users", "allowed_roles"
    )
    @classmethod
    def _platform_ids(cls, value: list[str]) -> list[str]:
        for item in value:
            platform, sep, ident = item.partition(":")
            if not sep:
                raise ValueError(f"{item!r} needs its platform in front, e.g. slack:{item}")
            if not (platform.isalpha() and platform.islower() and ident):
                raise ValueError(f"{item!r} is not platform:id (e.g. slack:U012AB)")
        return value

    @field_validator("bot_model")
    @classmethod
    def _model_name(cls, value: str) -> str:
        value = value.strip()
        if not value or " " in value:
            raise ValueError("must be a model name without spaces")
        return value

    @field_validator("openrouter_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("discord_api_base")
    @classmethod
    def _discord_api_base(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("discord_gateway_url")
    @classmethod
    def _discord_gateway_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("ws", "wss") or not parts.netloc:
            raise ValueError("must be a ws(s) URL")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _slack_api_url(cls, value: str) -> str:
        return _http_url(value) + "/"  # slack_sdk joins method names onto it

    @field_validator("open_meteo_url", "open_meteo_geocoding_url")
    @classmethod
    def _host_url(cls, value: str) -> str:
        return _http_url(value, host_only=True)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        database_kind(value)
        return value

    @field_validator("reasoning_effort", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def secrets(self) -> list[str]:
        """Every secret value set, for the log redaction filter."""
        values = (
            self.openrouter_api_key,
            self.slack_bot_token,
            self.slack_app_token,
            self.slack_signing_secret,
            self.discord_bot_token,
            self.metrics_token,
        )
        found = [v.get_secret_value() for v in values if v and v.get_secret_value()]
        database_password = url_password(self.database_url)
        if database_password:
            found.append(database_password)
        if self._mcp is not None and self._mcp[0] is not None:
            found.extend(self._mcp[0].secrets)  # the tokens its ${VAR}s brought in
        return found

    @property
    def ops_host(self) -> str:
        return self.ops_host_setting or self.host

    @property
    def ops_port(self) -> int:
        return self.port if self.ops_port_setting is None else self.ops_port_setting

    @property
    def ops_requested(self) -> bool:
        """Outside Slack's HTTP mode, ops endpoints are served only when a port is given (as
        hosting platforms give ``PORT``): a Discord-only bot need not listen at all."""
        return "port" in self.model_fields_set or self.ops_port_setting is not None

    @property
    def reuse_port(self) -> bool:
        """Bind the listening sockets with ``SO_REUSEPORT``: only as one of several workers,
        which share ``PORT`` that way. A lone process keeps the plain bind, so a port another
        bot (say, one left running) already holds fails loudly at start instead of quietly
        sharing Slack's requests with it."""
        return self.workers > 1

    @property
    def ops_share_slack_listener(self) -> bool:
        """In Slack's HTTP mode: are the ops endpoints on the events server itself?"""
        return (self.ops_host, self.ops_port) == (self.host, self.port)

    @property
    def slack_token_hosts(self) -> frozenset[str]:
        """Hosts (``host`` or ``host:port``) that may be sent the bot token."""
        api = urlsplit(self.slack_api_url)
        hosts = {h.lower() for h in self.slack_file_hosts}
        hosts.add(api.netloc.lower())
        return frozenset(hosts)

    @property
    def mcp(self) -> McpConfig | None:
        """The MCP servers configured (read once, by ``load_settings`` at start); None: no
        MCP. ``ConfigError`` if the file is bad."""
        if self._mcp is None:
            self._mcp = (_load_mcp(self),)
        return self._mcp[0]

    def require_openrouter_key(self) -> str:
        if self.openrouter_api_key is None or not self.openrouter_api_key.get_secret_value():
            raise ConfigError(
                f"OPENROUTER_API_KEY is not set: {HINTS['OPENROUTER_API_KEY']} "
                "and put it in the environment or in .env"
            )
        return self.openrouter_api_key.get_secret_value()


def database_path(url: str) -> Path | None:
    """The SQLite file of a ``DATABASE_URL``: None for ``:memory:`` and for a database on a
    server (PostgreSQL); ValueError if the URL names no database the bot can use."""
    if database_kind(url) != "sqlite":
        return None
    return sqlite_path_from_url(url)


def load_settings(**overrides: object) -> Settings:
    """Read and validate the settings; raise ``ConfigError`` with one line on any problem."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "?"
        alias = _alias_of(field)
        hint = HINTS.get(alias)
        reason = str(error["msg"]).removeprefix("Value error, ")
        line = f"{alias} is invalid: {reason}"
        if hint:
            line += f" (expected {hint})"
        more = len(exc.errors()) - 1
        if more:
            line += f"; and {more} more problem{'s' if more > 1 else ''}"
        raise ConfigError(line) from None
    settings.mcp  # noqa: B018 (a bad MCP file fails at start, like any setting)
    return settings


def _load_mcp(settings: Settings) -> McpConfig | None:
    """``BOT_MCP_CONFIG``, its ``${VAR}`` taken from the environment, then ``.env``."""
    import os

    from dotenv import dotenv_values

    env: dict[str, str] = {}
    env_file = settings.model_config.get("env_file")
    if isinstance(env_file, str) and Path(env_file).is_file():
        env.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    env.update(os.environ)
    try:
        return load_mcp_config(settings.mcp_config_path, env)
    except McpConfigError as exc:
        where = settings.mcp_config_path or "mcp.json"
        raise ConfigError(f"BOT_MCP_CONFIG ({where}) is invalid: {exc}") from None


def _alias_of(name: str) -> str:
    field = Settings.model_fields.get(name)
    if field is not None and field.alias:
        return field.alias
    return name.upper()


def prepare_library_environment() -> None:
    """Make third-party libraries quiet and offline at import; call before importing them.

    litellm fetches its model-price map over the network at import unless told to use the copy
    it ships; tiktoken downloads its encodings unless pointed at the copy litellm ships (found
    without importing litellm). This is the one place outside ``Settings`` that touches the
    environment.
    """
    import importlib.util
    import os

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    spec = importlib.util.find_spec("litellm")
    if spec is not None and spec.submodule_search_locations:
        package = next(iter(spec.submodule_search_locations))
        os.environ.setdefault(
            "TIKTOKEN_CACHE_DIR", os.path.join(package, "litellm_core_utils", "tokenizers")
        )
