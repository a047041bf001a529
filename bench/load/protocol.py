"""The two processes of ``bench.load`` and what they say to each other: one JSON object a line.

The bot process (``python -m bench.load``, see ``bench.load.host``) runs the bot; the world
process (``python -m bench.load.world``, started by it) runs the fakes and the traffic and
judges what the fakes saw. The world leads; the bot process answers and measures itself::

    world -> bot (the world's stdout)              bot -> world (the world's stdin)
    {"ready": {settings, platforms, lines}}   ->   {"bot": {slack_url, rss_mb, ...}}
    {"print": [lines]}                              (printed in order)
    {"start": {label, lag, warm_up}}          ->   {"started": {}}       measuring from here
    {"settle": {ended, timeout_s}}            ->   {"settled": bool}     its adapters ended N
    {"stop": {label, ended, duplicates, ...}} ->   {"stopped": BlockFigures}
    {"progress": {...}}                             (the latest kept, for bench.soak)
    {"summary": {title, rows}}                      (the run's key figures, for side by side)
    {"done": {ok, ...}}                             the bot stops, then closes the world's stdin

Neither side imports the other's heavy modules: the bot process never loads a fake, the world
never loads the bot.

Usually the bot process starts the world (``world_process``) and the pipes are the world's
stdin and stdout. A world that leads several bot processes (``instances``) starts them itself
(``host_process``): then the pipes are each bot process's stdin and stdout, and the same
messages flow over them.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from bench._shared import REPO
from bench.load.figures import BlockFigures, SummaryRow

JSONDict = dict[str, Any]


# --------------------------------------------------------------------------- the world's side


@dataclass
class BotInfo:
    """What the bot process says once the bot is up."""

    slack_url: str | None
    rss_mb: float
    """RSS right after start: core built, adapters connected, no turn yet."""
    peak_rss_mb: float
    model_client: str


@dataclass
class Block:
    """A measured block; ``figures`` is filled when it ends."""

    label: str
    figures: BlockFigures | None = None


Write = Callable[[bytes], None]
"""Sends one encoded message line to the other process."""
LINE_LIMIT = 64 * 1024 * 1024
"""A message is one line, however long."""


async def stdin_reader() -> asyncio.StreamReader:
    """This process's stdin as a stream (the pipe from the process at the other end)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def stdout_write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


class BotLink:
    """The world's end: messages to the bot process, its answers back."""

    def __init__(self, stdin: asyncio.StreamReader, write: Write = stdout_write) -> None:
        self._stdin = stdin
        self._write = write

    @classmethod
    async def open(cls) -> BotLink:
        """The link of a world started by its bot process: over the world's stdin and stdout."""
        return cls(await stdin_reader())

    def send(self, kind: str, body: Any) -> None:
        self._write((json.dumps({kind: body}, separators=(",", ":")) + "\n").encode())

    async def answer(self, kind: str) -> Any:
        line = await self._stdin.readline()
        if not line:
            raise RuntimeError(f"the bot process went away (waiting for {kind!r})")
        message = json.loads(line)
        if kind not in message:
            raise RuntimeError(f"expected {kind!r} from the bot process, got {line!r}")
        return message[kind]

    async def ready(
        self, settings: JSONDict, platforms: list[str], lines: list[str] | None = None
    ) -> BotInfo:
        """Ask for a bot with these settings (over the bench's own) on these platforms."""
        self.send("ready", {"settings": settings, "platforms": platforms, "lines": lines or []})
        return BotInfo(**await self.answer("bot"))

    def print(self, *lines: str) -> None:
        self.send("print", list(lines))

    @asynccontextmanager
    async def block(
        self,
        label: str,
        *,
        ended: int,
        duplicates: int = 0,
        lag: bool = True,
        timeout_s: float = 60.0,
        warm_up: bool = False,
    ) -> AsyncIterator[Block]:
        """Measure the bot's process over the block. When it ends, the bot process waits until
        its adapters have ended ``ended`` more turns (answered or failed) and counted
        ``duplicates`` more duplicates, ``timeout_s`` at most, then stops measuring. ``lag``:
        watch the event loop (a 10 ms ticker, whose CPU then counts in the block). A
        ``warm_up`` block (cold paths) is left out of the profile."""
        block = Block(label)
        self.send("start", {"label": label, "lag": lag, "warm_up": warm_up})
        await self.answer("started")
        cpu_before = time.process_time()
        try:
            yield block
        except BaseException:
            ended = duplicates = 0  # do not make the bot process wait for what will not come
            raise
        finally:
            world_cpu_s = time.process_time() - cpu_before
            self.send(
                "stop",
                {
                    "label": label,
                    "ended": ended,
                    "duplicates": duplicates,
                    "timeout_s": timeout_s,
                },
            )
            block.figures = BlockFigures.from_json(await self.answer("stopped"))
            block.figures.world_cpu_s = world_cpu_s

    async def settle(self, ended: int, timeout_s: float = 30.0) -> bool:
        """Inside a block: wait until the bot's adapters have ended ``ended`` turns since it
        began (their own bookkeeping done, not only the fake's last request seen)."""
        self.send("settle", {"ended": ended, "timeout_s": timeout_s})
        return bool(await self.answer("settled"))

    def progress(self, body: JSONDict) -> None:
        self.send("progress", body)

    def summary(self, title: str, rows: list[SummaryRow]) -> None:
        self.send("summary", {"title": title, "rows": [vars(r) for r in rows]})

    async def done(self, ok: bool, **extra: Any) -> None:
        """The run's verdict; returns once the bot process has stopped the bot (it closes
        our stdin). Call it with the fakes still running: a bot whose fakes vanish first
        reconnects and fails turns in its logs."""
        self.send("done", {"ok": ok, **extra})
        await self._stdin.read()


# --------------------------------------------------------------------------- the bot's side


class World:
    """The world, as the bot process sees it: its messages in order, lines to it."""

    def __init__(self, reader: asyncio.StreamReader, write: Write) -> None:
        self.progress: JSONDict = {}
        """The latest ``progress`` message."""
        self._write = write
        self._queue: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            async for raw in reader:
                try:
                    message = json.loads(raw)
                except ValueError:
                    line = raw.decode(errors="replace").rstrip()
                    print(f"[world] {line}", file=sys.stderr)
                    continue
                for kind, body in message.items():
                    if kind == "progress":
                        self.progress = body
                    else:
                        await self._queue.put((kind, body))
        finally:
            await self._queue.put(None)

    async def next(self, timeout_s: float) -> tuple[str, Any]:
        """The world's next message (progress aside); RuntimeError if it ended first."""
        try:
            message = await asyncio.wait_for(self._queue.get(), timeout_s)
        except TimeoutError:
            raise TimeoutError(f"nothing from the world process in {timeout_s:.0f} s") from None
        if message is None:
            raise RuntimeError(f"the world process ended ({await self._ended()})")
        return message

    async def _ended(self) -> str:
        return "its pipe closed"

    def send(self, kind: str, body: Any) -> None:
        self._write((json.dumps({kind: body}) + "\n").encode())


class WorldProcess(World):
    """The world child of this bot process."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None and proc.stdin is not None
        self.proc = proc
        super().__init__(proc.stdout, proc.stdin.write)

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def _ended(self) -> str:
        return f"exit status {await self.proc.wait()}"

    async def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


@asynccontextmanager
async def world_process(scenario: str, options: JSONDict) -> AsyncIterator[WorldProcess]:
    """``python -m bench.load.world`` running ``scenario`` with ``options``."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.load.world",
        json.dumps({"scenario": scenario, "options": options}),
        cwd=REPO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=LINE_LIMIT,
    )
    world = WorldProcess(proc)
    try:
        yield world
    finally:
        await world.close()


@asynccontextmanager
async def host_process(config: JSONDict) -> AsyncIterator[BotLink]:
    """A bot process started by the world (``python -m bench.load.instance``), linked over
    its stdin and stdout; ``config``: its name, model client and event loop. Call the link's
    ``done`` before leaving: the bot process then stops its bot and exits."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.load.instance",
        json.dumps(config),
        cwd=REPO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=LINE_LIMIT,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        yield BotLink(proc.stdout, proc.stdin.write)
    finally:
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()
