"""The agent: declarative config built once from settings; models made per name and cached.

Importing this module is the expensive part of start-up (the Agents SDK, ~1-2 s cold):
``bot.wiring`` imports it in a worker thread while the platforms already take events, and the
core waits for the ``AgentStack`` only when a question is to be answered. litellm (~200 MB,
seconds) is imported only by the path that needs it: ``BOT_MODEL_CLIENT=litellm`` or a PDF's
parse.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.settings import Settings, prepare_library_environment

prepare_library_environment()

from agents import Agent, ModelSettings, RunContextWrapper, set_tracing_disabled  # noqa: E402
from agents.models.interface import Model  # noqa: E402

from bot.commands import ToolsHere  # noqa: E402
from bot.context import ToolConfig, TurnContext  # noqa: E402
from bot.resilient_model import ResilientModel  # noqa: E402
from bot.tools import TOOLS  # noqa: E402
from bot.tools.guards import ToolCallCaps, with_call_caps  # noqa: E402

if TYPE_CHECKING:
    from bot.mcp import McpHub

TOOL_GUIDANCE = """
Tools:
- Call get_weather whenever the user asks about weather, temperature, rain, wind or a forecast
  for a place; never guess weather. Pass units="imperial" only if the user asks for Fahrenheit
  or lives where it is customary and says so.
- Call get_current_time when the user asks the time, date or day of the week somewhere.
- If a tool says a place is ambiguous or unknown, tell the user and ask which one they mean.
- Call read_document for any question about a PDF the user attached ("[Attached document: …]"
  in the conversation), even many messages later; you cannot see its text otherwise.
"""

ModelFactory = Callable[[str], Model]
MAX_MODELS = 64
"""Models kept at once: channel overrides are few, but never grow without bound."""


def instructions_for(
    settings: Settings,
) -> Callable[[RunContextWrapper[TurnContext], Agent[TurnContext]], str]:
    base = settings.bot_system_prompt.strip()

    def instructions(ctx: RunContextWrapper[TurnContext], agent: Agent[TurnContext]) -> str:
        today = dt.datetime.now(dt.UTC).strftime("%A %Y-%m-%d %H:%M UTC")
        text = f"{base}\n{TOOL_GUIDANCE}\nNow: {today}."
        extra = ctx.context.channel_instructions.strip()
        if extra:
            text += f"\n\nThis channel's admins ask you to follow these instructions too:\n{extra}"
        if ctx.context.context_note:
            text += f"\n\n{ctx.context.context_note}"
        return text

    return instructions


def model_settings(settings: Settings) -> ModelSettings:
    headers = {"X-Title": settings.or_app_name}
    if settings.or_site_url:
        headers["HTTP-Referer"] = settings.or_site_url
    return ModelSettings(
        temperature=settings.bot_temperature,
        include_usage=True,  # else streamed usage is all zeros
        extra_headers=headers,
        # litellm's own HTTP timeout (its default is 6000 s); the wrapper's idle timeout is the
        # same figure, so whichever notices first ends a hung call.
        extra_args={"timeout": settings.model_timeout_s},
    )


def litellm_models(settings: Settings) -> ModelFactory:
    """Plain OpenRouter models by name, through LitellmModel (no retries of their own)."""
    from bot.cost_callback import configure_litellm
    from bot.litellm_model import ReasoningLitellmModel

    configure_litellm()
    api_key = settings.require_openrouter_key()

    def make(name: str) -> Model:
        return ReasoningLitellmModel(
            model=name, base_url=settings.openrouter_base_url, api_key=api_key
        )

    return make


def openrouter_models(settings: Settings) -> ModelFactory:
    """Plain OpenRouter models by name, through the lean streaming client (no retries of
    their own)."""
    from bot.openrouter_model import OpenRouterModel

    api_key = settings.require_openrouter_key()

    def make(name: str) -> Model:
        return OpenRouterModel(
            name,
            base_url=settings.openrouter_base_url,
            api_key=api_key,
            timeout_s=settings.model_timeout_s,
        )

    return make


def base_models(settings: Settings) -> ModelFactory:
    """The plain models ``BOT_MODEL_CLIENT`` selects."""
    if settings.model_client == "openrouter":
        return openrouter_models(settings)
    return litellm_models(settings)


def resilient_models(settings: Settings, base: ModelFactory) -> ModelFactory:
    """Models by name, each a ResilientModel over [name, *fallbacks] made by ``base``."""

    def make(name: str) -> Model:
        names = [name, *(m for m in settings.bot_fallback_models if m != name)]
        return ResilientModel(
            [(n, base(n)) for n in names],
            retries=settings.model_retries,
            backoff_s=settings.retry_backoff_s,
            timeout_s=settings.model_timeout_s,
        )

    return make


def build_agent(settings: Settings, model: Model) -> Agent[TurnContext]:
    set_tracing_disabled(not settings.tracing)
    return Agent[TurnContext](
        name="assistant",
        instructions=instructions_for(settings),
        model=model,
        model_settings=model_settings(settings),
        # The caps come as a pair: the hook decides per response, each tool's guardrail obeys.
        tools=[with_call_caps(tool) for tool in TOOLS],
        hooks=ToolCallCaps(),
    )


class AgentStack:
    """What answering a question needs of the Agents SDK, once it has loaded: the agent, the
    models by name (made on first use and kept) and the tools' dependencies."""

    def __init__(
        self,
        *,
        agent: Agent[TurnContext],
        model_factory: ModelFactory,
        tool_config: ToolConfig,
        mcp: McpHub | None = None,
    ) -> None:
        self.agent = agent
        self.mcp = mcp
        """The MCP servers (``BOT_MCP_CONFIG``), started; None when none are configured."""
        self.tool_config = tool_config
        self._model_factory = model_factory
        self._models: dict[str, Model] = {}

    def model(self, name: str) -> Model:
        model = self._models.get(name)
        if model is None:
            if len(self._models) >= MAX_MODELS:
                self._models.pop(next(iter(self._models)))
            model = self._models[name] = self._model_factory(name)
        return model

    def agent_for(self, channel: str) -> Agent[TurnContext]:
        """The agent with the MCP servers ``channel`` may use."""
        return self.agent if self.mcp is None else self.mcp.agent_for(self.agent, channel)

    def mcp_tools(self, channel: str) -> dict[str, str]:
        """The MCP tools offered in ``channel`` now: name -> its server's name."""
        return {} if self.mcp is None else self.mcp.tools_for(channel)

    def tools_here(self, channel: str) -> ToolsHere:
        """What ``/help`` lists in ``channel``: our tools, and each MCP server serving it."""
        servers = () if self.mcp is None else tuple(self.mcp.tools_by_server(channel))
        return ToolsHere(own=tuple(tool.name for tool in self.agent.tools), servers=servers)

    async def close(self) -> None:
        if self.mcp is not None:
            await self.mcp.close()
        for model in self._models.values():
            await model.close()
        self._models.clear()
