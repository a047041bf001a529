"""Discord: a discord.py client in the bot's event loop, on top of the core."""

from adapters.discord.app import DiscordAdapter, require_discord_settings

__all__ = ["DiscordAdapter", "require_discord_settings"]
