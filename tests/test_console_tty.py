"""``python -m bot chat`` at a terminal: the real process on a pseudo-terminal that is its
controlling terminal, so Ctrl-C and Ctrl-D typed there reach it as they do from a keyboard."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest

from tests.fakes.openrouter import ErrorReply, FakeOpenRouter, HangReply, TextReply, ToolCallReply
from tests.test_console import bot_env, run_bot, user_messages
from tests.test_mcp import stdio_server, tool_output, write_config

# The pty becomes the controlling terminal of a new session, then the real entry point runs.
LAUNCH = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.executable, [sys.executable, '-m', 'bot', *sys.argv[1:]])"
)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
CTRL_C, CTRL_D, ENTER = "\x03", "\x04", "\r"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")


class Terminal:
    """What a person sees and types: everything the process writes, echo included."""

    def __init__(self, proc: asyncio.subprocess.Process, master: int) -> None:
        self.proc, self.master = proc, master
        self.raw = ""
        self._seen = 0
        self._changed = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(master, self._read)

    @classmethod
    async def spawn(cls, args: list[str], env: dict[str, str], cwd: Path) -> Terminal:
        master, slave = os.openpty()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", LAUNCH, *args,
            stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, start_new_session=True,
        )  # fmt: skip
        os.close(slave)
        return cls(proc, master)

    def _read(self) -> None:
        try:
            data = os.read(self.master, 65_536)
        except OSError:  # EIO: the process exited and closed the terminal
            data = b""
        if not data:
            self._loop.remove_reader(self.master)
        self.raw += data.decode("utf-8", "replace")
        self._changed.set()

    @property
    def screen(self) -> str:
        """The output without colour codes, as far as read."""
        return ANSI.sub("", self.raw)

    async def expect(self, text: str, timeout: float = 60) -> str:  # noqa: ASYNC109
        """Wait for ``text`` after what earlier expects matched; return what came before it."""
        try:
            async with asyncio.timeout(timeout):
                while (found := self.screen.find(text, self._seen)) < 0:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"{text!r} not shown; the screen: {self.raw!r}") from None
        before = self.screen[self._seen : found]
        self._seen = found + len(text)
        return before

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    async def exit_code(self) -> int:
        code = await asyncio.wait_for(self.proc.wait(), 30)
        self._loop.remove_reader(self.master)
        os.close(self.master)
        return code


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter() as server:
        yield server


async def test_log_lines_go_to_a_file_and_a_spinner_shows_until_the_first_words(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    fake.enqueue(ErrorReply(500), TextReply("Here it is.", first_delay=1.0))
    env = bot_env(tmp_path, fake, BOT_MODEL_RETRIES="0")
    term = await Terminal.spawn(["chat"], env, tmp_path)
    try:
        banner = await term.expect("you> ")
        assert f"Log lines go to {tmp_path / 'bot-chat.log'}." in banner
        term.type("first question" + ENTER)
        await term.expect("⚠️")  # the provider failed: one line for the user ...
        failed = await term.expect("you> ")
        term.type("second question" + ENTER)
        waiting = await term.expect("Here it is.")
        await term.expect("you> ")
        term.type(CTRL_D)
        assert await term.exit_code() == 0
    finally:
        if term.proc.returncode is None:
            term.proc.kill()
    # ... and the warning logged about it went to the log file, not into the conversation.
    assert "WARNING" not in term.screen and "turn failed" not in failed
    log = (tmp_path / "bot-chat.log").read_text(encoding="utf-8")
    assert "WARNING bot.core turn failed: provider" in log
    assert "INFO bot.core turn" in log  # the per-turn lines too, at LOG_LEVEL's INFO
    assert "thinking…" in waiting
    # The spinner is wiped before the answer, which begins right after the prompt.
    assert "bot> Here it is." in ANSI.sub("", term.raw.split("\r\x1b[K")[-1])


async def test_ctrl_c_stops_the_answer_and_ctrl_c_at_the_prompt_quits(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    fake.enqueue(HangReply())
    term = await Terminal.spawn(["chat"], bot_env(tmp_path, fake), tmp_path)
    try:
        await term.expect("you> ")
        term.type("a question that never ends" + ENTER)
        await asyncio.wait_for(fake.wait_for_requests(1), 60)
        term.type(CTRL_C)
        await term.expect("[stopped; Ctrl-C again or Ctrl-D to quit]")
        await term.expect("you> ")
        term.type("next" + ENTER)
        await term.expect("echo: next")
        await term.expect("you> ")
        term.type(CTRL_C)  # at an idle prompt: a hint first ...
        await term.expect("[Ctrl-C again or Ctrl-D to quit]")
        await term.expect("you> ")
        term.type(CTRL_C)  # ... and the second one quits
        assert await term.exit_code() == 0
    finally:
        if term.proc.returncode is None:
            term.proc.kill()
    assert "Traceback" not in term.screen
    # The stopped question never reached the history: the next turn did not carry it.
    assert user_messages(fake) == ["next"]
    async with aiosqlite.connect(tmp_path / "bot.db") as db:
        statuses = await db.execute_fetchall("SELECT status FROM processed_events")
        items = await db.execute_fetchall("SELECT COUNT(*) FROM history_items")
    assert sorted(row[0] for row in statuses) == ["answered", "failed"]
    assert list(items) == [(2,)]


async def test_an_approval_is_a_y_n_prompt_and_ctrl_c_leaves_no_reader_behind(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    config = write_config(tmp_path, {"notes": stdio_server(require_approval=["delete_note"])})
    fake.enqueue(
        ToolCallReply.single("delete_note", {"topic": "a"}, id="call_1"),
        "Deleted a.",
        ToolCallReply.single("delete_note", {"topic": "b"}, id="call_2"),
    )
    env = bot_env(tmp_path, fake, BOT_MCP_CONFIG=config)
    term = await Terminal.spawn(["chat"], env, tmp_path)
    try:
        await term.expect("you> ")
        term.type("delete a" + ENTER)
        await term.expect('May I run `notes.delete_note` with topic="a"? [y/N] ')
        term.type("y" + ENTER)
        await term.expect("[approved]")
        await term.expect("Deleted a.")
        await term.expect("you> ")
        term.type("delete b" + ENTER)
        await term.expect("[y/N] ")
        term.type(CTRL_C)  # stops the turn, and with it the prompt's reading
        await term.expect("[stopped; Ctrl-C again or Ctrl-D to quit]")
        await term.expect("you> ")
        term.type("and now?" + ENTER)  # a question again, not an answer to the old prompt
        await term.expect("echo: and now?")
        await term.expect("you> ")
        term.type(CTRL_D)
        assert await term.exit_code() == 0
    finally:
        if term.proc.returncode is None:
            term.proc.kill()
    assert "Traceback" not in term.screen
    assert "deleted a" in tool_output(fake.chat_requests[1])
    assert user_messages(fake)[-1] == "and now?"


async def test_piped_chat_shows_no_spinner(fake: FakeOpenRouter, tmp_path: Path) -> None:
    fake.enqueue(TextReply("slow but sure", first_delay=0.5))
    code, out, err = await run_bot(["chat"], bot_env(tmp_path, fake), tmp_path, "hello\n")
    assert code == 0, err
    assert out == "slow but sure\n"
    assert "thinking" not in err


async def test_help_is_written_for_users(tmp_path: Path) -> None:
    code, out, _ = await run_bot(["--help"], bot_env(tmp_path), tmp_path)
    assert code == 0
    assert out.startswith("usage: python -m bot [--workers N] [chat | check] [-h]\n")
    for words in (
        "run the bot on Slack and/or Discord",
        "talk to the bot from this terminal",
        "OPENROUTER_API_KEY",
        "SLACK_BOT_TOKEN",
        "DISCORD_BOT_TOKEN",
        "BOT_RETENTION_DAYS",
        "--workers N",
        "WEB_CONCURRENCY",
        "README.md",
    ):
        assert words in out, words
    assert "Start-up imports" not in out  # not the module's docstring

    code, out, _ = await run_bot(["chat", "--help"], bot_env(tmp_path), tmp_path)
    assert code == 0
    assert out.startswith("usage: python -m bot chat [-h] [--conversation NAME]\n")
    for words in ("/attach PATH", "Ctrl-C", "Ctrl-D", "bot-chat.log", "| python -m bot chat"):
        assert words in out, words
