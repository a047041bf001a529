"""Slack under a burst: N @mentions in N threads at once, through HTTP mode, with a 1 s model.

The real ``adapters.slack.SlackAdapter`` (slack_bolt ``AsyncApp`` + slack_sdk ``AsyncWebClient``)
in HTTP mode over the real core (``open_services`` + ``build_core``, a SQLite file in a temporary
directory, LOG_LEVEL=WARNING, BOT_MAX_CONCURRENT_TURNS=N so the core does not queue them):

- FakeSlack runs in this process (its recorded Web API calls are the measurements) and delivers
  N signed ``app_mention`` events to the adapter's ``POST /slack/events``, all at once
  (``asyncio.gather``): N distinct top-level messages, each its own thread, spread over
  ``--channels`` channel ids. ``--twins`` also delivers the ``message`` twin Slack sends with
  every mention in a channel the app reads, so the exactly-once claim is exercised under load;
- FakeOpenRouter answers every request after ``--latency`` seconds ("echo: <question>"), by
  default in a child process (pure load, so its CPU is not counted here); ``--openrouter
  in-process`` keeps it in this process instead.

One warm-up turn goes first (cold imports, bolt's first ``auth.test``) and is reported apart.
Then, per run of N turns:

- all answered: from the first delivery until the last thread's final chat call (stopStream or
  postMessage) reached the fake, with every thread's final call answered ok, its text the
  expected answer and the adapter's ``outcomes["answered"]`` up by N; and the acks (HTTP 200,
  how fast);
- duplicates: threads with more than one bot message, and ``outcomes["duplicate"]``;
- the bot's own overhead per turn: final chat call received by the fake, minus that event's
  delivery start, minus the model latency (p50 / p99 / max);
- memory (RSS before and after, peak RSS of the process), CPU per turn, Web API calls per turn.

    python -m bench.slack_concurrency [--n 500] [--latency 1.0] [--runs 1] [--no-native]

Targets: 500 answered within 2.0 s, no duplicates, overhead p50 <= 10 ms and p99 <= 30 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.settings import Settings, prepare_library_environment

prepare_library_environment()

from agents import set_tracing_disabled  # noqa: E402

from adapters.slack import SlackAdapter  # noqa: E402
from bench import _shared  # noqa: E402
from bench._shared import ProcessFigures, dist, gc_pauses, percentile, verdict  # noqa: E402
from bot.logs import setup_logging  # noqa: E402
from bot.wiring import build_core, open_services  # noqa: E402
from tests.fakes.slack import (  # noqa: E402
    BOT_USER_ID,
    ApiCall,
    FakeSlack,
    app_mention,
    message_event,
)

TARGET_N = 500
TARGET_ALL_S = 2.0
TARGET_P50_MS = 10.0
TARGET_P99_MS = 30.0
SECRET = "bench-slack-signing-secret-0123456789"


class BenchSlack(FakeSlack):
    """FakeSlack that is not the bottleneck of a burst: a listen backlog for hundreds of
    connections, and deliveries over a session without aiohttp's 100-connection cap (Slack
    delivers from many hosts at once)."""

    def _site_options(self) -> dict[str, Any]:
        return {"backlog": _shared.BACKLOG}

    async def _on_started(self) -> None:
        import aiohttp

        await super()._on_started()
        if self._session is not None:
            await self._session.close()
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=60),
            connector=aiohttp.TCPConnector(limit=0),
        )


# --------------------------------------------------------------------------- one burst


@dataclass
class Thread:
    """One mention, its thread, and what the fake saw for it."""

    channel: str
    ts: str
    expected: str
    event: dict[str, Any]
    started: float = 0.0
    calls: list[ApiCall] = field(default_factory=list)

    @property
    def final(self) -> ApiCall | None:
        """The last ``chat.*`` call for this thread (the one that completes the answer)."""
        for call in reversed(self.calls):
            if call.method.startswith("chat."):
                return call
        return None


@dataclass
class Ack:
    status: int
    seconds: float


@dataclass
class Burst:
    n: int
    latency: float
    threads: list[Thread]
    acks: list[Ack]
    calls: list[ApiCall]
    outcomes: Counter[str]
    first_delivery: float
    waited_s: float
    complete: bool
    """The adapter counted every turn as ended (answered or failed) before the deadline."""
    res: ProcessFigures
    duplicate_threads: int = 0
    wrong_text: int = 0
    streams_open: int = 0

    # ---- derived

    def answered(self) -> list[Thread]:
        return [t for t in self.threads if t.final is not None and t.final.ok]

    def all_answered_s(self) -> float | None:
        answered = self.answered()
        if len(answered) < self.n or self.outcomes["answered"] < self.n or self.wrong_text:
            return None
        return max(t.final.at for t in answered if t.final) - self.first_delivery

    def overhead_ms(self) -> list[float]:
        return [
            (t.final.at - t.started - self.latency) * 1000
            for t in self.threads
            if t.final is not None and t.final.ok
        ]


def channel_ids(count: int) -> list[str]:
    return [f"CBENCH{i:03d}" for i in range(count)]


def make_threads(n: int, channels: list[str], tag: str) -> list[Thread]:
    threads = []
    for i in range(n):
        question = f"question {tag}-{i}"
        channel = channels[i % len(channels)]
        event = app_mention(f"<@{BOT_USER_ID}> {question}", channel=channel)
        threads.append(Thread(channel, str(event["ts"]), f"echo: {question}", event))
    return threads


def assign_calls(threads: list[Thread], calls: list[ApiCall]) -> None:
    """Give every Web API call to its thread: by ``thread_ts``, or by the ``ts`` of a message
    a thread's earlier call created (appendStream, stopStream, update)."""
    by_key = {(t.channel, t.ts): t for t in threads}
    message_thread: dict[tuple[str, str], Thread] = {}
    for call in calls:
        channel = str(call.params.get("channel") or call.params.get("channel_id") or "")
        thread_ts = call.params.get("thread_ts")
        if thread_ts:
            thread = by_key.get((channel, str(thread_ts)))
            if thread is not None and call.ok and "ts" in call.response:
                message_thread[(channel, str(call.response["ts"]))] = thread
        else:
            thread = message_thread.get((channel, str(call.params.get("ts") or "")))
        if thread is not None:
            thread.calls.append(call)


async def deliver(
    slack: FakeSlack, url: str, event: dict[str, Any], thread: Thread | None, acks: list[Ack]
) -> None:
    started = time.monotonic()
    if thread is not None:
        thread.started = started
    status, _ = await slack.deliver_event(url, SECRET, event)
    acks.append(Ack(status, time.monotonic() - started))


@dataclass
class Rig:
    slack: FakeSlack
    adapter: SlackAdapter
    latency: float
    channels: list[str]
    twins: bool
    child_pid: int | None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.adapter.port}/slack/events"


async def burst(rig: Rig, n: int, tag: str, *, timeout_s: float) -> Burst:
    """Deliver N mentions at once; wait until the adapter has ended all N turns; measure."""
    slack, outcomes = rig.slack, rig.adapter.outcomes
    threads = make_threads(n, rig.channels, tag)
    deliveries: list[tuple[dict[str, Any], Thread | None]] = []
    for thread in threads:
        deliveries.append((thread.event, thread))
        if rig.twins:
            twin = message_event(thread.event["text"], channel=thread.channel, ts=thread.ts)
            deliveries.append((twin, None))
    calls_before = len(slack.api_calls)
    before = Counter(outcomes)
    acks: list[Ack] = []

    async with _shared.measuring(ProcessFigures(rig.child_pid)) as res:
        first = time.monotonic()
        await asyncio.gather(*(deliver(slack, rig.url, e, t, acks) for e, t in deliveries))
        deadline = first + timeout_s
        expected_duplicates = n if rig.twins else 0
        while time.monotonic() < deadline:
            ended = (outcomes["answered"] - before["answered"]) + (
                outcomes["failed"] - before["failed"]
            )
            duplicates = outcomes["duplicate"] - before["duplicate"]
            if ended >= n and duplicates >= expected_duplicates:
                break
            await asyncio.sleep(0.02)
        waited = time.monotonic() - first

    delta = Counter({k: outcomes[k] - before[k] for k in outcomes if outcomes[k] != before[k]})
    ended_all = delta["answered"] + delta["failed"] >= n
    calls = slack.api_calls[calls_before:]
    assign_calls(threads, calls)
    result = Burst(
        n=n,
        latency=rig.latency,
        threads=threads,
        acks=acks,
        calls=calls,
        outcomes=delta,
        first_delivery=first,
        waited_s=waited,
        complete=ended_all,
        res=res,
    )
    check_threads(slack, result)
    return result


def check_threads(slack: FakeSlack, result: Burst) -> None:
    """Bot messages per thread (duplicates), the answer's text, streams left open."""
    ours = {(t.channel, t.ts): t for t in result.threads}
    per_thread: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for channel in {t.channel for t in result.threads}:
        for message in slack.bot_messages(channel):
            key = (channel, str(message.get("thread_ts") or ""))
            if key in ours:
                per_thread[key].append(message)
        for stream in slack.streams(channel):
            if (channel, stream.thread_ts or "") in ours and stream.state != "completed":
                result.streams_open += 1
    for key, thread in ours.items():
        messages = per_thread.get(key, [])
        if len(messages) > 1:
            result.duplicate_threads += 1
        if "\n".join(str(m.get("text") or "") for m in messages) != thread.expected:
            result.wrong_text += 1


# --------------------------------------------------------------------------- report


def report_warmup(result: Burst) -> None:
    thread = result.threads[0]
    final = thread.final
    ack = result.acks[0] if result.acks else None
    if final is None or not final.ok:
        print(f"warm-up turn: NOT answered (outcomes {dict(result.outcomes)})")
        return
    print(
        f"warm-up turn (cold: first auth.test, first model call): answered"
        f" {(final.at - thread.started) * 1000:.0f} ms after delivery"
        f" (overhead {(final.at - thread.started - result.latency) * 1000:.1f} ms beyond the"
        f" model's {result.latency:.2f} s), ack {ack.seconds * 1000 if ack else 0:.1f} ms"
        f" (HTTP {ack.status if ack else '-'}), {len(result.calls)} Web API calls"
        f" ({', '.join(f'{m} {c}' for m, c in Counter(c.method for c in result.calls).items())})"
    )


def report(result: Burst, label: str) -> dict[str, float]:
    n = result.n
    answered = result.answered()
    all_s = result.all_answered_s()
    acks_ok = sum(1 for a in result.acks if a.status == 200)
    ack_ms = [a.seconds * 1000 for a in result.acks]
    overhead = result.overhead_ms()
    duplicates = result.outcomes["duplicate"]
    channels = len({t.channel for t in result.threads})
    print(f"\n{label}: {n} mentions in {n} threads over {channels} channels")
    all_text = f"{all_s:.3f} s" if all_s is not None else "NOT all answered"
    print(
        f"  all answered:        {all_text:<22} target <= {TARGET_ALL_S} s for {TARGET_N}:"
        f" {verdict(all_s is not None and all_s <= TARGET_ALL_S and n >= TARGET_N)}"
        + ("" if n >= TARGET_N else f" (N={n} < {TARGET_N}: not the target's load)")
    )
    print(
        f"    threads whose final chat call was answered ok: {len(answered)}/{n};"
        f" outcomes {dict(sorted(result.outcomes.items()))}; wrong or missing text:"
        f" {result.wrong_text}; native streams left open: {result.streams_open}"
        + ("" if result.complete else f"; gave up waiting after {result.waited_s:.1f} s")
    )
    print(
        f"  acks:                {acks_ok}/{len(result.acks)} HTTP 200;"
        f" ack time {dist(ack_ms, p90=False)}"
    )
    dup_ok = result.duplicate_threads == 0
    twins = f" (the {n} message twins claimed away)" if duplicates else ""
    print(
        f"  duplicates:          {result.duplicate_threads} threads with more than one bot"
        f" message; outcomes['duplicate'] = {duplicates}{twins}   target 0: {verdict(dup_ok)}"
    )
    if overhead:
        p50 = statistics.median(overhead)
        p99 = percentile(overhead, 99) if len(overhead) > 1 else overhead[0]
        print(
            f"  overhead per turn:   {dist(overhead, p90=False)}"
            f"   targets p50 <= {TARGET_P50_MS:.0f} ms: {verdict(p50 <= TARGET_P50_MS)},"
            f" p99 <= {TARGET_P99_MS:.0f} ms: {verdict(p99 <= TARGET_P99_MS)}"
        )
        print(
            "    (final chat call received by the fake - delivery start - model latency"
            f" {result.latency:.2f} s)"
        )
        starts = [t.started for t in result.threads]
        finals = [t.final.at for t in answered if t.final is not None]
        print(
            f"    deliveries started over {(max(starts) - min(starts)) * 1000:.1f} ms; first"
            f" answer {min(finals) - result.first_delivery:.3f} s, median"
            f" {statistics.median(finals) - result.first_delivery:.3f} s after the first delivery"
        )
    else:
        p50 = p99 = float("nan")
    by_method = Counter(c.method for c in result.calls)
    not_ok = sum(1 for c in result.calls if not c.ok)
    print(
        f"  Web API calls:       {len(result.calls) / n:.2f} per turn ({len(result.calls)} in all,"
        f" {not_ok} not ok): " + ", ".join(f"{m} {c / n:.2f}" for m, c in sorted(by_method.items()))
    )
    res = result.res
    child = ""
    if res.child_cpu_s:
        child = f"; fake OpenRouter child {res.child_cpu_s * 1000 / n:.2f} ms"
    print(
        f"  CPU:                 this process (all threads) {res.cpu_s * 1000 / n:.2f} ms per"
        f" turn ({res.cpu_s:.2f} s){child}; longest event-loop stall"
        f" {res.loop_lag_ms:.0f} ms; full GCs {gc_pauses(res.full_gc_ms)}"
    )
    print(
        f"  memory:              RSS {res.rss_before_mb:.0f} MB before,"
        f" {res.rss_after_mb:.0f} MB after"
        f" (+{res.rss_after_mb - res.rss_before_mb:.0f} MB);"
        f" peak RSS of the process (ru_maxrss) {res.peak_rss_mb:.0f} MB"
    )
    return {
        "all_s": all_s if all_s is not None else float("nan"),
        "p50": p50,
        "p99": p99,
        "max": max(overhead) if overhead else float("nan"),
        "ack_max": max(ack_ms) if ack_ms else float("nan"),
        "dups": float(result.duplicate_threads),
    }


# --------------------------------------------------------------------------- profile

PROFILE_VIEW = _shared.profile_view(("/slack_bolt/", "slack_bolt"), ("/slack_sdk/", "slack_sdk"))


# --------------------------------------------------------------------------- set-up


def bench_settings(
    tmp: Path, openrouter_url: str, slack: FakeSlack, args: argparse.Namespace
) -> Settings:
    platform: dict[str, Any] = {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_APP_TOKEN": None,  # HTTP mode, whatever the environment says
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.api_url,
        "SLACK_NATIVE_STREAMING": args.native,
        "BOT_MAX_CONCURRENT_TURNS": args.max_concurrent_turns or args.n,
        "PORT": 0,
    }
    return _shared.bot_settings(tmp, openrouter_url, platform)


async def run(args: argparse.Namespace) -> None:
    set_tracing_disabled(True)
    async with AsyncExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-slack-")))
        child_pid: int | None = None
        if args.openrouter == "subprocess":
            base_url, child_pid = await stack.enter_async_context(
                _shared.openrouter_child(args.latency)
            )
        else:
            fake = _shared.InProcessOpenRouter(latency=args.latency, record_bodies=False)
            base_url = (await stack.enter_async_context(fake)).base_url
        slack = await stack.enter_async_context(BenchSlack())
        settings = bench_settings(tmp, base_url, slack, args)
        setup_logging(settings.log_level, settings.secrets)
        services = await stack.enter_async_context(open_services(settings))
        core = await build_core(services)
        stack.push_async_callback(core.close)
        adapter = SlackAdapter(core, settings)
        await adapter.start()
        stack.push_async_callback(adapter.close)
        rig = Rig(slack, adapter, args.latency, channel_ids(args.channels), args.twins, child_pid)

        where = (
            f"a child process ({base_url})"
            if child_pid is not None
            else f"THIS process ({base_url})"
        )
        print(
            f"Slack adapter in HTTP mode on :{adapter.port}, model {settings.bot_model}"
            f" answering after {args.latency:.2f} s; native streaming"
            f" {'on' if settings.slack_native_streaming else 'off'}, SLACK_STREAM_INTERVAL"
            f" {settings.slack_stream_interval_s} s, BOT_MAX_CONCURRENT_TURNS"
            f" {settings.max_concurrent_turns}, LOG_LEVEL {settings.log_level}, SQLite in {tmp};"
            f" Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
        )
        print(
            "FakeSlack (Web API, event delivery) runs in THIS process and event loop: its CPU is"
            f" counted in every figure below. FakeOpenRouter runs in {where}."
        )

        timeout_s = args.latency + max(60.0, args.n * 0.2)
        report_warmup(await burst(rig, 1, "warmup", timeout_s=timeout_s))
        gc.collect()
        summaries = []
        profile = cProfile.Profile() if args.profile else None
        for i in range(args.runs):
            if profile is not None:
                profile.enable()
            result = await burst(rig, args.n, f"r{i}", timeout_s=timeout_s)
            if profile is not None:
                profile.disable()
            label = f"run {i + 1}/{args.runs}" + (" (with message twins)" if args.twins else "")
            summaries.append(report(result, label))
            del result
            gc.collect()
        if profile is not None:
            _shared.print_profile(
                profile,
                PROFILE_VIEW,
                runs="the timed runs",
                turns=args.n * args.runs,
                top=args.top,
                save_to=args.profile_out,
            )
        if len(summaries) > 1:
            print(f"\nmedians over {len(summaries)} runs:")
            for key, name, unit in (
                ("all_s", "all answered", "s"),
                ("p50", "overhead p50", "ms"),
                ("p99", "overhead p99", "ms"),
                ("max", "overhead max", "ms"),
                ("ack_max", "max ack", "ms"),
                ("dups", "duplicate threads", ""),
            ):
                values = [s[key] for s in summaries]
                print(
                    f"  {name:<18} {statistics.median(values):8.3f} {unit}"
                    f"  (runs: {', '.join(f'{v:.3f}' for v in values)})"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="concurrent mentions per run")
    parser.add_argument("--latency", type=float, default=1.0, help="model latency, seconds")
    parser.add_argument("--runs", type=int, default=1, help="bursts of N, one after another")
    parser.add_argument("--channels", type=int, default=20, help="channel ids the threads use")
    parser.add_argument(
        "--native",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="SLACK_NATIVE_STREAMING (chat.startStream/stopStream) or post-and-update",
    )
    parser.add_argument(
        "--max-concurrent-turns",
        type=int,
        default=0,
        metavar="K",
        help="BOT_MAX_CONCURRENT_TURNS (default: N, so that the core does not queue the burst)",
    )
    parser.add_argument(
        "--twins", action="store_true", help="also deliver each mention's message twin"
    )
    _shared.add_model_and_profile_arguments(parser, "where the fake OpenRouter runs")
    args = parser.parse_args()
    if args.n < 2 or args.runs < 1 or args.channels < 1 or args.latency < 0:
        parser.error("--n must be at least 2, --runs and --channels at least 1, --latency >= 0")
    if args.max_concurrent_turns < 0:
        parser.error("--max-concurrent-turns must be positive")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
