"""``python -m bot check``: is each credential accepted by its service? One short request each.

A verdict is one line for the person running the bot. Secrets never appear in it: only the
variable's name, the service's answer (an error code) and the host asked.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bot.settings import Settings

TIMEOUT_S = 5.0
"""Per request: a check that hangs on an unreachable host is no use to anyone."""


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    line: str


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any
    """The JSON body, or None if it was not JSON."""


class Unreachable(Exception):
    """No HTTP answer at all; ``str()`` says why in a few words."""


async def ask(
    http: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str]
) -> Answer:
    """One request with the check's timeout; ``Unreachable`` if no answer came."""
    try:
        async with asyncio.timeout(TIMEOUT_S):
            async with http.request(method, url, headers=headers, allow_redirects=False) as resp:
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = None
                return Answer(resp.status, body)
    except TimeoutError:
        raise Unreachable(f"no answer from {host_of(url)} in {TIMEOUT_S:g} s") from None
    except aiohttp.ClientError as exc:
        raise Unreachable(f"cannot reach {host_of(url)} ({type(exc).__name__})") from None


def host_of(url: str) -> str:
    return urlsplit(url).netloc or url


async def verify_openrouter(settings: Settings, http: aiohttp.ClientSession) -> Verdict:
    """``GET /key``: OpenRouter's details of the calling key (its credit limit, if any)."""
    if settings.openrouter_api_key is None:
        return Verdict(False, "OPENROUTER_API_KEY is not set: the bot cannot answer without it")
    url = f"{settings.openrouter_base_url}/key"
    headers = {"Authorization": f"Bearer {settings.openrouter_api_key.get_secret_value()}"}
    try:
        answer = await ask(http, "GET", url, headers)
    except Unreachable as exc:
        return Verdict(False, f"OPENROUTER_API_KEY not checked: {exc}")
    if answer.status in (401, 403):
        return Verdict(False, f"OPENROUTER_API_KEY was refused by {host_of(url)} ({answer.status})")
    if answer.status != 200 or not isinstance(answer.body, dict):
        return Verdict(
            False, f"OPENROUTER_API_KEY not checked: {host_of(url)} answered {answer.status}"
        )
    data = answer.body.get("data")
    data = data if isinstance(data, dict) else {}
    remaining = data.get("limit_remaining")
    credit = f"; ${remaining:,.2f} of its limit left" if isinstance(remaining, int | float) else ""
    return Verdict(True, f"key accepted by {host_of(url)}{credit}")
