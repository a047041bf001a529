"""Terminal chat: the same core and store as Slack and Discord, from a terminal or a script.

Interactive (stdin is a terminal): a prompt, streamed answers, tool progress, /commands.
Scripted (stdin is a pipe or file): one message per line, each answer printed in full on stdout;
progress and notices go to stderr so stdout holds only the answers.
"""

from __future__ import annotations

import asyncio
import getpass
import re
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.events import Attachment, Author, ConversationKey, Event, EventKind

if TYPE_CHECKING:
    from bot.core import Core

PROMPT = "you> "
CORE_COMMANDS = ("reset", "model", "settings", "usage", "files", "help", "ask")
MIME_BY_SUFFIX = {
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".json": "application/json",
    ".csv": "text/csv",
    ".md": "text/markdown",
    ".txt": "text/plain",
}


def conversation_key(name: str) -> ConversationKey:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "default"
    return ConversationKey("console", (safe,))


class ConsoleReply:
    """Renders one answer on a terminal (or plain stdout when scripted)."""

    def __init__(self, out: TextIO, err: TextIO, *, interactive: bool) -> None:
        self.out, self.err, self.interactive = out, err, interactive
        self.text: list[str] = []
        self.failed: str | None = None

    def _side(self, line: str) -> None:
        if self.interactive:
            self.out.write(f"\x1b[2m{line}\x1b[0m\n")
            self.out.flush()
        else:
            self.err.write(line + "\n")
            self.err.flush()

    async def start(self) -> None:
        if self.interactive:
            self.out.write("bot> ")
            self.out.flush()

    async def stream(self, delta: str) -> None:
        self.text.append(delta)
        self.out.write(delta)
        self.out.flush()

    async def progress(self, status: str) -> None:
        if self.text and not self.text[-1].endswith("\n"):
            self.out.write("\n")
        self._side(f"[{status}]")

    async def notice(self, text: str) -> None:
        self._side(f"note: {text}")

    async def finish(self) -> None:
        self.out.write("\n")
        self.out.flush()

    async def fail(self, message: str) -> None:
        self.failed = message
        if self.text:
            self.out.write("\n")
        self.out.write(f"⚠️ {message}\n")
        self.out.flush()

    async def refuse(self, message: str) -> None:
        await self.fail(message)  # the terminal is private already


@dataclass
class ConsoleSession:
    """One terminal conversation: turns typed lines into events for the core."""

    core_ready: Callable[[], Awaitable[Core]]
    name: str = "default"
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    interactive: bool = False
    pending: list[Path] = field(default_factory=list)
    user: str = field(default_factory=lambda: getpass.getuser() or "me")

    def _event(self, text: str, *, command: str | None = None, args: str = "") -> Event:
        key = conversation_key(self.name)
        attachments = tuple(_file_attachment(p) for p in self.pending)
        self.pending = []
        return Event(
            platform="console",
            event_id=f"console:{uuid.uuid4().hex}",
            conversation=key,
            channel=key,
            kind=EventKind.COMMAND if command else EventKind.DIRECT_MESSAGE,
            author=Author(id=self.user, display_name=self.user),
            text=text,
            attachments=attachments,
            command=command,
            command_args=args,
        )

    def _say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    async def handle_line(self, line: str) -> bool:
        """Handle one input line; False when the user asked to quit."""
        line = line.strip()
        if not line:
            return True
        if line.startswith("/"):
            command, _, args = line[1:].partition(" ")
            command = command.lower()
            if command in ("quit", "exit"):
                return False
            if command == "attach":
                self._attach(args.strip())
                return True
            if command == "ask":
                line = args
            elif command in CORE_COMMANDS:
                core = await self.core_ready()
                await core.handle(self._event(line, command=command, args=args), self._reply())
                return True
            else:
                self._say(f"Unknown command /{command}. Try /help (or /attach PATH, /quit).")
                return True
        core = await self.core_ready()
        await core.handle(self._event(line), self._reply())
        return True

    def _reply(self) -> ConsoleReply:
        return ConsoleReply(self.out, self.err, interactive=self.interactive)

    def _attach(self, raw: str) -> None:
        path = Path(raw).expanduser()
        if not raw:
            self._say("Usage: /attach PATH — the file goes with your next message.")
        elif not path.is_file():
            self._say(f"No such file: {path}")
        else:
            self.pending.append(path)
            self._say(f"Attached {path.name}; it goes with your next message.")


def _file_attachment(path: Path) -> Attachment:
    async def fetch() -> bytes:
        return await asyncio.to_thread(path.read_bytes)

    mime = MIME_BY_SUFFIX.get(path.suffix.lower(), "application/octet-stream")
    return Attachment(name=path.name, declared_type=mime, size=path.stat().st_size, fetch=fetch)


async def read_line(stream: TextIO) -> str | None:
    """The next line, read in a worker thread so the event loop never blocks; None at EOF."""
    line = await asyncio.to_thread(stream.readline)
    return line if line else None


async def run_chat(session: ConsoleSession, stdin: TextIO, *, banner: str | None = None) -> None:
    if session.interactive and banner:
        session.out.write(banner + "\n")
    while True:
        if session.interactive:
            session.out.write(PROMPT)
            session.out.flush()
        line = await read_line(stdin)
        if line is None:
            break
        if not await session.handle_line(line):
            break
