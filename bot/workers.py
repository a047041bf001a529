"""``python -m bot --workers N`` (or ``WEB_CONCURRENCY=N``): N bot processes on one port.

The parent only supervises. Each worker is a whole ``python -m bot`` of its own (its store
connection, agent stack and instance id), started as ``python -m bot --workers N --worker K``;
they share ``PORT`` (Slack's HTTP listener, ``/healthz``, ``/metrics``) through
``SO_REUSEPORT``, each binding its own socket while Linux spreads the connections over them.
The parent forwards SIGTERM and SIGINT to the workers and waits for them (each has its own
``BOT_SHUTDOWN_GRACE``; it kills what is left a margin after that), starts a worker that died
again after a pause (``RestartPolicy``), and exits when they all have.

Workers are started with ``asyncio.create_subprocess_exec`` rather than multiprocessing: a
worker is then exactly what ``python -m bot`` runs alone (the same entry point, signal
handling, event loop and exit codes, so a configuration error is the same ``2``), nothing is
pickled or inherited but the environment, and the parent stays small: it imports the settings
and this module, never opens the store or loads the agent stack. multiprocessing's spawn would
re-import the parent's main module in each child and run a resource-tracker process besides.

A worker whose parent is gone (killed with SIGKILL) stops by itself, gently
(``stop_when_orphaned``), instead of serving on the port with no one to restart it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.settings import EXIT_CONFIG, EXIT_RUNTIME, ConfigError, Settings

log = logging.getLogger("bot.workers")

STOP_MARGIN_S = 10.0
"""After a stop is forwarded, how long past ``BOT_SHUTDOWN_GRACE`` the workers may take (to
tell the users whose turns were cut and close the store) before they are killed."""


@dataclass(frozen=True)
class Restart:
    delay_s: float
    failed_starts: int
    """Failed starts in a row of this worker, this exit included (0: it had been running)."""


@dataclass(frozen=True)
class GiveUp:
    exit_code: int
    reason: str


@dataclass(frozen=True)
class RestartPolicy:
    """What the parent does when a worker exits while it is not stopping: a pure decision.

    A configuration error (exit 2) will not mend itself: stop everything with 2. A worker that
    dies within ``startup_s`` of its start failed to start; after ``give_up_after`` such
    failures in a row, stop everything with 1 and let the outer supervisor (systemd, Docker,
    the platform) decide. Otherwise start it again after ``first_delay_s``, doubled at each
    failed start in a row up to ``max_delay_s``.
    """

    startup_s: float = 15.0
    give_up_after: int = 5
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0

    def decide(self, exit_code: int, lived_s: float, failed_starts: int) -> Restart | GiveUp:
        if exit_code == EXIT_CONFIG:
            return GiveUp(EXIT_CONFIG, "a configuration error, which a restart will not mend")
        failed = failed_starts + 1 if lived_s < self.startup_s else 0
        if failed >= self.give_up_after:
            return GiveUp(EXIT_RUNTIME, f"it failed to start {failed} times in a row")
        delay = self.first_delay_s * 2 ** max(failed - 1, 0)
        return Restart(min(delay, self.max_delay_s), failed)


def describe_exit(code: int) -> str:
    """``exited with 1`` / ``was killed by SIGKILL``, for the parent's log lines."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    meaning = {
        0: " (stopped)",
        EXIT_RUNTIME: " (a runtime failure)",
        EXIT_CONFIG: " (configuration)",
    }
    return f"exited with {code}{meaning.get(code, '')}"


class Supervisor:
    """Keeps ``count`` workers running: ``command(k)`` starts worker ``k`` (1..count)."""

    def __init__(
        self,
        count: int,
        command: Callable[[int], Sequence[str]],
        *,
        stop_timeout_s: float,
        policy: RestartPolicy | None = None,
    ) -> None:
        self._count = count
        self._command = command
        self._stop_timeout_s = stop_timeout_s
        self._policy = policy or RestartPolicy()
        self._running: dict[int, asyncio.subprocess.Process] = {}
        self._stopping = asyncio.Event()
        self._stop_signal = signal.SIGTERM
        self._exit_code = 0

    async def run(self) -> int:
        """Until a signal stops the workers, or one gives up; the parent's exit code: 0 when
        a signal stopped every worker by itself, 1 if some had to be killed or failed to
        start, 2 for a worker's configuration error."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._signalled, sig)
        slots = [asyncio.create_task(self._keep(k)) for k in range(1, self._count + 1)]
        try:
            await self._stopping.wait()
            _, late = await asyncio.wait(slots, timeout=self._stop_timeout_s)
            if late:
                for index, process in self._running.items():
                    log.error(
                        "worker %d (pid %d) did not stop within %.0f s; killing it",
                        index,
                        process.pid,
                        self._stop_timeout_s,
                    )
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                self._exit_code = self._exit_code or EXIT_RUNTIME
                await asyncio.wait(late)
            return self._exit_code
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            for slot in slots:
                slot.cancel()

    def _signalled(self, sig: signal.Signals) -> None:
        if self._stopping.is_set():
            log.info("%s: already stopping", sig.name)
            return
        log.info("%s: stopping %d workers", sig.name, len(self._running))
        self._stop(sig)

    def _stop(self, sig: signal.Signals) -> None:
        self._stop_signal = sig
        self._stopping.set()
        for process in self._running.values():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)

    async def _keep(self, index: int) -> None:
        """Run worker ``index``, starting it again when it dies, until the parent stops."""
        failed_starts = 0
        try:
            while not self._stopping.is_set():
                started = time.monotonic()
                process = await asyncio.create_subprocess_exec(*self._command(index))
                self._running[index] = process
                if self._stopping.is_set():  # the signal came while it was being started
                    with contextlib.suppress(ProcessLookupError):
                        process.send_signal(self._stop_signal)
                log.info("worker %d started (pid %d)", index, process.pid)
                code = await process.wait()
                del self._running[index]
                lived = time.monotonic() - started
                if self._stopping.is_set():
                    log.info("worker %d (pid %d) %s", index, process.pid, describe_exit(code))
                    if code not in (0, -self._stop_signal, 128 + self._stop_signal):
                        self._exit_code = self._exit_code or EXIT_RUNTIME
                    return
                verdict = self._policy.decide(code, lived, failed_starts)
                if isinstance(verdict, GiveUp):
                    log.error(
                        "worker %d (pid %d) %s after %.1f s: %s; stopping the other workers "
                        "and exiting with %d",
                        index,
                        process.pid,
                        describe_exit(code),
                        lived,
                        verdict.reason,
                        verdict.exit_code,
                    )
                    self._exit_code = verdict.exit_code
                    self._stop(signal.SIGTERM)
                    return
                failed_starts = verdict.failed_starts
                log.warning(
                    "worker %d (pid %d) %s after %.1f s; starting it again in %.0f s",
                    index,
                    process.pid,
                    describe_exit(code),
                    lived,
                    verdict.delay_s,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), verdict.delay_s)
        except Exception:
            log.exception("worker %d could not be started; stopping the others", index)
            self._exit_code = self._exit_code or EXIT_RUNTIME
            self._stop(signal.SIGTERM)


def worker_command(count: int, index: int) -> list[str]:
    """How the parent starts worker ``index``: this interpreter, ``python -m bot``, told how
    many workers there are (so it binds with ``SO_REUSEPORT``) and which one it is."""
    return [sys.executable, "-m", "bot", "--workers", str(count), "--worker", str(index)]


def as_worker(settings: Settings, index: int) -> Settings:
    """Worker ``index``'s settings: ``BOT_INSTANCE_ID``, when set, becomes ``ID-index`` (the
    workers must not share one); unset, each worker makes up its own."""
    if settings.instance_id is None:
        return settings
    return settings.model_copy(update={"instance_id": f"{settings.instance_id}-{index}"})


def check_workers(settings: Settings) -> None:
    """``ConfigError`` when these settings cannot run ``settings.workers`` processes."""
    if settings.workers == 1:
        return
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ConfigError(
            f"WEB_CONCURRENCY / --workers {settings.workers} needs SO_REUSEPORT, which this "
            "system lacks: run one process per port"
        )
    if settings.port == 0 or settings.ops_port == 0:
        raise ConfigError(
            "PORT=0 would give each worker a port of its own: give a port number with "
            "WEB_CONCURRENCY / --workers"
        )


def supervise(settings: Settings) -> int:
    """The parent of ``settings.workers`` workers, until they have all exited."""
    check_workers(settings)
    count = settings.workers
    supervisor = Supervisor(
        count,
        lambda index: worker_command(count, index),
        stop_timeout_s=settings.shutdown_grace_s + STOP_MARGIN_S,
    )
    log.info("starting %d workers on port %d; Ctrl-C or SIGTERM stops them", count, settings.port)
    # asyncio's own loop: the parent only waits on its children, and need not load uvloop.
    return asyncio.run(supervisor.run())


async def stop_when_orphaned(stop: asyncio.Event, parent: int, every_s: float = 1.0) -> None:
    """In a worker: set ``stop`` once the parent that started it is gone (a parent killed
    with SIGKILL cannot forward a signal), so no worker serves on with no one to supervise
    it. Its turns in flight finish within ``BOT_SHUTDOWN_GRACE``, as on SIGTERM."""
    while os.getppid() == parent:  # noqa: ASYNC110 (no event: the parent is another process)
        await asyncio.sleep(every_s)
    log.warning("the --workers parent (pid %d) is gone; stopping", parent)
    stop.set()
