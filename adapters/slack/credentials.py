"""``python -m bot check`` for Slack: ``auth.test`` with the bot token; the app token (Socket
Mode) with ``apps.connections.open``, the one method it exists for (the URL it hands out is
never used and expires on its own)."""

from __future__ import annotations

import aiohttp

from bot.credentials import Unreachable, Verdict, ask, host_of
from bot.settings import Settings


async def verify_slack(settings: Settings, http: aiohttp.ClientSession) -> list[Verdict]:
    tokens = [("SLACK_BOT_TOKEN", "auth.test", settings.slack_bot_token)]
    if settings.slack_app_token is not None:
        tokens.append(("SLACK_APP_TOKEN", "apps.connections.open", settings.slack_app_token))
    verdicts = []
    for name, method, secret in tokens:
        if secret is None:
            continue
        url = f"{settings.slack_api_url}{method}"
        headers = {"Authorization": f"Bearer {secret.get_secret_value()}"}
        try:
            answer = await ask(http, "POST", url, headers)
        except Unreachable as exc:
            verdicts.append(Verdict(False, f"{name} not checked: {exc}"))
            continue
        body = answer.body if isinstance(answer.body, dict) else {}
        if answer.status == 200 and body.get("ok") is True:
            who = f" (workspace {body['team']})" if isinstance(body.get("team"), str) else ""
            verdicts.append(Verdict(True, f"{name} accepted{who}"))
        elif isinstance(body.get("error"), str):
            error = body["error"][:40]
            verdicts.append(Verdict(False, f"{name} was refused by {host_of(url)} ({error})"))
        else:
            verdicts.append(
                Verdict(False, f"{name} not checked: {host_of(url)} answered {answer.status}")
            )
    return verdicts
