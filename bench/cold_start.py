"""Cold start of `python -m bot chat`: time until the prompt is ready, and peak memory.

Runs the real command under a pseudo-terminal (so it is interactive, as a person sees it) in a
fresh temporary directory, N times, and reports the median and worst time to the prompt; then
sends one message against a local fake OpenRouter and reports the time to the first answer and
the process's peak RSS.

    python -m bench.cold_start [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import time

from tests.fakes.openrouter import FakeOpenRouter

PROMPT = b"you> "


def _read_until(fd: int, marker: bytes, timeout_s: float) -> tuple[bytes, float | None]:
    buffer = b""
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.01)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            buffer += chunk
            if marker in buffer:
                return buffer, time.perf_counter()
    return buffer, None


def one_run(base_url: str, api_key: str, *, send: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "OPENROUTER_API_KEY": api_key,
            "OPENROUTER_BASE_URL": base_url,
            "DATABASE_URL": f"sqlite:///{tmp}/bot.db",
            "PYTHONDONTWRITEBYTECODE": "0",
        }
        controller, terminal = pty.openpty()
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "chat", "--conversation", "bench"],
            stdin=terminal,
            stdout=terminal,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=tmp,
            close_fds=True,
        )
        os.close(terminal)
        figures: dict[str, float] = {}
        _, at = _read_until(controller, PROMPT, 30)
        if at is None:
            proc.kill()
            raise RuntimeError("no prompt within 30 s")
        figures["ready_s"] = at - started
        if send:
            os.write(controller, b"hello\n")
            sent = time.perf_counter()
            _, answered = _read_until(controller, b"echo: hello", 60)
            if answered is not None:
                figures["first_answer_s"] = answered - sent
                figures["first_answer_from_start_s"] = answered - started
        os.write(controller, b"\x04")  # Ctrl-D ends the chat
        try:
            _, _status, usage = os.wait4(proc.pid, 0)
        except ChildProcessError:
            usage = None
        if usage is not None:
            figures["peak_rss_mb"] = usage.ru_maxrss / 1024
        os.close(controller)
        return figures


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    async with FakeOpenRouter() as fake:
        loop = asyncio.get_running_loop()
        runs = []
        for i in range(args.runs):
            runs.append(
                await loop.run_in_executor(
                    None, lambda: one_run(fake.base_url, fake.api_key, send=True)
                )
            )
            print(f"run {i + 1}: " + ", ".join(f"{k}={v:.3f}" for k, v in runs[-1].items()))
    ready = sorted(r["ready_s"] for r in runs)
    print(
        f"ready for input: median {statistics.median(ready):.2f} s, worst {ready[-1]:.2f} s"
        f" (target <= 2.5 s)"
    )
    answers = [r["first_answer_from_start_s"] for r in runs if "first_answer_from_start_s" in r]
    if answers:
        print(f"first answer (typed at once): median {statistics.median(answers):.2f} s from start")
    rss = [r["peak_rss_mb"] for r in runs if "peak_rss_mb" in r]
    if rss:
        print(f"peak RSS: median {statistics.median(rss):.0f} MB")


if __name__ == "__main__":
    asyncio.run(main())
