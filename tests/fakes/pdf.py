"""Tiny PDFs for tests: build valid uncompressed PDF 1.4 files and read their text back.

``make_pdf(["page one", "page two"])`` gives a file any PDF reader opens (catalog, page tree, one
Helvetica page per string, exact xref offsets). ``pdf_text`` is the matching minimal extractor the
fake OpenRouter uses as its ``pdf-text`` engine: it reads the ``Tj``/``TJ`` strings of uncompressed
page content streams and knows nothing about compression, fonts or encodings.

Text is written as PDFDocEncoding/Latin-1; characters outside Latin-1 become ``?``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Final

__all__ = ["is_encrypted", "make_pdf", "pdf_text"]

PDF_MAGIC: Final = b"%PDF-"

# Standard security handler, RC4 40-bit (/V 1 /R 2): fixed 32-byte /O and /U entries.
_OWNER_KEY: Final = hashlib.sha256(b"fake owner password").hexdigest().upper()
_USER_KEY: Final = hashlib.sha256(b"fake user password").hexdigest().upper()

_ESCAPES: Final = {
    ord("\\"): "\\\\",
    ord("("): "\\(",
    ord(")"): "\\)",
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
}


def _literal(text: str) -> bytes:
    """``text`` as the inside of a PDF literal string ``(...)``."""
    return text.translate(_ESCAPES).encode("latin-1", errors="replace")


def _build(pages: Sequence[str], encrypted: bool, padding: int | None) -> bytes:
    objects: list[bytes] = []  # object n is objects[n - 1]

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    def add_stream(data: bytes, extra: bytes = b"") -> int:
        head = b"<< /Length %d%s >>\nstream\n" % (len(data), extra)
        return add(head + data + b"\nendstream")

    catalog = add(b"")  # filled in once the page tree's number is known
    pages_obj = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    kids: list[int] = []
    for text in pages:
        content = add_stream(b"BT /F1 12 Tf 72 720 Td (" + _literal(text) + b") Tj ET")
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] "
                b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
                % (pages_obj, font, content)
            )
        )
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_obj
    kid_refs = b" ".join(b"%d 0 R" % k for k in kids)
    objects[pages_obj - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kid_refs, len(kids))
    encrypt: int | None = None
    if encrypted:
        encrypt = add(
            b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P -4 >>"
            % (_OWNER_KEY.encode(), _USER_KEY.encode())
        )
    if padding is not None:
        filler = (b"% padding, not referenced by any page\n" * (padding // 38 + 1))[:padding]
        add_stream(filler, b" /Comment (padding)")

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    file_id = hashlib.md5(bytes(out), usedforsecurity=False).hexdigest().upper().encode()
    trailer = b"<< /Size %d /Root %d 0 R /ID [<%s> <%s>]" % (
        len(objects) + 1,
        catalog,
        file_id,
        file_id,
    )
    if encrypt is not None:
        trailer += b" /Encrypt %d 0 R" % encrypt
    out += b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def make_pdf(pages: Sequence[str], *, encrypted: bool = False, pad_to: int = 0) -> bytes:
    """A valid, uncompressed PDF 1.4 with one Helvetica text page per string of ``pages``.

    ``encrypted`` adds a standard-security-handler ``/Encrypt`` dictionary referenced from the
    trailer (the content itself stays readable: only the marker matters to the fake).
    ``pad_to`` adds an unreferenced padding stream so the file is at least (almost always
    exactly) that many bytes.
    """
    data = _build(pages, encrypted, None)
    if len(data) >= pad_to:
        return data
    size = 0
    for _ in range(8):
        data = _build(pages, encrypted, size)
        missing = pad_to - len(data)
        if missing == 0:
            return data
        size = max(0, size + missing)
    while len(data) < pad_to:  # stuck on a digit-count boundary: settle for a byte or two more
        size += pad_to - len(data)
        data = _build(pages, encrypted, size)
    return data


# --------------------------------------------------------------------------- reading

_OBJ_RE: Final = re.compile(rb"(\d+)\s+(\d+)\s+obj\b")
_STREAM_RE: Final = re.compile(rb"\bstream\r?\n")
_LENGTH_RE: Final = re.compile(rb"/Length\s+(\d+)(?!\s+\d+\s+R)")
_REF_RE: Final = re.compile(rb"(\d+)\s+\d+\s+R")
_ENCRYPT_RE: Final = re.compile(rb"/Encrypt\s*(?:\d+\s+\d+\s+R|<<)")
_WHITESPACE: Final = b" \t\r\n\f\x00"
_SIMPLE_ESCAPES: Final = {
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
    ord("b"): b"\b",
    ord("f"): b"\f",
}


def is_encrypted(data: bytes) -> bool:
    """Whether the PDF declares an ``/Encrypt`` dictionary (in its trailer or xref stream)."""
    return _ENCRYPT_RE.search(data) is not None


def _objects(data: bytes) -> dict[int, tuple[bytes, bytes | None]]:
    """Object number -> (dictionary part, stream data or None), for an uncompressed PDF."""
    objects: dict[int, tuple[bytes, bytes | None]] = {}
    pos = 0
    while (match := _OBJ_RE.search(data, pos)) is not None:
        start = match.end()
        end = data.find(b"endobj", start)
        if end < 0:
            break
        stream = _STREAM_RE.search(data, start, end)
        content: bytes | None = None
        if stream is None:
            head = data[start:end]
        else:
            head = data[start : stream.start()]
            length = _LENGTH_RE.search(head)
            begin = stream.end()
            if length is not None and data[begin + int(length[1]) :].lstrip().startswith(
                b"endstream"
            ):
                stop = begin + int(length[1])
            else:
                stop = data.find(b"endstream", begin)
                stop = len(data) if stop < 0 else stop
            content = data[begin:stop]
            end = data.find(b"endobj", stop)
            end = len(data) if end < 0 else end
        objects[int(match[1])] = (head, content)
        pos = end + len(b"endobj")
    return objects


def _refs(head: bytes, key: bytes) -> list[int]:
    """The object numbers ``key`` points to (``/Key 3 0 R`` or ``/Key [3 0 R 4 0 R]``)."""
    match = re.search(re.escape(key) + rb"\s*(\[[^\]]*\]|\d+\s+\d+\s+R)", head)
    return [] if match is None else [int(n) for n in _REF_RE.findall(match[1])]


def _page_streams(objects: dict[int, tuple[bytes, bytes | None]]) -> list[list[bytes]]:
    """The content streams of each page, in page-tree order."""
    root = next((h for h, _ in objects.values() if re.search(rb"/Type\s*/Catalog\b", h)), None)
    todo = _refs(root, b"/Pages") if root is not None else []
    pages: list[list[bytes]] = []
    seen: set[int] = set()
    while todo:
        number = todo.pop(0)
        if number in seen or number not in objects:
            continue
        seen.add(number)
        head, _ = objects[number]
        if re.search(rb"/Type\s*/Pages\b", head):
            todo[:0] = _refs(head, b"/Kids")
        elif re.search(rb"/Type\s*/Page\b", head):
            streams = (objects.get(n, (b"", None))[1] for n in _refs(head, b"/Contents"))
            pages.append([s for s in streams if s is not None])
    if not pages:  # no usable page tree: every stream that draws text, in file order
        pages = [[s] for _, s in objects.values() if s is not None and b"BT" in s]
    return pages


def _read_literal(data: bytes, pos: int) -> tuple[bytes, int]:
    """The literal string starting at ``data[pos] == "("``, and the index after it."""
    out = bytearray()
    depth = 0
    i = pos
    while i < len(data):
        c = data[i]
        if c == 0x5C:  # backslash
            i += 1
            if i >= len(data):
                break
            e = data[i]
            if e in _SIMPLE_ESCAPES:
                out += _SIMPLE_ESCAPES[e]
            elif 0x30 <= e <= 0x37:  # up to three octal digits
                j = i
                while j < min(i + 3, len(data)) and 0x30 <= data[j] <= 0x37:
                    j += 1
                out.append(int(data[i:j], 8) & 0xFF)
                i = j - 1
            elif e == 0x0D:  # line continuation
                if i + 1 < len(data) and data[i + 1] == 0x0A:
                    i += 1
            elif e != 0x0A:
                out.append(e)  # \( \) \\ and unknown escapes: the character itself
        elif c == 0x28:  # (
            if depth:
                out.append(c)
            depth += 1
        elif c == 0x29:  # )
            depth -= 1
            if depth == 0:
                return bytes(out), i + 1
            out.append(c)
        else:
            out.append(c)
        i += 1
    return bytes(out), len(data)


def _next_token(data: bytes, pos: int) -> bytes:
    while pos < len(data) and data[pos] in _WHITESPACE:
        pos += 1
    end = pos
    while end < len(data) and data[end] not in _WHITESPACE and data[end] not in b"()[]<>/%":
        end += 1
    return data[pos:end]


def _stream_text(content: bytes) -> list[str]:
    """The strings shown by ``Tj``, ``'``, ``"`` and ``TJ`` operators, in order."""
    shown: list[str] = []
    array: list[bytes] | None = None
    i = 0
    while i < len(content):
        c = content[i]
        if c == 0x25:  # % comment, to the end of the line
            eol = min(
                (p for p in (content.find(b"\n", i), content.find(b"\r", i)) if p >= 0),
                default=len(content),
            )
            i = eol
        elif c == 0x28:
            text, i = _read_literal(content, i)
            if array is not None:
                array.append(text)
            elif _next_token(content, i) in (b"Tj", b"'", b'"'):
                shown.append(text.decode("latin-1"))
            continue
        elif c == 0x5B:  # [
            array = []
        elif c == 0x5D:  # ]
            if array is not None and _next_token(content, i + 1) == b"TJ":
                shown.append(b"".join(array).decode("latin-1"))
            array = None
        i += 1
    return shown


def pdf_text(data: bytes) -> str | None:
    """The text of an uncompressed PDF's pages (``Tj`` strings), pages joined by a blank line.

    ``None`` if ``data`` is not a PDF (does not start with ``%PDF-``).
    """
    if not data.startswith(PDF_MAGIC):
        return None
    pages = _page_streams(_objects(data))
    return "\n\n".join("\n".join(t for s in streams for t in _stream_text(s)) for streams in pages)
