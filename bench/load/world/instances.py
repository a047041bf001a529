"""instances: the bot as 1 or N processes on one shared database, under realistic answers.

Issue 15: throughput of 1 vs 2 bot processes on a 2-core machine, 500 conversations at once,
model latency 1 s, answers of realistic length, on PostgreSQL and on SQLite.

This world leads (``Scenario.leads``): it runs in the ``python -m bench.load`` process and
starts ``--processes`` bot processes itself (``bench.load.instance``: the host of every other
scenario, the real core and SlackAdapter in HTTP mode, each measuring its own CPU and RSS),
each its own instance (``BOT_INSTANCE_ID``) on the one database: a SQLite file in a temporary
folder, or a throwaway PostgreSQL 15 server (``tests.pg_cluster``, in memory where there is
room, fsync and synchronous_commit off). It runs FakeSlack and FakeOpenRouter and the
traffic, as the other worlds do; PostgreSQL's server is a third set of processes, whose CPU
is read from ``/proc`` and shown apart.

Traffic: ``--n`` top-level @mentions at once (each its own thread and conversation, each from
its own user, over ``--channels`` channels), the events spread round-robin over the bot
processes' ports as a load balancer would. The model answers each after ``--latency``
seconds in ``--tokens`` tokens, one token a chunk ``--token-delay`` apart (as real models
stream), so per-chunk cost weighs as it does in production. One warm-up turn per process
goes first (cold paths), measured apart.

Figures: turns answered (the whole answer in place at the fake, exactly), wall time from the
first event to the last final answer, throughput (turns / that wall time), latency from an
event's delivery to its final answer (p50 / p95 / max), CPU per turn (the sum over the bot
processes; PostgreSQL's server and the world apart), peak RSS of each bot process, errors
(acks other than 200, failed turns, wrong or missing answers, native streams left open) and
duplicates (threads with more than one answer, claims refused as duplicates). Targets: every
turn answered, 0 errors, 0 duplicates; 2 processes beat 1 (the ratio, from a run of each:
``--processes 1,2``, the default, prints it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from bench._shared import percentile, verdict
from bench.load.figures import BlockFigures, SummaryRow
from bench.load.protocol import Block, BotInfo, BotLink, host_process
from bench.load.world.answer_traffic import AnswerTurn, Model
from bench.load.world.databases import Store, machine_busy_s, shared_store
from bench.load.world.fakes import LoadOpenRouter, LoadSlack, openrouter_settings, slack_settings
from bench.load.world.slack_traffic import (
    Ack,
    SlackThread,
    SlackWatch,
    bot_text,
    check_threads,
    squeeze,
)
from bench.load.world.slack_traffic import deliver as deliver_event
from tests.fakes.openrouter import FakeOpenRouter
from tests.fakes.openrouter import RecordedRequest as OpenRouterRequest
from tests.fakes.slack import FakeSlack, app_mention

JSONDict = dict[str, Any]


# --------------------------------------------------------------------------- the bot processes


@dataclass
class Host:
    name: str
    link: BotLink
    info: BotInfo
    turns: list[AnswerTurn]
    """The conversations whose events go to this process's port."""


@asynccontextmanager
async def measured(hosts: list[Host], label: str, *, warm_up: bool) -> AsyncIterator[list[Block]]:
    """A measured block in every bot process at once; each waits, when it ends, for its own
    adapter to have ended the turns sent to it."""
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                host.link.block(label, ended=len(host.turns), timeout_s=10, warm_up=warm_up)
            )
            for host in hosts
        ]


def place(slack: FakeSlack, turn: AnswerTurn, channel: int) -> None:
    """A top-level mention from a user of its own: its own thread and conversation, never
    refused by the per-user rate limit."""
    turn.channel = f"CINST{channel:03d}"
    event = app_mention(
        f"<@{slack.bot_user_id}> {turn.question}", channel=turn.channel, user=f"UI{turn.idx:07d}"
    )
    turn.thread = SlackThread(turn.channel, str(event["ts"]), turn.answer, event)


async def send(slack: FakeSlack, host: Host, turn: AnswerTurn, acks: list[Ack]) -> None:
    assert turn.thread is not None and host.info.slack_url is not None
    await deliver_event(slack, host.info.slack_url, turn.thread.event, turn.thread, acks)
    turn.dispatched = turn.thread.started


@dataclass
class Round:
    """A round of conversations at once, and what came of it."""

    label: str
    turns: list[AnswerTurn]
    acks: list[Ack]
    blocks: list[Block]
    answered_all: bool
    server_cpu_s: float
    model_calls_peak: int
    """Model requests open at once at the fake, at most (each holds a connection of the bot's
    model client for the whole streamed answer)."""
    machine_busy_s: float
    """CPU seconds the whole machine was busy over the round, by anyone."""

    def figures(self) -> list[BlockFigures]:
        return [b.figures for b in self.blocks if b.figures is not None]

    def latencies_s(self) -> list[float]:
        return [t.final_at - t.dispatched for t in self.turns if t.final_at is not None]

    def wall_s(self) -> float:
        ends = [t.final_at for t in self.turns if t.final_at is not None]
        return max(ends) - min(t.dispatched for t in self.turns) if ends else float("nan")

    def exact(self) -> int:
        return sum(1 for t in self.turns if t.correct)

    def outcome(self, name: str) -> int:
        return sum(f.outcomes_of("slack").get(name, 0) for f in self.figures())


def peak_open(requests: list[OpenRouterRequest]) -> int:
    """Most requests open at once (received, not yet finished)."""
    edges = sorted(
        [(r.received_at, 1) for r in requests]
        + [(r.finished_at, -1) for r in requests if r.finished_at is not None]
    )
    peak = open_now = 0
    for _, step in edges:
        open_now += step
        peak = max(peak, open_now)
    return peak


async def conversations(
    slack: FakeSlack,
    openrouter: FakeOpenRouter,
    hosts: list[Host],
    store: Store,
    label: str,
    timeout_s: float,
    *,
    warm_up: bool = False,
) -> Round:
    """Deliver every host's conversations at once, in round-robin order (the i-th event to
    process i % N, as a load balancer spreads them); wait until every process has ended its
    turns (or the timeout); read the answers back from the fake."""
    owner = {id(t): host for host in hosts for t in host.turns}
    turns = sorted((t for host in hosts for t in host.turns), key=lambda t: t.idx)
    threads = [t.thread for t in turns if t.thread is not None]
    watch = SlackWatch(slack, threads, since=len(slack.api_calls))
    model_since = len(openrouter.requests)
    acks: list[Ack] = []
    async with measured(hosts, label, warm_up=warm_up) as blocks:
        cpu_before, machine_before = store.server_cpu_s(), machine_busy_s()
        await asyncio.gather(*(send(slack, owner[id(t)], t, acks) for t in turns))
        # Until every process's adapter has ended its turns, answered or failed (a failed
        # turn's answer never comes); each counts a turn once its final call is answered.
        settled = await asyncio.gather(*(h.link.settle(len(h.turns), timeout_s) for h in hosts))
        watch.poll()
        answered_all = all(settled) and not watch.waiting
        server_cpu_s = store.server_cpu_s() - cpu_before
        machine_s = machine_busy_s() - machine_before
    watch.poll()
    for turn in turns:
        thread = turn.thread
        assert thread is not None
        turn.shown = bot_text(slack, thread)
        final = thread.final
        turn.final_at = final.at if final is not None and final.ok else None
    peak = peak_open(openrouter.requests[model_since:])
    return Round(label, turns, acks, blocks, answered_all, server_cpu_s, peak, machine_s)


# --------------------------------------------------------------------------- report


def seconds(samples: list[float]) -> str:
    if not samples:
        return "none"
    p50, p95 = percentile(samples, 50), percentile(samples, 95)
    return f"p50 {p50:.2f} s, p95 {p95:.2f} s, max {max(samples):.2f} s"


def answers_begun(slack: FakeSlack, turn: AnswerTurn) -> int:
    """The bot's messages in the turn's thread that begin its answer (a long answer's later
    messages go on from where the first stopped): more than one is a second answer."""
    assert turn.thread is not None
    start = squeeze(turn.answer)[:40]
    return sum(
        1
        for m in slack.thread(turn.channel, turn.thread.ts)
        if m.get("bot_id") and squeeze(str(m.get("text") or "")).startswith(start)
    )


@dataclass
class Verdicts:
    errors: int
    error_parts: str
    duplicates: int
    duplicate_parts: str


def judge(slack: FakeSlack, result: Round) -> Verdicts:
    threads = [t.thread for t in result.turns if t.thread is not None]
    check = check_threads(slack, threads)
    bad_acks = sum(1 for a in result.acks if a.status != 200)
    failed = result.outcome("failed")
    wrong = len(result.turns) - result.exact()
    repeated = sum(1 for t in result.turns if answers_begun(slack, t) > 1)
    refused = result.outcome("duplicate")
    return Verdicts(
        errors=bad_acks + failed + wrong + check.streams_open,
        error_parts=f"acks other than 200: {bad_acks}, turns failed: {failed}, answers wrong or"
        f" missing: {wrong}, native streams left open: {check.streams_open}",
        duplicates=repeated + refused,
        duplicate_parts=f"threads answered twice: {repeated}, events the store called"
        f" duplicates: {refused}",
    )


def report(
    slack: FakeSlack, result: Round, hosts: list[Host], args: argparse.Namespace
) -> tuple[bool, list[SummaryRow], float]:
    n = len(result.turns)
    figures = result.figures()
    wall = result.wall_s()
    throughput = n / wall if wall == wall and wall > 0 else 0.0
    cpu = sum(f.cpu_s for f in figures)
    world_cpu = figures[0].world_cpu_s if figures else 0.0
    model_s = args.latency + args.tokens * args.token_delay
    verdicts = judge(slack, result)
    answered = result.exact()
    names = [h.name for h in hosts]

    def each(values: list[str]) -> str:
        return ", ".join(f"{name} {value}" for name, value in zip(names, values, strict=True))

    say = print
    say(f"\n{result.label}: {n} conversations at once, spread over {len(hosts)} bot process(es)")
    say(
        f"  turns answered: {answered}/{n} whole and exact at the fake"
        + ("" if result.answered_all else " (gave up waiting)")
        + f"   target {n}: {verdict(answered == n)}"
    )
    say(f"  wall time:      {wall:.2f} s from the first event to the last final answer")
    say(
        f"  throughput:     {throughput:.1f} turns/s (the model alone takes {model_s:.2f} s per"
        f" answer: {n / model_s:.0f} turns/s if the bot cost nothing)"
    )
    say(f"  latency:        event -> final answer {seconds(result.latencies_s())}")
    say(
        f"  CPU per turn:   bot processes {cpu * 1000 / n:.1f} ms ("
        + each(
            [
                f"{f.cpu_s:.1f} s, {100 * f.cpu_s / max(f.wall_s, 1e-9):.0f}% of a core"
                for f in figures
            ]
        )
        + f"); database server {result.server_cpu_s * 1000 / n:.1f} ms; the world (fakes and"
        f" traffic) {world_cpu * 1000 / n:.1f} ms"
    )
    others = result.machine_busy_s - cpu - world_cpu - result.server_cpu_s
    block_s = max((f.wall_s for f in figures), default=wall)
    say(
        f"  machine:        {os.cpu_count()} cores, busy {result.machine_busy_s:.1f} CPU-s over"
        f" the {block_s:.1f} s measured; of that, outside this bench {max(others, 0):.1f} CPU-s"
        f" ({100 * max(others, 0) / max(block_s, 1e-9):.0f}% of a core: other work on the"
        " machine competes for the same cores)"
    )
    say(f"  peak RSS:       {each([f'{f.peak_rss_mb:.0f} MB' for f in figures])}")
    say(
        "  event loop:     lag p99 "
        + each([f"{f.lag_p99_ms:.0f} ms (max {f.lag_max_ms:.0f})" for f in figures])
        + "; turns running at once, peak: "
        + each([str(f.peak_running) for f in figures])
    )
    say(f"  model calls:    {result.model_calls_peak} open at once at the model, at most")
    say(f"  outcomes:       {each([str(f.outcomes_of('slack')) for f in figures])}")
    say(
        f"  errors:         {verdicts.errors} ({verdicts.error_parts})   target 0:"
        f" {verdict(verdicts.errors == 0)}"
    )
    say(
        f"  duplicates:     {verdicts.duplicates} ({verdicts.duplicate_parts})   target 0:"
        f" {verdict(verdicts.duplicates == 0)}"
    )
    ok = answered == n and verdicts.errors == 0 and verdicts.duplicates == 0
    rows = [
        SummaryRow("turns answered", f"{answered}/{n}", f"{n}", answered == n),
        SummaryRow("wall time for all", f"{wall:.2f} s"),
        SummaryRow("throughput", f"{throughput:.1f} turns/s", "2 processes > 1"),
        SummaryRow("latency p50", f"{percentile(result.latencies_s(), 50):.2f} s"),
        SummaryRow("latency p95", f"{percentile(result.latencies_s(), 95):.2f} s"),
        SummaryRow("latency max", f"{max(result.latencies_s(), default=float('nan')):.2f} s"),
        SummaryRow("CPU per turn, bot processes", f"{cpu * 1000 / n:.1f} ms"),
        SummaryRow("CPU per turn, database server", f"{result.server_cpu_s * 1000 / n:.1f} ms"),
        SummaryRow("CPU per turn, the world", f"{world_cpu * 1000 / n:.1f} ms"),
        SummaryRow("CPU used outside the bench", f"{max(others, 0):.1f} s in {block_s:.1f} s"),
        SummaryRow("model calls open at once, peak", str(result.model_calls_peak)),
        SummaryRow(
            "peak RSS per process", " / ".join(f"{f.peak_rss_mb:.0f}" for f in figures) + " MB"
        ),
        SummaryRow("errors", str(verdicts.errors), "0", verdicts.errors == 0),
        SummaryRow("duplicates", str(verdicts.duplicates), "0", verdicts.duplicates == 0),
    ]
    return ok, rows, throughput


# --------------------------------------------------------------------------- run


async def lead(args: argparse.Namespace) -> tuple[bool, JSONDict]:
    """One run: ``args.processes`` bot processes on ``args.database``. The run's verdict and
    its summary (rows for the side-by-side table, and the throughput for the ratio)."""
    processes, database = int(args.processes), str(args.database)
    model = Model(args.token_delay)
    async with AsyncExitStack() as stack:
        store = await stack.enter_async_context(shared_store(database))
        openrouter = await stack.enter_async_context(
            LoadOpenRouter(
                latency=args.latency, default_responder=model.respond, record_bodies=False
            )
        )
        slack = await stack.enter_async_context(LoadSlack())
        print(
            f"world (this process): FakeSlack (signed deliveries to each process's port,"
            f" round-robin) and FakeOpenRouter ({args.latency:.2f} s to the first byte, then"
            f" {args.tokens} tokens one a chunk, {args.token_delay * 1000:.0f} ms apart)\n"
            f"database (shared by every bot process): {store.described}\n"
            "connections per aiohttp session in the bot processes: "
            + (
                f"{args.connection_limit} (--connection-limit)"
                if args.connection_limit
                else "aiohttp's default, 100 (the model client's cap on calls in flight)"
            ),
            flush=True,
        )
        settings: JSONDict = {
            **openrouter_settings(openrouter),
            **slack_settings(slack, native=args.native),
            "DATABASE_URL": store.url,
            "BOT_MAX_CONCURRENT_TURNS": args.max_concurrent_turns or args.n,
            "BOT_USER_RATE_LIMIT": args.user_rate_limit,
        }
        if args.pool_size:
            settings["DATABASE_POOL_SIZE"] = args.pool_size
        links = []
        for i in range(processes):
            config = {
                "name": f"bot {i + 1}",
                "model_client": args.model_client,
                "event_loop": args.event_loop,
                "connection_limit": args.connection_limit,
            }
            links.append(await stack.enter_async_context(host_process(config)))
        # Started together, as a process manager starts them (they migrate the database once).
        infos = await asyncio.gather(
            *(
                link.ready({**settings, "BOT_INSTANCE_ID": f"bench-{i + 1}"}, ["slack"])
                for i, link in enumerate(links)
            )
        )
        hosts = [
            Host(f"bot {i + 1}", link, info, [])
            for i, (link, info) in enumerate(zip(links, infos, strict=True))
        ]
        next_idx = 0

        def give(count: int) -> None:
            nonlocal next_idx
            made = [AnswerTurn(next_idx + i, args.tokens) for i in range(count)]
            next_idx += count
            model.add(made)
            for host in hosts:
                host.turns = []
            for i, turn in enumerate(made):
                place(slack, turn, i % args.channels)
                hosts[i % len(hosts)].turns.append(turn)

        give(len(hosts))
        warm = await conversations(slack, openrouter, hosts, store, "warm-up", 60, warm_up=True)
        print(
            "warm-up (one turn per process, cold paths):"
            f" {warm.exact()}/{len(warm.turns)} answered, latency {seconds(warm.latencies_s())}",
            flush=True,
        )
        give(args.n)
        model_s = args.latency + args.tokens * args.token_delay
        burst = await conversations(
            slack, openrouter, hosts, store, "burst", model_s + args.n * 0.5 + 60
        )
        ok, rows, throughput = report(slack, burst, hosts, args)
        await asyncio.gather(*(host.link.done(ok) for host in hosts))
    title = (
        f"instances: {args.n} conversations at once, model latency {args.latency:.2f} s,"
        f" {args.tokens}-token answers one token a chunk {args.token_delay * 1000:.0f} ms apart"
    )
    summary = {
        "title": title,
        "rows": [vars(r) for r in rows],
        "scaling": {"database": database, "processes": processes, "throughput": throughput},
    }
    return ok, summary
