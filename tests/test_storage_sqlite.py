"""What only the SQLite store has: its exact schema, pragmas, statement splitting, URLs and
query plans. Its behaviour, shared with PostgreSQL, is tested in ``test_storage.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from storage import NewItem, SQLiteStore, Store, open_store, sqlite_path_from_url
from storage.history import LOAD_HISTORY_SQL
from storage.migrate import load_migrations, split_statements
from tests.helpers import append_items, count_items
from tests.stores import contents, turn

EXPECTED_SCHEMA: list[tuple[str, str, str, str | None]] = [
    (
        "index",
        "answer_messages_by_answer",
        "answer_messages",
        "CREATE INDEX answer_messages_by_answer ON answer_messages (event_id)",
    ),
    ("index", "answers_by_age", "answers", "CREATE INDEX answers_by_age ON answers (created_at)"),
    (
        "index",
        "answers_by_channel",
        "answers",
        "CREATE INDEX answers_by_channel ON answers (channel, model)",
    ),
    (
        "index",
        "approvals_by_age",
        "approvals",
        "CREATE INDEX approvals_by_age ON approvals (created_at)",
    ),
    (
        "index",
        "conversation_files_by_file",
        "conversation_files",
        "CREATE INDEX conversation_files_by_file ON conversation_files (sha256)",
    ),
    (
        "index",
        "conversation_locks_by_owner",
        "conversation_locks",
        "CREATE INDEX conversation_locks_by_owner ON conversation_locks (owner)",
    ),
    (
        "index",
        "conversations_by_age",
        "conversations",
        "CREATE INDEX conversations_by_age ON conversations (updated_at)",
    ),
    (
        "index",
        "observed_messages_by_age",
        "observed_messages",
        "CREATE INDEX observed_messages_by_age ON observed_messages (created_at)",
    ),
    (
        "index",
        "processed_events_by_conversation",
        "processed_events",
        "CREATE INDEX processed_events_by_conversation ON processed_events (conversation)",
    ),
    (
        "index",
        "processed_events_finished",
        "processed_events",
        "CREATE INDEX processed_events_finished ON processed_events (finished_at)\n"
        "    WHERE finished_at IS NOT NULL",
    ),
    (
        "index",
        "processed_events_unfinished",
        "processed_events",
        "CREATE INDEX processed_events_unfinished ON processed_events (claimed_at)\n"
        "    WHERE status = 'claimed'",
    ),
    (
        "index",
        "rate_hits_by_age",
        "rate_hits",
        "CREATE INDEX rate_hits_by_age ON rate_hits (at)",
    ),
    (
        "index",
        "rate_hits_by_key",
        "rate_hits",
        "CREATE INDEX rate_hits_by_key ON rate_hits (key, at)",
    ),
    ("index", "sqlite_autoindex_answer_messages_1", "answer_messages", None),
    ("index", "sqlite_autoindex_answers_1", "answers", None),
    ("index", "sqlite_autoindex_approvals_1", "approvals", None),
    ("index", "sqlite_autoindex_channel_settings_1", "channel_settings", None),
    ("index", "sqlite_autoindex_conversation_files_1", "conversation_files", None),
    ("index", "sqlite_autoindex_conversation_locks_1", "conversation_locks", None),
    ("index", "sqlite_autoindex_conversations_1", "conversations", None),
    ("index", "sqlite_autoindex_file_annotations_1", "file_annotations", None),
    ("index", "sqlite_autoindex_files_1", "files", None),
    ("index", "sqlite_autoindex_history_items_1", "history_items", None),
    ("index", "sqlite_autoindex_instances_1", "instances", None),
    ("index", "sqlite_autoindex_observed_messages_1", "observed_messages", None),
    ("index", "sqlite_autoindex_processed_events_1", "processed_events", None),
    ("index", "sqlite_autoindex_state_1", "state", None),
    ("index", "sqlite_autoindex_votes_1", "votes", None),
    (
        "index",
        "usage_by_age",
        "usage",
        "CREATE INDEX usage_by_age ON usage (created_at)",
    ),
    (
        "index",
        "usage_by_channel",
        "usage",
        "CREATE INDEX usage_by_channel ON usage (channel, created_at)",
    ),
    (
        "index",
        "usage_by_conversation",
        "usage",
        "CREATE INDEX usage_by_conversation ON usage (conversation, created_at)",
    ),
    (
        "index",
        "usage_by_user",
        "usage",
        "CREATE INDEX usage_by_user ON usage (user_id, created_at)",
    ),
    (
        "index",
        "usage_by_workspace",
        "usage",
        "CREATE INDEX usage_by_workspace ON usage (workspace, created_at)"
        " WHERE workspace IS NOT NULL",
    ),
    (
        "table",
        "answer_messages",
        "answer_messages",
        """CREATE TABLE answer_messages (
    platform TEXT NOT NULL,
    message_id TEXT NOT NULL,
    event_id TEXT NOT NULL REFERENCES answers (event_id) ON DELETE CASCADE,
    PRIMARY KEY (platform, message_id)
) STRICT""",
    ),
    (
        "table",
        "answers",
        "answers",
        """CREATE TABLE answers (
    event_id TEXT PRIMARY KEY,
    conversation TEXT NOT NULL,
    channel TEXT NOT NULL,
    model TEXT NOT NULL,
    created_at REAL NOT NULL
) STRICT""",
    ),
    (
        "table",
        "approvals",
        "approvals",
        """CREATE TABLE approvals (
    id TEXT PRIMARY KEY,
    conversation TEXT NOT NULL,
    requester TEXT NOT NULL,
    tool TEXT NOT NULL,
    owner TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    decision TEXT CHECK (decision IN ('approved', 'denied', 'expired')),
    decided_by TEXT,
    decided_at REAL
) STRICT""",
    ),
    (
        "table",
        "channel_settings",
        "channel_settings",
        """CREATE TABLE channel_settings (
    channel TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (channel, name)
) STRICT""",
    ),
    (
        "table",
        "conversation_files",
        "conversation_files",
        """CREATE TABLE conversation_files (
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL REFERENCES files (sha256),
    name TEXT NOT NULL,
    added_at REAL NOT NULL,
    PRIMARY KEY (conversation_id, sha256)
) STRICT""",
    ),
    (
        "table",
        "conversation_locks",
        "conversation_locks",
        """CREATE TABLE conversation_locks (
    conversation TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    taken_at REAL NOT NULL
) STRICT""",
    ),
    (
        "table",
        "conversations",
        "conversations",
        """CREATE TABLE conversations (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
) STRICT""",
    ),
    (
        "table",
        "file_annotations",
        "file_annotations",
        """CREATE TABLE file_annotations (
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    file_sha256 TEXT NOT NULL,
    annotations_json TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (conversation_id, file_sha256)
) STRICT""",
    ),
    (
        "table",
        "files",
        "files",
        """CREATE TABLE files (
    sha256 TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    data BLOB NOT NULL,
    created_at REAL NOT NULL
) STRICT""",
    ),
    (
        "table",
        "history_items",
        "history_items",
        """CREATE TABLE history_items (
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    item_json TEXT NOT NULL,
    tokens INTEGER NOT NULL CHECK (tokens >= 0),
    turn_start INTEGER NOT NULL CHECK (turn_start IN (0, 1)),
    PRIMARY KEY (conversation_id, seq)
) STRICT""",
    ),
    (
        "table",
        "instances",
        "instances",
        """CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    started_at REAL NOT NULL,
    renewed_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    info TEXT NOT NULL
) STRICT""",
    ),
    (
        "table",
        "observed_messages",
        "observed_messages",
        """CREATE TABLE observed_messages (
    id INTEGER PRIMARY KEY,
    conversation TEXT NOT NULL,
    message_id TEXT NOT NULL,
    author TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (conversation, message_id)
) STRICT""",
    ),
    (
        "table",
        "processed_events",
        "processed_events",
        """CREATE TABLE processed_events (
    event_id TEXT PRIMARY KEY,
    conversation TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('claimed', 'answered', 'failed')),
    claimed_at REAL NOT NULL,
    finished_at REAL
, address TEXT, owner TEXT) STRICT""",
    ),
    (
        "table",
        "rate_hits",
        "rate_hits",
        """CREATE TABLE rate_hits (
    key TEXT NOT NULL,
    at REAL NOT NULL
) STRICT""",
    ),
    (
        "table",
        "schema_migrations",
        "schema_migrations",
        """CREATE TABLE schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at REAL NOT NULL
) STRICT""",
    ),
    (
        "table",
        "state",
        "state",
        """CREATE TABLE state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT""",
    ),
    (
        "table",
        "usage",
        "usage",
        """CREATE TABLE usage (
    id INTEGER PRIMARY KEY,
    conversation TEXT NOT NULL,
    channel TEXT NOT NULL,
    workspace TEXT,
    user_id TEXT NOT NULL,
    model TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd REAL,
    created_at REAL NOT NULL
, reasoning_tokens INTEGER NOT NULL DEFAULT 0) STRICT""",
    ),
    (
        "table",
        "votes",
        "votes",
        """CREATE TABLE votes (
    event_id TEXT NOT NULL REFERENCES answers (event_id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    value TEXT NOT NULL CHECK (value IN ('up', 'down')),
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (event_id, user_id)
) STRICT""",
    ),
]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "bot.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = await SQLiteStore.open(db_path)
    yield opened
    await opened.close()


@pytest.fixture
async def closing() -> AsyncIterator[Callable[[Store], Store]]:
    """Register a store a test opens itself, so it is closed even when the test fails: an open
    aiosqlite connection's worker thread would otherwise keep pytest from exiting."""
    opened: list[Store] = []

    def register(store: Store) -> Store:
        opened.append(store)
        return store

    yield register
    for store in opened:
        await store.close()


async def inspect(
    db_path: Path, sql: str, params: tuple[object, ...] = ()
) -> list[tuple[Any, ...]]:
    """Read the database through a second connection, as another process would."""
    async with aiosqlite.connect(db_path) as conn:
        return [tuple(row) for row in await conn.execute_fetchall(sql, params)]


async def test_fresh_database_has_exactly_the_expected_schema(
    store: SQLiteStore, db_path: Path
) -> None:
    schema = await inspect(
        db_path,
        "SELECT type, name, tbl_name, sql FROM sqlite_master"
        " WHERE type IN ('table', 'index') ORDER BY type, name",
    )
    assert schema == EXPECTED_SCHEMA
    assert await inspect(db_path, "SELECT version, name FROM schema_migrations") == [
        (1, "initial"),
        (2, "events_by_conversation"),
        (3, "observed_messages"),
        (4, "event_addresses_and_budgets"),
        (5, "files_by_hash"),
        (6, "retention"),
        (7, "instances"),
        (8, "feedback"),
        (9, "reasoning_tokens"),
        (10, "approvals"),
    ]
    assert store.migrations_applied == (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)


async def test_pragmas_are_set_on_the_store_connection(store: SQLiteStore, db_path: Path) -> None:
    assert await inspect(db_path, "PRAGMA journal_mode") == [("wal",)]
    conn = store._db.conn
    assert list(await conn.execute_fetchall("PRAGMA foreign_keys")) == [(1,)]
    assert list(await conn.execute_fetchall("PRAGMA synchronous")) == [(1,)]  # NORMAL
    assert list(await conn.execute_fetchall("PRAGMA busy_timeout")) == [(5000,)]


def test_shipped_migrations_are_numbered_from_one() -> None:
    migrations = load_migrations()
    assert [(m.version, m.name) for m in migrations] == [
        (1, "initial"),
        (2, "events_by_conversation"),
        (3, "observed_messages"),
        (4, "event_addresses_and_budgets"),
        (5, "files_by_hash"),
        (6, "retention"),
        (7, "instances"),
        (8, "feedback"),
        (9, "reasoning_tokens"),
        (10, "approvals"),
    ]
    assert all(statement.endswith(";") for statement in migrations[0].statements)


@pytest.mark.parametrize(
    ("script", "statements"),
    [
        (
            "CREATE TABLE a (x);\nCREATE TABLE b (y);\n",
            ["CREATE TABLE a (x);", "CREATE TABLE b (y);"],
        ),
        ("INSERT INTO a VALUES ('x;y');", ["INSERT INTO a VALUES ('x;y');"]),
        (
            "CREATE TRIGGER t AFTER INSERT ON a BEGIN DELETE FROM b; DELETE FROM c; END;",
            ["CREATE TRIGGER t AFTER INSERT ON a BEGIN DELETE FROM b; DELETE FROM c; END;"],
        ),
        ("-- only a comment\n", []),
        ("CREATE TABLE a (x);\n-- trailing comment\n", ["CREATE TABLE a (x);"]),
        (";\n-- comment\n;", []),
    ],
)
def test_split_statements(script: str, statements: list[str]) -> None:
    assert split_statements(script) == statements


def test_split_statements_rejects_an_unterminated_statement() -> None:
    with pytest.raises(ValueError, match="incomplete statement"):
        split_statements("CREATE TABLE a (x);\nCREATE TABLE b (y)")


async def test_relative_url_creates_parent_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, closing: Callable[[Store], Store]
) -> None:
    monkeypatch.chdir(tmp_path)
    opened = closing(await open_store("sqlite:///data/nested/bot.db"))
    await opened.close()
    assert (tmp_path / "data" / "nested" / "bot.db").is_file()


async def test_absolute_url(tmp_path: Path, closing: Callable[[Store], Store]) -> None:
    path = tmp_path / "abs" / "bot.db"
    assert str(path).startswith("/")
    opened = closing(await open_store(f"sqlite:///{path}"))
    await append_items(opened, conversation="c", items=turn("hi"))
    await opened.close()
    assert await inspect(path, "SELECT COUNT(*) FROM history_items") == [(1,)]


async def test_memory_url(closing: Callable[[Store], Store]) -> None:
    opened = closing(await open_store("sqlite:///:memory:"))
    await append_items(opened, conversation="c", items=turn("hi"))
    assert await contents(opened, "c") == ["hi"]
    await opened.close()


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///data/bot.db", Path("data/bot.db")),
        ("sqlite:////abs/path.db", Path("/abs/path.db")),
        ("sqlite:///:memory:", None),
    ],
)
def test_sqlite_path_from_url(url: str, path: Path | None) -> None:
    assert sqlite_path_from_url(url) == path


@pytest.mark.parametrize(
    "url",
    [
        "",
        "sqlite://",
        "sqlite:///",
        "sqlite://host/bot.db",
        "mysql://u:hunter2@h/db",
        "data/bot.db",
    ],
)
async def test_other_urls_are_rejected(url: str, closing: Callable[[Store], Store]) -> None:
    with pytest.raises(ValueError, match="unsupported database URL") as info:
        closing(await open_store(url))
    assert "hunter2" not in str(info.value)


async def test_load_history_reads_a_bounded_window_through_the_index(
    store: SQLiteStore, db_path: Path
) -> None:
    big = [NewItem({"n": n}, 1, turn_start=n % 2 == 0) for n in range(10_000)]
    await append_items(store, conversation="big", items=big)
    await append_items(store, conversation="small", items=big[:10])
    assert await count_items(store, conversation="big") == 10_000

    # The statement load_history runs, and only that one.
    traced: list[str] = []
    await store._db.conn.set_trace_callback(traced.append)
    history = await store.load_history(conversation="big", max_items=50, max_tokens=10_000)
    assert traced == [LOAD_HISTORY_SQL.replace("key = ?", "key = 'big'").replace("?", "50")]
    assert [entry.item["n"] for entry in history] == list(range(9_950, 10_000))

    plan = [
        row[3]
        for row in await inspect(db_path, f"EXPLAIN QUERY PLAN {LOAD_HISTORY_SQL}", ("big", 50))
    ]
    assert (
        "SEARCH history_items USING INDEX sqlite_autoindex_history_items_1 (conversation_id=?)"
        in plan
    )
    assert not any(step.startswith("SCAN") for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan  # no sort of the whole set


async def test_expire_older_than_finds_old_rows_through_indexes(
    store: SQLiteStore, db_path: Path
) -> None:
    queries = {
        "SELECT id FROM conversations WHERE updated_at < 1 ORDER BY updated_at LIMIT 5": (
            "conversations_by_age"
        ),
        "SELECT id FROM usage WHERE created_at < 1 LIMIT 5": "usage_by_age",
        "SELECT rowid FROM processed_events WHERE finished_at IS NOT NULL AND finished_at < 1"
        " LIMIT 5": "processed_events_finished",
        "SELECT 1 FROM conversation_files WHERE sha256 = 'x'": "conversation_files_by_file",
    }
    for sql, index in queries.items():
        plan = " ".join(row[3] for row in await inspect(db_path, f"EXPLAIN QUERY PLAN {sql}"))
        assert f"USING COVERING INDEX {index}" in plan or f"USING INDEX {index}" in plan, plan
    with pytest.raises(ValueError, match="limit"):
        await store.expire_older_than(cutoff=0, limit=0)
