"""``python -m bot --workers N``: the supervisor's decisions, then the real processes.

The end-to-end test runs ``python -m bot --workers 2`` in Slack's HTTP mode against the fake
Slack and OpenRouter: both workers on the one ``PORT``, each delivery (over its own
connection) answered once, both workers answering some; a worker killed with SIGKILL is
started again; SIGTERM to the parent stops them all, cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench._shared import free_port
from bot.settings import EXIT_CONFIG, EXIT_RUNTIME, ConfigError
from bot.workers import (
    GiveUp,
    Restart,
    RestartPolicy,
    Supervisor,
    as_worker,
    check_workers,
    describe_exit,
)
from tests.conftest import make_settings
from tests.fakes.openrouter import FakeOpenRouter
from tests.fakes.slack import BOT_USER_ID, FakeSlack, app_mention
from tests.helpers import eventually, wait_healthy
from tests.test_console import SECRET, slack_env

# ------------------------------------------------------------------ the restart policy


def test_a_worker_that_had_been_running_is_started_again_after_a_second() -> None:
    policy = RestartPolicy()
    assert policy.decide(EXIT_RUNTIME, lived_s=3600, failed_starts=0) == Restart(1.0, 0)
    assert policy.decide(-signal.SIGKILL, lived_s=60, failed_starts=3) == Restart(1.0, 0)
    assert policy.decide(0, lived_s=60, failed_starts=0) == Restart(1.0, 0)  # stopped alone


def test_failed_starts_double_the_pause_then_the_parent_gives_up_with_1() -> None:
    policy = RestartPolicy(startup_s=15, give_up_after=5, first_delay_s=1, max_delay_s=5)
    failed, delays = 0, []
    while True:
        verdict = policy.decide(EXIT_RUNTIME, lived_s=2.0, failed_starts=failed)
        if isinstance(verdict, GiveUp):
            break
        delays.append(verdict.delay_s)
        failed = verdict.failed_starts
    assert delays == [1, 2, 4, 5]  # doubled, capped at max_delay_s
    assert verdict == GiveUp(EXIT_RUNTIME, "it failed to start 5 times in a row")
    # Having run past startup_s, a worker's count starts over.
    assert policy.decide(EXIT_RUNTIME, lived_s=20.0, failed_starts=4) == Restart(1, 0)


def test_a_configuration_error_is_never_retried() -> None:
    verdict = RestartPolicy().decide(EXIT_CONFIG, lived_s=3600, failed_starts=0)
    assert isinstance(verdict, GiveUp) and verdict.exit_code == EXIT_CONFIG


def test_exits_are_described_for_the_log() -> None:
    assert describe_exit(-signal.SIGKILL) == "was killed by SIGKILL"
    assert describe_exit(1) == "exited with 1 (a runtime failure)"
    assert describe_exit(2) == "exited with 2 (configuration)"
    assert describe_exit(0) == "exited with 0 (stopped)"


def test_each_worker_gets_its_own_instance_id(tmp_path: Path) -> None:
    named = make_settings(tmp_path, BOT_INSTANCE_ID="web", WEB_CONCURRENCY=3)
    assert [as_worker(named, k).instance_id for k in (1, 2, 3)] == ["web-1", "web-2", "web-3"]
    unnamed = make_settings(tmp_path, WEB_CONCURRENCY=3)
    assert as_worker(unnamed, 2).instance_id is None  # each worker makes up its own


def test_workers_share_a_port_so_it_must_be_a_number(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, WEB_CONCURRENCY=2, PORT=0)
    with pytest.raises(ConfigError, match="PORT=0"):
        check_workers(settings)
    check_workers(make_settings(tmp_path, PORT=0))  # one process may pick a free port
    assert make_settings(tmp_path, WEB_CONCURRENCY=2).reuse_port
    assert not make_settings(tmp_path).reuse_port  # a lone bot binds plainly


# ------------------------------------------------------- the supervisor, over tiny processes


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


SLEEP = "import time; time.sleep(60)"
IGNORE_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
)


async def test_a_workers_configuration_error_stops_the_others_and_exits_2() -> None:
    supervisor = Supervisor(
        2,
        lambda k: _python("import sys; sys.exit(2)" if k == 2 else SLEEP),
        stop_timeout_s=10,
    )
    started = time.monotonic()
    assert await asyncio.wait_for(supervisor.run(), 15) == EXIT_CONFIG
    assert time.monotonic() - started < 5  # at once: the sleeping worker got SIGTERM


async def test_workers_that_keep_failing_to_start_make_the_parent_exit_1() -> None:
    starts: list[int] = []

    def command(index: int) -> list[str]:
        starts.append(index)
        return _python("import sys; sys.exit(1)")

    policy = RestartPolicy(give_up_after=3, first_delay_s=0.01)
    supervisor = Supervisor(1, command, stop_timeout_s=10, policy=policy)
    assert await asyncio.wait_for(supervisor.run(), 15) == EXIT_RUNTIME
    assert starts == [1, 1, 1]


async def test_a_worker_that_ignores_the_stop_is_killed_after_the_timeout() -> None:
    supervisor = Supervisor(
        2,
        lambda k: _python(
            "import time, sys; time.sleep(1); sys.exit(2)" if k == 2 else IGNORE_SIGTERM
        ),
        stop_timeout_s=1.0,
    )
    started = time.monotonic()
    assert await asyncio.wait_for(supervisor.run(), 15) == EXIT_CONFIG
    assert 1.9 < time.monotonic() - started < 8  # 1 s to the error, 1 s more, then SIGKILL


# ------------------------------------------------------------ python -m bot --workers 2


async def _pid_and_answered(http: aiohttp.ClientSession, port: int) -> tuple[int, int]:
    """One connection (one worker): its pid from /healthz, then its answered Slack messages
    from /metrics on the same keep-alive connection."""
    async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
        assert resp.status == 200, await resp.text()
        pid = int((await resp.json())["pid"])
    async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        text = await resp.text()
    answered = sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "bot_events_total"
        and sample.labels == {"platform": "slack", "outcome": "answered"}
    )
    return pid, int(answered)


async def _workers_seen(port: int, want: int, timeout: float = 60) -> dict[int, int]:  # noqa: ASYNC109
    """Answered count by worker pid, over fresh connections until ``want`` pids answered."""
    seen: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < want:
        assert time.monotonic() < deadline, f"only saw workers {sorted(seen)}"
        connector = aiohttp.TCPConnector(limit=1, force_close=False)
        try:
            async with aiohttp.ClientSession(connector=connector) as http:
                pid, answered = await _pid_and_answered(http, port)
                seen[pid] = answered
        except (aiohttp.ClientError, AssertionError):
            await asyncio.sleep(0.1)  # a worker still starting (or just killed)
    return seen


@contextlib.asynccontextmanager
async def _workers(
    tmp_path: Path, openrouter: FakeOpenRouter, slack: FakeSlack, port: int
) -> AsyncIterator[asyncio.subprocess.Process]:
    env = slack_env(
        tmp_path,
        openrouter,
        slack,
        port,
        BOT_USER_RATE_LIMIT="0",
        BOT_SHUTDOWN_GRACE="5",
        LOG_LEVEL="INFO",
    )
    # The default database, data/bot.db under the working directory: two workers create its
    # folder and file at once.
    del env["DATABASE_URL"]
    log = (tmp_path / "workers.log").open("wb")
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--workers", "2", stdout=log, stderr=log, env=env, cwd=tmp_path
    )
    try:
        yield parent
    finally:
        if parent.returncode is None:
            parent.kill()  # its workers see their parent gone and stop by themselves
            await parent.wait()
        log.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_two_workers_share_the_port_answer_once_restart_and_stop(tmp_path: Path) -> None:
    port = free_port()
    async with FakeOpenRouter() as openrouter, FakeSlack() as slack:
        slack.connection_per_delivery = True
        async with _workers(tmp_path, openrouter, slack, port) as parent:
            await wait_healthy(port, timeout=90)
            first_pids = set(await _workers_seen(port, want=2))
            assert parent.pid not in first_pids

            # Many deliveries, each over its own connection: each answered exactly once.
            url = f"http://127.0.0.1:{port}/slack/events"
            events = [app_mention(f"<@{BOT_USER_ID}> question {i}") for i in range(30)]
            statuses = await asyncio.gather(*(slack.deliver_event(url, SECRET, e) for e in events))
            assert [status for status, _ in statuses] == [200] * len(events)

            def answers(event: dict[str, object]) -> list[str]:
                thread = slack.thread("C123", str(event["ts"]))
                return [str(m.get("text", "")) for m in thread if m.get("bot_id")]

            await eventually(lambda: all(answers(e) for e in events), 90)
            await asyncio.sleep(1.0)  # time for a second answer, were there one
            for i, event in enumerate(events):
                assert answers(event) == [f"echo: question {i}"]

            # Both workers took some: their own counts, read from each one's /metrics.
            async def by_worker() -> dict[int, int]:
                return await _workers_seen(port, want=2)

            deadline = time.monotonic() + 30
            counts = await by_worker()
            while sum(counts.values()) != len(events) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                counts = await by_worker()
            assert set(counts) == first_pids
            assert sum(counts.values()) == len(events), counts
            assert all(n > 0 for n in counts.values()), counts

            # A worker killed with SIGKILL is started again; the other kept serving.
            killed, kept = sorted(first_pids)
            os.kill(killed, signal.SIGKILL)
            deadline = time.monotonic() + 90
            pids = first_pids
            while killed in pids or len(pids) < 2:
                assert time.monotonic() < deadline, f"not restarted: {pids}"
                await asyncio.sleep(0.2)
                pids = set(await _workers_seen(port, want=2))
            assert kept in pids and parent.returncode is None
            again = app_mention(f"<@{BOT_USER_ID}> after the restart")
            assert (await slack.deliver_event(url, SECRET, again))[0] == 200
            await eventually(lambda: answers(again) == ["echo: after the restart"], 60)

            # SIGTERM to the parent: every worker stops by itself, and the parent exits 0.
            parent.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(parent.wait(), 40) == 0
            assert not any(_alive(pid) for pid in pids)

    log = (tmp_path / "workers.log").read_text()
    assert f"(pid {killed}) was killed by SIGKILL" in log and "starting it again in 1 s" in log
    assert log.count("exited with 0 (stopped)") == 2, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert (tmp_path / "data" / "bot.db").exists()
