"""What one measured block cost the bot's process, as the bot process tells the world, and how
every scenario words it. Imported by both processes: nothing here loads the bot or a fake."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bench._shared import gc_pauses

JSONDict = dict[str, Any]


@dataclass
class BlockFigures:
    """A measured block, seen from the bot's process (``bench.load.host``).

    CPU is ``time.process_time()`` of the bot's process over the block: every thread of it
    (the event loop, aiosqlite's worker, ``asyncio.to_thread``), none of the world's. The world
    adds its own CPU (``world_cpu_s``) when the answer comes back."""

    label: str
    cpu_s: float = 0.0
    wall_s: float = 0.0
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    peak_rss_mb: float = 0.0
    lag_measured: bool = True
    lag_max_ms: float = 0.0
    lag_p50_ms: float = 0.0
    lag_p99_ms: float = 0.0
    full_gc_ms: list[float] = field(default_factory=list)
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per platform, how the adapters counted the block's events (answered, failed, ...)."""
    complete: bool = True
    """The adapters ended as many turns as the world said before its deadline."""
    discord_py_retries: int = 0
    """discord.py's "We are being rate limited" (a 429 it slept out and retried)."""
    false_behind: int = 0
    """discord.py's "Can't keep up" warnings (a false alarm against a loopback fake)."""
    peak_running: int = 0
    peak_waiting: int = 0
    peak_tasks: int = 0
    world_cpu_s: float = 0.0
    """The world's own CPU over the block (fakes and traffic), filled in by the world."""

    def to_json(self) -> JSONDict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: JSONDict) -> BlockFigures:
        return cls(**data)

    def outcomes_of(self, platform: str | None = None) -> dict[str, int]:
        """The adapters' outcome counts (one platform's, or all summed), sorted by name."""
        summed: dict[str, int] = {}
        for name, counts in self.outcomes.items():
            if platform is None or name == platform:
                for key, n in counts.items():
                    summed[key] = summed.get(key, 0) + n
        return dict(sorted(summed.items()))

    def cpu_ms(self, per: int) -> float:
        return self.cpu_s * 1000 / max(per, 1)


def process_lines(fig: BlockFigures, turns: int, *, per: str = "turn") -> list[str]:
    """CPU, event loop and memory of the block: the lines every scenario ends a block with."""
    share = 100 * fig.cpu_s / max(fig.wall_s, 1e-9)
    lines = [
        f"  CPU:          the bot's process {fig.cpu_ms(turns):.2f} ms per {per}"
        f" ({fig.cpu_s:.2f} s in {fig.wall_s:.1f} s, {share:.0f}% of a core); the world"
        f" (fakes and traffic, another process) {fig.world_cpu_s * 1000 / max(turns, 1):.2f} ms"
        f" per {per}"
    ]
    if fig.lag_measured:
        lines.append(
            f"  event loop:   longest stall {fig.lag_max_ms:.0f} ms (a 10 ms ticker's lateness:"
            f" p50 {fig.lag_p50_ms:.1f} ms, p99 {fig.lag_p99_ms:.1f} ms); full GCs"
            f" {gc_pauses(fig.full_gc_ms)}"
        )
    else:
        lines.append(
            "  event loop:   not watched in this block (the ticker's CPU would count in it);"
            f" full GCs {gc_pauses(fig.full_gc_ms)}"
        )
    lines.append(
        f"  memory:       RSS {fig.rss_before_mb:.0f} MB before, {fig.rss_after_mb:.0f} MB after"
        f" ({fig.rss_after_mb - fig.rss_before_mb:+.0f} MB); peak RSS of the process (VmHWM)"
        f" {fig.peak_rss_mb:.0f} MB"
    )
    if fig.false_behind:
        lines.append(
            f'    (discord.py warned "Can\'t keep up" {fig.false_behind} time(s): a false alarm'
            " against a loopback fake: its keep-alive thread notes a heartbeat's time only after"
            " the loop sent it, and an instant ACK can come first; not counted as a failure)"
        )
    if not fig.complete:
        lines.append(
            "  (the adapters had not ended every turn when the world stopped waiting: the"
            " figures above cover what ran until then)"
        )
    return lines


@dataclass
class SummaryRow:
    """One figure of a run for the side-by-side table (``--model-client both``)."""

    name: str
    value: str
    target: str = ""
    met: bool | None = None

    def cell(self) -> str:
        if self.met is None:
            return self.value
        return f"{self.value} ({'met' if self.met else 'NOT met'})"
