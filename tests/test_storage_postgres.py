"""What only the PostgreSQL store has: its exact schema, migrations run once under an advisory
lock, URLs that keep their password to themselves, a database that is down at start-up or
mid-run, and ``check``. Its behaviour, shared with SQLite, is tested in ``test_storage.py``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import storage.pg_database as pg_database
from bot.__main__ import _check
from bot.logs import RedactSecrets
from bot.settings import ConfigError, load_settings
from storage import inspect_database, open_store, redact_url, url_password
from storage.history import LOAD_HISTORY_SQL
from storage.migrate import load_migrations
from storage.pg_migrate import load_pg_migrations
from storage.postgres import DatabaseUnavailableError, PostgresStore
from tests.conftest import make_settings
from tests.helpers import append_items, eventually
from tests.pg_cluster import Cluster
from tests.pg_schema import EXPECTED_PG_SCHEMA, SCHEMA_QUERIES
from tests.stores import PG_TEST_POOL_SIZE, PostgresBackend, turn

SECRET = "hunter2-s3cret"


@pytest.fixture
async def postgres(pg_cluster: Cluster) -> AsyncIterator[PostgresBackend]:
    backend = PostgresBackend(pg_cluster)
    await backend.start()
    yield backend
    await backend.close()


def with_password(url: str) -> str:
    """The URL with a password (the test server trusts loopback, so any one is accepted)."""
    return url.replace("postgres@", f"postgres:{SECRET}@", 1)


# --- schema and migrations ----------------------------------------------------------------


async def test_fresh_database_has_exactly_the_expected_schema(postgres: PostgresBackend) -> None:
    store = await postgres.open()
    for name, sql in SCHEMA_QUERIES.items():
        assert await postgres.query(sql) == EXPECTED_PG_SCHEMA[name], name
    assert await postgres.query("SELECT version, name FROM schema_migrations ORDER BY 1") == [
        (m.version, m.name) for m in load_migrations()
    ]
    assert store.migrations_applied == (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)


def test_each_sqlite_migration_has_its_postgresql_twin() -> None:
    """A schema version means the same on both databases, so ``check`` and upgrades agree."""
    assert [(m.version, m.name) for m in load_pg_migrations()] == [
        (m.version, m.name) for m in load_migrations()
    ]


async def test_instances_starting_at_once_migrate_exactly_once(postgres: PostgresBackend) -> None:
    stores = await asyncio.gather(*(postgres.open() for _ in range(6)))
    applied = sorted(store.migrations_applied for store in stores)
    assert applied == [(), (), (), (), (), (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)]
    assert await postgres.query("SELECT COUNT(*) FROM schema_migrations") == [(10,)]
    # The lock is released: nobody holds an advisory lock any more.
    assert await postgres.query("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory'") == [
        (0,)
    ]


async def test_load_history_walks_the_primary_key_backwards(postgres: PostgresBackend) -> None:
    store = await postgres.open()
    await append_items(store, conversation="big", items=turn("q", *["a"] * 3_000))
    await postgres.execute("ANALYZE")
    sql = LOAD_HISTORY_SQL.replace("?", "'big'", 1).replace("?", "50")
    plan = "\n".join(row[0] for row in await postgres.query(f"EXPLAIN {sql}"))
    assert "Index Scan Backward using history_items_pkey on history_items" in plan, plan
    assert "Sort" not in plan, plan


# --- URLs and passwords -------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
async def test_both_schemes_open_a_postgresql_store(postgres: PostgresBackend, scheme: str) -> None:
    url = postgres.url.replace("postgresql://", f"{scheme}://", 1)
    store = await open_store(url, pool_size=2)
    try:
        assert isinstance(store, PostgresStore)
        await store.set_state(key="k", value="v")
        assert await store.get_state(key="k") == "v"
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("url", "shown", "password"),
    [
        ("postgresql://bot:hunter2@db:5432/bot", "postgresql://bot:***@db:5432/bot", "hunter2"),
        ("postgres://bot:p%40ss@db/bot", "postgres://bot:***@db/bot", "p@ss"),
        ("postgresql://bot@db/bot", "postgresql://bot@db/bot", None),
        (
            "postgresql://db/bot?password=x&sslmode=require",
            "postgresql://db/bot?password=***&sslmode=require",
            "x",
        ),
        ("postgresql://u:pw@h1:5432,h2:5433/bot", "postgresql://u:***@h1:5432,h2:5433/bot", "pw"),
        ("postgresql://u:pw@[::1/bot", "postgresql://u:***@[::1/bot", "pw"),
        ("postgresql:///bot?host=/run/postgresql", "postgresql:///bot?host=/run/postgresql", None),
    ],
)  # fmt: skip
def test_redact_url(url: str, shown: str, password: str | None) -> None:
    assert redact_url(url) == shown
    assert url_password(url) == password


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://bot:{SECRET}@[db.internal:5432/bot",
        f"postgresql://bot:{SECRET}@db/bot?bogus=1",
        f"mysql://bot:{SECRET}@db/bot",
    ],
)
def test_a_bad_database_url_is_refused_without_its_password(url: str) -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL is invalid") as info:
        load_settings(_env_file=None, DATABASE_URL=url)
    assert SECRET not in str(info.value)


def test_the_database_password_is_redacted_from_log_lines() -> None:
    settings = load_settings(
        _env_file=None, DATABASE_URL=f"postgresql://bot:{SECRET}@db/bot", DATABASE_POOL_SIZE="3"
    )
    assert settings.database_pool_size == 3
    assert SECRET in settings.secrets
    record = logging.LogRecord("x", logging.ERROR, "", 0, "failed: %s", (SECRET,), None)
    RedactSecrets(settings.secrets).filter(record)
    assert SECRET not in record.getMessage()


# --- a database that is down --------------------------------------------------------------


class Gate:
    """A TCP port in front of the test server that refuses connections until ``open``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.server: asyncio.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", self.port)

    async def close(self) -> None:
        """Stop listening and cut every connection made through the gate."""
        if self.server is not None:
            self.server.close()
        for writer in list(self.links):
            writer.close()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.links.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_a_database_down_at_start_up_is_waited_for_with_backoff(
    postgres: PostgresBackend, caplog: pytest.LogCaptureFixture
) -> None:
    gate = Gate(postgres.cluster.port)
    url = with_password(postgres.url.replace(f":{postgres.cluster.port}/", f":{gate.port}/"))
    caplog.set_level(logging.INFO, "storage")
    opening = asyncio.create_task(PostgresStore.open(url, pool_size=2, delays=[0.05] * 100))
    await eventually(lambda: sum("not reachable" in r.getMessage() for r in caplog.records) >= 3)
    assert not opening.done()
    await gate.open()
    store = await asyncio.wait_for(opening, 10)
    try:
        await store.set_state(key="k", value="v")
        assert store.migrations_applied == (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
    finally:
        await store.close()
        await gate.close()
    lines = [r.getMessage() for r in caplog.records]
    shown = redact_url(url)
    assert f"PostgreSQL at {shown} is not reachable (connection failed:" in lines[0]
    assert lines[0].endswith("retrying in 0.05 s")
    assert f"PostgreSQL at {shown} is reachable" in lines
    assert not any(SECRET in line for line in lines)


async def test_a_database_that_stays_down_fails_without_its_password(
    postgres: PostgresBackend,
) -> None:
    gate = Gate(postgres.cluster.port)  # never opened
    url = with_password(postgres.url.replace(f":{postgres.cluster.port}/", f":{gate.port}/"))
    with pytest.raises(DatabaseUnavailableError, match="is not reachable") as info:
        await PostgresStore.open(url, pool_size=2, delays=[0.01, 0.01])
    assert SECRET not in str(info.value)
    assert "***" in str(info.value)


async def test_mid_run_failures_raise_from_the_call_and_the_pool_recovers(
    postgres: PostgresBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_database, "POOL_TIMEOUT_S", 0.5)
    gate = Gate(postgres.cluster.port)
    await gate.open()
    url = postgres.url.replace(f":{postgres.cluster.port}/", f":{gate.port}/")
    store = await PostgresStore.open(url, pool_size=2, delays=())
    try:
        await store.set_state(key="k", value="before")
        await gate.close()  # the server goes away: every connection cut, none accepted
        with pytest.raises(psycopg.OperationalError):
            await store.get_state(key="k")
        await gate.open()  # back: the pool reconnects, no restart needed
        await asyncio.sleep(0.1)
        value = None
        for _ in range(50):
            with contextlib.suppress(psycopg.OperationalError):
                value = await store.get_state(key="k")
                break
            await asyncio.sleep(0.1)
        assert value == "before"
    finally:
        await store.close()
        await gate.close()


async def test_connections_the_server_dropped_are_replaced_before_use(
    postgres: PostgresBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("storage.pg_database.CHECK_IDLE_S", 0.2)
    store = await postgres.open()
    await store.set_state(key="k", value="v")
    await postgres.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'chatbot' AND pid <> pg_backend_pid()"
    )
    await asyncio.sleep(0.3)  # a restart takes longer than the idle time
    # Each pooled connection idle that long is checked as it is handed out: no call fails.
    for _ in range(10):
        assert await store.get_state(key="k") == "v"


async def test_a_busy_connection_is_not_checked_before_each_use(
    postgres: PostgresBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from psycopg_pool import AsyncConnectionPool

    checks = 0
    check = AsyncConnectionPool.check_connection

    async def counted(conn: Any) -> None:
        nonlocal checks
        checks += 1
        await check(conn)

    monkeypatch.setattr(AsyncConnectionPool, "check_connection", counted)
    store = await postgres.open()
    for _ in range(20):
        await store.get_state(key="k")
    assert checks <= PG_TEST_POOL_SIZE  # each connection once, on its first use, at most
    busy = checks
    monkeypatch.setattr("storage.pg_database.CHECK_IDLE_S", 0.05)
    await asyncio.sleep(0.1)
    await store.get_state(key="k")
    assert checks == busy + 1  # idle for longer: checked


# --- python -m bot check -------------------------------------------------------------------


async def test_check_inspects_postgresql_read_only(postgres: PostgresBackend) -> None:
    url = with_password(postgres.url)
    version = (await postgres.query("SHOW server_version"))[0][0].split()[0]
    assert await inspect_database(url) == (
        f"{redact_url(url)} (PostgreSQL {version}; schema 0; migrated to 10 at the next start)"
    )
    assert not await postgres.has_table("schema_migrations")  # nothing created
    await (await postgres.open()).close()
    assert (await inspect_database(url)).endswith("; schema 10, up to date)")


async def test_check_shows_the_database_without_its_password(
    postgres: PostgresBackend, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    up = make_settings(tmp_path, DATABASE_URL=with_password(postgres.url))
    await _check(up)
    out = capsys.readouterr().out
    assert f"database:  ok: {redact_url(up.database_url)} (PostgreSQL 15." in out
    down = make_settings(
        tmp_path, DATABASE_URL=with_password("postgresql://postgres@127.0.0.1:9/nowhere")
    )
    await _check(down)
    out += capsys.readouterr().out
    assert "database:  PROBLEM: cannot be read (DatabaseCheckError: connection failed:" in out
    assert SECRET not in out
