"""Logging: one line per record with its structured fields, secrets always redacted."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from pathlib import Path

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is printed.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
REDACTED = "[redacted]"


class RedactSecrets(logging.Filter):
    """Replace every configured secret value wherever it appears in a record's final text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        record.msg = self.redact(record.getMessage())
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, self.redact(value))
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class KeyValueFormatter(logging.Formatter):
    """``2026-11-25 10:00:00 INFO bot.core turn conversation=… outcome=answered …``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s", "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [
            f"{k}={v!r}" if isinstance(v, str) and " " in v else f"{k}={v}"
            for k, v in vars(record).items()
            if k not in _STANDARD and v is not None
        ]
        if fields:
            head, sep, tail = line.partition("\n")
            line = f"{head} {' '.join(fields)}{sep}{tail}"
        return line


def setup_logging(level: str, secrets: Iterable[str], *, file: Path | None = None) -> None:
    """Log to stderr, or to ``file`` (appended to), with Python's warnings, when the terminal
    is taken by a conversation."""
    handler: logging.Handler = logging.StreamHandler(sys.stderr)
    if file is not None:
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(file, encoding="utf-8")
            logging.captureWarnings(True)
        except OSError as exc:  # an unwritable folder must not stop the chat
            print(f"Cannot write {file} ({exc.strerror}); logging to stderr.", file=sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries that log request bodies or headers at DEBUG stay at WARNING unless asked:
    # message text must not reach the logs (slack_sdk logs every Web API body, discord.py
    # every REST and gateway payload, aiosqlite every statement's parameters).
    for noisy in (
        "LiteLLM",
        "litellm",
        "httpx",
        "httpcore",
        "openai",
        "openai.agents",
        "aiosqlite",
        "slack_sdk",
        "discord.http",
        "discord.gateway",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
