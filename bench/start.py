"""Start-up of ``python -m bot`` in Slack's HTTP mode, as a supervisor starts it, and its memory.

The real process against the fakes (FakeSlack for ``auth.test`` and every Web API call,
FakeOpenRouter answering "echo: <question>"), both in this process; a fresh SQLite file in a
temporary directory each run. From the moment the process is spawned:

- **first event accepted**: a signed ``app_mention`` is POSTed to ``/slack/events`` every 10 ms
  until one is acknowledged (2xx): before that the port is closed, as Slack would find it;
- **healthy**: ``GET /healthz`` every 10 ms until it answers 200;
- **first answer**: that first event's answer is in its thread (the agent stack has loaded);
- **CPU at accept**: the CPU seconds the bot had used when its first event was accepted, a
  figure a busy machine disturbs less than the wall-clock ones;
- **RSS** of the bot process (``VmRSS``) once it has answered its first event and settled
  ("after start"), then after ``--answers`` answers in all (one thread each, 5 at a time) and
  a second's rest; and its peak (``VmHWM``).

    python -m bench.start [--runs 3] [--answers 50] [--env NAME=VALUE ...]

Targets: first event accepted and healthy each within 2.5 s of the spawn; RSS at most 283 MB
after start and after the answers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench._shared import free_port
from tests.fakes.openrouter import FakeOpenRouter
from tests.fakes.slack import BOT_USER_ID, FakeSlack, app_mention

TARGET_START_S = 2.5
TARGET_RSS_MB = 283.0
SECRET = "bench-start-signing-secret-0123456789"
REPO = Path(__file__).resolve().parent.parent
PROBE_EVERY_S = 0.01
BATCH = 5
"""Answers asked for at once after start-up (the memory figure is of a bot that has worked)."""


def cpu_s(pid: int) -> float:
    """utime + stime of a running process (``/proc/<pid>/stat``), seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> dict[str, float]:
    """``VmRSS`` and ``VmHWM`` (peak) of a running process, MB."""
    figures: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                figures[name] = int(value.split()[0]) / 1024
    return figures


@dataclass
class Run:
    accepted_s: float = float("nan")
    healthy_s: float = float("nan")
    first_answer_s: float = float("nan")
    cpu_at_accept_s: float = float("nan")
    load: float = float("nan")
    rss_start_mb: float = float("nan")
    rss_answers_mb: float = float("nan")
    peak_mb: float = float("nan")
    answers: int = 0
    log: list[str] = field(default_factory=list)


def bot_env(tmp: Path, slack: FakeSlack, openrouter: FakeOpenRouter, port: int) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "DATABASE_URL": f"sqlite:///{tmp / 'bot.db'}",
            "OPENROUTER_API_KEY": openrouter.api_key,
            "OPENROUTER_BASE_URL": openrouter.base_url,
            "OPEN_METEO_URL": "http://127.0.0.1:9",
            "OPEN_METEO_GEOCODING_URL": "http://127.0.0.1:9",
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.api_url,
            "PORT": str(port),
            "HOST": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
            "BOT_USER_RATE_LIMIT": "0",  # one simulated user asks all the questions
        }
    )
    return env


async def _until_healthy(http: aiohttp.ClientSession, port: int, started: float) -> float:
    while True:
        try:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                if resp.status == 200:
                    return time.perf_counter() - started
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(PROBE_EVERY_S)


async def _until_accepted(
    slack: FakeSlack, port: int, event: dict[str, Any], started: float, run: Run, pid: int
) -> float:
    url = f"http://127.0.0.1:{port}/slack/events"
    while True:
        try:
            status, _ = await slack.deliver_event(url, SECRET, event)
            if 200 <= status < 300:
                run.cpu_at_accept_s = cpu_s(pid)
                return time.perf_counter() - started
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(PROBE_EVERY_S)


def _answered(slack: FakeSlack, event: dict[str, Any]) -> bool:
    return any(m.get("bot_id") for m in slack.thread(event["channel"], event["ts"]))


async def one_run(answers: int, extra_env: dict[str, str]) -> Run:
    run = Run()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeSlack() as slack, FakeOpenRouter(record_bodies=False) as openrouter:
            env = bot_env(Path(tmp), slack, openrouter, port) | extra_env
            first = app_mention(f"<@{BOT_USER_ID}> question 0")
            run.load = os.getloadavg()[0]
            started = time.perf_counter()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
                env=env, cwd=tmp,
            )  # fmt: skip
            try:
                async with aiohttp.ClientSession() as http, asyncio.timeout(120):
                    run.accepted_s, run.healthy_s = await asyncio.gather(
                        _until_accepted(slack, port, first, started, run, proc.pid),
                        _until_healthy(http, port, started),
                    )
                    await slack.wait_for(lambda: _answered(slack, first), timeout=60)
                    run.first_answer_s = time.perf_counter() - started
                    await asyncio.sleep(1.0)  # settled: whatever start-up left behind is done
                    run.rss_start_mb = memory_mb(proc.pid)["VmRSS"]
                    url = f"http://127.0.0.1:{port}/slack/events"
                    events = [
                        app_mention(f"<@{BOT_USER_ID}> question {n}") for n in range(1, answers)
                    ]
                    for at in range(0, len(events), BATCH):
                        batch = events[at : at + BATCH]
                        await asyncio.gather(*(slack.deliver_event(url, SECRET, e) for e in batch))
                        await slack.wait_for(
                            lambda b=batch: all(_answered(slack, e) for e in b),  # type: ignore[misc]
                            timeout=60,
                        )
                    run.answers = 1 + sum(_answered(slack, e) for e in events)
                    await asyncio.sleep(1.0)
                    figures = memory_mb(proc.pid)
                    run.rss_answers_mb, run.peak_mb = figures["VmRSS"], figures["VmHWM"]
            finally:
                proc.send_signal(signal.SIGTERM)
                assert proc.stderr is not None
                err = await asyncio.wait_for(proc.stderr.read(), 30)
                await asyncio.wait_for(proc.wait(), 30)
                run.log = err.decode(errors="replace").splitlines()
    return run


def _line(label: str, values: list[float], unit: str, target: float | None = None) -> str:
    shape = "{:7.2f}" if unit == "s" else "{:7.0f}"
    worst, median = max(values), statistics.median(values)
    line = f"  {label:<34} median {shape.format(median)} {unit}  worst {shape.format(worst)} {unit}"
    if target is not None:
        line += f"  (target <= {target:g} {unit}: {'met' if worst <= target else 'NOT met'})"
    return line


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--answers", type=int, default=50)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra setting for the bot (e.g. BOT_MODEL_CLIENT=litellm)",
    )
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    runs: list[Run] = []
    for n in range(args.runs):
        run = await one_run(args.answers, extra)
        runs.append(run)
        print(
            f"run {n + 1} (load {run.load:.1f}): accepted {run.accepted_s:.2f} s "
            f"(bot CPU {run.cpu_at_accept_s:.2f} s), healthy {run.healthy_s:.2f} s, "
            f"first answer {run.first_answer_s:.2f} s, RSS {run.rss_start_mb:.0f} MB after "
            f"start, {run.rss_answers_mb:.0f} MB after {run.answers} answers "
            f"(peak {run.peak_mb:.0f} MB)",
            flush=True,
        )
        problems = [line for line in run.log if "Traceback" in line or " ERROR " in line]
        if problems:
            print("  the bot logged: " + " | ".join(problems[:5]))
    loads = ", ".join(f"{r.load:.1f}" for r in runs)
    print(
        f"\npython -m bot, Slack HTTP mode, {len(runs)} runs on {os.cpu_count()} CPUs"
        f" (load average at each start: {loads}):"
    )
    print(_line("start -> first event accepted", [r.accepted_s for r in runs], "s", TARGET_START_S))
    print(_line("start -> /healthz 200", [r.healthy_s for r in runs], "s", TARGET_START_S))
    print(_line("bot CPU when first accepted", [r.cpu_at_accept_s for r in runs], "s"))
    print(_line("start -> first answer", [r.first_answer_s for r in runs], "s"))
    print(_line("RSS after start (1 answer)", [r.rss_start_mb for r in runs], "MB", TARGET_RSS_MB))
    label = f"RSS after {args.answers} answers"
    print(_line(label, [r.rss_answers_mb for r in runs], "MB", TARGET_RSS_MB))
    print(_line("peak RSS", [r.peak_mb for r in runs], "MB"))


if __name__ == "__main__":
    asyncio.run(main())
