"""PII redaction (``BOT_REDACT_PII``): e-mail addresses, phone numbers, payment card numbers and
IBANs are replaced with placeholders before anything reaches the model.

- **Found**: e-mail addresses by pattern (also in URLs, ``mailto:`` links and ``%40``-encoded);
  phone numbers by Google's libphonenumber rules (the ``phonenumbers`` package: international
  numbers anywhere, national ones for ``BOT_REDACT_PHONE_REGION``); card numbers of 13 to 19
  digits only when their Luhn check digit is right; IBANs only when their mod-97 check is right.
  What fails a check (an order number, a Discord id, a timestamp) is left as it is.
- **Placeholders** are ``[email kxbtrm]``, ``[phone ...]``, ``[card ...]``, ``[IBAN ...]``: the
  tag is an HMAC of the conversation and the value's canonical form (a phone number's E.164, an
  address in lower case, a card's digits), under a key kept in the store. So the same value is
  the same placeholder everywhere in a conversation, whichever instance redacts it and after any
  restart, and the same value in two conversations gets unrelated tags. No table of values is
  kept anywhere, and without the key (never sent) a tag cannot be tried against guesses. Tags
  are letters only, so redacting redacted text changes nothing.
- **Cost**: pattern checks are microseconds, but libphonenumber's scan costs ~2 µs a character
  (measured: 100,000 characters of a text file take ~180 ms), so text longer than
  ``OFF_LOOP_CHARS`` is redacted on a worker thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import phonenumbers

from bot.conversations import Conversations
from storage.base import Store

log = logging.getLogger(__name__)

OFF_LOOP_CHARS = 2_000
"""Text longer than this is redacted on a worker thread (2,000 characters take ~4 ms)."""
KEY_STATE = "redact:key"
"""Where the HMAC key lives in the store's state (hex); created once, by one instance."""
KEY_WAIT_S = 5.0
"""How long an instance waits for the one that is creating the key to write it."""
NOTE_ACTION = "redact:note:"
NOTE = (
    "PII redaction is on: e-mail addresses, phone numbers, card numbers and IBANs are replaced "
    "with placeholders such as `[email kxbtrm]` before anything reaches the model."
)
"""Told once per conversation, with its first answer."""
NOTED_CACHE = 10_000
"""Conversations this process remembers having told (the store knows them all)."""

TAG_ALPHABET = "bcdfghjklmnpqrstvwxz"
"""Consonants: a tag is never a word, and has no digits or ``@`` a detector could match."""
TAG_LENGTH = 6

EMAIL = re.compile(
    # The local part, not glued to what comes before; "@" or its URL encoding; a domain with a
    # letters-only top level. Not before ":" and a path: "git@github.com:org/repo" is no address.
    r"(?<![\w.%+-])([\w.%+-]+)(?:@|%40)((?:[\w-]+\.)+[^\W\d_]{2,})(?![\w-]|:[^\s\d])"
)
CARD = re.compile(
    # 13 to 19 digits with single spaces or dashes between them; not glued to a word, and not
    # a Discord mention's id ("<@123...>", "<@!...>", "<@&...>", "<#...>").
    r"(?<![\w@#&!.-])(?:\d[ -]?){12,18}\d(?![\w]|[.-]\d)"
)
CARD_FIRST_DIGITS = "23456"
"""Every issuer's numbers start with one of these (Mastercard 2/5, Amex 3, Visa 4, others 6);
most ids and timestamps start with 1."""
IBAN = re.compile(r"\b([A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7})((?: ?[A-Z0-9]{1,3})?)\b")


@dataclass(frozen=True, slots=True)
class Found:
    start: int
    end: int
    kind: str
    """``email``, ``phone``, ``card`` or ``IBAN``: the placeholder's label."""
    canonical: str
    """The value in one form, whatever way it was written: what the tag is made from."""


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_valid(compact: str) -> bool:
    """ISO 13616's check: the country and check digits moved to the end, letters as numbers
    (A=10 ... Z=35), the whole number mod 97 is 1."""
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _emails(text: str) -> Iterator[Found]:
    for match in EMAIL.finditer(text):
        local, domain = match.group(1), match.group(2)
        yield Found(match.start(), match.end(), "email", f"{local}@{domain}".lower())


def _cards(text: str) -> Iterator[Found]:
    for match in CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if digits[0] in CARD_FIRST_DIGITS and 13 <= len(digits) <= 19 and luhn_valid(digits):
            yield Found(match.start(), match.end(), "card", digits)


def _ibans(text: str) -> Iterator[Found]:
    for match in IBAN.finditer(text):
        body, tail = match.group(1), match.group(2)
        for candidate, end in ((body + tail, match.end()), (body, match.end(1))):
            compact = candidate.replace(" ", "")
            if iban_valid(compact):
                yield Found(match.start(), end, "IBAN", compact)
                break
            if not tail:
                break


def _phones(text: str, region: str | None) -> Iterator[Found]:
    for match in phonenumbers.PhoneNumberMatcher(
        text, region, leniency=phonenumbers.Leniency.VALID
    ):
        canonical = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        start, end = _trimmed(text, match.start, match.end)
        yield Found(start, end, "phone", canonical)


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """A phone match without the brackets around it that are not its own: libphonenumber takes
    the "[" of a Markdown link ("[+1 415 555 2671](tel:...)") as the number's."""
    while start < end and not (
        text[start] in "+0123456789" or (text[start] == "(" and ")" in text[start:end])
    ):
        start += 1
    while end > start and not (
        text[end - 1].isdigit() or (text[end - 1] == ")" and "(" in text[start:end])
    ):
        end -= 1
    return start, end


def find(text: str, *, region: str | None = "US") -> list[Found]:
    """Every value to redact in ``text``, in order, none overlapping (where two detectors claim
    the same characters, the one that starts first wins, then the longer)."""
    found = [*_emails(text), *_ibans(text), *_cards(text)]
    if any(char.isdigit() for char in text):
        found.extend(_phones(text, region))
    found.sort(key=lambda f: (f.start, -(f.end - f.start)))
    kept: list[Found] = []
    for item in found:
        if not kept or item.start >= kept[-1].end:
            kept.append(item)
    return kept


def tag(key: bytes, conversation: str, kind: str, canonical: str) -> str:
    digest = hmac.new(key, f"{conversation}\0{kind}\0{canonical}".encode(), hashlib.sha256)
    number = int.from_bytes(digest.digest()[:8], "big")
    letters = []
    for _ in range(TAG_LENGTH):
        number, index = divmod(number, len(TAG_ALPHABET))
        letters.append(TAG_ALPHABET[index])
    return "".join(letters)


def redact(text: str, *, key: bytes, conversation: str, region: str | None = "US") -> str:
    """``text`` with each value replaced by its placeholder in ``conversation``."""
    found = find(text, region=region)
    if not found:
        return text
    out: list[str] = []
    position = 0
    for item in found:
        out.append(text[position : item.start])
        out.append(f"[{item.kind} {tag(key, conversation, item.kind, item.canonical)}]")
        position = item.end
    out.append(text[position:])
    return "".join(out)


class Redaction:
    """Redaction as the core uses it: the key from the store, long text off the event loop,
    and the once-per-conversation note."""

    def __init__(self, store: Store, *, region: str | None) -> None:
        self._store = store
        self._conversations = Conversations(store)
        self._region = region
        self._key: bytes | None = None
        self._noted: set[str] = set()

    async def text(self, conversation: str, text: str) -> str:
        key = await self._load_key()
        if len(text) > OFF_LOOP_CHARS:
            return await asyncio.to_thread(
                redact, text, key=key, conversation=conversation, region=self._region
            )
        return redact(text, key=key, conversation=conversation, region=self._region)

    async def first_note(self, conversation: str) -> str | None:
        """``NOTE`` the first time this is asked for ``conversation`` (on any instance, ever);
        None after that."""
        if conversation in self._noted:
            return None
        first = await self._conversations.first_to_act(NOTE_ACTION + conversation)
        if len(self._noted) >= NOTED_CACHE:
            self._noted.clear()
        self._noted.add(conversation)
        return NOTE if first else None

    async def _load_key(self) -> bytes:
        if self._key is None:
            self._key = await self._stored_key()
        return self._key

    async def _stored_key(self) -> bytes:
        """The store's key; the first instance ever to need it creates it. Every instance
        uses the one the store holds, so all tag a value alike."""
        stored = await self._store.get_state(key=KEY_STATE)
        if stored is None:
            if await self._conversations.first_to_act(KEY_STATE):
                await self._store.set_state(key=KEY_STATE, value=secrets.token_hex(32))
            else:  # another instance is writing it
                loop = asyncio.get_running_loop()
                deadline = loop.time() + KEY_WAIT_S
                while stored is None and loop.time() < deadline:
                    await asyncio.sleep(0.05)
                    stored = await self._store.get_state(key=KEY_STATE)
                if stored is None:  # it died between its claim and its write
                    log.warning("no redaction key was written by its creator; writing one")
                    await self._store.set_state(key=KEY_STATE, value=secrets.token_hex(32))
            stored = await self._store.get_state(key=KEY_STATE)
        if stored is None:
            raise RuntimeError("the redaction key could not be stored")
        return bytes.fromhex(stored)
