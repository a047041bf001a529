"""Several real ``python -m bot`` processes on one database, against the fakes in this process.

``Fleet`` starts, stops and kills bot processes that share a database (PostgreSQL or a SQLite
file), each with its own ``PORT`` and ``BOT_INSTANCE_ID``; their environment is the crash
benchmark's (``bench.crash``), narrowed to the platforms a test drives. Each process logs to
``<workdir>/<name>.log``; ``Fleet.logs()`` gives their tails for a failure's report.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import aiosqlite
import psycopg

from bench._shared import free_port
from bench.crash import SECRET, _bot_texts, _discord_replies, _env, _start
from tests.fakes.discord import FakeDiscord
from tests.fakes.openrouter import FakeOpenRouter
from tests.fakes.slack import FakeSlack
from tests.helpers import wait_healthy

__all__ = [
    "SECRET",
    "Fleet",
    "Instance",
    "bot_texts",
    "claims",
    "discord_replies",
    "fleet",
    "streaming",
]

_PLATFORM_PREFIXES = {"slack": "SLACK_", "discord": "DISCORD_"}
LOG_TAIL_CHARS = 2_500


def bot_texts(slack: FakeSlack, thread_ts: str) -> list[str]:
    """The bot's messages in a thread of ``#C123`` (where the fakes' events are), oldest first."""
    return _bot_texts(slack, thread_ts)


def streaming(slack: FakeSlack, threads: Iterable[str] | None = None) -> bool:
    """Is an answer still streaming (its text not final yet), in ``threads`` if given?"""
    chosen = None if threads is None else set(threads)
    return any(
        s.state == "in_progress" and (chosen is None or s.thread_ts in chosen)
        for s in slack.streams()
    )


async def claims(database_url: str) -> list[tuple[str, str | None]]:
    """``(status, owner)`` of every event the instances claimed, read as another process."""
    sql = "SELECT status, owner FROM processed_events ORDER BY claimed_at"
    if database_url.startswith("sqlite:///"):
        async with aiosqlite.connect(database_url.removeprefix("sqlite:///"), timeout=5) as db:
            rows: list[Any] = list(await db.execute_fetchall(sql))
    else:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            rows = await (await conn.execute(sql)).fetchall()
    return [(str(status), owner) for status, owner in rows]


def discord_replies(discord: FakeDiscord, message_id: int) -> list[str]:
    """The bot's replies to one message, oldest first."""
    return _discord_replies(discord, message_id)


@dataclass
class Instance:
    """One bot process: its name (also its ``BOT_INSTANCE_ID``), port and environment."""

    name: str
    port: int
    env: dict[str, str]
    workdir: Path
    process: asyncio.subprocess.Process | None = None
    exit_code: int | None = None
    started_at: float = 0.0
    ready_after_s: float = 0.0
    """From spawn to healthy (with the agent stack loaded, unless not waited for)."""

    @property
    def events_url(self) -> str:
        """Slack's request URL for this process (HTTP mode)."""
        return f"http://127.0.0.1:{self.port}/slack/events"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        self.started_at = time.monotonic()
        self.process = await _start(self.env, self.workdir, self.name)

    async def wait_healthy(self, timeout: float = 60.0, *, loaded: bool = True) -> None:  # noqa: ASYNC109
        """Until ``/healthz`` answers 200 (taking events) and, if ``loaded``, the agent stack
        has loaded (no ``loading``)."""
        await wait_healthy(self.port, timeout)
        self.ready_after_s = time.monotonic() - self.started_at
        if not loaded:
            return
        deadline = time.monotonic() + timeout
        while (await self.healthz())[1].get("loading"):
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: the agent stack did not load in {timeout} s")
            await asyncio.sleep(0.05)
        self.ready_after_s = time.monotonic() - self.started_at

    async def healthz(self) -> tuple[int, dict[str, Any]]:
        """``GET /healthz``: its status and JSON body."""
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{self.port}/healthz") as resp,
        ):
            return resp.status, json.loads(await resp.text())

    async def kill(self) -> None:
        """``kill -9``: no shutdown, no goodbye, claims and locks left as they were."""
        if self.process is not None and self.running:
            self.process.send_signal(signal.SIGKILL)
            self.exit_code = await self.process.wait()

    async def terminate(self, timeout: float = 40.0) -> int | None:  # noqa: ASYNC109
        """SIGTERM, as a supervisor stops a process; its exit code (killed after ``timeout``)."""
        if self.process is None:
            return None
        if self.running:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.exit_code = await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            await self.kill()
        return self.exit_code

    def log(self) -> str:
        path = self.workdir / f"{self.name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


@dataclass
class Fleet:
    """Bot processes on one database; every one still running is stopped by ``close``."""

    workdir: Path
    database_url: str
    openrouter: FakeOpenRouter
    slack: FakeSlack
    discord: FakeDiscord
    platforms: frozenset[str] = frozenset({"slack"})
    settings: dict[str, str] = field(default_factory=dict)
    """Extra environment for every process (``BOT_LEASE_S``, ``BOT_SHUTDOWN_GRACE``, ...)."""
    instances: list[Instance] = field(default_factory=list)

    def add(self, name: str, **settings: str) -> Instance:
        """A process (not started yet) named ``name``, with settings of its own on top."""
        port = free_port()
        env = _env(self.workdir, self.openrouter, self.slack, self.discord, port)
        for platform, prefix in _PLATFORM_PREFIXES.items():
            if platform not in self.platforms:
                env = {k: v for k, v in env.items() if not k.startswith(prefix)}
        env.update(
            DATABASE_URL=self.database_url,
            BOT_INSTANCE_ID=name,
            HOST="127.0.0.1",
            BOT_OPS_HOST="127.0.0.1",
        )
        env.update(self.settings)
        env.update(settings)
        instance = Instance(name=name, port=port, env=env, workdir=self.workdir)
        self.instances.append(instance)
        return instance

    async def start(self, *names: str, **settings: str) -> list[Instance]:
        """Add and start processes together, and wait until each one answers ``/healthz``."""
        added = [self.add(name, **settings) for name in names]
        await self.launch(added)
        return added

    async def launch(self, instances: Sequence[Instance]) -> None:
        """Start processes together; each one answers ``/healthz`` with its agent stack loaded
        (and, with Discord, has identified on the gateway) when this returns."""
        identified = len(self.discord.identifies) + len(instances)
        for instance in instances:
            await instance.start()
        await asyncio.gather(*(i.wait_healthy() for i in instances))
        if "discord" in self.platforms:
            await asyncio.wait_for(self.discord.wait_for_identify(identified), 60)

    def __getitem__(self, name: str) -> Instance:
        for instance in self.instances:
            if instance.name == name:
                return instance
        raise KeyError(name)

    @property
    def running(self) -> list[Instance]:
        return [i for i in self.instances if i.running]

    async def close(self) -> dict[str, int | None]:
        """SIGTERM every process still running, together; their exit codes by name."""
        await asyncio.gather(*(i.terminate() for i in self.running))
        return {i.name: i.exit_code for i in self.instances}

    def logs(self, names: Iterable[str] | None = None) -> str:
        """The tail of each process's log, for a failure's report."""
        chosen = [i for i in self.instances if names is None or i.name in names]
        return "\n".join(
            f"--- {i.name}.log (ready after {i.ready_after_s:.1f} s, exit {i.exit_code}):\n"
            f"{i.log()[-LOG_TAIL_CHARS:]}"
            for i in chosen
        )


@contextlib.asynccontextmanager
async def fleet(
    workdir: Path,
    database_url: str,
    *,
    platforms: Iterable[str] = ("slack",),
    settings: dict[str, str] | None = None,
    **openrouter: Any,
) -> AsyncIterator[Fleet]:
    """The fakes (``openrouter``: the fake OpenRouter's options) and a fleet of no processes
    yet; on the way out every process still running is stopped, and the logs printed (pytest
    shows them when the test failed)."""
    async with (
        FakeOpenRouter(**openrouter) as router,
        FakeSlack() as slack,
        FakeDiscord() as discord,
    ):
        chosen = Fleet(
            workdir=workdir,
            database_url=database_url,
            openrouter=router,
            slack=slack,
            discord=discord,
            platforms=frozenset(platforms),
            settings=dict(settings or {}),
        )
        try:
            yield chosen
        finally:
            await chosen.close()
            print(chosen.logs())
