"""The one module that wires everything: settings -> store, HTTP session, agent, core.

``python -m bot`` (``bot/__main__.py``) and the terminal chat build the bot through it; it is
the only place in ``bot/`` that knows every part (the adapters are chosen in ``__main__``).

Only light modules are imported at the top. The agent stack (the Agents SDK, ~1-2 s cold;
litellm too on its path) is imported in a worker thread by ``load_stack``: ``start_core``
returns a core at once, so the platforms take events while it loads.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp

from bot.context import ToolConfig
from bot.core import Core
from bot.settings import Settings, prepare_library_environment
from storage import Store, open_store

if TYPE_CHECKING:
    from bot.agent import AgentStack, ModelFactory
    from bot.mcp import McpHub


def _load_agent_stack(settings: Settings) -> None:
    importlib.import_module("bot.agent")
    importlib.import_module("bot.turn")
    if settings.model_client == "litellm":
        importlib.import_module("agents.extensions.models.litellm_model")
    from bot.tokens import load_token_tables

    load_token_tables()


async def import_heavy_modules(settings: Settings) -> None:
    """Import the agent stack and read the token tables in a worker thread, so the event loop
    stays free meanwhile."""
    prepare_library_environment()
    await asyncio.to_thread(_load_agent_stack, settings)


@dataclass
class Services:
    settings: Settings
    store: Store
    http: aiohttp.ClientSession
    jobs: list[asyncio.Task[None]] = field(default_factory=list)
    """Background jobs over the store (retention), cancelled before it closes."""

    def tool_config(self) -> ToolConfig:
        return ToolConfig(
            http=self.http,
            open_meteo_url=self.settings.open_meteo_url,
            geocoding_url=self.settings.open_meteo_geocoding_url,
        )


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    store = await open_store(settings.database_url, pool_size=settings.database_pool_size)
    http = aiohttp.ClientSession(
        headers={"User-Agent": f"{settings.or_app_name} (chatbot)"},
        timeout=aiohttp.ClientTimeout(total=30),
    )
    services = Services(settings=settings, store=store, http=http)
    try:
        yield services
    finally:
        for job in services.jobs:
            job.cancel()
        await asyncio.gather(*services.jobs, return_exceptions=True)
        await http.close()
        await store.close()


def start_core(services: Services, base_models: ModelFactory | None = None) -> Core:
    """The core, at once: its agent stack loads in the background (``Core.ready``,
    ``Core.loaded``), and a question that comes meanwhile waits for it. ``base_models``
    (name -> plain model) replaces OpenRouter, e.g. in tests. With ``BOT_RETENTION_DAYS`` set,
    the retention job starts too (``services.jobs``)."""
    if services.settings.retention_days:
        # Here rather than in open_services: it runs beside a bot that answers (the platforms
        # or the chat), never for `check`.
        from bot.retention import run_retention

        services.jobs.append(
            asyncio.create_task(run_retention(services.store, services.settings.retention_days))
        )
    return Core(
        settings=services.settings,
        store=services.store,
        stack=load_stack(services, base_models),
    )


async def build_core(services: Services, base_models: ModelFactory | None = None) -> Core:
    """``start_core``, its agent stack loaded."""
    core = start_core(services, base_models)
    await core.loaded()
    return core


async def load_stack(services: Services, base_models: ModelFactory | None = None) -> AgentStack:
    """The agent, its models and the tools' dependencies; the imports in a worker thread."""
    await import_heavy_modules(services.settings)
    from bot.agent import AgentStack, build_agent, resilient_models
    from bot.agent import base_models as configured_models
    from bot.documents import DocumentReader

    settings = services.settings
    factory = resilient_models(settings, base_models or configured_models(settings))
    agent = build_agent(settings, factory(settings.bot_model))
    mcp = await start_mcp(settings, reserved={tool.name for tool in agent.tools})
    stack = AgentStack(
        agent=agent,
        mcp=mcp,
        model_factory=factory,
        tool_config=dataclasses.replace(
            services.tool_config(),
            documents=DocumentReader(services.store, settings, services.http),
        ),
    )
    # The SDK leaves ~200k long-lived objects (~500k with litellm); full collections walking
    # them paused the loop for 300-400 ms (seen in bench/core_overhead): freeze them out of the
    # collector's view. Only the young generations are collected first: import leaves almost
    # no garbage (~20 objects), and a full collection here was a 100-200 ms pause of the loop,
    # in the first seconds, while events are already being taken. (The few objects of events
    # in flight right now are frozen too: a bounded few kilobytes, once.)
    gc.collect(1)
    gc.freeze()
    return stack


async def start_mcp(settings: Settings, reserved: set[str] | None = None) -> McpHub | None:
    """The MCP servers of ``BOT_MCP_CONFIG``, started (each failure a log line); None when
    none are configured. The MCP library is imported (in a worker thread) only then."""
    if settings.mcp is None or not settings.mcp.servers:
        return None
    await asyncio.to_thread(importlib.import_module, "bot.mcp")
    from bot.mcp import McpHub

    hub = McpHub(settings.mcp)
    try:
        await hub.start(frozenset(reserved or ()))
    except BaseException:
        await hub.close()
        raise
    return hub


def platforms_configured(settings: Settings) -> dict[str, bool]:
    """Which platform adapters have their credentials set."""
    return {
        "slack": settings.slack_bot_token is not None,
        "discord": settings.discord_bot_token is not None,
    }
