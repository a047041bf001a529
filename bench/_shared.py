"""What any benchmark may use: process figures, statistics, report wording and cProfile views.

Nothing here belongs to one benchmark, and nothing platform-specific or fake is imported (no
slack_bolt, slack_sdk, discord.py, adapters or tests.fakes): a process that measures the bot
loads only the bot's own libraries, which its RSS figures then count.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import gc
import math
import pstats
import resource
import statistics
import sysconfig
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parent.parent

StatsTable = dict[tuple[str, int, str], tuple[int, int, float, float, Any]]
"""``pstats.Stats(...).stats``: (file, line, function) -> (cc, calls, self, cumulative, callers)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on now (for a server a bench or test starts)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- process figures


def _status_mb(field: str) -> float:
    """A ``/proc/self/status`` memory field (kB), MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return math.nan


def rss_mb() -> float:
    """Resident set size now (VmRSS), MB."""
    return _status_mb("VmRSS:")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (VmHWM; ``ru_maxrss`` lags it), MB."""
    peak = _status_mb("VmHWM:")
    return peak if peak == peak else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s() -> float:
    """CPU time of this process, all its threads (user + system), seconds."""
    return time.process_time()


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
    """How late a 10 ms ticker wakes up: how long the loop was busy with something else.

    Each tick costs the loop a little CPU (a wake-up every 10 ms): blocks whose CPU is the
    figure (one answer's cost) are measured without it."""

    TICK_S = 0.01

    def __init__(self) -> None:
        self.samples_ms: list[float] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def max_ms(self) -> float:
        return max(self.samples_ms, default=0.0)

    def p(self, q: float) -> float:
        return percentile(self.samples_ms, q) if self.samples_ms else 0.0

    async def _tick(self) -> None:
        while True:
            due = time.monotonic() + self.TICK_S
            await asyncio.sleep(self.TICK_S)
            self.samples_ms.append((time.monotonic() - due) * 1000)

    def start(self) -> None:
        self.samples_ms = []
        self._task = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


@dataclass
class ProcessFigures:
    """What a measured block cost this process."""

    cpu_s: float = 0.0
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    peak_rss_mb: float = 0.0
    lag_measured: bool = True
    loop_lag_ms: float = 0.0
    """The longest event-loop stall."""
    lag_p50_ms: float = 0.0
    lag_p99_ms: float = 0.0
    full_gc_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0


Figures = TypeVar("Figures", bound=ProcessFigures)


@asynccontextmanager
async def measuring(
    figures: Figures, profile: cProfile.Profile | None = None, *, lag: bool = True
) -> AsyncIterator[Figures]:
    """Fill ``figures`` over the block: this process's CPU, RSS, event-loop stalls (unless
    ``lag`` is False) and full GCs; cProfile the block too when given a profile."""
    figures.rss_before_mb = rss_mb()
    watch, ticker = GcWatch(), LoopLag()
    cpu_before = cpu_s()
    started = time.monotonic()
    with watch.watching():
        if lag:
            ticker.start()
        if profile is not None:
            profile.enable()
        try:
            yield figures
        finally:
            if profile is not None:
                profile.disable()
            await ticker.stop()
    figures.wall_s = time.monotonic() - started
    figures.cpu_s = cpu_s() - cpu_before
    figures.rss_after_mb, figures.peak_rss_mb = rss_mb(), peak_rss_mb()
    figures.lag_measured = lag
    figures.loop_lag_ms, figures.lag_p50_ms, figures.lag_p99_ms = (
        ticker.max_ms,
        ticker.p(50),
        ticker.p(99),
    )
    figures.full_gc_ms = watch.full_ms


# --------------------------------------------------------------------------- statistics


def percentile(samples: Sequence[float], p: float) -> float:
    """Percentile ``p`` (0 < p < 100, tenths allowed), inclusive method; nan without samples."""
    if not samples:
        return math.nan
    if len(samples) == 1:
        return float(samples[0])
    return statistics.quantiles(samples, n=1000, method="inclusive")[round(p * 10) - 1]


def dist(
    samples: Sequence[float],
    unit: str = "ms",
    *,
    ps: Sequence[float] = (50, 90, 99),
    count: bool = False,
) -> str:
    """``p50 ... p90 ... p99 ... max ...`` of the samples (the percentiles ``ps``)."""
    if not samples:
        return "none"
    if len(samples) < 2:
        return f"{samples[0]:.1f} {unit}"
    parts = [f"p{p:g} {percentile(samples, p):7.1f} {unit}" for p in ps]
    parts.append(f"max {max(samples):7.1f} {unit}")
    return "  ".join(parts) + (f"  (n={len(samples)})" if count else "")


def gc_pauses(full_gc_ms: Sequence[float]) -> str:
    return ", ".join(f"{ms:.0f} ms" for ms in full_gc_ms) or "none"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


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
    turns = max(turns, 1)
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
