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
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePath

from charset_normalizer import from_bytes

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


def decode_text(data: bytes) -> str | None:
    """Bytes to text with charset detection; None for binary data."""
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    best = from_bytes(data).best()
    guess = None if best is None else str(best)
    # Detection is unreliable on a few bytes (a 12-byte Latin-1 line reads as Arabic); short
    # text that decodes as Windows-1252 into Latin letters is far more likely Western.
    try:
        western: str | None = data.decode("cp1252")
    except UnicodeDecodeError:
        western = None
    if western is not None and (guess is None or (len(data) < 512 and _is_latin(western))):
        return western
    return guess


def _is_latin(text: str) -> bool:
    return all(ord(c) < 0x250 or 0x2000 <= ord(c) <= 0x20CF for c in text)


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
        text = (
            await asyncio.to_thread(decode_text, data) if len(data) > 65536 else decode_text(data)
        )
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
