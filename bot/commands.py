"""The commands every platform offers (/help, /model, /usage, /reset), answered as text.

``/ask`` is not here: it is a question and goes through a normal turn.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.budgets import budgets_for, day_start
from bot.events import Event
from bot.feedback import share_lines
from bot.settings import Settings
from bot.tokens import model_info
from bot.web_search import WEB_SETTING
from storage.base import Store, UsageTotals

log = logging.getLogger(__name__)

PLATFORMS = frozenset({"slack", "discord", "console"})
CHAT_PLATFORMS = frozenset({"slack", "discord"})
SETTING_NAMES = ("prompt", "mention", "pdf", "web", "model", "reasoning")
"""The channel settings ``/settings`` shows and changes, in the order offered."""


@dataclass(frozen=True, slots=True)
class Option:
    """One argument of a command, for platforms that type them (Discord's slash options)."""

    name: str
    description: str
    required: bool = False
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Command:
    """One command, as every platform offers it: the registry that Slack's listeners and
    manifest, Discord's command tree, the terminal and ``/help`` are all derived from."""

    name: str
    description: str
    """One line, under 100 characters (Discord's limit), for menus and manifests."""
    usage: str
    """How it is typed, e.g. ``/model [name]``."""
    summary: str
    """What ``/help`` says of it (Markdown)."""
    options: tuple[Option, ...] = ()
    private: bool = True
    """Answered to the one who typed it (ephemeral); ``/ask`` is answered in public."""
    admin_only: bool = False
    """Needs ``BOT_ADMINS``: to change things (``/model``, ``/settings``; showing them does
    not), or at all (``/stats``)."""
    platforms: frozenset[str] = PLATFORMS


COMMANDS: tuple[Command, ...] = (
    Command(
        "ask",
        "Ask the bot a question",
        "/ask <question>",
        "ask in a new thread",
        options=(Option("question", "What you want to know", required=True),),
        private=False,
        platforms=CHAT_PLATFORMS,
    ),
    Command(
        "model",
        "Show or set this channel's model",
        "/model [name]",
        "show or set this channel's model (any OpenRouter model, e.g. "
        "`anthropic/claude-sonnet-4.5`)",
        options=(Option("name", "An OpenRouter model, e.g. openai/gpt-5-mini, or 'default'"),),
        admin_only=True,
    ),
    Command(
        "settings",
        "Show or change this channel's settings",
        "/settings",
        "this channel's settings; admins change them: `/settings prompt <instructions>`, "
        "`/settings mention required|optional`, `/settings pdf pdf-text|mistral-ocr|native`, "
        "`/settings web on|off`, `/settings reasoning low|medium|high` (`default` resets any of "
        "them)",
        options=(
            Option(
                "setting", "What to change (leave empty to see them all)", choices=SETTING_NAMES
            ),
            Option("value", "The new value, or 'default'"),
        ),
        admin_only=True,
    ),
    Command(
        "usage",
        "Your and this channel's tokens and cost",
        "/usage",
        "tokens and cost, yours and this channel's, and the 👍 share of answers here",
    ),
    Command(
        "stats",
        "Feedback on the bot's answers, per model and channel (admins)",
        "/stats",
        "admins: the share of 👍 among the votes on answers, per model and channel",
        admin_only=True,
        platforms=CHAT_PLATFORMS,
    ),
    Command(
        "reset",
        "Forget this conversation and start fresh",
        "/reset",
        "forget this conversation and its documents, and start fresh",
    ),
    Command(
        "files",
        "The documents this conversation knows",
        "/files",
        "the documents this conversation knows",
    ),
    Command(
        "attach",
        "Send a file with your next message",
        "/attach <path>",
        "send a file with your next message",
        platforms=frozenset({"console"}),
    ),
    Command(
        "quit",
        "Leave the chat",
        "/quit",
        "leave (Ctrl-D works too)",
        platforms=frozenset({"console"}),
    ),
    Command("help", "What the bot can do", "/help", "this message"),
)


def commands_for(platform: str) -> tuple[Command, ...]:
    return tuple(c for c in COMMANDS if platform in c.platforms)


def command_named(name: str) -> Command:
    return next(c for c in COMMANDS if c.name == name)


_HOW_TO_ASK = {
    "slack": "mention me in a channel (I answer in the thread), or message me directly.",
    "discord": "mention me in a channel or reply to one of my messages (I reply to you), "
    "or message me directly.",
    "console": "type a question and press Enter.",
}
_REMEMBERS = {
    "slack": "follow-ups in the same thread or DM carry on where we left off.",
    "discord": "replies to my answers, and messages in a thread or DM, carry on where we left off.",
    "console": "everything in this chat carries on where we left off (also after a restart).",
}


@dataclass(frozen=True, slots=True)
class ToolsHere:
    """The tools a channel's questions may use, for ``/help``."""

    own: tuple[str, ...]
    """The bot's own tools."""
    servers: tuple[tuple[str, tuple[str, ...] | None], ...] = ()
    """Each MCP server that serves the channel, with its tools; None while it is down."""
    loading: bool = False
    """Not known yet: the bot has just started."""


def _tools_lines(tools: ToolsHere) -> list[str]:
    if tools.loading:
        return ["", "**Tools**", "• Still starting: ask `/help` again in a few seconds."]
    lines = ["", "**Tools**", f"• Mine: {', '.join(f'`{t}`' for t in tools.own) or 'none'}"]
    for server, names in tools.servers:
        if names is None:
            lines.append(f"• `{server}`: unavailable right now")
        else:
            shown = ", ".join(f"`{server}.{name}`" for name in names) or "no tools"
            lines.append(f"• `{server}`: {shown}")
    return lines


def help_text(platform: str, tools: ToolsHere | None = None) -> str:
    """``/help`` in Markdown, for the platform it is asked on; with the channel's ``tools``
    when they are known (the agent stack has loaded)."""
    commands = commands_for(platform if platform in PLATFORMS else "slack")
    files = (
        "Read the PDFs, images and text files you attach (Markdown, CSV, JSON, code …)."
        if platform != "console"
        else "Read the PDFs, images and text files you `/attach` (Markdown, CSV, JSON, code …)."
    )
    lines = [
        "**What I can do**",
        f"• Answer questions — {_HOW_TO_ASK.get(platform, _HOW_TO_ASK['slack'])}",
        "• Check the weather and the time anywhere: “weather in Tokyo this weekend?”",
        f"• {files}",
        f"• Remember the conversation: {_REMEMBERS.get(platform, _REMEMBERS['slack'])}",
        "",
        "**Commands**",
        *(f"• `{c.usage}` — {c.summary}" for c in commands),
    ]
    if tools is not None:
        lines += _tools_lines(tools)
    return "\n".join(lines)


def for_platform(markdown: str, platform: str) -> str:
    """A command's Markdown as each surface shows it: Slack's mrkdwn makes ``*x*`` bold,
    Discord takes Markdown as it is, and the terminal shows plain text."""
    if platform == "slack":
        return _BOLD.sub(r"*\1*", markdown)
    if platform == "console":
        return _CODE.sub(r"\1", _BOLD.sub(r"\1", markdown))
    return markdown


_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE = re.compile(r"`([^`\n]+)`")

ChannelModel = Callable[[Event], Awaitable[str]]

MODEL_SETTING = "model"
"""A channel's model (``/model``), used instead of ``BOT_MODEL``."""
PROMPT_SETTING = "prompt"
"""A channel's instructions (``/settings prompt``), added to the system prompt."""
MENTION_SETTING = "mention"
"""``required``: thread follow-ups need a mention; ``optional``: they don't (the default)."""
REASONING_SETTING = "reasoning"
"""How hard reasoning models think here (``/settings reasoning``), over ``BOT_REASONING_EFFORT``."""
REASONING_EFFORTS = ("low", "medium", "high")
PROMPT_MAX_CHARS = 2_000
PDF_ENGINES = ("pdf-text", "mistral-ocr", "native")
SETTINGS_USAGE = (
    "Usage: `/settings` to see this channel's settings, or `/settings prompt <instructions>`, "
    "`/settings mention required|optional`, `/settings pdf pdf-text|mistral-ocr|native`, "
    "`/settings web on|off`, `/settings model <name>`, `/settings reasoning low|medium|high` — "
    "`default` instead of a value resets it."
)


@dataclass(frozen=True, slots=True)
class CommandContext:
    settings: Settings
    store: Store
    event: Event
    tools: ToolsHere | None = None
    """The tools of the event's channel (``/help``); None before the agent stack loads."""


def normalize_model_name(name: str) -> str:
    """``anthropic/claude-sonnet-4.5`` -> ``openrouter/anthropic/claude-sonnet-4.5``."""
    name = name.strip().strip("`")
    return name if name.startswith("openrouter/") else f"openrouter/{name}"


def is_admin(settings: Settings, event: Event) -> bool:
    admins = settings.admin_users
    return (
        not admins or f"{event.platform}:{event.author.id}" in admins or event.author.id in admins
    )


def _totals_line(label: str, totals: UsageTotals) -> str:
    cost = f"${totals.cost_usd:.4f}" if totals.cost_usd else "$0"
    reasoning = (
        f" ({totals.reasoning_tokens:,} of them reasoning)" if totals.reasoning_tokens else ""
    )
    return (
        f"• {label}: {totals.turns} answer{'s' if totals.turns != 1 else ''}, "
        f"{totals.input_tokens:,} tokens in / {totals.output_tokens:,} out{reasoning}, {cost}"
    )


def _size(size: int) -> str:
    if size >= 1_000_000:
        return f"{size / 1_000_000:.1f} MB"
    return f"{max(1, round(size / 1000))} KB"


async def run_command(ctx: CommandContext, channel_model: ChannelModel) -> str:
    """The command's answer, formatted for the platform it was typed on."""
    return for_platform(await _answer(ctx, channel_model), ctx.event.platform)


async def _answer(ctx: CommandContext, channel_model: ChannelModel) -> str:
    event, store, settings = ctx.event, ctx.store, ctx.settings
    name = (event.command or "").lower().lstrip("/")
    args = event.command_args.strip()
    conversation, channel = str(event.conversation), str(event.channel)

    if name == "help":
        return help_text(event.platform, ctx.tools)
    if name == "reset":
        forgotten = await store.forget_conversation(conversation=conversation)
        if not (forgotten.items or forgotten.files):
            return "There was nothing to forget here; the next message starts fresh."
        count = forgotten.files
        documents = f" and its {count} document{'s' if count != 1 else ''}" if count else ""
        return f"Done — I've forgotten this conversation{documents}. The next message starts fresh."
    if name == "model":
        current = await channel_model(event)
        if not args:
            fallbacks = ", ".join(f"`{m}`" for m in settings.bot_fallback_models) or "none"
            return (
                f"This channel uses `{current}` (fallbacks: {fallbacks}). "
                "Set another with `/model <name>`, or `/model default`."
            )
        if not is_admin(settings, event):
            return "Only the bot's admins can change the model here."
        if args.lower() == "default":
            await store.set_channel_setting(channel=channel, name=MODEL_SETTING, value=None)
            return f"This channel is back to the default model, `{settings.bot_model}`."
        if (problem := setting_problem(MODEL_SETTING, args)) is not None:
            return problem
        chosen = normalize_model_name(args)
        await store.set_channel_setting(channel=channel, name=MODEL_SETTING, value=chosen)
        note = ""
        if not model_info(chosen):
            note = (
                " I don't know its context size, so I'll keep history short; "
                "if the name is wrong, the next answer will say so."
            )
        return f"This channel now uses `{chosen}`.{note}"
    if name == "settings":
        return await _settings(ctx, channel_model, args)
    if name == "files":
        files = await store.list_files(conversation=conversation)
        if not files:
            return "No documents in this conversation yet: attach a PDF or a file to a message."
        lines = ["**Documents in this conversation**"]
        lines += [f"• {f.name} ({_size(f.size)}, {f.mime_type})" for f in files]
        return "\n".join(lines)
    if name == "usage":
        user = f"{event.platform}:{event.author.id}"
        day = time.time() - 86_400
        lines = [
            "**Usage**",
            _totals_line("You, last 24 h", await store.usage_totals(user_id=user, since=day)),
            _totals_line("You, all time", await store.usage_totals(user_id=user)),
            _totals_line("This channel, all time", await store.usage_totals(channel=channel)),
        ]
        lines += await _budget_lines(ctx)
        shares = await store.vote_shares(channel=channel)
        if shares:
            lines += ["**Feedback on answers here**", *share_lines(shares, with_channel=False)]
        return "\n".join(lines)
    if name == "stats":
        if not is_admin(settings, event):
            return "Only the bot's admins can see the feedback statistics."
        shares = await store.vote_shares()
        if not shares:
            return "No votes on answers yet: they come from the 👍 and 👎 under each answer."
        return "\n".join(
            [
                "**Feedback on answers, per channel and model**",
                *share_lines(shares, with_channel=True),
            ]
        )
    return f"I don't know the command /{name}. Type /help to see what I can do."


async def _budget_lines(ctx: CommandContext) -> list[str]:
    """Today's use of each daily budget that is set (the UTC day, as the core counts it)."""
    today = day_start(time.time())
    lines: list[str] = []
    for budget in budgets_for(ctx.settings, ctx.event):
        totals = await ctx.store.usage_totals(since=today, **budget.filters)
        parts = []
        if budget.tokens:
            used = totals.input_tokens + totals.output_tokens
            parts.append(f"{used:,} of {budget.tokens:,} tokens")
        if budget.usd:
            parts.append(f"${totals.cost_usd:.2f} of ${budget.usd:.2f}")
        whose = "Your" if budget.subject == "You" else f"{budget.subject}'s"
        lines.append(f"• {whose} budget today: {', '.join(parts)} (resets at midnight UTC)")
    return lines


async def _settings(ctx: CommandContext, channel_model: ChannelModel, args: str) -> str:
    settings, store, event = ctx.settings, ctx.store, ctx.event
    channel = str(event.channel)
    if not args:
        stored = await store.channel_settings(channel=channel)
        prompt = stored.get(PROMPT_SETTING)
        mention = stored.get(MENTION_SETTING, "optional")
        pdf = stored.get("pdf_engine", f"{settings.pdf_engine} (default)")
        lines = [
            "**This channel's settings**",
            f"• model: `{await channel_model(event)}`",
            f"• prompt: {_quote(prompt) if prompt else 'none (the default instructions only)'}",
            f"• mention: {mention} — "
            + (
                "thread follow-ups need a mention"
                if mention == "required"
                else "follow-ups in my threads need no mention"
            ),
            f"• pdf: {pdf}",
            f"• web: {_web_line(settings, stored.get(WEB_SETTING))}",
            f"• reasoning: {_reasoning_shown(settings, stored.get(REASONING_SETTING))}",
            "Admins change them with `/settings <name> <value>`; `/settings` alone shows this.",
        ]
        return "\n".join(lines)
    key, _, value = args.partition(" ")
    key, value = key.lower(), value.strip()
    if key not in SETTING_NAMES or not value:
        return SETTINGS_USAGE
    if not is_admin(settings, event):
        return "Only the bot's admins can change this channel's settings."
    reset = value.lower() == "default"
    if key == "model":
        return await _answer(
            CommandContext(
                settings=settings,
                store=store,
                event=_as_command(event, "model", value),
            ),
            channel_model,
        )
    if key == "prompt":
        if reset:
            await store.set_channel_setting(channel=channel, name=PROMPT_SETTING, value=None)
            return "This channel's extra instructions are removed."
        if (problem := setting_problem(PROMPT_SETTING, value)) is not None:
            return problem
        await store.set_channel_setting(channel=channel, name=PROMPT_SETTING, value=value)
        return f"From the next message on, I also follow these instructions here: {_quote(value)}"
    if key == "mention":
        choice = value.lower()
        if reset:
            choice = "optional"
        if (problem := setting_problem(MENTION_SETTING, choice)) is not None:
            return problem
        await store.set_channel_setting(
            channel=channel, name=MENTION_SETTING, value=None if choice == "optional" else choice
        )
        if choice == "required":
            return "Done: in this channel I answer thread follow-ups only when mentioned."
        return "Done: in this channel I answer follow-ups in my threads without a mention."
    if key == "reasoning":
        return await _set_reasoning(ctx, value.lower())
    if key == "web":
        return await _set_web(ctx, value.lower())
    engine = value.lower()
    if reset:
        await store.set_channel_setting(channel=channel, name="pdf_engine", value=None)
        return f"PDFs here are read with the default engine, `{settings.pdf_engine}`."
    if (problem := setting_problem("pdf", engine)) is not None:
        return problem
    await store.set_channel_setting(channel=channel, name="pdf_engine", value=engine)
    return f"PDFs attached here from now on are read with `{engine}`."


def _web_line(settings: Settings, chosen: str | None) -> str:
    deployment = "on" if settings.web_search else "off"
    state = chosen if chosen in ("on", "off") else f"{deployment} (default)"
    if state.startswith("on"):
        return f"{state} — answers search the web and list their sources"
    return f"{state} — answers come from the model alone"


async def _set_web(ctx: CommandContext, choice: str) -> str:
    channel = str(ctx.event.channel)
    if choice == "default":
        await ctx.store.set_channel_setting(channel=channel, name=WEB_SETTING, value=None)
        state = "on" if ctx.settings.web_search else "off"
        return f"Web search here follows the bot's default: {state}."
    if (problem := setting_problem("web", choice)) is not None:
        log.info("refused a /settings web value that is not on, off or default")
        return problem
    await ctx.store.set_channel_setting(channel=channel, name=WEB_SETTING, value=choice)
    if choice == "on":
        return (
            "Done: answers here search the web first and list their sources "
            f"(up to {ctx.settings.web_search_results} results a search, billed by OpenRouter)."
        )
    return "Done: answers here no longer search the web."


def setting_problem(name: str, value: str) -> str | None:
    """Why ``value`` cannot be this channel's ``name`` setting (one of ``SETTING_NAMES``), in
    words for its user; None when it can. ``default`` (reset) is always fine. The one check
    behind ``/model``, ``/settings`` and the platforms' settings forms."""
    value = value.strip()
    if value.lower() == "default":
        return None
    if name == MODEL_SETTING:
        if not value or " " in value or len(value) > 200:
            return "That doesn't look like a model name: use e.g. `/model openai/gpt-5-mini`."
    elif name == PROMPT_SETTING:
        if len(value) > PROMPT_MAX_CHARS:
            return f"That's too long: keep the instructions under {PROMPT_MAX_CHARS:,} characters."
    elif name == MENTION_SETTING:
        if value.lower() not in ("required", "optional"):
            return "Use `/settings mention required` or `/settings mention optional`."
    elif name == "pdf":
        if value.lower() not in PDF_ENGINES:
            return f"Use one of {', '.join(f'`{e}`' for e in PDF_ENGINES)} (or `default`)."
    elif name == REASONING_SETTING:
        if value.lower() not in REASONING_EFFORTS:
            return "Use `/settings reasoning low`, `medium`, `high` or `default`."
    elif name == "web":
        if value.lower() not in ("on", "off"):
            return "Use `/settings web on` or `/settings web off` (or `default`)."
    else:
        return SETTINGS_USAGE
    return None


def _reasoning_shown(settings: Settings, stored: str | None) -> str:
    if stored:
        return stored
    if settings.reasoning_effort:
        return f"{settings.reasoning_effort} (default)"
    return "the model's default"


async def _set_reasoning(ctx: CommandContext, choice: str) -> str:
    channel = str(ctx.event.channel)
    if choice == "default":
        await ctx.store.set_channel_setting(channel=channel, name=REASONING_SETTING, value=None)
        return f"Reasoning effort here is back to {_reasoning_shown(ctx.settings, None)}."
    if choice not in REASONING_EFFORTS:
        return "Use `/settings reasoning low`, `medium`, `high` or `default`."
    await ctx.store.set_channel_setting(channel=channel, name=REASONING_SETTING, value=choice)
    return (
        f"Reasoning models here now think with `{choice}` effort "
        "(models that don't reason ignore it)."
    )


def _quote(text: str) -> str:
    return f"“{text if len(text) <= 300 else text[:300] + '…'}”"


def _as_command(event: Event, name: str, args: str) -> Event:
    return dataclasses.replace(event, command=name, command_args=args)
