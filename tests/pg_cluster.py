"""A throwaway PostgreSQL server for the test session, from the machine's own binaries.

``start_cluster`` runs ``initdb`` into a new folder under the system temp dir and starts
``postgres`` on 127.0.0.1 at a free port, with its unix socket in that folder too, tuned for
tests (no fsync). ``initdb`` refuses to run as root, and tests (and CI) do run as root: then
the server runs as the unprivileged system user ``pgtest``, created on first use (``useradd``)
and switched to with ``runuser``. It takes about a second. Each test gets a database of its
own, copied from a migrated template (``CREATE DATABASE ... TEMPLATE``: ~50 ms).

Without the binaries the PostgreSQL tests are skipped with the reason, except in CI (``CI`` is
set), where that fails them: CI installs the binaries (``.ci/run``), so missing ones are a bug.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench._shared import free_port

RUN_AS = "pgtest"
"""The user the server runs as when the tests run as root."""
SUPERUSER = "postgres"
SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
    " -c full_page_writes=off -c max_connections=300 -c shared_buffers=32MB"
)


def find_bindir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are: ``pg_config --bindir``, else the newest
    ``/usr/lib/postgresql/*/bin`` (Debian does not put them on the PATH)."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    versions.sort(key=lambda path: int(Path(path).parent.name.split(".")[0]), reverse=True)
    candidates += [Path(path) for path in versions]
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


def _scratch() -> str | None:
    """Where the cluster lives: memory (``/dev/shm``) where there is room, as nothing in it
    outlives the session and ``CREATE DATABASE`` copies files; else the temp dir."""
    shm = Path("/dev/shm")
    try:
        if shm.is_dir() and shutil.disk_usage(shm).free > 1 << 30 and os.access(shm, os.W_OK):
            return str(shm)
    except OSError:
        pass
    return None


def _ensure_user(name: str) -> None:
    if subprocess.run(["id", "-u", name], capture_output=True, check=False).returncode == 0:
        return
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )


@dataclass
class Cluster:
    bindir: Path
    folder: Path
    port: int
    as_root: bool

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        auth = f"{SUPERUSER}:{password}" if password else SUPERUSER
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", RUN_AS, "--", *command]
        return subprocess.run(
            command, cwd=self.folder, capture_output=True, text=True, check=False, timeout=120
        )

    def stop(self) -> None:
        self.run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")
        shutil.rmtree(self.folder, ignore_errors=True)


def start_cluster() -> Cluster:
    """initdb and start a server; ``pytest.skip`` (outside CI) or ``pytest.fail`` (in CI) if
    the machine has no PostgreSQL binaries."""
    bindir = find_bindir()
    if bindir is None:
        reason = (
            "PostgreSQL binaries (initdb, pg_ctl) not found via pg_config or in "
            "/usr/lib/postgresql/*/bin: install Debian's postgresql package"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI must run the PostgreSQL tests; .ci/run installs it)")
        pytest.skip(reason)
    as_root = os.geteuid() == 0
    folder = Path(tempfile.mkdtemp(prefix="bot-pg-", dir=_scratch()))
    if as_root:
        _ensure_user(RUN_AS)
        shutil.chown(folder, user=RUN_AS)
    cluster = Cluster(bindir=bindir, folder=folder, port=free_port(), as_root=as_root)
    init = cluster.run(
        "initdb", "-D", str(cluster.data), "-U", SUPERUSER, "-A", "trust",
        "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions",
    )  # fmt: skip
    if init.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"initdb failed: {init.stderr or init.stdout}")
    options = f"-p {cluster.port} -k {folder} {SERVER_OPTIONS}"
    start = cluster.run(
        "pg_ctl", "start", "-D", str(cluster.data), "-l", str(folder / "server.log"),
        "-w", "-t", "60", "-o", options,
    )  # fmt: skip
    if start.returncode != 0:
        log = (folder / "server.log").read_text(errors="replace")
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {start.stderr or start.stdout}\n{log}")
    return cluster
