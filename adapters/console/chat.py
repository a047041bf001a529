"""Terminal chat: the same core and store as Slack and Discord, from a terminal or a script.

Interactive (stdin is a terminal): a prompt, a spinner until the first words, streamed answers,
tool progress, /commands. Ctrl-C stops the answer in progress (it is not recorded, so history
stays as before the question); Ctrl-C again at the prompt, or Ctrl-D, quits. Log lines go to a
file (``log_path``) so they never land in the conversation.
Scripted (stdin is a pipe or file): one message per line, each answer printed in full on stdout;
progress, notices and log lines go to stderr so stdout holds only the answers.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import enum
import getpass
import logging
import os
import re
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from adapters.common.sources import plain_sources
from bot.commands import commands_for
from bot.events import Attachment, Author, ConversationKey, Event, EventKind
from bot.reply import ApprovalRequest, Step, StepState, Verdict
from bot.settings import Settings, database_path
from bot.web_search import Source

if TYPE_CHECKING:
    from bot.core import Core
    from bot.feedback import FinishedAnswer

log = logging.getLogger(__name__)

PROMPT = "you> "
ANSWER_PREFIX = "bot> "
LOG_FILE_NAME = "bot-chat.log"
SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
SPINNER_INTERVAL_S = 0.1
QUIT_HINT = "Ctrl-C again or Ctrl-D to quit"
DIM, PLAIN, CLEAR_LINE = "\x1b[2m", "\x1b[0m", "\r\x1b[K"
APPROVAL_OUTCOMES = {
    Verdict.APPROVED: "approved",
    Verdict.DENIED: "denied",
    Verdict.EXPIRED: "no answer in time: cancelled",
}
Answer = Callable[[ApprovalRequest], Coroutine[Any, Any, None]]
"""Read the answer to a request for approval, and give it to the core."""
LOCAL_COMMANDS = frozenset({"attach", "quit"})
"""Handled by the terminal itself; the registry's other commands go to the core."""
CORE_COMMANDS = frozenset(c.name for c in commands_for("console")) - LOCAL_COMMANDS
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


def log_path(settings: Settings) -> Path:
    """Where an interactive chat writes its log lines: beside the database (the working
    directory for an in-memory one), so they never interleave with the conversation."""
    database = database_path(settings.database_url)
    return (database.parent if database else Path()) / LOG_FILE_NAME


def conversation_key(name: str) -> ConversationKey:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "default"
    return ConversationKey("console", (safe,))


class ConsoleReply:
    """Renders one answer on a terminal (or plain stdout when scripted).

    With ``spinner`` (a terminal on both ends), a spinner shows while the bot waits for the
    model: from ``start`` to the first words, and after each tool step until the next ones.
    """

    def __init__(
        self,
        out: TextIO,
        err: TextIO,
        *,
        interactive: bool,
        spinner: bool = False,
        answer: Answer | None = None,
    ) -> None:
        self.out, self.err, self.interactive = out, err, interactive
        self._answer = answer
        """Reads the user's y/N to a request for approval and decides it (None: no input)."""
        self._prompt: asyncio.Task[None] | None = None
        self.text: list[str] = []
        self.failed: str | None = None
        self._spinner_on = spinner
        self._spinner: asyncio.Task[None] | None = None
        self._line = ""
        """What the spinner's line holds before it (``bot> `` until the answer begins)."""

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def _side(self, line: str) -> None:
        if self.interactive:
            self._write(f"{DIM}{line}{PLAIN}\n")
        else:
            self.err.write(line + "\n")
            self.err.flush()

    def _spin(self, line: str) -> None:
        if self._spinner_on and self._spinner is None:
            self._line = line
            self._spinner = asyncio.create_task(self._animate())

    def stop_spinner(self) -> None:
        """Clear the spinner, leaving its line as it was (``bot> `` or empty)."""
        if self._spinner is not None:
            self._spinner.cancel()
            self._spinner = None
            self._write(CLEAR_LINE + self._line)

    async def _animate(self) -> None:
        frame = 0
        while True:
            symbol = SPINNER_FRAMES[frame % len(SPINNER_FRAMES)]
            self._write(f"{CLEAR_LINE}{self._line}{DIM}{symbol} thinking…{PLAIN}")
            frame += 1
            await asyncio.sleep(SPINNER_INTERVAL_S)

    async def start(self) -> None:
        if self.interactive:
            self._write(ANSWER_PREFIX)
            self._spin(ANSWER_PREFIX)

    async def stream(self, delta: str) -> None:
        self.stop_spinner()
        self.text.append(delta)
        self._write(delta)

    async def progress(self, step: Step) -> None:
        if step.state is StepState.COMPLETE:
            return  # the next step or the answer's text says it is done
        self.stop_spinner()
        if self.text and not self.text[-1].endswith("\n"):
            self.out.write("\n")
        running = step.state is StepState.RUNNING
        self._side(f"[{step.title}…]" if running else f"[{step.title}: failed]")
        self._spin("")

    async def notice(self, text: str) -> None:
        self.stop_spinner()
        self._side(f"note: {text}")

    async def finish(
        self, answer: FinishedAnswer | None = None, sources: Sequence[Source] = ()
    ) -> None:
        # No buttons in a terminal: its answers take no feedback.
        self.stop_spinner()
        listed = plain_sources(sources)
        if listed:
            self.text.append(listed)
            self._write(listed)
        self._write("\n")

    async def fail(self, message: str) -> None:
        self.stop_spinner()
        self.failed = message
        if self.text:
            self.out.write("\n")
        self._write(f"⚠️ {message}\n")

    async def refuse(self, message: str) -> None:
        await self.fail(message)  # the terminal is private already

    async def ask_approval(self, request: ApprovalRequest) -> bool:
        """The question and a y/N prompt; the next line typed answers it (the core waits)."""
        if self._answer is None:
            return False
        self.stop_spinner()
        if self.text and not self.text[-1].endswith("\n"):
            self.out.write("\n")
        self._write(f"{request.question} [y/N] ")
        self._prompt = asyncio.create_task(self._answer(request))
        return True

    async def approval_closed(
        self, request: ApprovalRequest, verdict: Verdict, by: str | None
    ) -> None:
        if self.stop_prompt():
            self._write("\n")  # the prompt's line, left unanswered
        self._side(f"[{APPROVAL_OUTCOMES[verdict]}]")
        self._spin("")

    def stop_prompt(self) -> bool:
        """Stop reading an answer to the prompt (the turn ended without it): True if it was
        still waiting."""
        prompt, self._prompt = self._prompt, None
        if prompt is None or prompt.done():
            return False
        prompt.cancel()
        return True


@dataclass
class ConsoleSession:
    """One terminal conversation: turns typed lines into events for the core."""

    core: Core
    name: str = "default"
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    interactive: bool = False
    pending: list[Path] = field(default_factory=list)
    user: str = field(default_factory=lambda: getpass.getuser() or "me")
    spinner: bool = False
    """Show a spinner while waiting for the model (a terminal on both ends, never a script)."""
    _turn: tuple[Event, ConsoleReply] | None = field(default=None, init=False, repr=False)
    """The event being answered and its reply, while the core handles it."""
    reader: LineReader | None = None
    """Where typed lines come from (``run_chat`` sets it): a y/N to an approval is one."""

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

    def say(self, text: str) -> None:
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
                await self._handle(self._event(line, command=command, args=args))
                return True
            else:
                self.say(f"Unknown command /{command}. Try /help (or /attach PATH, /quit).")
                return True
        await self._handle(self._event(line))
        return True

    async def _handle(self, event: Event) -> None:
        reply = ConsoleReply(
            self.out,
            self.err,
            interactive=self.interactive,
            spinner=self.spinner,
            answer=self._answer_approval if self.reader is not None else None,
        )
        self._turn = (event, reply)  # kept if cancelled, for ``stopped``
        await self.core.handle(event, reply)
        self._turn = None

    async def stopped(self) -> None:
        """The answer in progress was cancelled (Ctrl-C): clear the screen's working state, and
        close the event's claim as failed. The core wrote no history for it (a turn is written
        whole at its end), so the conversation is as it was before the question."""
        if self._turn is None:
            return
        event, reply = self._turn
        self._turn = None
        reply.stop_spinner()
        reply.stop_prompt()
        self.say(("\n" if reply.text else "") + f"{DIM}[stopped; {QUIT_HINT}]{PLAIN}")
        await self.core.withdrawn(event)

    async def _answer_approval(self, request: ApprovalRequest) -> None:
        """The next line answers the prompt: ``y`` or ``yes`` approves, anything else (an
        empty line, the end of input) denies."""
        assert self.reader is not None
        line = await self.reader.next()
        approve = isinstance(line, str) and line.strip().lower() in ("y", "yes")
        key = conversation_key(self.name)
        click = Event(
            platform="console",
            event_id=f"console:{uuid.uuid4().hex}",
            conversation=key,
            channel=key,
            kind=EventKind.COMMAND,
            author=Author(id=self.user, display_name=self.user),
            text="",
            command="approval",
        )
        decided = await self.core.decide_approval(click, approval_id=request.id, approve=approve)
        if decided.status != "decided":
            self.say(decided.text)

    def _attach(self, raw: str) -> None:
        path = Path(raw).expanduser()
        if not raw:
            self.say("Usage: /attach PATH — the file goes with your next message.")
        elif not path.is_file():
            self.say(f"No such file: {path}")
        else:
            self.pending.append(path)
            self.say(f"Attached {path.name}; it goes with your next message.")


def _file_attachment(path: Path) -> Attachment:
    async def fetch() -> bytes:
        return await asyncio.to_thread(path.read_bytes)

    mime = MIME_BY_SUFFIX.get(path.suffix.lower(), "application/octet-stream")
    return Attachment(name=path.name, declared_type=mime, size=path.stat().st_size, fetch=fetch)


class Interrupt(enum.Enum):
    """Put in the input queue when Ctrl-C is pressed at the prompt."""

    CTRL_C = enum.auto()


class LineReader:
    """Input lines from a file descriptor, read on a daemon thread.

    Not ``asyncio.to_thread(stdin.readline)``: a read blocked on the terminal would keep the
    process from exiting after Ctrl-C (asyncio waits for its worker threads), and an abandoned
    ``readline`` holds the stdin buffer's lock, which the interpreter needs at shutdown. A raw
    ``os.read`` on a daemon thread holds nothing.
    """

    def __init__(self, stream: TextIO) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[str | Interrupt | None] = asyncio.Queue()
        self._fd = stream.fileno()
        self._encoding = stream.encoding or "utf-8"
        threading.Thread(target=self._read, name="console-input", daemon=True).start()

    async def next(self) -> str | Interrupt | None:
        """The next line (with its newline), ``Interrupt.CTRL_C``, or ``None`` at the end."""
        return await self._queue.get()

    def interrupt(self) -> None:
        self._queue.put_nowait(Interrupt.CTRL_C)

    def _read(self) -> None:
        decoder = codecs.getincrementaldecoder(self._encoding)(errors="replace")
        pending = ""
        while True:
            try:
                chunk = os.read(self._fd, 65_536)
            except OSError:
                chunk = b""
            pending += decoder.decode(chunk, final=not chunk)
            *lines, pending = pending.split("\n")
            for line in lines:
                self._put(line + "\n")
            if not chunk:
                if pending:
                    self._put(pending)
                self._put(None)
                return

    def _put(self, item: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the chat is over
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)


@contextlib.contextmanager
def _on_interrupt(handler: Callable[[], None]) -> Iterator[None]:
    """Ctrl-C calls ``handler`` on the loop instead of raising KeyboardInterrupt."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, handler)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def run_chat(session: ConsoleSession, stdin: TextIO, *, banner: str | None = None) -> None:
    """Read lines and answer them until end of input, /quit, or (interactive) Ctrl-C twice."""
    reader = session.reader = LineReader(stdin)
    if not session.interactive:
        # A script stops on Ctrl-C as any program does (KeyboardInterrupt, exit 130).
        await _converse(session, reader)
        return
    if banner:
        session.out.write(banner + "\n")
    await _converse(session, reader, interactive=True)


async def _converse(
    session: ConsoleSession, reader: LineReader, *, interactive: bool = False
) -> None:
    turn: asyncio.Task[bool] | None = None

    def interrupt() -> None:
        if turn is not None and not turn.done():
            turn.cancel()  # stop the answer; the prompt comes back
        else:
            reader.interrupt()

    with _on_interrupt(interrupt) if interactive else contextlib.nullcontext():
        armed = False  # the next Ctrl-C at the prompt quits
        while True:
            if interactive:
                session.out.write(PROMPT)
                session.out.flush()
            line = await reader.next()
            if line is Interrupt.CTRL_C:
                if armed:
                    session.out.write("\n")
                    break
                armed = True
                session.say(f"\n{DIM}[{QUIT_HINT}]{PLAIN}")
                continue
            if line is None:  # end of input (Ctrl-D)
                if interactive:
                    session.out.write("\n")
                break
            armed = False
            turn = asyncio.create_task(session.handle_line(line))
            try:
                await asyncio.wait({turn})
            except asyncio.CancelledError:
                turn.cancel()
                raise
            if turn.cancelled():
                await session.stopped()
                armed = True
                continue
            if not turn.result():
                break
