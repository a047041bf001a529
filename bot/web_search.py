"""Web search: OpenRouter's ``web`` plugin on a turn's model calls, and the sources it cites.

OpenRouter offers search two ways: the ``:online`` model suffix, or the ``web`` plugin in the
request. The plugin is used because it leaves the model name the channel chose untouched (so
``/model``, fallbacks, context sizes and usage rows keep one name per model) and takes the number
of results (``max_results``, which is what the search costs). OpenRouter searches before the
model answers, once per request carrying the plugin: a turn that also calls a tool searches on
each of its model calls, so the answer after the tool still has the results.

What the model cites comes back as ``url_citation`` annotations on its message (streamed: on a
delta). The Agents SDK keeps them on the message's ``output_text`` parts, through both model
clients; ``sources_of`` reads them from the turn's items: numbered in order of first citation,
each URL once, at most ``MAX_SOURCES``. Each adapter renders them under the answer.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bot.settings import Settings

MAX_SOURCES = 5
"""Sources shown under an answer: more is a reading list, not a citation."""
MAX_TITLE_CHARS = 120
WEB_SETTING = "web_search"
"""A channel's choice (``/settings web on|off``): ``on`` or ``off``; unset: ``BOT_WEB_SEARCH``."""
SEARCHING = "Searching the web"
"""The step shown while a searching model call runs, until its text or a tool call."""


@dataclass(frozen=True, slots=True)
class Source:
    """A web page the answer cites."""

    url: str
    title: str


def enabled(settings: Settings, channel_settings: Mapping[str, str]) -> bool:
    """Whether this channel's turns search the web: its own setting, else the deployment's."""
    chosen = channel_settings.get(WEB_SETTING)
    if chosen in ("on", "off"):
        return chosen == "on"
    return settings.web_search


def request_extras(settings: Settings) -> dict[str, Any]:
    """What a request carries to be searched with (``ModelSettings.extra_body``: both model
    clients put its keys at the top level of the request)."""
    return {"plugins": [{"id": "web", "max_results": settings.web_search_results}]}


def sources_of(items: Iterable[Any]) -> list[Source]:
    """The ``url_citation`` annotations of the turn's assistant messages (input-item dicts, as
    the turn records them): first cited first, each URL once, at most ``MAX_SOURCES``. Only
    http(s) links count: a page's title and URL come from the web, not from us."""
    sources: list[Source] = []
    seen: set[str] = set()
    for item in items:
        for annotation in _annotations(item):
            url = annotation.get("url")
            if not isinstance(url, str) or not _is_web_url(url.strip()):
                continue
            url = url.strip()
            if url in seen:
                continue
            seen.add(url)
            sources.append(Source(url=url, title=_title(annotation.get("title"), url)))
            if len(sources) == MAX_SOURCES:
                return sources
    return sources


def _annotations(item: Any) -> Iterable[Mapping[str, Any]]:
    if not isinstance(item, Mapping) or item.get("type") != "message":
        return
    if item.get("role") != "assistant" or not isinstance(item.get("content"), list):
        return
    for part in item["content"]:
        if not isinstance(part, Mapping) or not isinstance(part.get("annotations"), list):
            continue
        for annotation in part["annotations"]:
            if isinstance(annotation, Mapping) and annotation.get("type") == "url_citation":
                yield annotation


def _is_web_url(url: str) -> bool:
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _title(title: object, url: str) -> str:
    """The page's title on one line without control characters (a terminal would run an
    escape sequence), shortened; its host when it has none."""
    text = ""
    if isinstance(title, str):
        visible = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in title)
        text = " ".join(visible.split())
    if not text:
        text = (urlsplit(url).hostname or url).removeprefix("www.")
    if len(text) > MAX_TITLE_CHARS:
        text = text[: MAX_TITLE_CHARS - 1].rstrip() + "…"
    return text
