"""The default world's identities and tokens, and the limits Slack applies."""

from __future__ import annotations

from typing import Any, Final

JSONDict = dict[str, Any]

DEFAULT_BOT_TOKEN: Final = "xoxb-1-fake-bot-token"
DEFAULT_APP_TOKEN: Final = "xapp-1-A0APP-1-fake-app-token"
DEFAULT_SIGNING_SECRET: Final = "fake-signing-secret-0123456789abcdef"
TEAM_ID: Final = "T1"
BOT_USER_ID: Final = "U0BOT"
BOT_ID: Final = "B0BOT"
APP_ID: Final = "A0APP"
USER_ID: Final = "U123"
"""The default human in the builders."""
VERIFICATION_TOKEN: Final = "fake-verification-token"

POST_TEXT_LIMIT: Final = 40_000
"""``chat.postMessage`` truncates ``text`` beyond this (it does not fail)."""
UPDATE_TEXT_LIMIT: Final = 4_000
"""``chat.update`` fails with ``msg_too_long`` a little above this in practice."""
STREAM_CHUNK_LIMIT: Final = 12_000
"""Markdown per ``chat.*Stream`` call (its ``markdown_text``)."""
STREAM_LIFETIME: Final = 300.0
"""Seconds a native stream accepts appends; later calls get ``message_not_in_streaming_state``."""
RESPONSE_URL_USES: Final = 5
SUGGESTED_PROMPTS_MAX: Final = 4
"""``assistant.threads.setSuggestedPrompts`` takes up to four prompts."""
