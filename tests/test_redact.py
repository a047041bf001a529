"""PII redaction's detectors and placeholders (``bot/redact.py``), table by table, and its key and
once-per-conversation note on a real store (two cores' worth of ``Redaction`` on one file)."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

from bot.redact import (
    KEY_STATE,
    NOTE,
    OFF_LOOP_CHARS,
    Redaction,
    find,
    iban_valid,
    luhn_valid,
    redact,
)
from bot.settings import ConfigError, load_settings
from storage import open_store

KEY = b"k" * 32
PLACEHOLDER = re.compile(r"\[(email|phone|card|IBAN) [a-z]{6}\]")


def kinds(text: str, region: str | None = "US") -> list[tuple[str, str]]:
    """What is found in ``text``: (kind, the text it covers)."""
    return [(f.kind, text[f.start : f.end]) for f in find(text, region=region)]


# ------------------------------------------------------------------------------- the detectors

FOUND = [
    # e-mail addresses, in text and in URLs
    ("mail jane.doe@example.com today", [("email", "jane.doe@example.com")]),
    ("Jane.Doe+tag@Mail.Example.co.uk.", [("email", "Jane.Doe+tag@Mail.Example.co.uk")]),
    ("<mailto:jane@example.com|jane@example.com>", [("email", "jane@example.com")] * 2),
    ("https://x.test/reset?email=jane@example.com&t=1", [("email", "jane@example.com")]),
    ("https://x.test/reset?email=jane%40example.com", [("email", "jane%40example.com")]),
    ("write to josé@exämple.de: he knows", [("email", "josé@exämple.de")]),
    # phone numbers, national (region US) and international
    ("call +1 415-555-2671 now", [("phone", "+1 415-555-2671")]),
    ("(415) 555-2671", [("phone", "(415) 555-2671")]),
    ("call 415.555.2671", [("phone", "415.555.2671")]),
    ("London: +44 20 7946 0958", [("phone", "+44 20 7946 0958")]),
    ("Paris +33 6 12 34 56 78.", [("phone", "+33 6 12 34 56 78")]),
    ("Berlin +49 30 12345678", [("phone", "+49 30 12345678")]),
    (
        "<tel:+14155552671|+1 415 555 2671>",
        [("phone", "+14155552671"), ("phone", "+1 415 555 2671")],
    ),
    (
        "[+1 415 555 2671](tel:+14155552671)",  # a Markdown link: its brackets stay
        [("phone", "+1 415 555 2671"), ("phone", "+14155552671")],
    ),
    # card numbers whose Luhn check digit is right
    ("card 4111 1111 1111 1111 exp", [("card", "4111 1111 1111 1111")]),
    ("4111-1111-1111-1111", [("card", "4111-1111-1111-1111")]),
    ("amex 378282246310005", [("card", "378282246310005")]),
    ("mc 5555555555554444, thanks", [("card", "5555555555554444")]),
    ("visa 4111 1111 1111 1111 2024", [("card", "4111 1111 1111 1111")]),
    # IBANs whose mod-97 check is right
    ("IBAN DE89 3704 0044 0532 0130 00 please", [("IBAN", "DE89 3704 0044 0532 0130 00")]),
    ("GB82WEST12345698765432", [("IBAN", "GB82WEST12345698765432")]),
    ("to:NO9386011117947.", [("IBAN", "NO9386011117947")]),
    ("FR14 2004 1010 0505 0001 3M02 606 AND MORE", [("IBAN", "FR14 2004 1010 0505 0001 3M02 606")]),
    # several kinds at once, in order
    (
        "jane@example.com, +44 20 7946 0958, 4111111111111111, DE89370400440532013000",
        [
            ("email", "jane@example.com"),
            ("phone", "+44 20 7946 0958"),
            ("card", "4111111111111111"),
            ("IBAN", "DE89370400440532013000"),
        ],
    ),
]

NOT_FOUND = [
    "no personal data here",
    "ping <@U012AB> and <@123456789012345678> in <#987654321098765432>",
    "@channel @here look",
    "git clone git@github.com:org/repo.git",
    "pip install pkg@1.2.3 and user@localhost",
    "card 4111 1111 1111 1112",  # Luhn check digit wrong
    "order 1234567890123",  # starts with 1: no issuer's numbers do
    "ts 1712345678.123456 and 1712345678123",  # Slack timestamp, epoch milliseconds
    "DE89 3704 0044 0532 0130 02",  # IBAN check wrong (its digits fail Luhn too: see below)
    "GB00WEST12345698765432",
    "de89370400440532013000",  # lower case: not how IBANs are written
    "on 2024-05-06 at 12:30, version 1.2.3, order 12345",
    "ext 555-2671",  # too short for a full number
    "030 12345678",  # a German national number read as a US one: not valid there
    "sha 3f9a12e4b5c6d7e8 and uuid 123e4567-e89b-12d3-a456-426614174000",
    "[email kxbtrm] [phone bcdfgh] [card zzzzzz] [IBAN qqqqqq]",  # placeholders already
]


def test_a_mistyped_iban_whose_digits_pass_luhn_is_still_masked() -> None:
    """Over-redaction is the safe side: 18 digits with a right Luhn digit are masked as a card
    even where they end a mistyped IBAN."""
    assert kinds("DE89 3704 0044 0532 0130 01") == [("card", "3704 0044 0532 0130 01")]


@pytest.mark.parametrize(("text", "expected"), FOUND)
def test_finds(text: str, expected: list[tuple[str, str]]) -> None:
    assert kinds(text) == expected


@pytest.mark.parametrize("text", NOT_FOUND)
def test_leaves_alone(text: str) -> None:
    assert kinds(text) == []


def test_national_numbers_follow_the_region() -> None:
    assert kinds("ruf an: 030 12345678", region="DE") == [("phone", "030 12345678")]
    assert kinds("(415) 555-2671", region="DE") == []
    assert kinds("+1 415-555-2671", region=None) == [("phone", "+1 415-555-2671")]


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("4111111111111111", True),
        ("4111111111111112", False),
        ("378282246310005", True),
        ("378282246310006", False),
        ("6011111111111117", True),
        ("79927398713", True),
        ("79927398710", False),
    ],
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


@pytest.mark.parametrize(
    ("iban", "valid"),
    [
        ("DE89370400440532013000", True),
        ("DE88370400440532013000", False),
        ("GB82WEST12345698765432", True),
        ("GB82WEST12345698765433", False),
        ("NO9386011117947", True),
        ("NO93860111179", False),  # too short for any country
        ("FR1420041010050500013M02606", True),
    ],
)
def test_iban_check(iban: str, valid: bool) -> None:
    assert iban_valid(iban) is valid


# ------------------------------------------------------------------------------- placeholders


def test_same_value_same_placeholder_whatever_its_form() -> None:
    text = (
        "Jane@Example.com or jane@example.com; +1 415-555-2671 = (415) 555-2671; "
        "4111 1111 1111 1111 = 4111111111111111; DE89 3704 0044 0532 0130 00 = "
        "DE89370400440532013000"
    )
    out = redact(text, key=KEY, conversation="c1")
    holders = PLACEHOLDER.findall(out)
    assert holders == ["email"] * 2 + ["phone"] * 2 + ["card"] * 2 + ["IBAN"] * 2
    tags = re.findall(r"\[\w+ ([a-z]{6})\]", out)
    assert tags[0] == tags[1] and tags[2] == tags[3] and tags[4] == tags[5] and tags[6] == tags[7]
    assert len(set(tags)) == 4
    for value in ("Example.com", "415", "4111", "DE89"):
        assert value not in out


def test_other_values_and_other_conversations_get_other_tags() -> None:
    one = redact("a@example.com b@example.com", key=KEY, conversation="c1")
    assert len(set(re.findall(r"\[email ([a-z]{6})\]", one))) == 2
    elsewhere = redact("a@example.com", key=KEY, conversation="c2")
    assert elsewhere != redact("a@example.com", key=KEY, conversation="c1")
    other_key = redact("a@example.com", key=b"x" * 32, conversation="c1")
    assert other_key != redact("a@example.com", key=KEY, conversation="c1")


def test_redacting_twice_changes_nothing() -> None:
    once = redact("mail a@example.com, call +44 20 7946 0958", key=KEY, conversation="c1")
    assert redact(once, key=KEY, conversation="c1") == once
    assert once.startswith("mail [email ") and ", call [phone " in once


def test_text_around_the_values_is_kept() -> None:
    out = redact("Hi! Mail jane@example.com, thanks.", key=KEY, conversation="c")
    assert re.fullmatch(r"Hi! Mail \[email [a-z]{6}\], thanks\.", out)


def test_a_long_file_costs_what_the_off_loop_threshold_assumes() -> None:
    """The measurement behind ``OFF_LOOP_CHARS``: text that long is redacted in a few ms (so
    on the loop is fine), and 100,000 characters take far longer (so they go to a thread)."""
    line = "row 42, jane@example.com, +1 415 555 2671, note about the order 2024-05-06\n"
    short = (line * 100)[:OFF_LOOP_CHARS]
    started = time.perf_counter()
    redact(short, key=KEY, conversation="c")
    assert time.perf_counter() - started < 0.05
    assert len(PLACEHOLDER.findall(redact(line * 1400, key=KEY, conversation="c"))) == 2800


# ------------------------------------------------------------------------------- on a store


async def test_the_key_is_made_once_and_shared_through_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    one, two = await open_store(url), await open_store(url)
    try:
        a, b = Redaction(one, region="US"), Redaction(two, region="US")
        first, second = await asyncio.gather(
            a.text("c1", "mail a@example.com"), b.text("c1", "mail a@example.com")
        )
        assert first == second and PLACEHOLDER.search(first)
        key = await one.get_state(key=KEY_STATE)
        assert key is not None and len(bytes.fromhex(key)) == 32
        # A restart (a new Redaction on the same database) tags alike.
        assert await Redaction(two, region="US").text("c1", "a@example.com") == first[5:]
    finally:
        await one.close()
        await two.close()


async def test_the_note_is_told_once_per_conversation_across_instances(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    one, two = await open_store(url), await open_store(url)
    try:
        a, b = Redaction(one, region="US"), Redaction(two, region="US")
        notes = await asyncio.gather(a.first_note("c1"), b.first_note("c1"))
        assert sorted(notes, key=lambda n: n is None) == [NOTE, None]
        assert await a.first_note("c1") is None
        assert await Redaction(one, region="US").first_note("c1") is None  # after a restart
        assert await b.first_note("c2") == NOTE
    finally:
        await one.close()
        await two.close()


async def test_long_text_is_redacted_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'bot.db'}")
    threads: list[int] = []
    real = asyncio.to_thread

    async def counting(func, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        threads.append(len(args[0]))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr("bot.redact.asyncio.to_thread", counting)
    try:
        redaction = Redaction(store, region="US")
        assert "[email " in await redaction.text("c", "short a@example.com")
        assert threads == []
        long = "x" * OFF_LOOP_CHARS + " a@example.com"
        assert "[email " in await redaction.text("c", long)
        assert threads == [len(long)]
    finally:
        await store.close()


# ------------------------------------------------------------------------------- settings


def test_off_by_default_and_the_region_is_checked() -> None:
    settings = load_settings(_env_file=None)
    assert settings.redact_pii is False and settings.redact_phone_region == "US"
    assert load_settings(_env_file=None, BOT_REDACT_PHONE_REGION=" de ").redact_phone_region == "DE"
    for bad in ("XX", "Germany"):
        with pytest.raises(ConfigError, match=r"BOT_REDACT_PHONE_REGION.*two-letter country"):
            load_settings(_env_file=None, BOT_REDACT_PHONE_REGION=bad)
