"""What the benchmarks share; it imports no single benchmark.

Process figures (RSS, CPU, event-loop stalls, full GCs) over a measured block, the fake
OpenRouter in a child process or in this one, the settings every benchmark bot gets, report
helpers and the cProfile report.

Nothing platform-specific is imported here (no slack_bolt, slack_sdk, discord.py or adapters):
each benchmark loads only its own platform's libraries, which its RSS figures count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import os
import pstats
import resource
import statistics
import sys
import sysconfig
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bot.settings import Settings
from tests.fakes.openrouter import DEFAULT_API_KEY, FakeOpenRouter

BACKLOG = 4096
"""Listen backlog of the fakes: big enough for a burst of hundreds of connections."""
REPO = Path(__file__).resolve().parent.parent

StatsTable = dict[tuple[str, int, str], tuple[int, int, float, float, Any]]
"""``pstats.Stats(...).stats``: (file, line, function) -> (cc, calls, self, cumulative, callers)."""


# --------------------------------------------------------------------------- process figures


def rss_mb() -> float:
    """Resident set size now (VmRSS), MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (``ru_maxrss``, kB on Linux), MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_cpu_s(pid: int | None) -> float:
    """utime + stime of a running child (``/proc/<pid>/stat``), seconds; 0 without one."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class GcWatch:
    """Full (generation 2) garbage collections and how long each stopped the process."""

    def __init__(self) -> None:
        self.full_ms: list[float] = []
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.full_ms.append((time.perf_counter() - self._started) * 1000)

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        gc.callbacks.append(self._callback)
        try:
            yield
        finally:
            gc.callbacks.remove(self._callback)


class LoopLag:
    """How late a 10 ms ticker wakes up: how long the loop was busy with something else."""

    def __init__(self) -> None:
        self.max_ms = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            due = time.monotonic() + 0.01
            await asyncio.sleep(0.01)
            self.max_ms = max(self.max_ms, (time.monotonic() - due) * 1000)

    def start(self) -> None:
        self.max_ms = 0.0
        self._task = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


@dataclass
class ProcessFigures:
    """What a measured block cost this process (and the fake model's child process)."""

    child_pid: int | None
    cpu_s: float = 0.0
    child_cpu_s: float = 0.0
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    peak_rss_mb: float = 0.0
    loop_lag_ms: float = 0.0
    full_gc_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0


Figures = TypeVar("Figures", bound=ProcessFigures)


@asynccontextmanager
async def measuring(
    figures: Figures, profile: cProfile.Profile | None = None
) -> AsyncIterator[Figures]:
    """Fill ``figures`` over the block: CPU (this process and ``figures.child_pid``), RSS,
    the longest event-loop stall and the full GCs; cProfile the block too when given one."""
    figures.rss_before_mb = rss_mb()
    watch, lag = GcWatch(), LoopLag()
    cpu_before, child_before = cpu_s(), child_cpu_s(figures.child_pid)
    started = time.monotonic()
    with watch.watching():
        lag.start()
        if profile is not None:
            profile.enable()
        try:
            yield figures
        finally:
            if profile is not None:
                profile.disable()
            await lag.stop()
    figures.wall_s = time.monotonic() - started
    figures.cpu_s = cpu_s() - cpu_before
    figures.child_cpu_s = child_cpu_s(figures.child_pid) - child_before
    figures.rss_after_mb, figures.peak_rss_mb = rss_mb(), peak_rss_mb()
    figures.loop_lag_ms, figures.full_gc_ms = lag.max_ms, watch.full_ms


# --------------------------------------------------------------------------- the fake model

# The fake OpenRouter in a child process: "echo: <question>" after LATENCY s, with a backlog big
# enough for the burst; prints its URL, exits when its stdin closes (so never outlives us). With
# CHUNKS DELAY MARK, the answer comes in CHUNKS deltas DELAY s apart, or as a question matching
# the regex MARK says (groups 1 and 2: chunks and delay), so that one child serves several
# shapes; without them, FakeOpenRouter's default responder answers in one chunk.
_CHILD = """
import asyncio, re, sys
from tests.fakes.openrouter import FakeOpenRouter, TextReply, echo_responder, last_user_text

latency, backlog = float(sys.argv[1]), int(sys.argv[2])

class Fake(FakeOpenRouter):
    def _site_options(self):
        return {"backlog": backlog}

responder = echo_responder
if len(sys.argv) > 3:
    chunks, delay, mark = int(sys.argv[3]), float(sys.argv[4]), re.compile(sys.argv[5])

    def responder(body):
        text = last_user_text(body)
        found = mark.search(text)
        shape = (int(found[1]), float(found[2])) if found else (chunks, delay)
        return TextReply("echo: " + text, chunks=shape[0], delay=shape[1])

async def main():
    async with Fake(latency=latency, default_responder=responder, record_bodies=False) as fake:
        print(fake.base_url, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""


@asynccontextmanager
async def openrouter_child(
    latency: float, shape: tuple[int, float, str] | None = None
) -> AsyncIterator[tuple[str, int]]:
    """The fake OpenRouter in a child process: (base_url, pid). ``shape``: (chunks, delay,
    the pattern of a question's mark asking for another shape), see ``_CHILD``."""
    streamed = () if shape is None else (str(shape[0]), str(shape[1]), shape[2])
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CHILD,
        str(latency),
        str(BACKLOG),
        *streamed,
        cwd=REPO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        base_url = line.decode().strip()
        if not base_url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the fake OpenRouter child did not start: {line!r}")
        yield base_url, proc.pid
    finally:
        if proc.stdin is not None:
            proc.stdin.close()  # the child exits when its stdin closes
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()


class InProcessOpenRouter(FakeOpenRouter):
    """The fake OpenRouter in this process, with the burst's backlog."""

    def _site_options(self) -> dict[str, Any]:
        return {"backlog": BACKLOG}


def bot_settings(tmp: Path, openrouter_url: str, platform: dict[str, Any]) -> Settings:
    """The bot's settings: the fake model, a SQLite file in ``tmp``, no weather service,
    LOG_LEVEL=WARNING, and the platform's own values (which win)."""
    values: dict[str, Any] = {
        "OPENROUTER_API_KEY": DEFAULT_API_KEY,
        "OPENROUTER_BASE_URL": openrouter_url,
        "DATABASE_URL": f"sqlite:///{tmp / 'bot.db'}",
        "OPEN_METEO_URL": "http://127.0.0.1:9",
        "OPEN_METEO_GEOCODING_URL": "http://127.0.0.1:9",
        "LOG_LEVEL": "WARNING",
        # The load comes from one simulated user: the per-user limit would answer most of it.
        "BOT_USER_RATE_LIMIT": 0,
        **platform,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def add_model_and_profile_arguments(parser: argparse.ArgumentParser, openrouter_help: str) -> None:
    """``--openrouter``, ``--profile``, ``--top`` and ``--profile-out``."""
    parser.add_argument(
        "--openrouter",
        choices=("subprocess", "in-process"),
        default="subprocess",
        help=openrouter_help,
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the timed runs and print where time goes"
    )
    parser.add_argument("--top", type=int, default=15, help="functions listed from the profile")
    parser.add_argument("--profile-out", metavar="PATH", help="with --profile: save the stats")


# --------------------------------------------------------------------------- report helpers


def percentile(samples: list[float], p: int) -> float:
    """Percentile ``p`` (1..99), inclusive method."""
    return statistics.quantiles(samples, n=100, method="inclusive")[p - 1]


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def dist(samples: list[float], unit: str = "ms", *, p90: bool = True) -> str:
    if not samples:
        return "none"
    if len(samples) < 2:
        return f"{samples[0]:.1f} {unit}"
    line = f"p50 {statistics.median(samples):7.1f} {unit}"
    if p90:
        line += f"  p90 {percentile(samples, 90):7.1f} {unit}"
    return line + f"  p99 {percentile(samples, 99):7.1f} {unit}  max {max(samples):7.1f} {unit}"


def gc_pauses(full_gc_ms: list[float]) -> str:
    return ", ".join(f"{ms:.0f} ms" for ms in full_gc_ms) or "none"


# --------------------------------------------------------------------------- profile


@dataclass(frozen=True)
class ProfileView:
    """How ``print_profile`` groups self time by package, and whose functions it lists."""

    packages: tuple[tuple[str, str], ...]
    """(needle in the file name, group), the first match wins."""
    listed: tuple[str, ...]
    """Needles of the files listed by cumulative time."""
    listed_label: str


def profile_view(*platform: tuple[str, str]) -> ProfileView:
    """The project's, the fakes' and the common libraries' groups, with the platform's
    libraries: (needle, name) pairs such as ``("/discord/", "discord.py")``."""
    packages = (
        (f"{REPO}/tests/fakes/", "fakes (same process)"),
        (f"{REPO}/bench/", "this benchmark"),
        (f"{REPO}/adapters/", "adapters (project)"),
        (f"{REPO}/storage/", "storage (project)"),
        (f"{REPO}/bot/", "bot (project)"),
        *platform,
        ("/litellm/", "litellm"),
        ("/agents/", "agents SDK"),
        ("/openai/", "openai"),
        ("/pydantic", "pydantic"),
        ("/aiohttp/", "aiohttp"),
        ("/yarl/", "yarl / multidict"),
        ("/multidict/", "yarl / multidict"),
        ("/httpx/", "httpx"),
        ("/httpcore/", "httpcore"),
        ("/aiosqlite/", "aiosqlite"),
        ("/tiktoken", "tiktoken"),
        ("/asyncio/", "asyncio"),
        ("/logging/", "logging"),
        ("/json/", "json"),
    )
    listed = (
        *(f"{REPO}/{package}/" for package in ("bot", "adapters", "storage")),
        *(needle for needle, _ in platform),
        *(f"/{package}/" for package in ("aiosqlite", "litellm")),
    )
    names = ", ".join(name for _, name in platform)
    return ProfileView(packages, listed, f"ours, {names}, aiosqlite, litellm")


def _package(view: ProfileView, filename: str, funcname: str) -> str:
    if filename == "~":
        return "idle in epoll" if "poll" in funcname else "builtins / C code"
    for needle, group in view.packages:
        if needle in filename:
            return group
    return "other Python"


def _short(filename: str) -> str:
    for marker in ("site-packages/", f"{REPO}/", f"{sysconfig.get_paths()['stdlib']}/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def print_profile(
    profile: cProfile.Profile,
    view: ProfileView,
    *,
    runs: str,
    turns: int,
    top: int,
    save_to: str | None = None,
) -> None:
    """Self time by package, and the top entries by cumulative time in the files ``view``
    lists (main thread only: aiosqlite's worker is not seen); ``runs`` names what was profiled
    ("the timed runs"). ``save_to``: also dump the stats there."""
    table: StatsTable = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    groups: dict[str, float] = defaultdict(float)
    for (filename, _line, funcname), (_cc, _nc, tottime, _ct, _callers) in table.items():
        groups[_package(view, filename, funcname)] += tottime
    print(f"\ncProfile of {runs} ({turns} turns; cProfile slows everything down):")
    print("  self time by package, ms per turn:")
    for group, seconds in sorted(groups.items(), key=lambda kv: -kv[1]):
        if seconds * 1000 / turns >= 0.01:
            print(f"    {group:<32} {seconds * 1000 / turns:8.2f}")
    print(f"  top {top} by cumulative time ({view.listed_label}):")
    ours = [
        (key, value)
        for key, value in table.items()
        if any(needle in key[0] for needle in view.listed)
    ]
    for (filename, line, funcname), (_cc, ncalls, tottime, cumtime, _c) in sorted(
        ours, key=lambda kv: -kv[1][3]
    )[:top]:
        print(
            f"    cum {cumtime * 1000 / turns:7.2f} ms  self {tottime * 1000 / turns:6.3f} ms"
            f"  calls/turn {ncalls / turns:6.1f}  {_short(filename)}:{line}({funcname})"
        )
    if save_to:
        profile.dump_stats(save_to)
        print(f"  (stats saved to {save_to}: python -m pstats {save_to})")
