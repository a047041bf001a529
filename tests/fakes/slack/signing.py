"""How Slack signs what it sends to an app's request URL."""

from __future__ import annotations

import hashlib
import hmac
import time


def sign(signing_secret: str, body: bytes | str, timestamp: int | str) -> str:
    """``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}``: the ``X-Slack-Signature`` value."""
    raw = body.encode() if isinstance(body, str) else body
    base = f"v0:{timestamp}:".encode() + raw
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    signing_secret: str, body: bytes | str, *, timestamp: int | None = None, content_type: str
) -> dict[str, str]:
    """The headers Slack sends with a request to an app's request URL."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": content_type,
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": sign(signing_secret, body, ts),
    }
