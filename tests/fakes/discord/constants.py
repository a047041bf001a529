"""Discord's numbers: intents, channel types, flags, limits, and the fake's defaults."""

from __future__ import annotations

import re
from typing import Any, Final

JSONDict = dict[str, Any]

DEFAULT_TOKEN: Final = "fake-discord-bot-token"
API_PREFIX: Final = "/api/v10"
GATEWAY_PATH: Final = "/gateway"
REDACTED: Final = "[REDACTED]"
DISCORD_EPOCH_MS: Final = 1_420_070_400_000
MAX_CONTENT: Final = 2000
HEARTBEAT_INTERVAL_MS: Final = 41_250
INTERACTION_TIMEOUT: Final = 3.0
"""Seconds after INTERACTION_CREATE within which the callback must arrive (10062 later)."""
DEFAULT_LIMIT: Final = 50
DEFAULT_PER_S: Final = 1.0
"""Every route allows ``DEFAULT_LIMIT`` requests per ``DEFAULT_PER_S`` seconds per top-level
resource unless ``set_route_limit`` says otherwise."""

# Gateway intents (bit values from the Discord docs).
INTENT_GUILDS: Final = 1 << 0
INTENT_GUILD_MEMBERS: Final = 1 << 1
INTENT_GUILD_MESSAGES: Final = 1 << 9
INTENT_DIRECT_MESSAGES: Final = 1 << 12
INTENT_MESSAGE_CONTENT: Final = 1 << 15

# Channel types.
TEXT: Final = 0
DM: Final = 1
GROUP_DM: Final = 3

FORWARD: Final = 1
"""``message_reference.type`` of a forward (0 is a reply)."""
PUBLIC_THREAD: Final = 11
PRIVATE_THREAD: Final = 12

# Message flags.
FLAG_EPHEMERAL: Final = 1 << 6
FLAG_LOADING: Final = 1 << 7

# Interaction callback types that create a message.
CB_MESSAGE: Final = 4
CB_DEFERRED_MESSAGE: Final = 5

# VIEW_CHANNEL, SEND_MESSAGES, EMBED_LINKS, ATTACH_FILES, READ_MESSAGE_HISTORY, ADD_REACTIONS,
# USE_APPLICATION_COMMANDS, CREATE_PUBLIC_THREADS, SEND_MESSAGES_IN_THREADS: what @everyone gets.
DEFAULT_PERMISSIONS: Final = (
    (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 6) | (1 << 31) | (1 << 35)
) | (1 << 38)
# GATEWAY_MESSAGE_CONTENT_LIMITED | APPLICATION_COMMAND_BADGE: an unverified bot with the intent.
DEFAULT_APPLICATION_FLAGS: Final = (1 << 19) | (1 << 23)

MENTION = re.compile(r"<@!?(\d+)>")
