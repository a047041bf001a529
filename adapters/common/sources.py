"""The sources a web-searched answer cites, as each platform shows links, to go at its end.

Titles and URLs come from web pages, so nothing in them may act as markup: on Slack no
``<!channel>`` or other entity, on Discord no link text that closes early or formats the
list. Each function returns "" when there is nothing to list, so a reply can append the
result unconditionally.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.web_search import Source

HEADING = "Sources"

# Characters that would end or break a link target on either platform, percent-encoded (the
# URL stays the same address).
_URL_UNSAFE = {
    " ": "%20",
    "<": "%3C",
    ">": "%3E",
    "|": "%7C",
    "(": "%28",
    ")": "%29",
    '"': "%22",
    "`": "%60",
}
_DISCORD_MARKUP = re.compile(r"([\\*_~`|\[\]<>#-])")


def _url(url: str) -> str:
    return "".join(_URL_UNSAFE.get(ch, ch) for ch in url if ch >= " ")


def slack_sources(sources: Sequence[Source]) -> str:
    """``**Sources**`` and a numbered list of ``<url|title>`` links (Slack's link syntax, kept
    by its Markdown); ``&``, ``<`` and ``>`` in titles escaped as Slack asks."""
    if not sources:
        return ""
    lines = [f"\n\n**{HEADING}**"]
    for number, source in enumerate(sources, 1):
        title = source.title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        lines.append(f"{number}. <{_url(source.url)}|{title}>")
    return "\n".join(lines)


def discord_sources(sources: Sequence[Source]) -> str:
    """``**Sources**`` and a numbered list of ``[title](<url>)`` links: the angle brackets keep
    Discord from unfurling each page into an embed under the answer."""
    if not sources:
        return ""
    lines = [f"\n\n**{HEADING}**"]
    for number, source in enumerate(sources, 1):
        title = _DISCORD_MARKUP.sub(r"\\\1", source.title)
        lines.append(f"{number}. [{title}](<{_url(source.url)}>)")
    return "\n".join(lines)


def plain_sources(sources: Sequence[Source]) -> str:
    """``Sources:`` and ``[1] title - url`` lines, for the terminal."""
    if not sources:
        return ""
    lines = [f"\n\n{HEADING}:"]
    lines += [f"[{n}] {s.title} - {s.url}" for n, s in enumerate(sources, 1)]
    return "\n".join(lines)
