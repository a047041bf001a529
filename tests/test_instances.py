"""Several instances on one database (issue 15): real ``python -m bot`` processes, each its own
``PORT``, against the fakes in this process, through the real slack-bolt and discord.py.

Every promise of one process holds for N of them: each message answered exactly once, whichever
instance Slack delivers it (or its retries) to; the turns of one conversation one at a time, each
seeing the ones before; a killed instance's users told within its lease, once; a rolling restart
that nobody notices; one rate limit for all. On PostgreSQL (``pg_cluster``, a database per
test); the exactly-once and kill tests also on one SQLite file the processes share, where the
leases must hold too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.core import SHUTDOWN_LINE
from bot.recovery import RESTART_LINE
from tests.fakes.openrouter import HangReply, JSONDict, Reply, TextReply, last_user_text
from tests.fakes.slack import BOT_USER_ID, app_mention, message_event
from tests.fakes.slack.ids import new_event_id
from tests.helpers import eventually
from tests.instances import (
    SECRET,
    Fleet,
    bot_texts,
    claims,
    discord_replies,
    fleet,
    streaming,
)
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


@pytest.fixture(params=["postgresql", "sqlite"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The test's database: its own on PostgreSQL, then a SQLite file its processes share."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bot.db'}"
        return
    backend = PostgresBackend(request.getfixturevalue("pg_cluster"))
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


async def _assert_once(report: OnceReport, bots: Fleet) -> None:
    assert report.answered_once == report.messages, report
    assert report.answered_twice_or_more == report.lost == 0, report
    assert report.model_requests == report.messages, report  # no turn ran twice
    assert not report.refused_deliveries, report
    # Each answered claim names the instance that ran it, and all three took some.
    claimed = await claims(bots.database_url)
    assert {status for status, _ in claimed} == {"answered"}, claimed
    assert {owner for _, owner in claimed} == {i.name for i in bots.instances}, claimed


async def test_three_instances_answer_each_slack_event_once(
    tmp_path: Path, database_url: str
) -> None:
    async with fleet(tmp_path, database_url, settings=SETTINGS, latency=0.3) as bots:
        await bots.start("a", "b", "c")
        report = await _exactly_once(bots, count=9)
        print(report)
        await _assert_once(report, bots)

        for instance in bots.instances:
            status, health = await instance.healthz()
            assert status == 200 and health.get("instance") == instance.name, health
            remaining = health.get("lease_expires_in_s")
            assert isinstance(remaining, int | float) and 0 < remaining <= LEASE_S, health


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
            await eventually(lambda: not streaming(slack), 10)
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


# --------------------------------------------------------------------------- an instance dies

CUT = "cut question"
TOLD_WITHIN_S = LEASE_S + LEASE_S / 3 + 5.0
"""A dead instance is noticed within its lease plus a renewal period (the contract: about
BOT_LEASE_S + BOT_LEASE_S/3 + 1 s); the rest is margin for a loaded machine."""


def _cut_or_slow(body: JSONDict) -> Reply:
    """Cut questions hang for ever; the others take ~1.5 s (in flight at a kill too)."""
    text = last_user_text(body)
    return HangReply() if CUT in text else TextReply(f"echo: {text}", chunks=3, delay=0.5)


@dataclass
class KillReport:
    cut: int
    in_flight_at_kill: int = 0
    told_once: int = 0
    told_twice_or_more: int = 0
    re_answered: int = 0
    lost: int = 0
    told_after_s: list[float] = field(default_factory=list)
    """From the kill to each user told, in order of the cut questions (lost: absent)."""
    survivors_answered_once: int = 0
    survivors_told_falsely: int = 0
    redeliveries_answered: int = 0
    follow_up_answered: bool = False
    """A follow-up sent to a cut thread after its user was told."""
    waiter_ran_before_kill: bool = False
    waiter_answered: bool = False
    """A follow-up that waited for the dead instance's turn in its thread."""


async def test_kill_9_of_one_instance_its_users_are_told_by_the_others_within_the_lease(
    tmp_path: Path, database_url: str
) -> None:
    async with fleet(tmp_path, database_url, settings=SETTINGS) as bots:
        bots.openrouter.default_responder = _cut_or_slow
        a, b, c = await bots.start("a", "b", "c")
        slack, router = bots.slack, bots.openrouter
        cut = [app_mention(f"<@{BOT_USER_ID}> {CUT} {i}") for i in range(3)]
        fine = [app_mention(f"<@{BOT_USER_ID}> fine question {i}") for i in range(2)]
        ids = {str(e["ts"]): new_event_id() for e in cut}
        report = KillReport(cut=len(cut))
        for event in cut:
            await slack.deliver_event(a.events_url, SECRET, event, event_id=ids[str(event["ts"])])
        for event, survivor in zip(fine, (b, c), strict=True):
            await slack.deliver_event(survivor.events_url, SECRET, event)
        await eventually(lambda: len(router.chat_requests) == len(cut) + len(fine), 20)
        report.in_flight_at_kill = router.counters.in_flight
        # A follow-up in a cut thread reaches C meanwhile: it waits for A's turn there.
        waiting = str(cut[1]["ts"])
        await slack.deliver_event(
            c.events_url, SECRET, message_event("waiting follow-up", thread_ts=waiting)
        )
        await asyncio.sleep(0.5)
        report.waiter_ran_before_kill = len(router.chat_requests) > len(cut) + len(fine)

        await a.kill()
        killed = time.monotonic()
        # Slack retries what the dead instance took (no ack, say): its claim still holds.
        for i, event in enumerate(cut):
            await slack.deliver_event(
                (b, c)[i % 2].events_url, SECRET, event, event_id=ids[str(event["ts"])], retry_num=1
            )
        told_at: dict[str, float] = {}
        deadline = killed + TOLD_WITHIN_S + 5.0  # wait past the bound, to report the real time
        while len(told_at) < len(cut) and time.monotonic() < deadline:
            for event in cut:
                ts = str(event["ts"])
                if ts not in told_at and any(RESTART_LINE in t for t in bot_texts(slack, ts)):
                    told_at[ts] = time.monotonic() - killed
            await asyncio.sleep(0.05)
        report.told_after_s = [
            round(told_at[str(e["ts"])], 2) for e in cut if str(e["ts"]) in told_at
        ]

        # And again once its users were told (Slack retries for minutes).
        for i, event in enumerate(cut):
            await slack.deliver_event(
                (c, b)[i % 2].events_url, SECRET, event, event_id=ids[str(event["ts"])], retry_num=2
            )
        with contextlib.suppress(AssertionError):
            await eventually(lambda: all(len(bot_texts(slack, str(e["ts"]))) for e in fine), 20)
            await eventually(lambda: not streaming(slack, (str(e["ts"]) for e in fine)), 10)
        await asyncio.sleep(1.5)  # a redelivery answered, or a user told twice, shows by now

        for event in cut:
            texts = bot_texts(slack, str(event["ts"]))
            told = sum(RESTART_LINE in t for t in texts)
            report.told_once += told == 1
            report.told_twice_or_more += told > 1
            report.lost += told == 0
            report.re_answered += sum(t.startswith("echo:") and CUT in t for t in texts)
        report.redeliveries_answered = sum(
            CUT in last_user_text(r.body or {}) for r in router.chat_requests
        ) - len(cut)
        for i, event in enumerate(fine):
            texts = bot_texts(slack, str(event["ts"]))
            report.survivors_answered_once += texts == [f"echo: fine question {i}"]
            report.survivors_told_falsely += any(RESTART_LINE in t for t in texts)

        # The dead instance's hold on a cut thread is gone: a follow-up there is answered.
        root = str(cut[0]["ts"])
        await slack.deliver_event(
            b.events_url, SECRET, message_event("after the kill", thread_ts=root)
        )
        with contextlib.suppress(AssertionError):
            await eventually(lambda: any("after the kill" in t for t in bot_texts(slack, root)), 15)
        report.follow_up_answered = any("echo: after the kill" in t for t in bot_texts(slack, root))
        report.waiter_answered = any(
            "echo: waiting follow-up" in t for t in bot_texts(slack, waiting)
        )
        print(report)

        assert report.in_flight_at_kill == len(cut) + len(fine), report
        assert report.told_once == len(cut), report
        assert report.told_twice_or_more == report.re_answered == report.lost == 0, report
        assert max(report.told_after_s) <= TOLD_WITHIN_S, report
        assert report.redeliveries_answered == 0, report
        assert report.survivors_answered_once == len(fine), report
        assert report.survivors_told_falsely == 0, report
        assert report.follow_up_answered, report
        assert report.waiter_answered and not report.waiter_ran_before_kill, report


# --------------------------------------------------------------------------- rolling restart


def _slow(body: JSONDict) -> Reply:
    """~6 s an answer: longer than a lease and its renewal, so a turn finishing in an
    instance's shutdown grace outlives the time another would take to call it dead."""
    return TextReply(f"echo: {last_user_text(body)}", chunks=12, delay=0.5)


@dataclass
class RollingReport:
    questions: int
    answered_once: int = 0
    answered_twice_or_more: int = 0
    lost: int = 0
    told_restart: int = 0
    told_shutdown: int = 0
    model_requests: int = 0
    a_exit: int | None = None
    a_stopped_after_s: float = 0.0
    """From SIGTERM to A's exit (its turns finished in the grace)."""


async def test_a_rolling_restart_with_turns_in_flight_is_seen_by_nobody(
    tmp_path: Path, pg_url: str
) -> None:
    """A and B answer slow turns; C starts, then A gets SIGTERM (its grace suffices) and new
    questions go to B and C: every question answered once, nobody told anything."""
    async with fleet(tmp_path, pg_url, settings=SETTINGS) as bots:
        bots.openrouter.default_responder = _slow
        a, b = await bots.start("a", "b")
        slack, router = bots.slack, bots.openrouter
        first = [app_mention(f"<@{BOT_USER_ID}> first wave {i}") for i in range(4)]
        for i, event in enumerate(first):
            await slack.deliver_event((a, b)[i % 2].events_url, SECRET, event)
        await eventually(lambda: len(router.chat_requests) == len(first), 20)

        c = bots.add("c")
        await c.start()
        await c.wait_healthy(loaded=False)  # taking events (its agent stack may still load)
        stopping = time.monotonic()
        assert a.process is not None
        a.process.send_signal(signal.SIGTERM)
        second = [app_mention(f"<@{BOT_USER_ID}> second wave {i}") for i in range(4)]
        for i, event in enumerate(second):
            await slack.deliver_event((b, c)[i % 2].events_url, SECRET, event)

        report = RollingReport(questions=len(first) + len(second))
        report.a_exit = await a.terminate()
        report.a_stopped_after_s = round(time.monotonic() - stopping, 2)
        everyone = first + second
        with contextlib.suppress(AssertionError):
            await eventually(lambda: all(bot_texts(slack, str(e["ts"])) for e in everyone), 30)
            await eventually(lambda: not streaming(slack), 15)
        # Past A's lease: had anyone taken A for dead, its users would have been told by now.
        await asyncio.sleep(max(0.0, stopping + TOLD_WITHIN_S - time.monotonic()))
        await asyncio.sleep(1.0)
        for event in everyone:
            texts = bot_texts(slack, str(event["ts"]))
            report.told_restart += any(RESTART_LINE in t for t in texts)
            report.told_shutdown += any(SHUTDOWN_LINE in t for t in texts)
            echoes = sum(t.startswith("echo:") for t in texts)
            report.answered_once += echoes == 1 and len(texts) == 1
            report.answered_twice_or_more += echoes > 1
            report.lost += echoes == 0
        report.model_requests = len(router.chat_requests)
        print(report)

        assert report.a_exit == 0, report
        assert report.told_restart == report.told_shutdown == 0, report
        assert report.answered_once == report.questions, report
        assert report.answered_twice_or_more == report.lost == 0, report
        assert report.model_requests == report.questions, report


# --------------------------------------------------------------------------- Discord


async def test_three_unsharded_discord_instances_answer_each_message_once(
    tmp_path: Path, pg_url: str
) -> None:
    """Every process gets every gateway event (no sharding): one of them answers it."""
    async with fleet(
        tmp_path, pg_url, platforms=("discord",), settings=SETTINGS, latency=0.3
    ) as bots:
        await bots.start("a", "b", "c")
        fake = bots.discord
        sent = [
            await fake.send_user_message(content=f"{fake.bot.mention} question {i:02d}")
            for i in range(6)
        ]
        ids = [int(m["id"]) for m in sent]

        def replies(message_id: int) -> list[str]:
            return discord_replies(fake, message_id)

        with contextlib.suppress(AssertionError):
            await eventually(lambda: all(replies(i) for i in ids), 30)
        await asyncio.sleep(1.5)  # a second answer would show by now
        received = [
            sum(d.event == "MESSAGE_CREATE" and int(d.data["id"]) == i for d in fake.dispatched)
            for i in ids
        ]
        answers = [replies(i) for i in ids]
        report = {
            "sessions_per_message": received,
            "answers": answers,
            "model_requests": len(bots.openrouter.chat_requests),
        }
        print(report)

        assert received == [3] * len(ids), report  # each instance got each message
        assert all(
            len(got) == 1 and f"question {n:02d}" in got[0] for n, got in enumerate(answers)
        ), report
        assert report["model_requests"] == len(ids), report
        claimed = await claims(bots.database_url)
        assert len(claimed) == len(ids) and {status for status, _ in claimed} == {"answered"}
        assert {owner for _, owner in claimed} <= {"a", "b", "c"}, claimed


# --------------------------------------------------------------------------- limits


async def test_the_per_user_rate_limit_counts_across_instances(tmp_path: Path, pg_url: str) -> None:
    """BOT_USER_RATE_LIMIT=3: six questions of one user, spread over three instances, get
    three answers and three refusals (to the user alone), not two answers from each."""
    limit, asked = 3, 6
    settings = {**SETTINGS, "BOT_USER_RATE_LIMIT": str(limit)}
    async with fleet(tmp_path, pg_url, settings=settings) as bots:
        instances = await bots.start("a", "b", "c")
        slack = bots.slack
        events = [app_mention(f"<@{BOT_USER_ID}> question {i}") for i in range(asked)]
        for i, event in enumerate(events):
            await slack.deliver_event(instances[i % 3].events_url, SECRET, event)

        def settled() -> bool:
            answered = sum(bool(bot_texts(slack, str(e["ts"]))) for e in events)
            return answered + len(slack.ephemerals("C123")) >= asked

        with contextlib.suppress(AssertionError):
            await eventually(settled, 20)
        await asyncio.sleep(1.0)
        report = {
            "answered": sum(bool(bot_texts(slack, str(e["ts"]))) for e in events),
            "refused": len(slack.ephemerals("C123")),
            "model_requests": len(bots.openrouter.chat_requests),
        }
        print(report)

        assert report == {"answered": limit, "refused": asked - limit, "model_requests": limit}
