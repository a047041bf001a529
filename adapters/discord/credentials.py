"""``python -m bot check`` for Discord: ``GET /users/@me`` with the bot token."""

from __future__ import annotations

import aiohttp

from bot.credentials import Unreachable, Verdict, ask, host_of
from bot.settings import Settings


async def verify_discord(settings: Settings, http: aiohttp.ClientSession) -> Verdict:
    if settings.discord_bot_token is None:
        return Verdict(False, "DISCORD_BOT_TOKEN is not set")
    url = f"{settings.discord_api_base}/users/@me"
    headers = {"Authorization": f"Bot {settings.discord_bot_token.get_secret_value()}"}
    try:
        answer = await ask(http, "GET", url, headers)
    except Unreachable as exc:
        return Verdict(False, f"DISCORD_BOT_TOKEN not checked: {exc}")
    if answer.status == 401:
        return Verdict(False, f"DISCORD_BOT_TOKEN was refused by {host_of(url)} (401)")
    body = answer.body if isinstance(answer.body, dict) else {}
    if answer.status != 200 or not isinstance(body.get("username"), str):
        return Verdict(
            False, f"DISCORD_BOT_TOKEN not checked: {host_of(url)} answered {answer.status}"
        )
    return Verdict(True, f"DISCORD_BOT_TOKEN accepted (bot {body['username'][:40]})")
