"""PDFs: checked before anything is sent, kept in the store, read through OpenRouter's file parser
once per conversation.

Design: the agent stays the one core. A PDF that arrives is checked (really a PDF, not
encrypted, not truncated), stored by content hash, and named in the user's message; the agent
reads it by calling the ``read_document`` tool, on that turn or many turns later. The tool does
the one request the Agents SDK cannot make: a chat completion with the file part, the
file-parser plugin and, once OpenRouter has parsed the file in this conversation, the
annotations it returned sent back on an assistant message, so OpenRouter skips the parse. It
goes over the tools' HTTP session, or through ``litellm.acompletion`` on the litellm path.
Conversation history holds only the file's name: turns that do not consult the document never
carry its bytes.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

import aiohttp

from bot.errors import classify, user_message
from bot.settings import Settings
from storage.base import JSONDict, Store, StoredFile

log = logging.getLogger(__name__)


PDF_MIME = "application/pdf"
PDF_ENGINE_SETTING = "pdf_engine"
MAX_DOCUMENTS_PER_QUESTION = 3
READER_PROMPT = (
    "You answer questions about the attached documents. Use only what they say; quote short "
    "passages and name the document (and page, when known). If the answer is not in them, say "
    "so plainly."
)


def is_pdf_file(name: str, declared_type: str) -> bool:
    return declared_type.lower() == PDF_MIME or name.lower().endswith(".pdf")


def pdf_problem(data: bytes) -> str | None:
    """Why these bytes cannot be sent as a PDF, in words for the user; None if they can."""
    head = data[:1024]
    if b"%PDF-" not in head:
        lowered = head.lstrip().lower()
        if lowered.startswith((b"<!doctype html", b"<html")):
            return "it is a web page saved as .pdf, not a PDF"
        if head.startswith(b"PK\x03\x04"):
            return "it is a ZIP archive named .pdf, not a PDF"
        return "it is not a PDF"
    if b"/Encrypt" in data:
        return "it is password-protected (encrypted), so it cannot be read"
    if b"%%EOF" not in data[-2048:]:
        return "it looks damaged (the end of the file is missing)"
    return None


async def pdf_problem_off_loop(data: bytes) -> str | None:
    """``pdf_problem`` on a worker thread for big files (a scan of megabytes)."""
    if len(data) > 1_000_000:
        return await asyncio.to_thread(pdf_problem, data)
    return pdf_problem(data)


class DocumentReader:
    """Answers a question from a conversation's PDFs through OpenRouter's file parser."""

    def __init__(self, store: Store, settings: Settings, http: aiohttp.ClientSession) -> None:
        self._store = store
        self._settings = settings
        self._http = http

    async def ask(
        self, *, conversation: str, channel: str, model: str, question: str, document: str
    ) -> str:
        """The answer, or a sentence for the model saying why there is none. Never raises."""
        if self._settings.redact_pii:  # PDFs stored before redaction was turned on
            return (
                "Documents are not read while PII redaction is on: a PDF would reach the "
                "model unredacted. Ask the user to paste the text they need."
            )
        try:
            return await self._ask(conversation, channel, model, question, document)
        except Exception as exc:
            kind = classify(exc).kind
            log.warning("reading a document failed: %s (%s)", kind.value, type(exc).__name__)
            return f"Reading the document failed: {user_message(kind)}"

    async def _ask(
        self, conversation: str, channel: str, model: str, question: str, document: str
    ) -> str:
        files = [
            f
            for f in await self._store.list_files(conversation=conversation)
            if f.mime_type == PDF_MIME
        ]
        if not files:
            return "No PDF has been shared in this conversation. Ask the user to attach it."
        wanted = document.strip().lower()
        chosen = [f for f in files if wanted and wanted in f.name.lower()] or files
        chosen = chosen[-MAX_DOCUMENTS_PER_QUESTION:]
        engine = (
            await self._store.get_channel_setting(channel=channel, name=PDF_ENGINE_SETTING)
            or self._settings.pdf_engine
        )
        parts: list[JSONDict] = [
            {"type": "text", "text": "Documents: " + ", ".join(f.name for f in chosen)}
        ]
        known: list[JSONDict] = []
        unparsed: list[StoredFile] = []
        for file in chosen:
            data = await self._store.get_file_bytes(sha256=file.sha256)
            if data is None:
                continue
            encoded = await asyncio.to_thread(base64.b64encode, data)
            parts.append(
                {
                    "type": "file",
                    "file": {
                        "filename": file.name,
                        "file_data": f"data:{PDF_MIME};base64,{encoded.decode()}",
                    },
                }
            )
            stored = await self._store.load_annotations(
                conversation=conversation, file_sha256=file.sha256
            )
            if stored:
                known.extend(stored)
            else:
                unparsed.append(file)
        messages: list[JSONDict] = [
            {"role": "system", "content": READER_PROMPT},
            {"role": "user", "content": parts},
        ]
        if known:
            # The message OpenRouter answered with, annotations included: it skips the parse.
            messages.append(
                {"role": "assistant", "content": "I have read the documents.", "annotations": known}
            )
        messages.append({"role": "user", "content": question})
        if self._settings.model_client == "litellm":
            answer, annotations = await self._complete_via_litellm(model, messages, engine)
        else:
            answer, annotations = await self._complete(model, messages, engine)
        annotations = [a for a in annotations if isinstance(a, dict) and a.get("type") == "file"]
        await self._keep(conversation, unparsed, annotations)
        return answer.strip() or "The document reader returned no answer."

    async def _complete(
        self, model: str, messages: list[JSONDict], engine: str
    ) -> tuple[str, list[Any]]:
        """The file-parser call over the tools' HTTP session (the default model path)."""
        from bot.openrouter_http import post_completion, wire_model

        payload = await post_completion(
            self._http,
            base_url=self._settings.openrouter_base_url,
            api_key=self._settings.require_openrouter_key(),
            body={
                "model": wire_model(model),
                "messages": messages,
                "plugins": [{"id": "file-parser", "pdf": {"engine": engine}}],
            },
            headers={"X-Title": self._settings.or_app_name},
            timeout_s=self._settings.model_timeout_s,
        )
        choices = payload.get("choices") or [{}]
        message = choices[0].get("message") or {}
        return str(message.get("content") or ""), list(message.get("annotations") or [])

    async def _complete_via_litellm(
        self, model: str, messages: list[JSONDict], engine: str
    ) -> tuple[str, list[Any]]:
        """The same call through litellm (``BOT_MODEL_CLIENT=litellm``)."""
        # litellm is loaded already on this path (bot.wiring imports it off the loop at start).
        import litellm

        from bot.cost_callback import configure_litellm

        configure_litellm()
        response: Any = await litellm.acompletion(
            model=model,
            base_url=self._settings.openrouter_base_url,
            api_key=self._settings.require_openrouter_key(),
            messages=messages,
            plugins=[{"id": "file-parser", "pdf": {"engine": engine}}],
            timeout=self._settings.model_timeout_s,
            extra_headers={"X-Title": self._settings.or_app_name},
        )
        message = response.choices[0].message
        fields = getattr(message, "provider_specific_fields", None) or {}
        return str(message.content or ""), list(fields.get("annotations") or [])

    async def _keep(
        self, conversation: str, unparsed: list[StoredFile], annotations: list[JSONDict]
    ) -> None:
        """Store each newly parsed file's annotations, matched to it by name (or, for a single
        file, whatever file annotations came back)."""
        for file in unparsed:
            mine = [a for a in annotations if (a.get("file") or {}).get("name") == file.name]
            if not mine and len(unparsed) == 1:
                mine = annotations
            if mine:
                await self._store.save_annotations(
                    conversation=conversation, file_sha256=file.sha256, annotations=mine
                )
            else:
                log.warning("OpenRouter returned no file annotations for a document")
