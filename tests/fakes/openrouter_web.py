"""The fake OpenRouter's web search: its ``web`` plugin, as OpenRouter answers it.

A request with ``plugins: [{"id": "web", "max_results": N}]`` (N defaults to 5, as OpenRouter's)
is "searched": the first N of the fake's ``web_pages`` are the results. The answer's text is
then cited with one ``url_citation`` annotation per result, in OpenRouter's shape::

    {"type": "url_citation",
     "url_citation": {"url", "title", "content", "start_index", "end_index"}}

on ``choices[0].message.annotations`` of a JSON answer, and on a delta of its own after the
text of a streamed one (``{"content": "", "annotations": [...]}``). A searched request costs
``WEB_RESULT_PRICE`` more per result, in ``usage.cost`` like everything else OpenRouter bills.
Pages may repeat a URL (a page cited twice), as real answers do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

WEB_RESULT_PRICE: Final = 0.004
"""OpenRouter's price of one web result (USD 4 per 1,000)."""
DEFAULT_MAX_RESULTS: Final = 5


@dataclass(frozen=True, slots=True)
class WebPage:
    """A search result: the page the answer cites."""

    url: str
    title: str
    content: str = ""


DEFAULT_PAGES: Final = (
    WebPage("https://en.wikipedia.org/wiki/Lisbon", "Lisbon - Wikipedia", "Lisbon is the capital"),
    WebPage("https://www.visitlisboa.com/en", "Visit Lisboa", "The official tourism site"),
    WebPage("https://www.ipma.pt/en/", "IPMA", "Portuguese weather service"),
    WebPage("https://www.bbc.com/news/world-europe", "BBC Europe", "News from Europe"),
    WebPage("https://www.reuters.com/world/europe/", "Reuters Europe", "Reuters on Europe"),
    WebPage("https://www.lonelyplanet.com/portugal/lisbon", "Lonely Planet", "Travel guide"),
    WebPage("https://www.timeout.com/lisbon", "Time Out Lisbon", "What's on"),
)


def web_results(body: Mapping[str, Any]) -> int | None:
    """How many results the request's ``web`` plugin asks for; None without the plugin."""
    plugins = body.get("plugins")
    for plugin in plugins if isinstance(plugins, list) else []:
        if isinstance(plugin, dict) and plugin.get("id") == "web":
            wanted = plugin.get("max_results", DEFAULT_MAX_RESULTS)
            return wanted if isinstance(wanted, int) and wanted > 0 else DEFAULT_MAX_RESULTS
    return None


def searched(pages: Sequence[WebPage], body: Mapping[str, Any]) -> list[WebPage]:
    """The results of the request's search: [] when it has no web plugin."""
    wanted = web_results(body)
    return list(pages[:wanted]) if wanted is not None else []


def url_citations(results: Sequence[WebPage], text: str) -> list[dict[str, Any]]:
    """One annotation per result, each citing a slice of ``text`` (none without text: there is
    nothing to cite in a bare tool call)."""
    if not text or not results:
        return []
    size = max(1, len(text) // len(results))
    citations = []
    for i, page in enumerate(results):
        start = min(i * size, len(text) - 1)
        end = len(text) if i == len(results) - 1 else min(len(text), start + size)
        citations.append(
            {
                "type": "url_citation",
                "url_citation": {
                    "url": page.url,
                    "title": page.title,
                    "content": page.content,
                    "start_index": start,
                    "end_index": end,
                },
            }
        )
    return citations


def search_cost(results: Sequence[WebPage]) -> float:
    return WEB_RESULT_PRICE * len(results)
