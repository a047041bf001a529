"""Quoted messages (forwarded, or replied to and never seen by the bot) as the model reads them.

Each quote is marked for what it is, so the model neither takes it for the user's own words nor
for an instruction of theirs, and bounded: a quote longer than ``QUOTE_CHARS`` is cut (and says
so), and at most ``MAX_QUOTES`` are read.
"""

from __future__ import annotations

from bot.events import Quote, QuoteKind

QUOTE_CHARS = 4000
"""Most characters read from one quoted message."""
MAX_QUOTES = 5
"""Most quoted messages read with one message (Discord forwards one at a time)."""

_HEADINGS = {
    QuoteKind.FORWARDED: "[A message the user forwarded{by}, for context]",
    QuoteKind.REPLIED_TO: "[The message the user is replying to{by}, for context]",
}


def quoted_context(quotes: tuple[Quote, ...]) -> str:
    """The quotes as one block of context, or "" when none has text."""
    blocks = []
    for quote in quotes[:MAX_QUOTES]:
        text = quote.text.strip()
        if not text:
            continue
        if len(text) > QUOTE_CHARS:
            text = (
                text[:QUOTE_CHARS]
                + f"\n[...cut: the message is longer than {QUOTE_CHARS:,} characters]"
            )
        by = f", written by {quote.author}" if quote.author else ""
        quoted = "\n".join(f"> {line}" for line in text.splitlines())
        blocks.append(f"{_HEADINGS[quote.kind].format(by=by)}\n{quoted}\n[End of quoted message]")
    return "\n\n".join(blocks)
