"""Splitting long Markdown answers: chunk sizes, where cuts fall, fences repaired, nothing lost."""

from __future__ import annotations

import random
import re
import unicodedata

import pytest

from adapters.common.text import cut_markdown, open_fence, split_markdown

_ADDED_CLOSER = re.compile(r"\n(`{3,}|~{3,})\Z")


def _run(fence: str) -> str:
    match = re.match(r"`+|~+", fence.lstrip())
    assert match is not None
    return match[0]


def _joins(text: str, head: str, tail: str) -> bool:
    """Whether text is head + whitespace + tail: only whitespace at the cut may be gone."""
    gap = text[len(head) : len(text) - len(tail)]
    return (
        len(head) + len(tail) <= len(text)
        and text.startswith(head)
        and text.endswith(tail)
        and not gap.strip()
    )


def _undo_cut(text: str, head: str, tail: str, fence: str | None) -> tuple[str, str, bool]:
    """Head and tail without the fence lines the cut added, and whether it added any.

    A head that ends in a closing line may have it from `text` itself, so the repaired reading is
    taken only when the fence really was open there and tail reopens exactly that fence.
    """
    match = _ADDED_CLOSER.search(head)
    if match and "\n" in tail:
        body = head[: match.start()]
        state = open_fence(body, fence=fence)
        first, rest = tail.split("\n", 1)
        if (
            state is not None
            and match[1] == _run(state)
            and first in (state, _run(state))
            and _joins(text, body, rest)
        ):
            return body, rest, True
    assert _joins(text, head, tail), (text, head, tail)
    return head, tail, False


def _checked_chunks(text: str, limit: int) -> list[str]:
    """split_markdown(text, limit), after checking sizes and that joining gives back `text`."""
    chunks = split_markdown(text, limit)
    pieces: list[str] = []
    rest, reopened = text, False
    for chunk in chunks:
        head, tail = cut_markdown(rest, limit)
        assert head == chunk
        assert 0 < len(head) <= limit
        body, _, repaired = _undo_cut(rest, head, tail, None)
        # A reopened fence line is not part of `text`.
        pieces.append(body.partition("\n")[2] if reopened else body)
        rest, reopened = tail, repaired
    assert rest == ""
    # Globally: the pieces appear in order in `text`, separated only by whitespace.
    pos = 0
    for i, piece in enumerate(pieces):
        while i and not text.startswith(piece, pos) and pos < len(text) and text[pos].isspace():
            pos += 1
        assert text.startswith(piece, pos), (piece, text[pos : pos + 80])
        pos += len(piece)
    assert not text[pos:].strip()
    return chunks


# --- open_fence -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fence", "expected"),
    [
        ("no fences at all", None, None),
        ("```python\nx = 1\n", None, "```python"),
        ("```python\nx = 1\n```\nafter", None, None),
        ("~~~\ncode\n", None, "~~~"),
        ("~~~\n```\nstill inside\n```\n", None, "~~~"),  # ``` does not close ~~~
        ("```\n~~~\n", None, "```"),  # nor ~~~ a ```
        ("````md\n```\ninner\n```\n", None, "````md"),  # a shorter run does not close
        ("````md\n```\n`````\n", None, None),  # a longer one does
        ("```js\ncode\n```   \n", None, None),  # trailing spaces allowed on a closer
        ("```js\ncode\n``` x\n", None, "```js"),  # anything else is not a closer
        ("  ```bash\nls\n  ```\n", None, None),  # indented fences in list items
        ("use ```inline``` here\n", None, None),  # not at line start
        ("```print(1)```\n", None, None),  # backtick info string with backticks: inline code
        ("~~~ a `b`\n", None, "~~~ a `b`"),  # but fine after tildes
        ("x = 2\n", "```python", "```python"),  # text continuing inside an open fence
        ("x = 2\n```\nprose", "```python", None),
        ("prose\n", "~~~", "~~~"),
        ("```\n```", None, None),
    ],
)
def test_open_fence(text: str, fence: str | None, expected: str | None) -> None:
    assert open_fence(text, fence=fence) == expected


# --- where cuts fall --------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "hello", "x" * 100, "```python\nx = 1\n```"])
def test_short_text_is_unchanged(text: str) -> None:
    assert cut_markdown(text, 100) == (text, "")
    assert split_markdown(text, 100) == ([text] if text else [])


def test_blank_text_gives_no_chunks() -> None:
    assert split_markdown("   \n\n  ", 100) == []


def test_paragraph_break_preferred_over_later_line_breaks_and_spaces() -> None:
    first = "First paragraph, " + "words " * 8 + "end."
    text = first + "\n\nSecond one\nwith lines and spaces " + "more " * 20
    head, tail = cut_markdown(text, 80)
    assert head == first
    assert tail.startswith("Second one\n")


# Each row: text, limit, head, tail. With limit 40 a boundary needs head >= 20.
@pytest.mark.parametrize(
    ("text", "limit", "head", "tail"),
    [
        # Paragraph break too early (head 5 < 20): the last line break instead.
        ("short\n\n" + "a" * 20 + "\n" + "b" * 30, 40, "short\n\n" + "a" * 20, "b" * 30),
        # No line break late enough: the last space.
        ("x" * 10 + "\n" + "word " * 10, 40, "x" * 10 + "\n" + "word " * 5 + "word", "word " * 4),
        # No whitespace at all: a hard cut at the limit.
        ("y" * 100, 40, "y" * 40, "y" * 60),
        # Whitespace only too early: hard cut rather than a tiny chunk.
        ("ab " + "z" * 80, 40, "ab " + "z" * 37, "z" * 43),
        # Several blank lines at a paragraph break all go.
        ("p" * 25 + "\n\n\n\n" + "q" * 30, 40, "p" * 25, "q" * 30),
        # The whole tail is whitespace: nothing more to send.
        ("t" * 25 + "\n\n" + " " * 30, 40, "t" * 25, ""),
    ],
)
def test_fallbacks(text: str, limit: int, head: str, tail: str) -> None:
    assert cut_markdown(text, limit) == (head, tail)


def test_indentation_after_a_line_cut_is_kept() -> None:
    text = "def f():\n" + "    x = 1\n" * 5 + "    return x\n"
    chunks = _checked_chunks(text, 40)
    assert chunks[1].startswith("    ")


@pytest.mark.parametrize(
    "entity",
    [
        "<@U0123ABCD>",
        "<#C012AB|general>",
        "<!here>",
        "<!subteam^S012|@team>",
        "<https://example.com/path?q=1|a label with spaces>",
        "<mailto:someone@example.com|write to me>",
        "<:party_blob:123456789012345678>",
        "<t:1700000000:R>",
        "[a label with spaces](https://example.com/a_(b)_c)",
        "![an image alt](https://example.com/cat.png)",
    ],
)
@pytest.mark.parametrize("offset", range(0, 40, 2))
def test_entities_and_links_are_never_split(entity: str, offset: int) -> None:
    # The window (80) ends at every other position of the first 40 characters of the entity.
    text = "word " * 8 + "w" * offset + " " + entity + " and then more words after it " * 3
    for chunk in _checked_chunks(text, 80):
        assert chunk.count("<") == chunk.count(">")
        assert chunk.count("[") == chunk.count("]")
    assert sum(chunk.count(entity) for chunk in split_markdown(text, 80)) == 1


@pytest.mark.parametrize(
    ("entity", "limit"),
    [
        ("<https://example.com|label text>", 45),  # hard cut inside the url
        ("<https://x.io|a label with spaces>", 50),  # last space in the window is in the label
        ("[a label with spaces](https://x.io)", 45),  # the same in a Markdown link
        ("[label](https://example.com/a_(b)_c)", 50),  # inside the url's parentheses
    ],
)
def test_cut_moves_before_the_entity(entity: str, limit: int) -> None:
    text = "a" * 30 + " " + entity + " " + "b" * 40
    head, tail = cut_markdown(text, limit)
    assert head == "a" * 30
    assert tail.startswith(entity)


def test_entity_longer_than_the_window_is_split_rather_than_stalling() -> None:
    text = "<https://example.com/" + "p" * 200 + ">"
    chunks = _checked_chunks(text, 50)
    assert all(len(chunk) <= 50 for chunk in chunks)


@pytest.mark.parametrize(
    "cluster",
    [
        "👩\u200d💻",  # woman technologist (ZWJ)
        "👨\u200d👩\u200d👧\u200d👦",  # family (three ZWJs)
        "🏳\ufe0f\u200d🌈",  # rainbow flag (VS-16 + ZWJ)
        "❤\ufe0f",  # VS-16
        "👍🏽",  # skin tone modifier
        "1\ufe0f\u20e3",  # keycap
        "🇺🇸",  # flag from two regional indicators
        "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # tag sequence
        "e\u0301\u0302",  # combining marks
    ],
)
@pytest.mark.parametrize("offset", range(20, 40))
def test_emoji_and_combining_sequences_are_never_split(cluster: str, offset: int) -> None:
    text = "x" * offset + cluster * 10 + "y" * 40
    chunks = _checked_chunks(text, 40)
    for chunk in chunks:
        rest = chunk.replace(cluster, "")
        assert not set(rest) & set(cluster), (cluster, chunk)


def test_flags_in_a_row_are_cut_between_flags() -> None:
    text = "x" * 21 + "🇺🇸🇫🇷🇯🇵" * 10
    for chunk in _checked_chunks(text, 40):
        indicators = sum(0x1F1E6 <= ord(ch) <= 0x1F1FF for ch in chunk)
        assert indicators % 2 == 0


# --- code fences ------------------------------------------------------------------------------


def _python_answer() -> str:
    code = "\n".join(
        f"def step_{i}(value: int) -> int:\n    return value * {i} + {i % 7}  # step {i}\n"
        for i in range(70)
    )
    intro = "Here is the whole program you asked for, with one function per step.\n\n"
    outro = "\n\nRun it with `python steps.py`; every step is pure, so testing is easy."
    return intro + "```python\n" + code + "```" + outro


def test_long_python_block_split_for_discord() -> None:
    text = _python_answer()
    assert len(text) > 5_000
    chunks = _checked_chunks(text, 2_000)
    assert len(chunks) >= 3
    for i, chunk in enumerate(chunks):
        assert len(chunk) <= 2_000
        assert open_fence(chunk) is None  # balanced: renders as code on its own
        if 0 < i < len(chunks) - 1:
            assert chunk.startswith("```python\n")
            assert chunk.endswith("\n```")
    assert chunks[0].startswith("Here is")
    assert chunks[-1].endswith("testing is easy.")


def test_closing_line_counts_toward_the_limit() -> None:
    text = "```\n" + "\n".join("a" * 9 for _ in range(20))
    head, tail = cut_markdown(text, 44)
    assert len(head) <= 44
    assert head.endswith("\n```")
    assert tail.startswith("```\naaaaaaaaa")


def test_fence_matches_the_opening_run_and_char() -> None:
    text = "~~~~text\n" + "line of text\n" * 10 + "~~~~\n"
    head, tail = cut_markdown(text, 60)
    assert head.endswith("\n~~~~")
    assert tail.startswith("~~~~text\n")


def test_fence_argument_continues_inside_an_open_fence() -> None:
    text = "x = 1\n" * 10 + "```\nAnd prose after the block."
    head, tail = cut_markdown(text, 40, fence="```python")
    assert head.endswith("\n```")
    assert head.count("```") == 1  # only the closing line: the opening one was sent earlier
    assert tail.startswith("```python\nx = 1")
    assert open_fence(tail) is None
    assert _undo_cut(text, head, tail, "```python")[2]


def test_fence_argument_already_closed_before_the_cut() -> None:
    text = "x = 1\n" * 6 + "```\n\n" + "Prose after the block, long enough to need a cut. " * 2
    head, tail = cut_markdown(text, 60, fence="```python")
    assert head == "x = 1\n" * 6 + "```"
    assert tail.startswith("Prose")


def test_fence_opening_on_the_last_line_moves_to_the_tail() -> None:
    text = "Some prose that fills the head.\n```python\n" + "print('hi')\n" * 5 + "```"
    head, tail = cut_markdown(text, 45)
    assert head == "Some prose that fills the head."
    assert tail.startswith("```python\nprint")


@pytest.mark.parametrize("limit", [-1, 0, 5, 19])
def test_limit_below_twenty_raises(limit: int) -> None:
    with pytest.raises(ValueError, match="at least 20"):
        split_markdown("some text", limit)
    with pytest.raises(ValueError, match="at least 20"):
        cut_markdown("some text", limit)


def test_limit_of_twenty_works_with_long_fences() -> None:
    text = "````markdown\n" + "line\n" * 40 + "````\n"
    chunks = _checked_chunks(text, 20)
    assert all(open_fence(chunk) is None for chunk in chunks)
    # A run too long to close and reopen within a quarter of the limit is left alone.
    assert _checked_chunks("`````\n" + "line\n" * 40 + "`````\n", 20)


# --- many random texts ------------------------------------------------------------------------

_WORDS = [
    "the",
    "a",
    "model",
    "answer",
    "reply",
    "slack",
    "discord",
    "naïve",
    "café",
    "über",
    "long-word-with-dashes",
]
_ENTITIES = [
    "<@U0123ABCD>",
    "<#C012AB|general>",
    "<!here>",
    "<https://example.com/x|a label with spaces>",
    "[docs page](https://example.com/docs)",
]
_CLUSTERS = ["👩\u200d💻", "👨\u200d👩\u200d👧", "❤\ufe0f", "👍🏽", "🇺🇸", "e\u0301"]
_FENCES = ["```python", "```", "~~~", "````js", "```bash"]


def _random_text(rng: random.Random) -> str:
    parts: list[str] = []
    while sum(map(len, parts)) < rng.randint(50, 3_000):
        roll = rng.random()
        if roll < 0.55:
            parts.append(rng.choice(_WORDS) + rng.choice([" ", " ", " ", ", ", ". "]))
        elif roll < 0.7:
            parts.append(rng.choice(["\n", "\n\n", "\n\n\n", "  \n"]))
        elif roll < 0.8:
            parts.append(rng.choice(_ENTITIES) + " ")
        elif roll < 0.9:
            parts.append(rng.choice(_CLUSTERS) + rng.choice(["", " "]))
        elif roll < 0.94:
            parts.append("x" * rng.randint(10, 120))  # long unbreakable run
        else:
            opener = rng.choice(_FENCES)
            lines = [
                " " * rng.choice([0, 4, 8]) + " ".join(rng.choices(_WORDS, k=rng.randint(0, 12)))
                for _ in range(rng.randint(1, 25))
            ]
            parts.append("\n" + opener + "\n" + "\n".join(lines) + "\n" + _run(opener) + "\n\n")
    return "".join(parts)


@pytest.mark.parametrize("seed", range(40))
def test_random_texts_fit_and_reassemble(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(10):
        text = _random_text(rng)
        limit = rng.choice([20, 27, 40, 64, 100, 150, 333, 500, 2_000])
        chunks = _checked_chunks(text, limit)
        assert all(len(chunk) <= limit for chunk in chunks)
        assert all(open_fence(chunk) is None for chunk in chunks)
        for chunk in chunks:
            assert not chunk.endswith("\u200d")
            assert unicodedata.category(chunk[0])[0] != "M"
            assert chunk[0] not in "\u200d\ufe0f🏽"
        if limit >= 100:  # every entity and link fits: none may be split
            for token in _ENTITIES + _CLUSTERS:
                assert sum(chunk.count(token) for chunk in chunks) == text.count(token)
