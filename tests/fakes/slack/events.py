"""Signed Events API, slash command and interactivity requests to an app's request URL."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp

from tests.fakes.slack.builders import event_envelope
from tests.fakes.slack.constants import TEAM_ID, USER_ID, VERIFICATION_TOKEN, JSONDict
from tests.fakes.slack.records import Delivery
from tests.fakes.slack.signing import signed_headers
from tests.fakes.slack.state import SlackState


class EventDelivery(SlackState):
    """What Slack POSTs to an app in HTTP mode, and the app's answers."""

    async def deliver_event(
        self,
        url: str,
        signing_secret: str,
        event: Mapping[str, Any],
        *,
        event_id: str | None = None,
        team_id: str = TEAM_ID,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        timestamp: int | None = None,
    ) -> tuple[int, str]:
        """POST a signed ``event_callback`` to an app's request URL; ``(status, body)`` back.

        A retry (``retry_num``) adds ``X-Slack-Retry-Num`` and ``X-Slack-Retry-Reason``
        (default ``http_timeout``); pass the first delivery's ``event_id`` to make it a true
        retry. A user message in the event is also stored in ``messages(channel)``, as it
        exists in Slack by the time the event arrives. ``timestamp`` (unix seconds) signs with
        another time, e.g. one older than 5 minutes that bolt must reject.
        """
        payload = event_envelope(
            event,
            team_id=team_id,
            api_app_id=self.app_id,
            bot_user_id=self._workspace(team_id).bot_user_id,
            event_id=event_id,
        )
        self._absorb_event(event)
        body = json.dumps(payload, separators=(",", ":"))
        headers = signed_headers(
            signing_secret, body, timestamp=timestamp, content_type="application/json"
        )
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        return await self._deliver("event", url, payload, body, headers)

    async def deliver_command(
        self,
        url: str,
        signing_secret: str,
        command: str = "/ask",
        text: str = "",
        *,
        user_id: str = USER_ID,
        user_name: str = "alice",
        channel_id: str = "C123",
        channel_name: str = "general",
        team_id: str = TEAM_ID,
        timestamp: int | None = None,
    ) -> tuple[int, str]:
        """POST a signed, form-encoded slash command with a ``response_url`` on this fake.

        The payload sent is ``deliveries[-1].payload`` (its ``response_url`` for ``responses()``).
        """
        payload = self._command_payload(
            command,
            text,
            user_id=user_id,
            user_name=user_name,
            channel_id=channel_id,
            channel_name=channel_name,
            team_id=team_id,
        )
        body = urlencode(payload)
        headers = signed_headers(
            signing_secret,
            body,
            timestamp=timestamp,
            content_type="application/x-www-form-urlencoded",
        )
        return await self._deliver("command", url, payload, body, headers)

    async def deliver_interaction(
        self, url: str, signing_secret: str, payload: Mapping[str, Any]
    ) -> tuple[int, str]:
        """POST an interactivity payload to an app's request URL, signed, form-encoded as
        Slack sends it; ``(status, body)`` back (a ``view_submission``'s answer is the body)."""
        body = urlencode({"payload": json.dumps(payload, separators=(",", ":"))})
        headers = signed_headers(
            signing_secret, body, content_type="application/x-www-form-urlencoded"
        )
        return await self._deliver("interaction", url, dict(payload), body, headers)

    async def _deliver(
        self, kind: str, url: str, payload: JSONDict, body: str, headers: dict[str, str]
    ) -> tuple[int, str]:
        if self._session is None:
            raise RuntimeError("FakeSlack is not running")
        session = self._session
        if self.connection_per_delivery:
            session = aiohttp.ClientSession(
                timeout=session.timeout, connector=aiohttp.TCPConnector(force_close=True)
            )
        try:
            async with session.post(url, data=body.encode(), headers=headers) as resp:
                text = await resp.text()
                status = resp.status
        finally:
            if session is not self._session:
                await session.close()
        self.deliveries.append(
            Delivery(kind, url, payload, dict(headers), status, text, time.monotonic())
        )
        self._changed.set()
        return status, text

    def _command_payload(
        self,
        command: str,
        text: str,
        *,
        user_id: str,
        user_name: str,
        channel_id: str,
        channel_name: str,
        team_id: str,
    ) -> dict[str, str]:
        workspace = self._workspace(team_id)
        return {
            "token": VERIFICATION_TOKEN,
            "team_id": team_id,
            "team_domain": workspace.domain,
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": self.new_response_url(),
            "trigger_id": self._new_trigger(),
        }
