"""Slack files -> ``Attachment``s whose ``fetch`` downloads with the bot token, carefully.

- The token goes only to the hosts in ``Settings.slack_token_hosts`` (Slack's file host and
  ``SLACK_API_URL``'s): a file object pointing anywhere else is refused, never fetched.
- Slack answers a request without a valid token with HTTP 200 and its HTML sign-in page: an
  HTML body for a file that is not HTML is refused, so that page never reaches the model.
- The size is checked before the download (Slack's own ``size``) and while reading, so a file
  that lies about its size cannot fill memory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from adapters.common.download import read_capped
from adapters.slack.translate import scrub
from bot.events import Attachment, AttachmentUnavailable, FetchBytes

log = logging.getLogger(__name__)

_HTML_STARTS = (b"<!doctype html", b"<html")


def token_may_go_to(url: str, hosts: frozenset[str]) -> bool:
    """True if ``url`` is on a host trusted with the bot token (``host`` or ``host:port``)."""
    try:
        parts = urlsplit(url)
        hostname = (parts.hostname or "").lower()
        netloc = parts.netloc.lower().rpartition("@")[2]
    except ValueError:
        return False
    if parts.scheme == "https" and hostname:
        return hostname in hosts or netloc in hosts
    # Plain http only to a host:port configured as such (a local fake or proxy), never to a
    # Slack host named without a port.
    return parts.scheme == "http" and ":" in netloc and netloc in hosts


def looks_like_html(data: bytes) -> bool:
    return data[:512].lstrip().lower().startswith(_HTML_STARTS)


def slack_attachments(
    files: Iterable[Mapping[str, Any]],
    *,
    http: aiohttp.ClientSession,
    token: str,
    hosts: frozenset[str],
    max_bytes: int,
) -> list[Attachment]:
    """One ``Attachment`` per Slack file object; unusable ones fail in ``fetch`` with a reason."""
    out: list[Attachment] = []
    for file in files:
        name = scrub(str(file.get("name") or file.get("title") or file.get("id") or "file"))
        mimetype = str(file.get("mimetype") or "application/octet-stream")
        size = _size(file.get("size"))
        url = str(file.get("url_private_download") or file.get("url_private") or "")
        out.append(
            Attachment(
                name=name,
                declared_type=mimetype,
                size=size,
                fetch=_fetcher(http, url, token, hosts, mimetype, max_bytes),
            )
        )
    return out


def _size(value: object) -> int:
    """Slack's ``size`` of a file; 0 (unknown: checked while downloading) if it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return 0
    try:
        return max(0, int(value))
    except (ValueError, OverflowError):
        return 0


def _fetcher(
    http: aiohttp.ClientSession,
    url: str,
    token: str,
    hosts: frozenset[str],
    mimetype: str,
    max_bytes: int,
) -> FetchBytes:
    async def fetch() -> bytes:
        if not url:
            raise AttachmentUnavailable("Slack did not give me a download link for it")
        if not token_may_go_to(url, hosts):
            log.warning("refusing to send the Slack token to %s", urlsplit(url).hostname)
            raise AttachmentUnavailable("it is not hosted on Slack, so I did not download it")
        headers = {"Authorization": f"Bearer {token}"}
        # Redirects off the trusted hosts would carry the header along: follow none.
        async with http.get(url, headers=headers, allow_redirects=False) as resp:
            if resp.status != 200:
                raise AttachmentUnavailable(f"Slack answered {resp.status} for it")
            data = await read_capped(resp, max_bytes)
            content_type = resp.content_type
        binary = not mimetype.startswith("text/")
        if "html" not in mimetype and (
            content_type == "text/html" or (binary and looks_like_html(data))
        ):
            raise AttachmentUnavailable(
                "Slack sent its sign-in page instead of the file (is the files:read scope granted?)"
            )
        return data

    return fetch
