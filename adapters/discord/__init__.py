"""Discord: a discord.py client in the bot's event loop, on top of the core.

- ``app``: ``DiscordAdapter``, the public entry: start, close, health; owns what the others share.
- ``gateway``: ``ChatClient`` (discord.py's client kept alive whatever the gateway sends) and
  ``ShardedChatClient`` (the same over several shards, ``DISCORD_SHARD_COUNT``), the REST and
  gateway URLs, the Message Content intent check.
- ``messages``: which messages are for the bot, the conversation each continues (reply chains,
  threads, auto-threads), attachment downloads, the answer in the channel.
- ``commands``: the slash commands, built from ``bot.commands.COMMANDS``, synced, answered.
- ``translate``: ids, places and conversation keys -> ``bot.events.Event``, as pure functions.
- ``reply``: an answer streamed into Discord messages (edits, 2,000-character splits, typing).
- ``credentials``: ``python -m bot check``'s look at the bot token.
"""

from adapters.discord.app import DiscordAdapter, require_discord_settings

__all__ = ["DiscordAdapter", "require_discord_settings"]
