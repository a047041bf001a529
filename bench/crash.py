"""Crash benchmark: ``kill -9`` the bot with turns in flight, restart it, check what users see.

    python -m bench.crash              # 50 turns in flight (25 Slack + 25 Discord)
    python -m bench.crash --turns 10

The real ``python -m bot`` process serves Slack (HTTP mode) and Discord (gateway) together,
against the protocol fakes in this process. Each Slack thread first gets one answered turn
(so history has something to keep intact); then every conversation asks a question the fake
model never finishes: half hang before any text, half stream part of an answer and stall.
With all of them in flight the process is killed with SIGKILL, and a new one is started.

Targets (issue 6): ``PRAGMA integrity_check`` ok; every cut message told exactly once (the
delivery rule: never re-answered, since its partial answer may already be on screen); 0
duplicates, also when Slack redelivers the events; history keeps the finished turns and no
half-written one. Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite

from bench._shared import free_port
from bot.recovery import RESTART_LINE
from tests.fakes.discord import FakeDiscord
from tests.fakes.openrouter import (
    FakeOpenRouter,
    HangReply,
    Reply,
    TextReply,
    echo_responder,
    last_user_text,
)
from tests.fakes.slack import BOT_USER_ID, FakeSlack, app_mention
from tests.helpers import eventually, wait_healthy

REPO = Path(__file__).resolve().parent.parent
SECRET = "crash-bench-signing-secret"
CUT_MARK = "cut question"
PARTIAL = "This answer starts streaming and then stalls for ever "
MODEL_SLOTS = 32
"""BOT_MAX_CONCURRENT_TURNS, its default."""


@dataclass
class CrashReport:
    turns: int
    in_flight_at_kill: int = 0
    """Claimed and not finished when the process was killed."""
    at_the_model_at_kill: int = 0
    """Of those, running at the model (the others waited for a model slot)."""
    partial_answers_on_screen: int = 0
    integrity: str = ""
    unfinished_after_kill: int = 0
    half_written_turns: int = 0
    told_once: int = 0
    told_twice_or_more: int = 0
    re_answered: int = 0
    lost: int = 0
    redeliveries_answered: int = 0
    history_intact: bool = False
    restart_to_all_told_s: float = 0.0
    clean_exit: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.integrity == "ok"
            and self.told_once == self.turns
            and not (self.told_twice_or_more or self.re_answered or self.lost)
            and not (self.half_written_turns or self.redeliveries_answered)
            and self.history_intact
            and self.clean_exit
        )


def _env(
    workdir: Path, openrouter: FakeOpenRouter, slack: FakeSlack, discord: FakeDiscord, port: int
) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        PYTHONPATH=str(REPO),
        DATABASE_URL=f"sqlite:///{workdir / 'bot.db'}",
        OPENROUTER_API_KEY=openrouter.api_key,
        OPENROUTER_BASE_URL=openrouter.base_url,
        OPEN_METEO_URL="http://127.0.0.1:9",
        OPEN_METEO_GEOCODING_URL="http://127.0.0.1:9",
        SLACK_BOT_TOKEN=slack.bot_token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=slack.api_url,
        PORT=str(port),
        DISCORD_BOT_TOKEN=discord.token,
        DISCORD_API_BASE=discord.rest_base,
        DISCORD_GATEWAY_URL=discord.gateway_url,
        BOT_USER_RATE_LIMIT="0",  # one bench user per conversation anyway
        BOT_MODEL_RETRIES="0",
        BOT_MAX_CONCURRENT_TURNS=str(MODEL_SLOTS),
        LOG_LEVEL="WARNING",
    )
    return env


async def _start(env: dict[str, str], workdir: Path, name: str) -> asyncio.subprocess.Process:
    log = (workdir / f"{name}.log").open("wb")
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", stdout=log, stderr=log, env=env, cwd=workdir
    )


async def run(turns: int, workdir: Path) -> CrashReport:
    report = CrashReport(turns=turns)
    n_slack = turns // 2
    n_discord = turns - n_slack
    cut_calls = itertools.count()

    def phase_one(body: dict[str, Any]) -> Reply | str:
        if CUT_MARK not in last_user_text(body):
            return echo_responder(body)
        if next(cut_calls) % 2:
            return HangReply()
        return TextReply(PARTIAL * 3, chunks=6, delay=600.0, first_delay=0.0)

    port = free_port()
    async with (
        FakeOpenRouter(default_responder=phase_one) as openrouter,
        FakeSlack() as slack,
        FakeDiscord() as discord,
    ):
        env = _env(workdir, openrouter, slack, discord, port)
        url = f"http://127.0.0.1:{port}/slack/events"
        first = await _start(env, workdir, "first")
        try:
            await wait_healthy(port)
            await asyncio.wait_for(discord.wait_for_identify(1), 60)

            # Warm-up: one finished turn in each Slack thread.
            roots = [app_mention(f"<@{BOT_USER_ID}> warm-up {i}") for i in range(n_slack)]
            for root in roots:
                await slack.deliver_event(url, SECRET, root)
            await eventually(lambda: all(_bot_texts(slack, r["ts"]) for r in roots), 60)

            # The turns the crash will cut.
            cut_slack = [
                app_mention(f"<@{BOT_USER_ID}> {CUT_MARK} s{i}", thread_ts=r["ts"])
                for i, r in enumerate(roots)
            ]
            deliveries: list[tuple[dict[str, Any], str]] = []
            for event in cut_slack:
                status, _ = await slack.deliver_event(url, SECRET, event)
                deliveries.append((event, slack.deliveries[-1].payload["event_id"]))
                if status != 200:
                    report.problems.append(f"Slack delivery answered {status}")
            cut_discord = [
                await discord.send_user_message(content=f"{discord.bot.mention} {CUT_MARK} d{i}")
                for i in range(n_discord)
            ]
            # Every cut turn is in flight: claimed, and running at the model unless queued
            # for a model slot (BOT_MAX_CONCURRENT_TURNS, 32: queued turns are cut too).
            await eventually(
                lambda: (
                    sum(CUT_MARK in last_user_text(r.body or {}) for r in openrouter.requests)
                    >= min(turns, MODEL_SLOTS)
                ),
                60,
            )
            async with asyncio.timeout(30):
                while await _claimed(workdir) < turns:  # noqa: ASYNC110 (another process)
                    await asyncio.sleep(0.1)
            await asyncio.sleep(2.0)  # let the streaming half put partial answers on screen
            report.in_flight_at_kill = await _claimed(workdir)
            report.at_the_model_at_kill = sum(
                CUT_MARK in last_user_text(r.body or {}) for r in openrouter.requests
            )
            report.partial_answers_on_screen = sum(
                1 for r in roots if any(PARTIAL[:18] in t for t in _bot_texts(slack, r["ts"]))
            ) + sum(
                1
                for m in cut_discord
                if any(PARTIAL[:18] in t for t in _discord_replies(discord, int(m["id"])))
            )
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()

        # What the kill left on disk.
        async with aiosqlite.connect(workdir / "bot.db") as db:
            report.integrity = str(await _one(db, "PRAGMA integrity_check"))
            report.unfinished_after_kill = int(
                await _one(db, "SELECT COUNT(*) FROM processed_events WHERE status = 'claimed'")
            )
            # History is written per finished turn: each Slack thread has the warm-up only.
            rows = await (
                await db.execute(
                    "SELECT c.key, COUNT(*) FROM history_items h JOIN conversations c"
                    " ON c.id = h.conversation_id GROUP BY c.key"
                )
            ).fetchall()
        report.half_written_turns = sum(1 for _, count in rows if count != 2)

        # Restart; the model now answers at once.
        openrouter.default_responder = echo_responder
        restarted_at = time.monotonic()
        second = await _start(env, workdir, "second")
        try:
            await wait_healthy(port)

            def all_told() -> bool:
                slack_told = all(
                    any(RESTART_LINE in t for t in _bot_texts(slack, r["ts"])) for r in roots
                )
                discord_told = all(
                    any(RESTART_LINE in t for t in _discord_replies(discord, int(m["id"])))
                    for m in cut_discord
                )
                return slack_told and discord_told

            with contextlib.suppress(AssertionError):  # counted below as lost
                await eventually(all_told, 120)
            report.restart_to_all_told_s = time.monotonic() - restarted_at

            # Slack redelivers events it thinks failed: none may be answered now.
            for event, event_id in deliveries:
                await slack.deliver_event(url, SECRET, event, event_id=event_id, retry_num=1)
            await asyncio.sleep(2.0)
            report.redeliveries_answered = sum(
                1 for r in roots if any(t.startswith("echo: ") and CUT_MARK in t
                                        for t in _bot_texts(slack, r["ts"]))
            )  # fmt: skip

            for root in roots:
                texts = _bot_texts(slack, root["ts"])
                _count(report, texts)
            for message in cut_discord:
                _count(report, _discord_replies(discord, int(message["id"])))

            # A follow-up in a cut thread carries on from the finished turn only.
            if roots:
                follow = app_mention(f"<@{BOT_USER_ID}> after the crash", thread_ts=roots[0]["ts"])
                await slack.deliver_event(url, SECRET, follow)
                await eventually(
                    lambda: any("after the crash" in t for t in _bot_texts(slack, roots[0]["ts"])),
                    30,
                )
                body = openrouter.requests[-1].body or {}
                users = [m["content"] for m in body.get("messages", []) if m["role"] == "user"]
                report.history_intact = users == ["warm-up 0", "after the crash"]
            else:
                report.history_intact = True
        finally:
            second.send_signal(signal.SIGTERM)
            try:
                report.clean_exit = await asyncio.wait_for(second.wait(), 40) == 0
            except TimeoutError:
                second.kill()
    return report


async def _claimed(workdir: Path) -> int:
    """Events claimed and not finished, read straight from the bot's file."""
    async with aiosqlite.connect(workdir / "bot.db", timeout=5) as db:
        sql = "SELECT COUNT(*) FROM processed_events WHERE status = 'claimed'"
        return int(await _one(db, sql))


async def _one(db: aiosqlite.Connection, sql: str) -> Any:
    row = await (await db.execute(sql)).fetchone()
    return row[0] if row else None


def _count(report: CrashReport, texts: list[str]) -> None:
    told = sum(RESTART_LINE in t for t in texts)
    if told == 1:
        report.told_once += 1
    elif told > 1:
        report.told_twice_or_more += 1
    else:
        report.lost += 1
    report.re_answered += sum(t.startswith("echo: ") and CUT_MARK in t for t in texts)


def _bot_texts(slack: FakeSlack, thread_ts: str) -> list[str]:
    return [str(m.get("text", "")) for m in slack.thread("C123", thread_ts) if m.get("bot_id")]


def _discord_replies(discord: FakeDiscord, message_id: int) -> list[str]:
    return [m.content for m in discord.bot_messages() if m.reply_to == message_id]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=50, help="turns in flight at the kill")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-crash-") as tmp:
        started = time.perf_counter()
        report = asyncio.run(run(args.turns, Path(tmp)))
        elapsed = time.perf_counter() - started
        if not report.ok:
            for name in ("first.log", "second.log"):
                log = Path(tmp) / name
                if log.exists():
                    print(f"--- {name} (tail)\n" + log.read_text()[-3000:])
    print(f"crash bench: {report.turns} turns in flight at kill -9 ({elapsed:.0f} s in all)")
    for name, value in vars(report).items():
        print(f"  {name:28} {value}")
    print("RESULT:", "ok" if report.ok else "FAILED")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
