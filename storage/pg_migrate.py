"""PostgreSQL's schema upgrades: ``storage/migrations_pg``, applied once however many instances
start at the same moment.

Every instance migrates before it serves, as the SQLite store does. Several instances
starting together (a rolling deploy, N replicas) queue on a session advisory lock, so exactly
one applies what is pending and the others find the schema current. The lock goes with the
connection, so an instance that dies while migrating frees it; and the migrations run in one
transaction, so it leaves the schema as it was.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from psycopg import AsyncConnection

from . import migrations_pg as _migrations_package
from .migrate import Migration, apply_pending, load_migrations

log = logging.getLogger(__name__)

MIGRATION_LOCK = 7_301_952_617_011_015
"""The advisory lock key the migration runner holds: any constant, the same in every instance
(and used for nothing else)."""

_SCHEMA_MIGRATIONS_SQL = """\
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL
)"""


def load_pg_migrations() -> list[Migration]:
    """The shipped PostgreSQL migrations; each file runs whole, as one script (so a function
    body with semicolons needs no splitting)."""
    return load_migrations(_migrations_package, split=lambda script: [script])


async def migrate(conn: AsyncConnection[Any]) -> tuple[int, ...]:
    """Apply the pending migrations on ``conn`` (in autocommit mode); returns their versions.

    Raises ``RuntimeError`` for a database that newer code has migrated.
    """
    migrations = await asyncio.to_thread(load_pg_migrations)
    await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        applied = await _apply(conn, migrations)
    finally:
        if not conn.closed:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    for version in applied:
        log.info("applied migration %04d", version)
    return applied


async def _apply(conn: AsyncConnection[Any], migrations: list[Migration]) -> tuple[int, ...]:
    # Every pending migration in ONE transaction: a failure leaves the database as it was.
    await conn.execute(_SCHEMA_MIGRATIONS_SQL)  # (as SQLite's: kept if the migrations fail)
    async with conn.transaction():
        current = await schema_version(conn)
        return await apply_pending(migrations, current, _PostgresRunner(conn))


class _PostgresRunner:
    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self._conn = conn

    async def run(self, statement: str) -> None:
        await self._conn.execute(statement)  # no parameters: a "%" in the SQL is literal

    async def record(self, migration: Migration, applied_at: float) -> None:
        await self._conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
            (migration.version, migration.name, applied_at),
        )


async def schema_version(conn: AsyncConnection[Any]) -> int:
    """The newest migration applied to the database; 0 if none ever was (read-only)."""
    cursor = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    row = await cursor.fetchone()
    if row is None or not row[0]:
        return 0
    cursor = await conn.execute("SELECT MAX(version) FROM schema_migrations")
    row = await cursor.fetchone()
    return int(row[0] or 0) if row else 0
