"""The Home tab and the channel-settings modal as Block Kit: pure functions of ``bot.home``'s
content, and the modal's submitted state read back into setting values.

Limits kept here (Slack refuses the whole view otherwise): a section's text is at most 3,000
characters, a button's 75, a modal's title 24, a view at most 100 blocks (``CHANNELS_SHOWN``
channels keep it far below).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from bot.commands import PDF_ENGINES, PROMPT_MAX_CHARS, for_platform
from bot.home import ChannelSettings, Home
from bot.settings import Settings

EDIT_ACTION: Final = "home_edit_channel"
"""An admin's Edit button beside a channel (its value: the channel id)."""
NEW_ACTION: Final = "home_new_channel"
"""An admin's button for a channel that has no settings yet (the modal asks which)."""
MODAL_CALLBACK: Final = "channel_settings"
VALUE: Final = "value"
"""The action id of every input in the modal (its block id names the setting)."""
CHANNEL_BLOCK: Final = "channel"
SETTING_BLOCKS: Final = ("model", "prompt", "mention", "pdf")
"""The modal's inputs, named as ``/settings`` names them (its errors come back by name)."""
DEFAULT_OPTION: Final = "default"
SECTION_MAX: Final = 3000
NOT_ENABLED: Final = (
    "Sorry, I'm not enabled for you here. Ask whoever runs this bot to add you to its allowlist."
)


def home_view(home: Home) -> dict[str, Any]:
    """The Home tab: what the bot can do, today's usage against the budgets, the channels."""
    if not home.allowed:
        return {"type": "home", "blocks": [_section(NOT_ENABLED)]}
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Your assistant"}},
        _section(_escape(for_platform(home.help, "slack"))),
        {"type": "divider"},
        _section(_usage(home)),
        {"type": "divider"},
        _section(
            "*Channel settings*\nChannels without their own use "
            f"`{_escape(home.default_model)}`, follow-ups in threads need no mention, and PDFs "
            f"are read with `{home.default_pdf_engine}`."
        ),
    ]
    for channel in home.channels:
        block = _section(_channel_line(channel))
        if home.admin:
            block["accessory"] = _button("Edit", EDIT_ACTION, value=channel.channel.parts[-1])
        blocks.append(block)
    if home.admin:
        blocks.append({"type": "actions", "elements": [_button("Set up a channel", NEW_ACTION)]})
    else:
        blocks.append(_context("Only the bot's admins can change these."))
    return {"type": "home", "blocks": blocks}


def settings_modal(
    settings: Settings, channel: ChannelSettings | None, *, channel_id: str | None
) -> dict[str, Any]:
    """The modal that edits ``channel``'s settings (``None``: a channel the admin picks)."""
    model_now, prompt_now = (channel.model, channel.prompt) if channel else (None, None)
    required = channel.mention_required if channel else False
    pdf_now = channel.pdf_engine if channel else None
    blocks: list[dict[str, Any]] = []
    if channel_id is not None:
        blocks.append(_section(f"Settings of <#{channel_id}>"))
    else:
        blocks.append(
            _input(
                CHANNEL_BLOCK,
                "Channel",
                {
                    "type": "conversations_select",
                    "action_id": VALUE,
                    "filter": {"include": ["public", "private"], "exclude_bot_users": True},
                },
            )
        )
    model: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": VALUE,
        "placeholder": _plain(f"default: {settings.bot_model}"[:150]),
        "max_length": 200,
    }
    if model_now:
        model["initial_value"] = model_now
    prompt: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": VALUE,
        "multiline": True,
        "max_length": PROMPT_MAX_CHARS,
    }
    if prompt_now:
        prompt["initial_value"] = prompt_now
    mention = ["optional", "required"]
    pdf = [DEFAULT_OPTION, *PDF_ENGINES]
    blocks += [
        _input(
            "model",
            "Model",
            model,
            optional=True,
            hint="Any OpenRouter model, e.g. anthropic/claude-sonnet-4.5. Empty: the default.",
        ),
        _input(
            "prompt",
            "Extra instructions",
            prompt,
            optional=True,
            hint="Added to the bot's instructions in this channel. Empty: none.",
        ),
        _input(
            "mention",
            "Thread follow-ups",
            _select(mention, "required" if required else "optional", _mention_label),
        ),
        _input(
            "pdf",
            "PDF reader",
            _select(pdf, pdf_now or DEFAULT_OPTION, _pdf_label(settings.pdf_engine)),
        ),
    ]
    return {
        "type": "modal",
        "callback_id": MODAL_CALLBACK,
        "private_metadata": channel_id or "",
        "title": _plain("Channel settings"),
        "submit": _plain("Save"),
        "close": _plain("Cancel"),
        "blocks": blocks,
    }


def submitted(view: Mapping[str, Any]) -> tuple[str | None, dict[str, str]]:
    """The channel a submitted modal is for (None: none chosen) and its setting values
    (``""``: the default), from ``view.state.values``."""
    state = (view.get("state") or {}).get("values") or {}

    def entry(block: str) -> Mapping[str, Any]:
        found = (state.get(block) or {}).get(VALUE)
        return found if isinstance(found, Mapping) else {}

    channel = str(view.get("private_metadata") or "") or entry(CHANNEL_BLOCK).get(
        "selected_conversation"
    )
    values: dict[str, str] = {}
    for name in SETTING_BLOCKS:
        if name not in state:
            continue
        item = entry(name)
        if "selected_option" in item:
            chosen = str((item.get("selected_option") or {}).get("value") or "")
            values[name] = "" if chosen == DEFAULT_OPTION else chosen
        else:
            values[name] = str(item.get("value") or "")
    return (str(channel) if channel else None), values


def _usage(home: Home) -> str:
    lines = ["*Your usage today* (UTC)"]
    today = home.today
    if today is not None:
        answers = f"{today.turns} answer{'s' if today.turns != 1 else ''}"
        tokens = today.input_tokens + today.output_tokens
        lines.append(f"• {answers}, {tokens:,} tokens, ${today.cost_usd:.4f}")
    for budget in home.budgets:
        parts = []
        if budget.tokens_limit:
            share = min(100, round(100 * budget.tokens_used / budget.tokens_limit))
            parts.append(f"{budget.tokens_used:,} of {budget.tokens_limit:,} tokens ({share}%)")
        if budget.usd_limit:
            parts.append(f"${budget.usd_used:.2f} of ${budget.usd_limit:.2f}")
        whose = "Your" if budget.subject == "You" else f"{budget.subject}'s"
        lines.append(f"• {whose} daily budget: {', '.join(parts)}")
    if home.budgets:
        lines.append("Budgets reset at midnight UTC.")
    else:
        lines.append("No daily budget is set.")
    return "\n".join(lines)


def _channel_line(channel: ChannelSettings) -> str:
    parts = [
        f"model `{_escape(channel.model)}`" if channel.model else "default model",
        "mention required in threads" if channel.mention_required else "no mention needed",
        f"PDFs with `{channel.pdf_engine}`" if channel.pdf_engine else "default PDF reader",
    ]
    if channel.web_search:
        parts.append(f"web search {channel.web_search}")
    line = f"<#{channel.channel.parts[-1]}>: {', '.join(parts)}"
    if channel.prompt:
        prompt = channel.prompt if len(channel.prompt) <= 300 else channel.prompt[:300] + "…"
        line += f"\n_Instructions:_ {_escape(prompt)}"
    return line


def _mention_label(value: str) -> str:
    if value == "required":
        return "Need a mention"
    return "Answered without a mention"


def _pdf_label(default: str) -> Callable[[str], str]:
    def label(value: str) -> str:
        return f"Default ({default})" if value == DEFAULT_OPTION else value

    return label


def _select(values: list[str], initial: str, label: Callable[[str], str]) -> dict[str, Any]:
    options = [{"text": _plain(label(v)), "value": v} for v in values]
    chosen = next((o for o in options if o["value"] == initial), options[0])
    return {
        "type": "static_select",
        "action_id": VALUE,
        "options": options,
        "initial_option": chosen,
    }


def _input(
    block_id: str, label: str, element: dict[str, Any], *, optional: bool = False, hint: str = ""
) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "input",
        "block_id": block_id,
        "label": _plain(label),
        "element": element,
        "optional": optional,
    }
    if hint:
        block["hint"] = _plain(hint)
    return block


def _button(text: str, action_id: str, *, value: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {"type": "button", "action_id": action_id, "text": _plain(text)}
    if value is not None:
        button["value"] = value
    return button


def _section(text: str) -> dict[str, Any]:
    if len(text) > SECTION_MAX:
        text = text[: SECTION_MAX - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _plain(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}


def _escape(text: str) -> str:
    """Text shown as it is in mrkdwn: Slack reads ``<`` ``>`` ``&`` as its markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
