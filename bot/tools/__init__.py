"""The agent's tools, and the title of the step shown while each runs."""

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
    get_weather.name: ("location", "Checking the weather in {}", "Checking the weather"),
    get_current_time.name: ("place", "Looking up the time in {}", "Looking up the time"),
    read_document.name: ("document", "Reading {}", "Reading the documents"),
}


def _bounded(text: str) -> str:
    """Model-written text ends up in a chat status line: one line, bounded length, a cut
    marked."""
    line = " ".join(text.split())
    if len(line) <= MAX_SUBJECT_CHARS:
        return line
    return line[:MAX_SUBJECT_CHARS].rstrip() + "…"


def _subject(arguments_json: str, key: str) -> str | None:
    try:
        arguments = json.loads(arguments_json)
    except (ValueError, TypeError):
        return None
    value = arguments.get(key) if isinstance(arguments, dict) else None
    if not isinstance(value, str):
        return None
    return _bounded(value) or None


def describe_tool_call(name: str, arguments_json: str) -> str:
    """The title of a tool call's step, as a person would say it; never raises.

    ``describe_tool_call("get_weather", '{"location": "Tokyo"}')`` -> ``"Checking the weather in
    Tokyo"``; an unknown tool -> ``"Running <name>"``.
    """
    progress = _PROGRESS.get(name)
    if progress is None:
        # A name the model made up (unknown tools no longer end the turn): one short line.
        shown = _bounded(name)
        return f"Running {shown}" if shown else "Running a tool"
    key, with_subject, without_subject = progress
    subject = _subject(arguments_json, key)
    return with_subject.format(subject) if subject else without_subject
