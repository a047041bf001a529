"""A user's home page in the bot, platform-neutral: what the bot can do, their use of today's
budget, and the channels' settings, which admins change through ``change_channel_settings``
with the very checks and code of ``/model`` and ``/settings`` (``bot.commands``).

Slack shows it as the app's Home tab (``adapters.slack.home``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass

from bot.access import allowed
from bot.budgets import budgets_for, day_start
from bot.commands import (
    MENTION_SETTING,
    MODEL_SETTING,
    PROMPT_SETTING,
    SETTING_NAMES,
    ChannelModel,
    CommandContext,
    help_text,
    is_admin,
    normalize_model_name,
    run_command,
    setting_problem,
)
from bot.events import ConversationKey, Event, EventKind
from bot.results import user_key
from bot.settings import Settings
from bot.web_search import WEB_SETTING
from storage.base import Store, UsageTotals

CHANNELS_SHOWN = 20
"""Channels listed with their settings, the most recently changed first."""
PDF_SETTING = "pdf_engine"
"""How ``/settings pdf`` stores its value."""


@dataclass(frozen=True, slots=True)
class BudgetUse:
    """One daily budget in force and how much of it is used today (UTC)."""

    subject: str
    """"You" or "This workspace"."""
    tokens_used: int
    tokens_limit: int
    """0: no token budget."""
    usd_used: float
    usd_limit: float
    """0: no cost budget."""


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    """A channel's settings; ``None`` where it keeps the bot's default."""

    channel: ConversationKey
    model: str | None = None
    prompt: str | None = None
    mention_required: bool = False
    pdf_engine: str | None = None
    web_search: str | None = None
    """``on`` or ``off``; None: ``BOT_WEB_SEARCH``."""

    @classmethod
    def from_stored(cls, channel: ConversationKey, stored: Mapping[str, str]) -> ChannelSettings:
        return cls(
            channel=channel,
            model=stored.get(MODEL_SETTING),
            prompt=stored.get(PROMPT_SETTING),
            mention_required=stored.get(MENTION_SETTING) == "required",
            pdf_engine=stored.get(PDF_SETTING),
            web_search=stored.get(WEB_SETTING),
        )


@dataclass(frozen=True, slots=True)
class Home:
    allowed: bool
    """False: the allowlists keep this user out; nothing else is filled in."""
    admin: bool = False
    """May change the channels' settings."""
    help: str = ""
    """``/help``'s Markdown for the platform."""
    today: UsageTotals | None = None
    """The user's use since midnight UTC."""
    budgets: tuple[BudgetUse, ...] = ()
    default_model: str = ""
    default_pdf_engine: str = ""
    channels: tuple[ChannelSettings, ...] = ()


async def home_for(settings: Settings, store: Store, event: Event) -> Home:
    """``event``'s author's home page (``event.workspace`` scopes the channels listed)."""
    if not _allowed(settings, event):
        return Home(allowed=False)
    today = day_start(time.time())
    budgets = []
    for budget in budgets_for(settings, event):
        totals = await store.usage_totals(since=today, **budget.filters)
        budgets.append(
            BudgetUse(
                budget.subject,
                totals.input_tokens + totals.output_tokens,
                budget.tokens,
                totals.cost_usd,
                budget.usd,
            )
        )
    prefix = f"{event.platform}:{event.workspace}:" if event.workspace else f"{event.platform}:"
    stored = await store.channels_with_settings(prefix=prefix, limit=CHANNELS_SHOWN)
    return Home(
        allowed=True,
        admin=is_admin(settings, event),
        help=help_text(event.platform),
        today=await store.usage_totals(user_id=user_key(event), since=today),
        budgets=tuple(budgets),
        default_model=settings.bot_model,
        default_pdf_engine=settings.pdf_engine,
        channels=tuple(
            ChannelSettings.from_stored(ConversationKey.parse(key), values)
            for key, values in stored.items()
        ),
    )


async def channel_settings(store: Store, channel: ConversationKey) -> ChannelSettings:
    return ChannelSettings.from_stored(channel, await store.channel_settings(channel=str(channel)))


async def change_channel_settings(
    settings: Settings,
    store: Store,
    event: Event,
    values: Mapping[str, str],
    channel_model: ChannelModel,
) -> dict[str, str]:
    """Set ``event.channel``'s settings to ``values`` (name in ``SETTING_NAMES`` -> value; an
    empty value means the default), as ``/settings <name> <value>`` typed there by ``event``'s
    author would. All or nothing: the problems by name, and nothing saved, when any value is
    refused (or the author may not change settings: under ``""``)."""
    if not _allowed(settings, event):
        return {"": "Sorry, I'm not enabled for you here."}
    if not is_admin(settings, event):
        return {"": "Only the bot's admins can change this channel's settings."}
    wanted = {name: values[name].strip() or "default" for name in SETTING_NAMES if name in values}
    problems = {
        name: problem
        for name, value in wanted.items()
        if (problem := setting_problem(name, value)) is not None
    }
    if problems:
        return problems
    now = await channel_settings(store, event.channel)
    current = {
        MODEL_SETTING: now.model,
        PROMPT_SETTING: now.prompt,
        MENTION_SETTING: "required" if now.mention_required else None,
        "pdf": now.pdf_engine,
        "web": now.web_search,
    }
    for name, value in wanted.items():
        if name in current and _same(name, value, current[name]):
            continue
        command = dataclasses.replace(
            event,
            kind=EventKind.COMMAND,
            conversation=event.channel,
            command="settings",
            command_args=f"{name} {value}",
        )
        await run_command(CommandContext(settings, store, command), channel_model)
    return {}


def _same(name: str, value: str, stored: str | None) -> bool:
    """Would setting ``value`` leave the stored one as it is (nothing to do)?"""
    if value.lower() == "default" or (name == MENTION_SETTING and value.lower() == "optional"):
        return stored is None
    if name == MODEL_SETTING:
        return normalize_model_name(value) == stored
    if name == PROMPT_SETTING:
        return value == stored
    return value.lower() == stored


def _allowed(settings: Settings, event: Event) -> bool:
    return allowed(settings, event)  # the allowlists, as every other path checks them
