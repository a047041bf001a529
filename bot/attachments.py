"""Files on a message: what the core can read now, and an honest word about the rest.

Text files (plain text, Markdown, CSV, JSON, source code) are decoded with charset detection and
given to the model as text, capped in size. PDFs are checked (really a PDF, not encrypted, not
truncated) and handed to the core, which stores them for the ``read_document`` tool. Images
(PNG, JPEG, WebP, GIF, recognised by their bytes, not their name) go to the model as image
inputs on the turn they arrive, when the model can see images. Every attachment of a message
is looked at; for each one that is skipped the user is told which and why.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePath

from charset_normalizer import from_bytes
from charset_normalizer.md import mess_ratio

from bot.documents import is_pdf_file, pdf_problem_off_loop
from bot.events import Attachment, AttachmentUnavailable
from bot.settings import Settings

log = logging.getLogger(__name__)

TEXT_EXTENSIONS = frozenset(
    [
        ".txt",
        ".md",
        ".markdown",
        ".rst",
        ".csv",
        ".tsv",
        ".json",
        ".jsonl",
        ".yaml",
        ".yml",
        ".toml",
        ".ini",
        ".cfg",
        ".conf",
        ".log",
        ".xml",
        ".html",
        ".htm",
        ".css",
        ".js",
        ".ts",
        ".tsx",
        ".jsx",
        ".py",
        ".rb",
        ".go",
        ".rs",
        ".java",
        ".kt",
        ".c",
        ".h",
        ".cpp",
        ".hpp",
        ".cs",
        ".php",
        ".sh",
        ".bash",
        ".zsh",
        ".sql",
        ".swift",
        ".scala",
        ".lua",
        ".r",
        ".pl",
        ".ex",
        ".exs",
        ".erl",
        ".hs",
        ".ml",
        ".tex",
        ".env.example",
    ]
)
TEXT_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/x-yaml",
    "application/toml",
    "application/javascript",
    "application/x-sh",
)


PDF_NOT_REDACTED = (
    "PII redaction is on, and a PDF goes to the model's file parser as it is, unredacted. "
    "Paste its text, or attach it as a text file, instead."
)
IMAGE_TYPES = {"image/png", "image/jpeg", "image/webp", "image/gif"}
IMAGE_EXTENSIONS = frozenset([".png", ".jpg", ".jpeg", ".webp", ".gif"])


@dataclass(frozen=True, slots=True)
class ImageInput:
    name: str
    mime_type: str
    data_url: str
    """``data:image/png;base64,...``, as the Agents SDK's ``input_image`` takes it."""


@dataclass(frozen=True, slots=True)
class PdfInput:
    name: str
    data: bytes = field(repr=False)


@dataclass(slots=True)
class ReadFiles:
    pdfs: list[PdfInput] = field(default_factory=list)
    """Checked PDFs (really PDFs, readable), for the core to store for ``read_document``."""
    text: str = ""
    """The readable files, each under a header with its name, ready to append to the message."""
    images: list[ImageInput] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def image_type(data: bytes) -> str | None:
    """The image's real type from its magic bytes; None if it is none of those we send."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def is_image_file(name: str, declared_type: str) -> bool:
    return declared_type.lower() in IMAGE_TYPES or PurePath(name.lower()).suffix in IMAGE_EXTENSIONS


def is_text_file(name: str, declared_type: str) -> bool:
    suffix = PurePath(name.lower()).suffix
    return declared_type.lower().startswith(TEXT_TYPES) or suffix in TEXT_EXTENSIONS


BOMS = (
    # UTF-32 LE's BOM begins with UTF-16 LE's: it is looked for first.
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
DETECT_SAMPLE_BYTES = 256 * 1024
"""How much of a file the charset checks read (all of it, not a few chunks): more than the
``MAX_TEXT_FILE_CHARS`` (100,000 by default) a text file can bring to the model."""
WESTERN_MESS_MARGIN = 0.15
"""How much messier (charset_normalizer's mess ratio; it drops a charset at 0.2) Windows-1252's
reading may be than the detected charset's and still win. Measured: Western text with symbols
such as "n°" reads up to ~0.1 messier as Windows-1252 than as the detector's Latin pick;
non-Latin text read as Windows-1252 is 1.0 or more messier."""
BINARY_PROBE_BYTES = 8192
"""A zero byte this early means binary data or UTF-16/32 without a BOM."""
# Control characters text files do not contain (tab, newlines, form feed and ESC they do), and
# U+FFFD, what undecodable bytes became.
_NOT_TEXT = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f-\x9f\ufffd]")


def decode_text(data: bytes) -> str | None:
    """Bytes to text, whatever the charset; None for data that is not text.

    A BOM decides. Without one, UTF-32/UTF-16 are told by where their zero bytes sit, then
    UTF-8 is tried, then the charset is detected over the whole sample. CPU-bound on big files
    (detection takes tens of ms): call it off the event loop.
    """
    for bom, codec in BOMS:
        if data.startswith(bom):
            return _if_text(data[len(bom) :].decode(codec, errors="replace"))
    if b"\x00" in data[:BINARY_PROBE_BYTES]:
        return _wide_unicode(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    return _detected(data)


def _if_text(text: str) -> str | None:
    """``text``, unless what it starts with has a zero character or more than 1 % control
    characters and undecodable bytes: then it was not text (or not this encoding)."""
    sample = text[:DETECT_SAMPLE_BYTES]
    if "\x00" in sample or len(_NOT_TEXT.findall(sample)) * 100 > len(sample):
        return None
    return text


def _wide_unicode(data: bytes) -> str | None:
    """UTF-32 or UTF-16 without a BOM, told by where the zero bytes sit; None if it is neither
    (binary data)."""
    sample = data[:DETECT_SAMPLE_BYTES]
    codecs_to_try = []
    if len(data) % 4 == 0:
        # The top byte of every UTF-32 code unit is zero (code points end at U+10FFFF).
        if not sample[3::4].strip(b"\x00"):
            codecs_to_try.append("utf-32-le")
        if not sample[0::4].strip(b"\x00"):
            codecs_to_try.append("utf-32-be")
    if len(data) % 2 == 0:
        # Most characters of text with zero bytes in UTF-16 have a zero high byte (ASCII,
        # Latin-1): it comes second in little-endian.
        high_second = sample[1::2].count(0) >= sample[0::2].count(0)
        codecs_to_try.append("utf-16-le" if high_second else "utf-16-be")
    for codec in codecs_to_try:
        try:
            text = _if_text(data.decode(codec))
        except UnicodeDecodeError:
            continue
        if text is not None:
            return text
    return None


def _detected(data: bytes) -> str | None:
    """Text in a legacy charset, by detection; None if no charset reads it as text."""
    sample = data[:DETECT_SAMPLE_BYTES]
    if len(data) > len(sample):
        # End the sample at a line break: cut inside a multi-byte character, it would rule out
        # the right charset (no such charset uses the byte 0x0A inside a character).
        sample = sample[: sample.rfind(b"\n") + 1] or sample
    # One chunk, the whole sample, not the library's five 512-byte samples: in a long file a
    # few accented letters are all that tells the charsets apart.
    best = from_bytes(sample, steps=1, chunk_size=len(sample)).best()
    try:
        western: str | None = data.decode("cp1252")
    except UnicodeDecodeError:
        western = None
    # Detection cannot tell the Latin code pages apart (a Latin-1 CSV came out as Windows-1250,
    # "naďve"; French and German text as Windows-1250 or ISO 8859-14; a short line as Arabic).
    # Windows-1252, by far the commonest of them, wins whenever it reads the sample about as
    # cleanly as the detector's pick. Polish, Cyrillic, Greek, Arabic or CJK bytes read as
    # Windows-1252 are several times messier, so they keep their own charset.
    if western is not None and (
        best is None
        or mess_ratio(western[: len(sample)], maximum_threshold=1.0)
        <= best.chaos + WESTERN_MESS_MARGIN
    ):
        return _if_text(western)
    if best is None:
        return None
    return _if_text(data.decode(best.encoding, errors="replace"))


async def read_attachments(
    attachments: Sequence[Attachment],
    settings: Settings,
    *,
    vision: bool | None = None,
    model: str = "",
) -> ReadFiles:
    """Read every attachment (up to the cap). ``vision``: whether ``model`` takes images, from
    litellm's model info (None: unknown, so images are sent and the provider decides)."""
    out = ReadFiles()
    limit = int(settings.max_file_mb * 1024 * 1024)
    if len(attachments) > settings.max_files_per_message:
        extra = attachments[settings.max_files_per_message :]
        names = ", ".join(a.name for a in extra)
        out.notices.append(
            f"Only the first {settings.max_files_per_message} files were read; skipped: {names}."
        )
        attachments = attachments[: settings.max_files_per_message]
    parts: list[str] = []
    for attachment in attachments:
        name = attachment.name
        image = is_image_file(name, attachment.declared_type)
        pdf = not image and is_pdf_file(name, attachment.declared_type)
        if image and vision is False:
            out.notices.append(
                f"Skipped {name}: the model `{model}` cannot see images. "
                "Try `/model` with one that can, e.g. `openai/gpt-5-mini`."
            )
            continue
        if pdf and settings.redact_pii:
            out.notices.append(f"Skipped {name}: {PDF_NOT_REDACTED}")
            continue
        if not (image or pdf) and not is_text_file(name, attachment.declared_type):
            kind = attachment.declared_type or "unknown type"
            out.notices.append(
                f"Skipped {name}: I can read PDFs, images and text files, not this ({kind})."
            )
            continue
        if attachment.size > limit:
            out.notices.append(
                f"Skipped {name}: it is {attachment.size / 1e6:.1f} MB, over the "
                f"{settings.max_file_mb:g} MB limit."
            )
            continue
        try:
            data = await attachment.fetch()
        except AttachmentUnavailable as exc:
            log.warning("attachment unavailable: %s", exc)
            out.notices.append(f"Skipped {name}: {exc}.")
            continue
        except Exception as exc:
            log.warning("could not fetch an attachment: %s", type(exc).__name__)
            out.notices.append(f"Skipped {name}: I could not download it.")
            continue
        if len(data) > limit:
            out.notices.append(f"Skipped {name}: it is over the {settings.max_file_mb:g} MB limit.")
            continue
        if pdf:
            problem = await pdf_problem_off_loop(data)
            if problem:
                out.notices.append(f"Skipped {name}: {problem}.")
                continue
            out.pdfs.append(PdfInput(name, data))
            continue
        if image:
            real = image_type(data)
            if real is None:
                out.notices.append(f"Skipped {name}: it is not a PNG, JPEG, WebP or GIF image.")
                continue
            encoded = await asyncio.to_thread(base64.b64encode, data)
            out.images.append(ImageInput(name, real, f"data:{real};base64,{encoded.decode()}"))
            continue
        text = await asyncio.to_thread(decode_text, data)  # detection is CPU work
        if text is None:
            out.notices.append(f"Skipped {name}: it does not look like a text file.")
            continue
        cap = settings.max_text_file_chars
        if len(text) > cap:
            out.notices.append(
                f"{name} is long: only its first {cap:,} of {len(text):,} characters were read."
            )
            text = text[:cap]
        parts.append(f"--- File: {name} ---\n{text}\n--- End of {name} ---")
    out.text = "\n\n".join(parts)
    return out
