"""Who may use the bot where: allowlists of ``platform:id`` from the settings.

Each list that is set must let the event through; an empty list lets everyone through:
- workspaces (Slack teams, Discord guilds): checked whenever the event has one;
- channels: checked outside DMs;
- users and roles together: the author is listed, or holds a listed (Discord) role.
"""

from __future__ import annotations

from bot.events import Event, EventKind
from bot.settings import Settings

REFUSAL = (
    "Sorry, I'm not enabled for you here. Ask whoever runs this bot to add you "
    "(or this channel) to its allowlist."
)


def allowed(settings: Settings, event: Event) -> bool:
    platform = event.platform
    workspace = f"{platform}:{event.workspace}"
    if (
        settings.allowed_workspaces
        and event.workspace is not None
        and workspace not in settings.allowed_workspaces
    ):
        return False
    parts = event.channel.parts
    # A DM's channel: Discord's keys say "dm"; Slack's DM channel ids start with "D".
    in_dm = event.kind is EventKind.DIRECT_MESSAGE or parts[0] == "dm" or parts[-1][:1] == "D"
    channel = f"{platform}:{parts[-1]}"
    if settings.allowed_channels and not in_dm and channel not in settings.allowed_channels:
        return False
    if settings.allowed_users or settings.allowed_roles:
        user_ok = f"{platform}:{event.author.id}" in settings.allowed_users
        role_ok = any(f"{platform}:{role}" in settings.allowed_roles for role in event.author.roles)
        if not (user_ok or role_ok):
            return False
    return True
