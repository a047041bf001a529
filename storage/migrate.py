"""The schema's upgrades: numbered SQL files in ``storage/migrations``, recorded in a table.

(PostgreSQL's twins are in ``storage/migrations_pg``, applied by ``storage.pg_migrate``.)

``SQLiteStore.open`` runs ``migrate`` before anything else touches the database; each version is
applied once, in order, and every pending one in a single transaction.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from types import ModuleType
from typing import Protocol

import aiosqlite

from . import migrations as _migrations_package
from .database import Database

log = logging.getLogger(__name__)

_SCHEMA_MIGRATIONS_SQL = """\
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at REAL NOT NULL
) STRICT"""

_MIGRATION_FILE = re.compile(r"(\d{4})_(\w+)\.sql")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def load_migrations(
    package: ModuleType = _migrations_package,
    split: Callable[[str], list[str]] | None = None,
) -> list[Migration]:
    """The migrations shipped in ``package`` (SQLite's ``storage/migrations`` by default),
    checked to be numbered 1, 2, 3, ... Each file is cut into statements by ``split``
    (``split_statements`` by default)."""
    split = split or split_statements
    found: list[Migration] = []
    for entry in resources.files(package).iterdir():
        match = _MIGRATION_FILE.fullmatch(entry.name)
        if match is None:
            continue
        statements = split(entry.read_text(encoding="utf-8"))
        found.append(Migration(int(match[1]), match[2], tuple(statements)))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 0001, 0002, ... without gaps: {versions}")
    return found


def split_statements(script: str) -> list[str]:
    """Split a SQL script into statements, keeping semicolons inside strings and triggers.

    ``executescript`` would do this for us, but on Python 3.11 it first COMMITs any open
    transaction, so a migration could not run inside ours.
    """
    statements: list[str] = []
    start = 0
    for end in (index + 1 for index, char in enumerate(script) if char == ";"):
        candidate = script[start:end]
        if sqlite3.complete_statement(candidate):
            if _without_comments(candidate).strip() != ";":
                statements.append(candidate.strip())
            start = end
    if _without_comments(script[start:]).strip():
        raise ValueError(f"SQL script ends with an incomplete statement: {script[start:]!r}")
    return statements


def _without_comments(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))


async def migrate(db: Database) -> tuple[int, ...]:
    """Apply the pending migrations; returns their versions (empty if the schema was current).

    Raises ``RuntimeError`` for a database that newer code has migrated.
    """
    migrations = await asyncio.to_thread(load_migrations)
    async with db.transaction():
        await db.execute(_SCHEMA_MIGRATIONS_SQL)
    # Every pending migration in ONE transaction, with the "already applied?" check inside
    # it: two processes opening the same file at once cannot both apply (or split) the
    # upgrade, and a failure leaves the database exactly as it was.
    async with db.transaction():
        current = await schema_version(db.conn)
        applied = await apply_pending(migrations, current, _SQLiteRunner(db))
    for version in applied:
        log.info("applied migration %04d", version)
    return applied


class Runner(Protocol):
    """Runs one migration statement, or records one migration as applied."""

    async def run(self, statement: str) -> None: ...

    async def record(self, migration: Migration, applied_at: float) -> None: ...


class _SQLiteRunner:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def run(self, statement: str) -> None:
        await self._db.execute(statement)

    async def record(self, migration: Migration, applied_at: float) -> None:
        await self._db.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, applied_at),
        )


async def apply_pending(
    migrations: list[Migration], current: int, runner: Runner
) -> tuple[int, ...]:
    """Run, in order, the migrations a schema at version ``current`` lacks, recording each;
    returns their versions. The caller holds the transaction (one for all of them), on either
    database. Raises ``RuntimeError`` for a schema that newer code has migrated."""
    if current > len(migrations):
        raise RuntimeError(
            f"database schema version {current} is newer than this code knows "
            f"({len(migrations)}): refusing to use it"
        )
    applied: list[int] = []
    for migration in migrations:
        if current >= migration.version:
            continue
        for statement in migration.statements:
            await runner.run(statement)
        await runner.record(migration, time.time())
        applied.append(migration.version)
    return tuple(applied)


async def schema_version(conn: aiosqlite.Connection) -> int:
    """The newest migration applied to the database; 0 if none ever was."""
    rows = list(
        await conn.execute_fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        )
    )
    if not rows:
        return 0
    rows = list(await conn.execute_fetchall("SELECT MAX(version) FROM schema_migrations"))
    return int(rows[0][0] or 0) if rows else 0


def describe_version(version: int, latest: int) -> str:
    """A database's schema version against this code's, as ``python -m bot check`` says it."""
    if version < latest:
        return f"schema {version}; migrated to {latest} at the next start"
    if version > latest:
        return f"schema {version} is NEWER than this code's {latest} (a downgrade?)"
    return f"schema {version}, up to date"
