"""The SQLite implementation of ``Store``: one aiosqlite connection, WAL, numbered migrations.

Every statement runs on aiosqlite's single worker thread, so nothing here blocks the event loop,
but coroutines still interleave *between* statements. Two turns doing "BEGIN; INSERT; COMMIT"
on the shared connection would mix their transactions, and a lone write issued while another
coroutine's transaction is open would silently become part of it (and vanish with its
rollback). So every use of the connection, reads included, goes through one ``asyncio.Lock``:
the worker thread serialises the statements anyway, and the lock makes each method's
statements a unit that sees only committed data.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from . import migrations as _migrations_package
from .base import (
    Expired,
    Forgotten,
    HistoryItem,
    JSONDict,
    NewItem,
    ObservedMessage,
    StoredFile,
    UnfinishedEvent,
    UsageRecord,
    UsageTotals,
)

log = logging.getLogger(__name__)
_SURROGATE = re.compile("[\ud800-\udfff]")

BUSY_TIMEOUT_MS = 5_000
"""How long a write waits for another process's lock before failing with ``database is locked``."""

EVENT_OUTCOMES = frozenset({"answered", "failed"})

# STRICT tables arrived in 3.37; RETURNING and upsert are older.
_MIN_SQLITE_VERSION = (3, 37, 0)

LOAD_HISTORY_SQL = """\
SELECT seq, item_json, tokens, turn_start
FROM history_items
WHERE conversation_id = (SELECT id FROM conversations WHERE key = ?)
ORDER BY seq DESC
LIMIT ?"""
"""The one statement ``load_history`` runs: the newest ``max_items`` rows through the
(conversation_id, seq) primary-key index, so its cost does not grow with the conversation.
Only the rows that fit the token budget are decoded (in ``load_history``). Two alternatives
were measured slower with bench/history.py: a window-function SUM in SQL (it re-sorts the wide
rows twice) and decoding in a column converter on the worker thread (a Python callback a row,
and the GIL keeps the loop waiting anyway)."""

_CONVERSATION_ID_SQL = """\
INSERT INTO conversations (key, created_at, updated_at) VALUES (?, ?, ?)
ON CONFLICT (key) DO UPDATE SET updated_at = excluded.updated_at
RETURNING id"""

MAX_EXPIRE_BATCH = 500
"""Most rows of each kind one ``expire_older_than`` call may delete: its conversation ids are
bound parameters, and SQLite before 3.32 allows 999 of them."""

OBSERVED_MAX_AGE_S = 7 * 86_400
"""Observed messages older than this are never shown to the model."""

_SCHEMA_MIGRATIONS_SQL = """\
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at REAL NOT NULL
) STRICT"""

_MIGRATION_FILE = re.compile(r"(\d{4})_(\w+)\.sql")

Params = tuple[object, ...]

_EncodedItem = tuple[str, int, int]
"""(item_json, tokens, turn_start) of one history row, serialised before any write."""


def sqlite_path_from_url(database_url: str) -> Path | None:
    """``sqlite:///data/bot.db`` -> ``data/bot.db`` (relative to the working directory),
    ``sqlite:////abs/path.db`` -> ``/abs/path.db``, ``sqlite:///:memory:`` -> None.

    Raises ``ValueError`` for anything else.
    """
    prefix = "sqlite:///"
    rest = database_url.removeprefix(prefix)
    if not database_url.startswith(prefix) or not rest:
        # The URL is not echoed: it may carry a password (postgresql://user:secret@host/db).
        scheme = database_url.partition(":")[0][:20] if ":" in database_url else ""
        raise ValueError(
            f"unsupported database URL (scheme {scheme!r})"
            if scheme
            else "unsupported database URL"
        )
    if rest == ":memory:":
        return None
    return Path(rest)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


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


def load_migrations() -> list[Migration]:
    """The migrations shipped in ``storage/migrations``, checked to be numbered 1, 2, 3, ..."""
    found: list[Migration] = []
    for entry in resources.files(_migrations_package).iterdir():
        match = _MIGRATION_FILE.fullmatch(entry.name)
        if match is None:
            continue
        statements = split_statements(entry.read_text(encoding="utf-8"))
        found.append(Migration(int(match[1]), match[2], tuple(statements)))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 0001, 0002, ... without gaps: {versions}")
    return found


def fit_history(newest_first: Sequence[tuple[int, int, bool]], max_tokens: int) -> int:
    """How many of the newest rows (seq, tokens, turn_start) to keep.

    Walks back from the newest row while the token sum stays within ``max_tokens`` and keeps
    everything up to the oldest turn start reached, so history is only ever cut before a turn.
    0 if not even the newest turn fits (or no turn start is in the window).
    """
    total = 0
    keep = 0
    for index, (_seq, tokens, turn_start) in enumerate(newest_first):
        total += tokens
        if total > max_tokens:
            break
        if turn_start:
            keep = index + 1
    return keep


class StoreClosedError(RuntimeError):
    """The store was used after ``close()``."""


class SQLiteStore:
    """``Store`` over one aiosqlite connection. Create it with ``await SQLiteStore.open(path)``."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._conn = connection
        self._lock = asyncio.Lock()
        self._closed = False
        self.migrations_applied: tuple[int, ...] = ()
        """The migration versions this ``open`` applied (empty if the schema was current)."""

    @classmethod
    async def open(cls, database: str | Path) -> SQLiteStore:
        """Connect, set the pragmas and migrate. ``database`` is a file path or ``:memory:``."""
        if sqlite3.sqlite_version_info < _MIN_SQLITE_VERSION:
            raise RuntimeError(
                f"SQLite {sqlite3.sqlite_version} is too old: STRICT tables need 3.37 or newer"
            )
        # isolation_level=None: no implicit BEGINs from the sqlite3 module; we issue our own.
        connection = await aiosqlite.connect(database, isolation_level=None)
        store = cls(connection)
        try:
            await store._configure(in_memory=str(database) == ":memory:")
            store.migrations_applied = await store._migrate()
        except BaseException:
            await connection.close()
            raise
        return store

    async def close(self) -> None:
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            await self._conn.close()

    # --- conversation history -------------------------------------------------------------
    async def load_history(
        self, *, conversation: str, max_items: int, max_tokens: int
    ) -> list[HistoryItem]:
        if max_items <= 0 or max_tokens < 0:
            return []
        async with self._locked():
            rows = await self._fetchall(LOAD_HISTORY_SQL, (conversation, max_items))
        keep = fit_history([(row[0], row[2], bool(row[3])) for row in rows], max_tokens)
        return [
            HistoryItem(seq=row[0], item=json.loads(row[1]), tokens=row[2], turn_start=bool(row[3]))
            for row in reversed(rows[:keep])
        ]

    async def complete_turn(
        self,
        *,
        conversation: str,
        items: Sequence[NewItem],
        usage: UsageRecord | None,
        event_id: str | None,
        observed_upto: int | None = None,
    ) -> None:
        encoded = _encode_items(items)
        async with self._transaction():
            if observed_upto is not None:
                await self._execute(
                    "DELETE FROM observed_messages WHERE conversation = ? AND id <= ?",
                    (conversation, observed_upto),
                )
            if encoded:
                await self._insert_items(conversation, encoded)
            if usage is not None:
                await self._insert_usage(usage)
            if event_id is not None:
                # An upsert, so an event answered without a claim is still never answered twice.
                now = time.time()
                await self._execute(
                    "INSERT INTO processed_events"
                    " (event_id, conversation, status, claimed_at, finished_at)"
                    " VALUES (?, ?, 'answered', ?, ?) ON CONFLICT (event_id) DO UPDATE SET"
                    " status = 'answered', finished_at = excluded.finished_at",
                    (event_id, conversation, now, now),
                )

    async def forget_conversation(self, *, conversation: str) -> Forgotten:
        async with self._transaction():
            rows = await self._fetchall(
                "SELECT id FROM conversations WHERE key = ?", (conversation,)
            )
            items, files, _ = await self._delete_conversations([int(r[0]) for r in rows])
            await self._execute(
                "DELETE FROM observed_messages WHERE conversation = ?", (conversation,)
            )
        return Forgotten(items=items, files=files)

    # --- messages seen but not addressed to the bot ---------------------------------------
    async def observe_message(
        self, *, conversation: str, message_id: str, author: str, text: str, keep: int
    ) -> None:
        now = time.time()
        async with self._transaction():
            await self._execute(
                "INSERT INTO observed_messages (conversation, message_id, author, text, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (conversation, message_id) DO NOTHING",
                (conversation, message_id, author, text, now),
            )
            await self._execute(
                "DELETE FROM observed_messages WHERE conversation = ? AND id NOT IN"
                " (SELECT id FROM observed_messages WHERE conversation = ?"
                " ORDER BY id DESC LIMIT ?)",
                (conversation, conversation, keep),
            )
            await self._execute(
                "DELETE FROM observed_messages WHERE created_at < ?", (now - OBSERVED_MAX_AGE_S,)
            )

    async def observed_messages(self, *, conversation: str) -> list[ObservedMessage]:
        async with self._locked():
            rows = await self._fetchall(
                "SELECT id, message_id, author, text FROM observed_messages"
                " WHERE conversation = ? ORDER BY id",
                (conversation,),
            )
        return [ObservedMessage(int(i), str(m), str(a), str(t)) for i, m, a, t in rows]

    # --- files and OpenRouter file annotations --------------------------------------------
    async def save_file(
        self, *, conversation: str, name: str, mime_type: str, data: bytes
    ) -> StoredFile:
        # Hashing a large upload takes milliseconds: off the event loop.
        sha256 = await asyncio.to_thread(_sha256, data)
        now = time.time()
        async with self._transaction():
            conversation_id = await self._conversation_id(conversation)
            await self._execute(
                "INSERT INTO files (sha256, name, mime_type, size, data, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING",
                (sha256, name, mime_type, len(data), data, now),
            )
            # The latest name the file was shared under in this conversation wins.
            await self._execute(
                "INSERT INTO conversation_files (conversation_id, sha256, name, added_at)"
                " VALUES (?, ?, ?, ?)"
                " ON CONFLICT (conversation_id, sha256) DO UPDATE SET name = excluded.name",
                (conversation_id, sha256, name, now),
            )
            rows = await self._fetchall(
                "SELECT mime_type, size, created_at FROM files WHERE sha256 = ?", (sha256,)
            )
        mime, size, created_at = rows[0]
        return StoredFile(
            sha256=sha256, name=name, mime_type=mime, size=size, created_at=created_at
        )

    async def get_file_bytes(self, *, sha256: str) -> bytes | None:
        async with self._locked():
            rows = await self._fetchall("SELECT data FROM files WHERE sha256 = ?", (sha256,))
        return bytes(rows[0][0]) if rows else None

    async def list_files(self, *, conversation: str) -> list[StoredFile]:
        async with self._locked():
            rows = await self._fetchall(
                "SELECT f.sha256, cf.name, f.mime_type, f.size, f.created_at"
                " FROM conversation_files AS cf JOIN files AS f ON f.sha256 = cf.sha256"
                " WHERE cf.conversation_id = (SELECT id FROM conversations WHERE key = ?)"
                " ORDER BY cf.added_at, cf.rowid",
                (conversation,),
            )
        return [
            StoredFile(sha256=sha, name=name, mime_type=mime, size=size, created_at=created_at)
            for sha, name, mime, size, created_at in rows
        ]

    async def save_annotations(
        self, *, conversation: str, file_sha256: str, annotations: list[JSONDict]
    ) -> None:
        annotations_json = _dumps(annotations)
        async with self._transaction():
            conversation_id = await self._conversation_id(conversation)
            await self._execute(
                "INSERT INTO file_annotations"
                " (conversation_id, file_sha256, annotations_json, updated_at)"
                " VALUES (?, ?, ?, ?)"
                " ON CONFLICT (conversation_id, file_sha256) DO UPDATE SET"
                " annotations_json = excluded.annotations_json, updated_at = excluded.updated_at",
                (conversation_id, file_sha256, annotations_json, time.time()),
            )

    async def load_annotations(
        self, *, conversation: str, file_sha256: str
    ) -> list[JSONDict] | None:
        async with self._locked():
            rows = await self._fetchall(
                "SELECT annotations_json FROM file_annotations"
                " WHERE conversation_id = (SELECT id FROM conversations WHERE key = ?)"
                " AND file_sha256 = ?",
                (conversation, file_sha256),
            )
        if not rows:
            return None
        annotations: list[JSONDict] = json.loads(rows[0][0])
        return annotations

    # --- exactly-once processing ----------------------------------------------------------
    async def claim_event(
        self, *, event_id: str, conversation: str, address: str | None = None
    ) -> bool:
        async with self._locked():
            inserted = await self._execute(
                "INSERT INTO processed_events"
                " (event_id, conversation, status, claimed_at, address)"
                " VALUES (?, ?, 'claimed', ?, ?) ON CONFLICT (event_id) DO NOTHING",
                (event_id, conversation, time.time(), address),
            )
        return inserted == 1

    async def finish_event(self, *, event_id: str, outcome: str) -> None:
        if outcome not in EVENT_OUTCOMES:
            raise ValueError(f"outcome must be one of {sorted(EVENT_OUTCOMES)}, not {outcome!r}")
        async with self._locked():
            await self._execute(
                "UPDATE processed_events SET status = ?, finished_at = ? WHERE event_id = ?",
                (outcome, time.time(), event_id),
            )

    async def has_conversation(self, *, conversation: str) -> bool:
        async with self._locked():
            rows = await self._fetchall(
                "SELECT EXISTS (SELECT 1 FROM processed_events WHERE conversation = ?)",
                (conversation,),
            )
        return bool(rows[0][0])

    async def unfinished_events(
        self, *, prefix: str = "", before: float | None = None
    ) -> list[UnfinishedEvent]:
        # The partial index on claimed_at holds only unfinished rows: this never scans history.
        sql = (
            "SELECT event_id, conversation, address, claimed_at FROM processed_events"
            " WHERE status = 'claimed'"
        )
        params: tuple[float, ...] = ()
        if before is not None:
            sql += " AND claimed_at < ?"
            params = (before,)
        async with self._locked():
            rows = await self._fetchall(sql + " ORDER BY claimed_at", params)
        return [
            UnfinishedEvent(str(event_id), str(conversation), address, float(claimed_at))
            for event_id, conversation, address, claimed_at in rows
            if str(conversation).startswith(prefix)
        ]

    # --- per-channel settings -------------------------------------------------------------
    async def get_channel_setting(self, *, channel: str, name: str) -> str | None:
        async with self._locked():
            rows = await self._fetchall(
                "SELECT value FROM channel_settings WHERE channel = ? AND name = ?",
                (channel, name),
            )
        return str(rows[0][0]) if rows else None

    async def channel_settings(self, *, channel: str) -> dict[str, str]:
        async with self._locked():
            rows = await self._fetchall(
                "SELECT name, value FROM channel_settings WHERE channel = ?", (channel,)
            )
        return {str(name): str(value) for name, value in rows}

    async def set_channel_setting(self, *, channel: str, name: str, value: str | None) -> None:
        async with self._locked():
            if value is None:
                await self._execute(
                    "DELETE FROM channel_settings WHERE channel = ? AND name = ?", (channel, name)
                )
            else:
                await self._execute(
                    "INSERT INTO channel_settings (channel, name, value, updated_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (channel, name) DO UPDATE SET"
                    " value = excluded.value, updated_at = excluded.updated_at",
                    (channel, name, value, time.time()),
                )

    # --- usage ----------------------------------------------------------------------------
    async def record_usage(self, record: UsageRecord) -> None:
        async with self._locked():
            await self._insert_usage(record)

    async def usage_totals(
        self,
        *,
        user_id: str | None = None,
        channel: str | None = None,
        conversation: str | None = None,
        workspace: str | None = None,
        since: float | None = None,
    ) -> UsageTotals:
        filters = (
            ("user_id = ?", user_id),
            ("channel = ?", channel),
            ("conversation = ?", conversation),
            ("workspace = ?", workspace),
            ("created_at >= ?", since),
        )
        given = [(clause, value) for clause, value in filters if value is not None]
        where = " AND ".join(clause for clause, _ in given) or "1"
        async with self._locked():
            rows = await self._fetchall(
                # TOTAL() is SUM() that yields 0.0 for no rows and skips NULL costs.
                "SELECT COUNT(*), COALESCE(SUM(input_tokens), 0),"
                f" COALESCE(SUM(output_tokens), 0), TOTAL(cost_usd) FROM usage WHERE {where}",
                tuple(value for _, value in given),
            )
        turns, input_tokens, output_tokens, cost_usd = rows[0]
        return UsageTotals(
            turns=turns, input_tokens=input_tokens, output_tokens=output_tokens, cost_usd=cost_usd
        )

    # --- retention ------------------------------------------------------------------------
    async def expire_older_than(self, *, cutoff: float, limit: int) -> Expired:
        if not 0 < limit <= MAX_EXPIRE_BATCH:
            raise ValueError(f"limit must be 1 to {MAX_EXPIRE_BATCH}, not {limit}")
        async with self._transaction():
            rows = await self._fetchall(
                "SELECT id FROM conversations WHERE updated_at < ? ORDER BY updated_at LIMIT ?",
                (cutoff, limit),
            )
            _, _, files = await self._delete_conversations([int(r[0]) for r in rows])
            # rowid subqueries, because DELETE ... LIMIT needs a compile-time option.
            usage_rows = await self._execute(
                "DELETE FROM usage WHERE id IN (SELECT id FROM usage WHERE created_at < ? LIMIT ?)",
                (cutoff, limit),
            )
            events = await self._execute(
                "DELETE FROM processed_events WHERE rowid IN (SELECT rowid FROM processed_events"
                " WHERE finished_at IS NOT NULL AND finished_at < ? LIMIT ?)",
                (cutoff, limit),
            )
            observed = await self._execute(
                "DELETE FROM observed_messages WHERE id IN"
                " (SELECT id FROM observed_messages WHERE created_at < ? LIMIT ?)",
                (cutoff, limit),
            )
        return Expired(
            conversations=len(rows),
            files=files,
            usage_rows=usage_rows,
            events=events,
            observed=observed,
        )

    # --- small key/value state ------------------------------------------------------------
    async def latest_conversation(self, *, user_id: str, channel: str) -> str | None:
        async with self._locked():
            rows = await self._fetchall(
                "SELECT conversation FROM usage WHERE user_id = ? AND channel = ?"
                " ORDER BY created_at DESC LIMIT 1",
                (user_id, channel),
            )
        return str(rows[0][0]) if rows else None

    async def get_state(self, *, key: str) -> str | None:
        async with self._locked():
            rows = await self._fetchall("SELECT value FROM state WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    async def set_state(self, *, key: str, value: str) -> None:
        async with self._locked():
            await self._execute(
                "INSERT INTO state (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # --- internals ------------------------------------------------------------------------
    async def _configure(self, *, in_memory: bool) -> None:
        await self._execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = await self._switch_to_wal()
        if not in_memory and mode != "wal":
            log.warning("SQLite refused WAL mode (journal_mode=%s); writes will be slower", mode)
        await self._execute("PRAGMA synchronous = NORMAL")
        await self._execute("PRAGMA foreign_keys = ON")

    async def _switch_to_wal(self) -> str:
        """Set WAL (it persists in the file) and return the journal mode in effect.

        When two connections open a new file at once, the switch can fail with "database is
        locked" straight away: SQLite skips the busy handler where waiting could deadlock. So
        retry for up to the busy timeout ourselves.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            rows = await self._fetchall("PRAGMA journal_mode")
            if str(rows[0][0]).lower() == "wal":
                return "wal"
            try:
                rows = await self._fetchall("PRAGMA journal_mode = WAL")
                return str(rows[0][0]).lower()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.02)

    async def _migrate(self) -> tuple[int, ...]:
        migrations = await asyncio.to_thread(load_migrations)
        async with self._transaction():
            await self._execute(_SCHEMA_MIGRATIONS_SQL)
        applied: list[int] = []
        # Every pending migration in ONE transaction, with the "already applied?" check inside
        # it: two processes opening the same file at once cannot both apply (or split) the
        # upgrade, and a failure leaves the database exactly as it was.
        async with self._transaction():
            rows = await self._fetchall("SELECT MAX(version) FROM schema_migrations")
            current = int(rows[0][0] or 0)
            if current > len(migrations):
                raise RuntimeError(
                    f"database schema version {current} is newer than this code knows "
                    f"({len(migrations)}): refusing to use it"
                )
            for migration in migrations:
                if current >= migration.version:
                    continue
                for statement in migration.statements:
                    await self._execute(statement)
                await self._execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, time.time()),
                )
                applied.append(migration.version)
        for version in applied:
            log.info("applied migration %04d", version)
        return tuple(applied)

    @asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        async with self._lock:
            if self._closed:
                raise StoreClosedError("the store is closed")
            yield

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        """Hold the lock for one write transaction: BEGIN IMMEDIATE ... COMMIT, or ROLLBACK."""
        async with self._locked():
            try:
                # IMMEDIATE takes the write lock up front (waiting up to busy_timeout for other
                # processes) instead of failing on the first write of a read-then-write body.
                await self._execute("BEGIN IMMEDIATE")
                yield
                await self._execute("COMMIT")
            except BaseException:
                await self._rollback()
                raise

    async def _rollback(self) -> None:
        # Shielded so a second cancellation cannot leave the transaction open; the worker thread
        # runs statements in order, so the ROLLBACK lands before any later BEGIN.
        try:
            await asyncio.shield(self._execute("ROLLBACK"))
        except sqlite3.OperationalError as exc:
            # BEGIN never ran, or COMMIT got through before a cancellation reached us.
            if "no transaction is active" not in str(exc):
                log.exception("ROLLBACK failed")
        except Exception:
            log.exception("ROLLBACK failed")

    async def _insert_items(self, conversation: str, encoded: list[_EncodedItem]) -> None:
        """Append after the conversation's newest item; call inside a transaction."""
        conversation_id = await self._conversation_id(conversation)
        rows = await self._fetchall(
            "SELECT COALESCE(MAX(seq), 0) FROM history_items WHERE conversation_id = ?",
            (conversation_id,),
        )
        last_seq = int(rows[0][0])
        async with self._conn.executemany(
            "INSERT INTO history_items (conversation_id, seq, item_json, tokens, turn_start)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (conversation_id, last_seq + offset, item_json, tokens, turn_start)
                for offset, (item_json, tokens, turn_start) in enumerate(encoded, start=1)
            ],
        ):
            pass

    async def _conversation_id(self, conversation: str) -> int:
        """The conversation's row id, creating the row; call inside a transaction."""
        now = time.time()
        rows = await self._fetchall(_CONVERSATION_ID_SQL, (conversation, now, now))
        return int(rows[0][0])

    async def _delete_conversations(self, ids: list[int]) -> tuple[int, int, int]:
        """Delete conversations with everything linked to them, and the files no other
        conversation links; call inside a transaction. Returns (history items, file links,
        files deleted)."""
        if not ids:
            return 0, 0, 0
        marks = ", ".join("?" * len(ids))
        params = tuple(ids)
        items = await self._execute(
            f"DELETE FROM history_items WHERE conversation_id IN ({marks})", params
        )
        unlinked = await self._fetchall(
            f"DELETE FROM conversation_files WHERE conversation_id IN ({marks}) RETURNING sha256",
            params,
        )
        await self._execute(
            f"DELETE FROM file_annotations WHERE conversation_id IN ({marks})", params
        )
        await self._execute(f"DELETE FROM conversations WHERE id IN ({marks})", params)
        # A file's bytes are shared by hash across conversations: they go with the last link.
        files = 0
        for sha256 in sorted({str(row[0]) for row in unlinked}):
            files += await self._execute(
                "DELETE FROM files WHERE sha256 = ?"
                " AND NOT EXISTS (SELECT 1 FROM conversation_files WHERE sha256 = ?)",
                (sha256, sha256),
            )
        return items, len(unlinked), files

    async def _insert_usage(self, record: UsageRecord) -> None:
        await self._execute(
            "INSERT INTO usage (conversation, channel, workspace, user_id, model,"
            " input_tokens, output_tokens, cost_usd, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.conversation,
                record.channel,
                record.workspace,
                record.user_id,
                record.model,
                record.input_tokens,
                record.output_tokens,
                record.cost_usd,
                record.created_at,
            ),
        )

    async def _execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        async with self._conn.execute(sql, params) as cursor:
            return cursor.rowcount

    async def _fetchall(self, sql: str, params: Params = ()) -> list[Any]:
        # fetchall runs the statement to completion, so a RETURNING write is finished too.
        return list(await self._conn.execute_fetchall(sql, params))


def _encode_items(items: Sequence[NewItem]) -> list[_EncodedItem]:
    return [(_dumps(new.item), new.tokens, int(new.turn_start)) for new in items]


def _dumps(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if _SURROGATE.search(text):
        # A lone surrogate (a model can emit one) is not UTF-8, so SQLite could not store it;
        # as a JSON escape it round-trips intact.
        return json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
