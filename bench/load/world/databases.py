"""The database the bot processes of ``instances`` share, and the CPU figures around them:
a SQLite file in a temporary folder, or a throwaway PostgreSQL server (``tests.pg_cluster``:
the machine's PostgreSQL 15 binaries, run as an unprivileged user when this runs as root),
whose processes' CPU is read from ``/proc``; and how busy the whole machine was."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Store:
    """The database every bot process shares."""

    url: str
    described: str
    server_pid: int | None = None
    """PostgreSQL's postmaster (its backends are its children)."""

    def server_cpu_s(self) -> float:
        """CPU the database server used so far: the postmaster, its children living and
        reaped (0 for SQLite, whose work is done in the bot processes)."""
        if self.server_pid is None:
            return 0.0
        ticks = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            if int(entry.name) == self.server_pid:
                ticks += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
            elif int(fields[1]) == self.server_pid:
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds every core of the machine has been busy since boot (``/proc/stat``), by
    anyone: this bench's processes and whatever else runs."""
    with open("/proc/stat") as stat:
        fields = [int(f) for f in stat.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@asynccontextmanager
async def shared_store(kind: str) -> AsyncIterator[Store]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-instances-") as tmp:
            path = Path(tmp) / "bot.db"
            yield Store(f"sqlite:///{path}", f"SQLite file {path} (WAL, synchronous=NORMAL)")
        return
    from tests.pg_cluster import SERVER_OPTIONS, SUPERUSER, start_cluster

    try:
        cluster = await asyncio.to_thread(start_cluster)
    except BaseException as exc:  # pytest's skip and fail outcomes are BaseExceptions
        if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
            raise
        raise RuntimeError(f"no PostgreSQL server: {exc}") from None
    try:
        socket_dir, port = str(cluster.folder), str(cluster.port)
        made = cluster.run("createdb", "-h", socket_dir, "-p", port, "-U", SUPERUSER, "bench")
        if made.returncode != 0:
            raise RuntimeError(f"createdb failed: {made.stderr or made.stdout}")
        version = cluster.run("postgres", "--version").stdout.strip()
        pid = int((cluster.data / "postmaster.pid").read_text().split()[0])
        yield Store(
            cluster.url("bench"),
            f"{version} on 127.0.0.1:{port}, data in {cluster.folder} ({SERVER_OPTIONS.strip()})",
            pid,
        )
    finally:
        await asyncio.to_thread(cluster.stop)
