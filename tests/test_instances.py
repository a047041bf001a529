"""Several instances on one database (issue 15): real ``python -m bot`` processes, each its own
``PORT``, against the fakes in this process, through the real slack-bolt and discord.py.

Every promise of one process holds for N of them: each message answered exactly once, whichever
instance Slack delivers it (or its retries) to; the turns of one conversation one at a time, each
seeing the ones before; a killed instance's users told within its lease, once; a rolling restart
that nobody notices. PostgreSQL (``pg_cluster``, a database per test) and a shared SQLite file.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fakes.openrouter import JSONDict, Reply, TextReply, last_user_text
from tests.fakes.slack import BOT_USER_ID, app_mention, message_event
from tests.fakes.slack.ids import new_event_id
from tests.helpers import eventually
from tests.instances import SECRET, Fleet, bot_texts, fleet
from tests.pg_cluster import Cluster
from tests.stores import PostgresBackend

LEASE_S = 2.0
"""BOT_LEASE_S of every instance: short, so a dead one is noticed in seconds."""
SETTINGS = {"BOT_LEASE_S": str(LEASE_S), "BOT_SHUTDOWN_GRACE": "10"}


@pytest.fixture
async def pg_url(pg_cluster: Cluster) -> AsyncIterator[str]:
    """A database of this test's own on the session's PostgreSQL server (dropped after)."""
    backend = PostgresBackend(pg_cluster)
    await backend.start()
    try:
        yield backend.url
    finally:
        await backend.close()


# --------------------------------------------------------------------------- exactly once


@dataclass
class OnceReport:
    messages: int
    answered_once: int = 0
    answered_twice_or_more: int = 0
    lost: int = 0
    model_requests: int = 0
    refused_deliveries: list[int] = field(default_factory=list)
    """HTTP statuses other than 200 that an instance answered Slack with."""
    seconds: float = 0.0


async def _exactly_once(bots: Fleet, count: int) -> OnceReport:
    """``count`` mentions spread round-robin over the instances; each one's ``message`` twin
    (a channel mention arrives twice, same ts) and Slack's retry (same event id) go to the
    other instances while it is answered, and a second retry after it was."""
    slack, instances = bots.slack, bots.running
    n = len(instances)
    report = OnceReport(messages=count)
    started = time.monotonic()
    events = [app_mention(f"<@{BOT_USER_ID}> question {i:02d}") for i in range(count)]
    ids = [new_event_id() for _ in events]

    async def deliver(i: int, to: int, retry: int | None = None, twin: bool = False) -> None:
        url = instances[(i + to) % n].events_url
        if twin:
            event = events[i]
            copy = message_event(str(event["text"]), ts=str(event["ts"]))
            status, _ = await slack.deliver_event(url, SECRET, copy)
        else:
            status, _ = await slack.deliver_event(
                url, SECRET, events[i], event_id=ids[i], retry_num=retry
            )
        if status != 200:
            report.refused_deliveries.append(status)

    await asyncio.gather(*(deliver(i, 0) for i in range(count)))
    await asyncio.gather(
        *(deliver(i, 1, retry=1) for i in range(count)),
        *(deliver(i, 2, twin=True) for i in range(count)),
    )

    def answers(i: int) -> list[str]:
        return [t for t in bot_texts(slack, str(events[i]["ts"])) if f"question {i:02d}" in t]

    with contextlib.suppress(AssertionError):  # counted as lost below
        await eventually(lambda: all(answers(i) for i in range(count)), 30)
    await asyncio.gather(*(deliver(i, 2, retry=2) for i in range(count)))
    await asyncio.sleep(1.5)  # a late retry answered again would show by now
    for i in range(count):
        got = len(bot_texts(slack, str(events[i]["ts"])))
        if got == 1 and answers(i):
            report.answered_once += 1
        elif got > 1:
            report.answered_twice_or_more += 1
        else:
            report.lost += 1
    report.model_requests = len(bots.openrouter.chat_requests)
    report.seconds = time.monotonic() - started
    return report


def _assert_once(report: OnceReport) -> None:
    assert report.answered_once == report.messages, report
    assert report.answered_twice_or_more == report.lost == 0, report
    assert report.model_requests == report.messages, report  # no turn ran twice
    assert not report.refused_deliveries, report


async def test_three_instances_on_postgresql_answer_each_slack_event_once(
    tmp_path: Path, pg_url: str
) -> None:
    async with fleet(tmp_path, pg_url, settings=SETTINGS, latency=0.3) as bots:
        await bots.start("a", "b", "c")
        report = await _exactly_once(bots, count=9)
        print(report)
        _assert_once(report)

        for instance in bots.instances:
            status, health = await instance.healthz()
            assert status == 200 and health.get("instance") == instance.name, health
            remaining = health.get("lease_expires_in_s")
            assert isinstance(remaining, float) and 0 < remaining <= LEASE_S, health


async def test_three_instances_on_one_sqlite_file_answer_each_slack_event_once(
    tmp_path: Path,
) -> None:
    database = f"sqlite:///{tmp_path / 'bot.db'}"
    async with fleet(tmp_path, database, settings=SETTINGS, latency=0.3) as bots:
        await bots.start("a", "b", "c")
        report = await _exactly_once(bots, count=9)
        print(report)
        _assert_once(report)


# --------------------------------------------------------------------------- one conversation


def _user_texts(body: JSONDict) -> list[str]:
    """The user messages of a model request, in order: the history the turn was given."""
    texts = []
    for message in body.get("messages") or []:
        if isinstance(message, dict) and message.get("role") == "user":
            texts.append(last_user_text({"messages": [message]}))
    return texts


def _history_responder(body: JSONDict) -> Reply:
    """Streams, slowly (~0.8 s), which user messages the turn saw."""
    return TextReply("saw: " + " | ".join(_user_texts(body)), chunks=4, delay=0.2)


@dataclass
class ConversationReport:
    turns: int
    answers: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    spans: list[tuple[float, float]] = field(default_factory=list)
    """Each model request's start and end, seconds from the first one, in order of start."""
    overlaps: int = 0
    seconds: float = 0.0


async def test_a_threads_turns_alternate_instances_one_at_a_time_each_seeing_the_last(
    tmp_path: Path, pg_url: str
) -> None:
    """Turn k of one thread goes to instance k % 3, sent while turn k-1 is still streaming
    on another instance: it waits for it, and its model request carries the turns before."""
    turns = 4
    async with fleet(tmp_path, pg_url, settings=SETTINGS) as bots:
        bots.openrouter.default_responder = _history_responder
        instances = await bots.start("a", "b", "c")
        slack, router = bots.slack, bots.openrouter
        report = ConversationReport(turns=turns)
        started = time.monotonic()
        root = app_mention(f"<@{BOT_USER_ID}> turn 0")
        root_ts = str(root["ts"])
        for k in range(turns):
            event = root if k == 0 else message_event(f"turn {k}", thread_ts=root_ts)
            status, _ = await slack.deliver_event(instances[k % 3].events_url, SECRET, event)
            assert status == 200
            # The next turn goes out once this one is at the model (so it is streaming then).
            await eventually(lambda: len(router.chat_requests) > len(report.expected), 20)
            report.expected.append("saw: " + " | ".join(f"turn {j}" for j in range(k + 1)))
        with contextlib.suppress(AssertionError):
            await eventually(lambda: len(bot_texts(slack, root_ts)) >= turns, 20)
            await eventually(lambda: router.counters.in_flight == 0, 10)
        report.answers = bot_texts(slack, root_ts)
        requests = sorted(router.chat_requests, key=lambda r: r.received_at)
        first = requests[0].received_at if requests else 0.0
        report.spans = [
            (round(r.received_at - first, 2), round((r.finished_at or 0.0) - first, 2))
            for r in requests
        ]
        report.overlaps = sum(
            1 for a, b in itertools.pairwise(requests)
            if a.finished_at is None or b.received_at < a.finished_at
        )  # fmt: skip
        report.seconds = time.monotonic() - started
        print(report)

        assert report.answers == report.expected, report
        assert report.overlaps == 0 and len(report.spans) == turns, report
