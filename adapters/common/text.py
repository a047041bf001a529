"""Splitting long Markdown answers into chunks that chat platforms accept, losing nothing.

Model answers can be far longer than one platform message: Slack takes about 12,000 characters
per markdown block or streaming call and about 4,000 per ``chat.update``; Discord takes 2,000 per
message. Truncating would silently drop the end of an answer, so an answer is cut into several
messages instead, and each cut is placed where a reader barely notices it: at a paragraph break
if possible, never inside a mention, channel link or URL entity, a Markdown link or an emoji
sequence. A cut inside a code fence closes the fence in the first chunk and reopens it (with its
language) in the next, so every message renders as code on its own. Only whitespace at the cut
points may disappear; every other character of the answer reaches the reader.

Everything here is pure string work, so adapters can use it for any limit and tests need no I/O.
"""

from __future__ import annotations

import re
import unicodedata

MIN_LIMIT = 20
"""Below this a chunk cannot hold a closing fence, a reopened fence and some text of its own."""

_OPENER = re.compile(r"[ \t]*(`{3,}|~{3,})(.*)")
_CLOSER = re.compile(r"\s*(`{3,}|~{3,})\s*")
# Slack entities (<@U123>, <#C1|general>, <!here>, <https://x|label>) and Discord ones (<@123>,
# <:name:id>, <t:1700000000:R>, <https://x>): no '<', '>' or newline inside.
_ENTITY = re.compile(r"<[^<>\s][^<>\n]*>")
# [label](url), the url allowing one level of parentheses as in Wikipedia links.
_LINK = re.compile(r"\[[^\[\]\n]*\]\((?:[^()\s]|\([^()\s]*\))*\)")
_ZWJ = "\u200d"


def open_fence(text: str, *, fence: str | None = None) -> str | None:
    """The fence line (e.g. "```python" or "~~~") that is still open at the end of `text`, or None.

    `fence` is the fence already open at the start of `text` (text continues inside it). Knowing
    the open fence is what lets a cut close it and reopen it with the same language. Closing lines
    may be indented by any amount (not only 3 spaces): models indent fences inside list items,
    and a fence wrongly left open would put every later chunk in a code block.
    """
    state = fence.strip() if fence else None
    for line in text.split("\n"):
        if state is None:
            m = _OPENER.fullmatch(line)
            # CommonMark: a backtick fence's info string has no backticks (```x``` is inline).
            if m and not (m[1][0] == "`" and "`" in m[2]):
                state = line.strip()
        else:
            m = _CLOSER.fullmatch(line)
            run = _run(state)
            if m and m[1][0] == run[0] and len(m[1]) >= len(run):
                state = None
    return state


def _run(fence: str) -> str:
    """The backticks or tildes that open `fence`: the closing line a cut must add."""
    s = fence.lstrip()
    return s[: len(s) - len(s.lstrip(s[0]))]


def _extends(ch: str) -> bool:
    """Whether `ch` belongs to the character before it (combining mark, VS-16, ZWJ, skin tone)."""
    o = ord(ch)
    return (
        ch == _ZWJ
        or unicodedata.category(ch)[0] == "M"
        or 0x1F3FB <= o <= 0x1F3FF
        or 0xE0020 <= o <= 0xE007F
    )


def _is_flag_half(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _safe(text: str, c: int, window: int) -> int:
    """Move cut `c` earlier until it is outside entities, links and emoji/grapheme sequences.

    Only structures that fit in `window` count: a longer one must be split somewhere anyway.
    """
    while True:
        start = c
        for pattern, opener in ((_LINK, "["), (_ENTITY, "<")):
            j = text.rfind(opener, max(0, c - window), c)
            m = pattern.match(text, j, j + window) if j >= 0 else None
            if m and m.end() > c:
                c = j - 1 if j > 0 and text[j - 1] == "!" and opener == "[" else j
        while 0 < c < len(text) and (_extends(text[c]) or text[c - 1] == _ZWJ):
            c -= 1
        if 0 < c < len(text) and _is_flag_half(text[c]):
            n = 0  # regional indicators before c: an odd count means c splits a flag
            while n < c and _is_flag_half(text[c - 1 - n]):
                n += 1
            c -= n % 2
        if c == start:
            return c


def _grapheme(text: str, c: int) -> int:
    """Move `c` earlier only out of an emoji/grapheme sequence (no entity or link checks)."""
    while 0 < c < len(text) and (_extends(text[c]) or text[c - 1] == _ZWJ):
        c -= 1
    return c


def _find_cut(text: str, window: int, limit: int) -> tuple[int, int]:
    """Where to cut: (end of head, length of the whitespace separator dropped at the cut).

    Head lengths are measured without the trailing whitespace the cut drops.
    """
    half = limit // 2
    for sep in ("\n\n", "\n", " "):
        i = text.rfind(sep, 0, window + len(sep))
        if i >= half and len(text[:i].rstrip()) >= half:
            c = _safe(text, i, window)
            if c == i:
                return i, len(sep)
            if len(text[:c].rstrip()) >= half:
                return c, 0
    # Hard cut. More than limit // 4 guarantees progress past a reopened fence line.
    for c in (_safe(text, window, window), _grapheme(text, window)):
        if len(text[:c].rstrip()) > limit // 4:
            return c, 0
    return window, 0


def cut_markdown(text: str, limit: int, *, fence: str | None = None) -> tuple[str, str]:
    """Split `text` into (head, tail), with len(head) <= limit, for sending head now.

    `fence` is a code fence already open before `text` starts. Cuts prefer a paragraph break, then
    a line break, then a space, then a hard cut, each only if head keeps at least limit // 2
    characters, so chunks are not tiny. A cut inside a fence appends a closing line to head
    (counted in `limit`) and starts tail with the fence line reopened, e.g. "```python\n". The
    whitespace at the cut is dropped; nothing else is. A tail of only whitespace becomes "".
    Raises ValueError if limit < MIN_LIMIT.
    """
    if limit < MIN_LIMIT:
        raise ValueError(f"limit must be at least {MIN_LIMIT}, got {limit}")
    if len(text) <= limit:
        return text, ""
    window = limit
    while True:
        c, sep = _find_cut(text, window, limit)
        head = text[:c].rstrip() or text[:c]
        state = open_fence(head, fence=fence)
        if state is None:
            break
        run = _run(state)
        if len(run) + 1 > limit // 4:  # absurdly long fence: repairing it would not fit
            state = None
            break
        # A fence opening on head's last line would leave an empty code block: leave it to tail.
        last = head.rfind("\n") + 1
        opens_last = head[last:].strip() == state and open_fence(head[:last], fence=fence) is None
        if opens_last and last > limit // 4:
            c, sep, head, state = last, 0, text[:last].rstrip() or text[:last], None
            break
        if len(head) + len(run) + 1 <= limit:
            break
        window = limit - len(run) - 1
    rest = text[c + sep :].lstrip("\n")
    if not rest.strip():
        return head, ""
    if state is None:
        return head, rest
    run = _run(state)
    reopen = state if len(state) < limit // 4 else run
    return f"{head}\n{run}", f"{reopen}\n{rest}"


def split_markdown(text: str, limit: int) -> list[str]:
    """All chunks of `text`, each at most `limit` long, by repeated cut_markdown.

    A tail already starts with its reopened fence, so each later cut starts with fence=None.
    Text that is empty or only whitespace gives [] (platforms reject blank messages).
    Raises ValueError if limit < MIN_LIMIT.
    """
    if limit < MIN_LIMIT:
        raise ValueError(f"limit must be at least {MIN_LIMIT}, got {limit}")
    chunks: list[str] = []
    if not text.strip():
        return chunks
    while text:
        head, text = cut_markdown(text, limit)
        chunks.append(head)
    return chunks
