"""The agent's tools, and the one-line progress text shown while each runs."""

from __future__ import annotations

import json

from agents import Tool

from bot.tools.clock import get_current_time
from bot.tools.documents import read_document
from bot.tools.weather import get_weather

__all__ = ["TOOLS", "describe_tool_call", "get_current_time", "get_weather", "read_document"]

TOOLS: list[Tool] = [get_weather, get_current_time, read_document]

MAX_SUBJECT_CHARS = 60

# tool name -> (argument naming the subject, line with the subject, line without it)
_PROGRESS: dict[str, tuple[str, str, str]] = {
    get_weather.name: ("location", "Checking the weather in {}…", "Checking the weather…"),
    get_current_time.name: ("place", "Looking up the time in {}…", "Looking up the time…"),
    read_document.name: ("document", "Reading {}…", "Reading the documents…"),
}


def _subject(arguments_json: str, key: str) -> str | None:
    try:
        arguments = json.loads(arguments_json)
    except (ValueError, TypeError):
        return None
    value = arguments.get(key) if isinstance(arguments, dict) else None
    if not isinstance(value, str):
        return None
    # Model-written text ends up in a chat status line: one line, bounded length. The line
    # already ends in "…", which covers a cut too.
    text = " ".join(value.split())[:MAX_SUBJECT_CHARS].rstrip()
    return text or None


def describe_tool_call(name: str, arguments_json: str) -> str:
    """A short user-facing progress line for a tool call; never raises.

    ``describe_tool_call("get_weather", '{"location": "Tokyo"}')`` -> ``"Checking the weather in
    Tokyo…"``; an unknown tool -> ``"Running <name>…"``.
    """
    progress = _PROGRESS.get(name)
    if progress is None:
        # A name the model made up (unknown tools no longer end the turn): one short line.
        shown = " ".join(name.split())[:MAX_SUBJECT_CHARS].rstrip()
        return f"Running {shown}…" if shown else "Running a tool…"
    key, with_subject, without_subject = progress
    subject = _subject(arguments_json, key)
    return with_subject.format(subject) if subject else without_subject
