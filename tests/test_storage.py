"""The SQLite store against a real temporary database file."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

import storage.migrate as migrate_module
from bot.budgets import day_start
from storage import (
    Expired,
    Forgotten,
    NewItem,
    Outcome,
    SQLiteStore,
    Store,
    StoreClosedError,
    UsageRecord,
    UsageTotals,
    open_store,
    sqlite_path_from_url,
)
from storage.history import LOAD_HISTORY_SQL, fit_history
from storage.migrate import Migration, load_migrations, split_statements
from tests.helpers import append_items, count_items, pending

EXPECTED_SCHEMA: list[tuple[str, str, str, str | None]] = [
    (
        "index",
        "conversation_files_by_file",
        "conversation_files",
        "CREATE INDEX conversation_files_by_file ON conversation_files (sha256)",
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
    ("index", "sqlite_autoindex_channel_settings_1", "channel_settings", None),
    ("index", "sqlite_autoindex_conversation_files_1", "conversation_files", None),
    ("index", "sqlite_autoindex_conversations_1", "conversations", None),
    ("index", "sqlite_autoindex_file_annotations_1", "file_annotations", None),
    ("index", "sqlite_autoindex_files_1", "files", None),
    ("index", "sqlite_autoindex_history_items_1", "history_items", None),
    ("index", "sqlite_autoindex_observed_messages_1", "observed_messages", None),
    ("index", "sqlite_autoindex_processed_events_1", "processed_events", None),
    ("index", "sqlite_autoindex_state_1", "state", None),
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
, address TEXT) STRICT""",
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
) STRICT""",
    ),
]


def _conforms(store: SQLiteStore) -> Store:
    return store  # mypy rejects this line if SQLiteStore drifts from the Store protocol


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "bot.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = await SQLiteStore.open(db_path)
    yield opened
    await opened.close()


@pytest.fixture
async def closing() -> AsyncIterator[Callable[[SQLiteStore], SQLiteStore]]:
    """Register a store a test opens itself, so it is closed even when the test fails: an open
    aiosqlite connection's worker thread would otherwise keep pytest from exiting."""
    opened: list[SQLiteStore] = []

    def register(store: SQLiteStore) -> SQLiteStore:
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


def item(text: str, role: str = "user") -> dict[str, Any]:
    return {"role": role, "content": text}


def turn(name: str, *replies: str, tokens: int = 10) -> list[NewItem]:
    """A user message opening a turn, then one item per reply, each costing ``tokens``."""
    return [NewItem(item(name), tokens, turn_start=True)] + [
        NewItem(item(reply, "assistant"), tokens) for reply in replies
    ]


async def contents(store: SQLiteStore, conversation: str, **limits: int) -> list[str]:
    window = {"max_items": 100_000, "max_tokens": 10**12} | limits
    history = await store.load_history(conversation=conversation, **window)
    return [entry.item["content"] for entry in history]


# --- schema and migrations ----------------------------------------------------------------


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
    ]
    assert store.migrations_applied == (1, 2, 3, 4, 5, 6)


async def test_pragmas_are_set_on_the_store_connection(store: SQLiteStore, db_path: Path) -> None:
    assert await inspect(db_path, "PRAGMA journal_mode") == [("wal",)]
    conn = store._db.conn
    assert list(await conn.execute_fetchall("PRAGMA foreign_keys")) == [(1,)]
    assert list(await conn.execute_fetchall("PRAGMA synchronous")) == [(1,)]  # NORMAL
    assert list(await conn.execute_fetchall("PRAGMA busy_timeout")) == [(5000,)]


async def test_reopening_applies_no_migration_twice(
    db_path: Path, closing: Callable[[SQLiteStore], SQLiteStore]
) -> None:
    first = closing(await SQLiteStore.open(db_path))
    await first.close()
    recorded = await inspect(db_path, "SELECT * FROM schema_migrations")

    second = closing(await SQLiteStore.open(db_path))
    await second.close()

    assert first.migrations_applied == (1, 2, 3, 4, 5, 6)
    assert second.migrations_applied == ()
    assert await inspect(db_path, "SELECT * FROM schema_migrations") == recorded


async def test_a_failing_migration_is_rolled_back_whole(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, closing: Callable[[SQLiteStore], SQLiteStore]
) -> None:
    await closing(await SQLiteStore.open(db_path)).close()  # at the current version
    fresh = db_path.with_name("fresh.db")
    broken = Migration(7, "broken", ("CREATE TABLE extra (x INTEGER)", "THIS IS NOT SQL"))
    monkeypatch.setattr(migrate_module, "load_migrations", lambda: [*load_migrations(), broken])

    for path in (db_path, fresh):
        with pytest.raises(aiosqlite.OperationalError):
            closing(await SQLiteStore.open(path))

    assert await inspect(db_path, "SELECT version FROM schema_migrations") == [
        (1,),
        (2,),
        (3,),
        (4,),
        (5,),
        (6,),
    ]
    assert await inspect(db_path, "SELECT name FROM sqlite_master WHERE name = 'extra'") == []
    # A fresh file gets all pending migrations in one transaction: none of them, here.
    assert await inspect(fresh, "SELECT version FROM schema_migrations") == []
    assert await inspect(fresh, "SELECT name FROM sqlite_master WHERE name = 'history_items'") == []


async def test_a_database_from_newer_code_is_refused(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, closing: Callable[[SQLiteStore], SQLiteStore]
) -> None:
    newer = Migration(7, "newer", ("CREATE TABLE extra (x INTEGER)",))
    with monkeypatch.context() as patch:
        patch.setattr(migrate_module, "load_migrations", lambda: [*load_migrations(), newer])
        await closing(await SQLiteStore.open(db_path)).close()

    with pytest.raises(RuntimeError, match="newer than this code"):
        closing(await SQLiteStore.open(db_path))


def test_shipped_migrations_are_numbered_from_one() -> None:
    migrations = load_migrations()
    assert [(m.version, m.name) for m in migrations] == [
        (1, "initial"),
        (2, "events_by_conversation"),
        (3, "observed_messages"),
        (4, "event_addresses_and_budgets"),
        (5, "files_by_hash"),
        (6, "retention"),
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


# --- opening by URL -----------------------------------------------------------------------


async def test_relative_url_creates_parent_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, closing: Callable[[SQLiteStore], SQLiteStore]
) -> None:
    monkeypatch.chdir(tmp_path)
    opened = closing(await open_store("sqlite:///data/nested/bot.db"))
    await opened.close()
    assert (tmp_path / "data" / "nested" / "bot.db").is_file()


async def test_absolute_url(tmp_path: Path, closing: Callable[[SQLiteStore], SQLiteStore]) -> None:
    path = tmp_path / "abs" / "bot.db"
    assert str(path).startswith("/")
    opened = closing(await open_store(f"sqlite:///{path}"))
    await append_items(opened, conversation="c", items=turn("hi"))
    await opened.close()
    assert await inspect(path, "SELECT COUNT(*) FROM history_items") == [(1,)]


async def test_memory_url(closing: Callable[[SQLiteStore], SQLiteStore]) -> None:
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
    ["", "sqlite://", "sqlite:///", "sqlite://host/bot.db", "postgres://u@h/db", "data/bot.db"],
)
async def test_other_urls_are_rejected(
    url: str, closing: Callable[[SQLiteStore], SQLiteStore]
) -> None:
    with pytest.raises(ValueError, match="unsupported database URL"):
        closing(await open_store(url))


# --- history ------------------------------------------------------------------------------


async def test_items_round_trip_exactly_and_in_order(store: SQLiteStore) -> None:
    awkward = {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": json.dumps({"temp": 21.5}),
        "nested": {"list": [1, 2.5, None, True, False, "é ✓ 🙂"], "empty": {}},
        "quote": 'it\'s "quoted"; DROP TABLE history_items; --',
    }
    items = [
        NewItem(item("hello"), 3, turn_start=True),
        NewItem(awkward, 7),
        NewItem(item("bye", "assistant"), 2),
    ]
    await append_items(store, conversation="c", items=items)

    history = await store.load_history(conversation="c", max_items=10, max_tokens=100)

    assert [entry.item for entry in history] == [new.item for new in items]
    assert [entry.tokens for entry in history] == [3, 7, 2]
    assert [entry.turn_start for entry in history] == [True, False, False]
    assert [entry.seq for entry in history] == [1, 2, 3]
    assert await count_items(store, conversation="c") == 3


async def test_seq_continues_across_appends(store: SQLiteStore) -> None:
    await append_items(store, conversation="c", items=turn("a", "a1"))
    await append_items(store, conversation="c", items=turn("b", "b1"))
    history = await store.load_history(conversation="c", max_items=10, max_tokens=100)
    assert [entry.seq for entry in history] == [1, 2, 3, 4]
    assert [entry.item["content"] for entry in history] == ["a", "a1", "b", "b1"]


async def test_conversations_are_separate(store: SQLiteStore) -> None:
    await append_items(store, conversation="slack:T1:C1:1.0", items=turn("one"))
    await append_items(store, conversation="slack:T1:C1:2.0", items=turn("two"))
    assert await contents(store, "slack:T1:C1:1.0") == ["one"]
    assert await contents(store, "slack:T1:C1:2.0") == ["two"]


@pytest.fixture
async def three_turns(store: SQLiteStore) -> SQLiteStore:
    """t1: 2 items, t2: 3 items, t3: 2 items, 10 tokens each (70 in all)."""
    await append_items(store, conversation="c", items=turn("t1", "t1a"))
    await append_items(store, conversation="c", items=turn("t2", "t2-tool", "t2a"))
    await append_items(store, conversation="c", items=turn("t3", "t3a"))
    return store


@pytest.mark.parametrize(
    ("max_tokens", "expected"),
    [
        (70, ["t1", "t1a", "t2", "t2-tool", "t2a", "t3", "t3a"]),
        (69, ["t2", "t2-tool", "t2a", "t3", "t3a"]),  # t1 cut mid-turn: the whole turn goes
        (50, ["t2", "t2-tool", "t2a", "t3", "t3a"]),
        (49, ["t3", "t3a"]),
        (20, ["t3", "t3a"]),  # the limit is inclusive
        (19, []),  # not even the newest turn fits
        (0, []),
    ],
)
async def test_max_tokens_cuts_only_before_a_turn_start(
    three_turns: SQLiteStore, max_tokens: int, expected: list[str]
) -> None:
    assert await contents(three_turns, "c", max_tokens=max_tokens) == expected


@pytest.mark.parametrize(
    ("max_items", "expected"),
    [
        (7, ["t1", "t1a", "t2", "t2-tool", "t2a", "t3", "t3a"]),
        (6, ["t2", "t2-tool", "t2a", "t3", "t3a"]),  # leading t1a dropped: not a turn start
        (5, ["t2", "t2-tool", "t2a", "t3", "t3a"]),
        (4, ["t3", "t3a"]),
        (2, ["t3", "t3a"]),
        (1, []),  # the window holds only t3a, which starts no turn
        (0, []),
    ],
)
async def test_max_items_window(
    three_turns: SQLiteStore, max_items: int, expected: list[str]
) -> None:
    assert await contents(three_turns, "c", max_items=max_items) == expected


@pytest.mark.parametrize(
    ("rows", "max_tokens", "keep"),
    [
        ([], 100, 0),
        ([(3, 5, False), (2, 5, False), (1, 5, True)], 15, 3),
        ([(3, 5, False), (2, 5, False), (1, 5, True)], 14, 0),
        ([(4, 5, True), (3, 5, False), (2, 5, False), (1, 5, True)], 14, 1),
        ([(2, 0, True), (1, 999, True)], 0, 1),
        ([(3, 1, False), (2, 1, False)], 100, 0),
    ],
)
def test_fit_history(rows: list[tuple[int, int, bool]], max_tokens: int, keep: int) -> None:
    assert fit_history(rows, max_tokens) == keep


async def test_unknown_conversation(store: SQLiteStore) -> None:
    assert await store.load_history(conversation="nope", max_items=10, max_tokens=100) == []
    assert await store.forget_conversation(conversation="nope") == Forgotten(0, 0)


async def test_concurrent_appends_never_interleave_a_turn(
    store: SQLiteStore, db_path: Path
) -> None:
    conversations = [f"conv-{n}" for n in range(20)]

    async def append_turn(call: int) -> None:
        items = [
            NewItem({"call": call, "part": part}, 1, turn_start=part == 0) for part in range(3)
        ]
        await append_items(store, conversation=conversations[call % 20], items=items)

    await asyncio.gather(*(append_turn(call) for call in range(200)))

    for conversation in conversations:
        history = await store.load_history(
            conversation=conversation, max_items=1_000, max_tokens=1_000
        )
        assert len(history) == 30
        seqs = [entry.seq for entry in history]
        assert seqs == sorted(set(seqs))
        for start in range(0, 30, 3):
            chunk = history[start : start + 3]
            assert len({entry.item["call"] for entry in chunk}) == 1
            assert [entry.item["part"] for entry in chunk] == [0, 1, 2]
            assert [entry.turn_start for entry in chunk] == [True, False, False]
    assert await inspect(db_path, "PRAGMA integrity_check") == [("ok",)]
    assert await inspect(db_path, "PRAGMA foreign_key_check") == []


async def test_unserialisable_item_writes_nothing(store: SQLiteStore) -> None:
    await append_items(store, conversation="c", items=turn("before"))
    batch = [
        NewItem(item("first"), 1, turn_start=True),
        NewItem({"bad": object()}, 1),
        NewItem(item("third"), 1),
    ]
    with pytest.raises(TypeError):
        await append_items(store, conversation="c", items=batch)
    assert await contents(store, "c") == ["before"]


async def test_database_error_mid_batch_rolls_back_the_whole_batch(
    store: SQLiteStore, db_path: Path
) -> None:
    await append_items(store, conversation="c", items=turn("before"))
    batch = [
        NewItem(item("first"), 1, turn_start=True),
        NewItem(item("negative tokens"), -1),  # violates CHECK (tokens >= 0)
        NewItem(item("third"), 1),
    ]
    with pytest.raises(aiosqlite.IntegrityError):
        await append_items(store, conversation="new", items=batch)
    with pytest.raises(aiosqlite.IntegrityError):
        await append_items(store, conversation="c", items=batch)

    assert await contents(store, "c") == ["before"]
    assert await inspect(db_path, "SELECT key FROM conversations") == [("c",)]
    # The failed transaction was rolled back and the lock released: the store still works.
    await append_items(store, conversation="c", items=turn("after"))
    history = await store.load_history(conversation="c", max_items=10, max_tokens=100)
    assert [(entry.seq, entry.item["content"]) for entry in history] == [
        (1, "before"),
        (2, "after"),
    ]


async def test_cancelled_appends_leave_whole_turns_and_a_usable_store(
    store: SQLiteStore, db_path: Path
) -> None:
    for yields in range(8):
        task = asyncio.create_task(append_items(store, conversation="c", items=turn("x", "y", "z")))
        for _ in range(yields):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await append_items(store, conversation="c", items=turn("ok", "ok2"))

    history = await store.load_history(conversation="c", max_items=1_000, max_tokens=10**6)
    assert sum(entry.item["content"] == "ok" for entry in history) == 8
    turns: list[list[str]] = []
    for entry in history:
        if entry.turn_start:
            turns.append([])
        turns[-1].append(entry.item["content"])
    assert all(t in (["x", "y", "z"], ["ok", "ok2"]) for t in turns)
    assert await inspect(db_path, "PRAGMA integrity_check") == [("ok",)]


async def test_complete_turn_writes_items_usage_and_answer_together(
    store: SQLiteStore, db_path: Path
) -> None:
    await append_items(store, conversation="c", items=turn("earlier"))
    assert await store.claim_event(event_id="Ev1", conversation="c")

    await store.complete_turn(
        conversation="c",
        items=turn("question", "answer"),
        usage=usage_record(conversation="c"),
        event_id="Ev1",
    )

    assert await contents(store, "c") == ["earlier", "question", "answer"]
    assert await store.usage_totals(conversation="c") == UsageTotals(1, 100, 10, 0.5)
    assert await pending(store) == []
    assert await inspect(db_path, "SELECT status FROM processed_events") == [("answered",)]


async def test_complete_turn_without_usage_or_event(store: SQLiteStore, db_path: Path) -> None:
    await store.complete_turn(conversation="c", items=turn("q", "a"), usage=None, event_id=None)
    assert await contents(store, "c") == ["q", "a"]
    assert await store.usage_totals() == UsageTotals(0, 0, 0, 0.0)
    assert await inspect(db_path, "SELECT COUNT(*) FROM processed_events") == [(0,)]


async def test_complete_turn_marks_an_unclaimed_event_answered(store: SQLiteStore) -> None:
    await store.complete_turn(conversation="c", items=turn("q"), usage=None, event_id="Ev9")
    assert await store.claim_event(event_id="Ev9", conversation="c") is False
    assert await pending(store) == []


@pytest.mark.parametrize("broken", ["items", "usage"])
async def test_complete_turn_is_all_or_nothing(store: SQLiteStore, broken: str) -> None:
    assert await store.claim_event(event_id="Ev1", conversation="c")
    items = turn("question", "answer")
    usage = usage_record(conversation="c")
    if broken == "items":
        items.append(NewItem(item("bad"), -1))  # violates CHECK (tokens >= 0)
    else:
        usage = usage_record(conversation="c", input_tokens="many")  # type: ignore[arg-type]

    with pytest.raises(aiosqlite.IntegrityError):
        await store.complete_turn(conversation="c", items=items, usage=usage, event_id="Ev1")

    assert await count_items(store, conversation="c") == 0
    assert await store.usage_totals() == UsageTotals(0, 0, 0, 0.0)
    assert await pending(store) == [("Ev1", "c")]


async def test_forget_conversation_forgets_its_files_and_annotations_but_keeps_usage(
    three_turns: SQLiteStore, db_path: Path
) -> None:
    """``/reset``: history, file links, annotations and observed messages go; a file's bytes
    go unless another conversation still links them; usage (no text, counted by budgets)
    stays."""
    store = three_turns
    own = await store.save_file(conversation="c", name="a.txt", mime_type="text/plain", data=b"a")
    shared = await store.save_file(
        conversation="c", name="s.pdf", mime_type="application/pdf", data=b"%PDF shared"
    )
    await store.save_file(
        conversation="other", name="s.pdf", mime_type="application/pdf", data=b"%PDF shared"
    )
    for conversation in ("c", "other"):
        await store.save_annotations(
            conversation=conversation, file_sha256=shared.sha256, annotations=[{}]
        )
    await store.observe_message(conversation="c", message_id="m1", author="U", text="hi", keep=5)
    await store.record_usage(usage_record(conversation="c"))
    await append_items(store, conversation="other", items=turn("keep me"))

    assert await store.forget_conversation(conversation="c") == Forgotten(items=7, files=2)

    assert await count_items(store, conversation="c") == 0
    assert await store.list_files(conversation="c") == []
    assert await store.load_annotations(conversation="c", file_sha256=shared.sha256) is None
    assert await store.observed_messages(conversation="c") == []
    assert await store.get_file_bytes(sha256=own.sha256) is None
    # The other conversation keeps its copy of the shared file, and its annotations.
    assert await store.get_file_bytes(sha256=shared.sha256) == b"%PDF shared"
    assert [f.name for f in await store.list_files(conversation="other")] == ["s.pdf"]
    assert await store.load_annotations(conversation="other", file_sha256=shared.sha256) == [{}]
    assert await contents(store, "other") == ["keep me"]
    assert (await store.usage_totals(conversation="c")).turns == 1
    assert await inspect(db_path, "SELECT COUNT(*) FROM files") == [(1,)]

    assert await store.forget_conversation(conversation="c") == Forgotten(0, 0)
    await append_items(store, conversation="c", items=turn("fresh"))
    assert await contents(store, "c") == ["fresh"]
    assert await store.forget_conversation(conversation="other") == Forgotten(items=1, files=1)
    assert await inspect(db_path, "SELECT COUNT(*) FROM files") == [(0,)]


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


# --- files and annotations ----------------------------------------------------------------


async def test_same_bytes_are_stored_once_across_conversations(
    store: SQLiteStore, db_path: Path
) -> None:
    data = b"%PDF-1.7 the same bytes"
    first = await store.save_file(
        conversation="c1", name="report.pdf", mime_type="application/pdf", data=data
    )
    second = await store.save_file(
        conversation="c2", name="copy.pdf", mime_type="application/pdf", data=data
    )
    other = await store.save_file(
        conversation="c2", name="notes.txt", mime_type="text/plain", data=b"notes"
    )

    assert first.sha256 == second.sha256
    assert first.sha256 == hashlib.sha256(data).hexdigest()
    assert (first.name, second.name) == ("report.pdf", "copy.pdf")
    assert first.size == len(data)
    assert await inspect(db_path, "SELECT COUNT(*) FROM files") == [(2,)]
    assert await store.get_file_bytes(sha256=first.sha256) == data
    assert await store.get_file_bytes(sha256="0" * 64) is None
    assert await store.list_files(conversation="c1") == [first]
    assert await store.list_files(conversation="c2") == [second, other]
    assert await store.list_files(conversation="nope") == []


async def test_saving_the_same_file_again_in_a_conversation_keeps_one_link(
    store: SQLiteStore,
) -> None:
    await store.save_file(conversation="c", name="a.txt", mime_type="text/plain", data=b"x")
    renamed = await store.save_file(
        conversation="c", name="b.txt", mime_type="text/plain", data=b"x"
    )
    assert await store.list_files(conversation="c") == [renamed]
    assert renamed.name == "b.txt"


async def test_annotations_save_overwrite_load(store: SQLiteStore) -> None:
    sha = "a" * 64
    assert await store.load_annotations(conversation="c", file_sha256=sha) is None

    first = [{"type": "file", "file": {"filename": "r.pdf", "content": [{"text": "p1"}]}}]
    await store.save_annotations(conversation="c", file_sha256=sha, annotations=first)
    assert await store.load_annotations(conversation="c", file_sha256=sha) == first

    second = [{"type": "file", "file": {"content": [{"text": "p1"}, {"text": "p2"}]}}]
    await store.save_annotations(conversation="c", file_sha256=sha, annotations=second)
    assert await store.load_annotations(conversation="c", file_sha256=sha) == second

    assert await store.load_annotations(conversation="other", file_sha256=sha) is None


# --- exactly-once processing --------------------------------------------------------------


async def test_claim_event_only_once_even_after_reopening(
    db_path: Path, closing: Callable[[SQLiteStore], SQLiteStore]
) -> None:
    store = closing(await SQLiteStore.open(db_path))
    assert await store.claim_event(event_id="Ev1", conversation="c") is True
    assert await store.claim_event(event_id="Ev1", conversation="c") is False
    assert await store.claim_event(event_id="Ev2", conversation="d") is True
    await store.close()

    reopened = closing(await SQLiteStore.open(db_path))
    try:
        assert await reopened.claim_event(event_id="Ev1", conversation="c") is False
        assert await pending(reopened) == [("Ev1", "c"), ("Ev2", "d")]
        # The bot takes part in a conversation once an event of it was claimed, across restarts.
        assert await reopened.has_conversation(conversation="c") is True
        assert await reopened.has_conversation(conversation="e") is False

        await reopened.finish_event(event_id="Ev1", outcome=Outcome.ANSWERED)
        assert await pending(reopened) == [("Ev2", "d")]
        await reopened.finish_event(event_id="Ev2", outcome=Outcome.FAILED)
        assert await pending(reopened) == []
        assert await reopened.claim_event(event_id="Ev2", conversation="d") is False
    finally:
        await reopened.close()
    rows = await inspect(
        db_path, "SELECT event_id, status, finished_at IS NOT NULL FROM processed_events"
    )
    assert sorted(rows) == [("Ev1", "answered", 1), ("Ev2", "failed", 1)]


async def test_unfinished_events_keep_their_address_and_filter_by_platform_and_age(
    store: SQLiteStore,
) -> None:
    await store.claim_event(event_id="S1", conversation="slack:T:C:1", address='{"c": "C"}')
    await store.claim_event(event_id="D1", conversation="discord:g:1:2")
    await store.claim_event(event_id="S2", conversation="slack:T:C:2", address="x")
    for event_id, at in (("S1", 100.0), ("D1", 200.0), ("S2", 300.0)):
        await store._db.conn.execute(
            "UPDATE processed_events SET claimed_at = ? WHERE event_id = ?", (at, event_id)
        )
    await store._db.conn.commit()

    slack = await store.unfinished_events(prefix="slack:")
    assert [(e.event_id, e.address, e.claimed_at) for e in slack] == [
        ("S1", '{"c": "C"}', 100.0),
        ("S2", "x", 300.0),
    ]
    assert [e.event_id for e in await store.unfinished_events(before=250.0)] == ["S1", "D1"]
    assert [e.address for e in await store.unfinished_events(prefix="discord:")] == [None]


async def test_usage_totals_by_workspace(store: SQLiteStore) -> None:
    await store.record_usage(usage_record(workspace="T1", created_at=10.0))
    await store.record_usage(usage_record(workspace="T1", created_at=20.0, input_tokens=5))
    await store.record_usage(usage_record(workspace="T2", created_at=20.0))
    await store.record_usage(usage_record(workspace=None, created_at=20.0))
    assert await store.usage_totals(workspace="T1") == UsageTotals(2, 105, 20, 1.0)
    assert await store.usage_totals(workspace="T1", since=15.0) == UsageTotals(1, 5, 10, 0.5)
    assert await store.usage_totals(workspace="T3") == UsageTotals(0, 0, 0, 0.0)


async def test_concurrent_claims_of_one_event_have_one_winner(store: SQLiteStore) -> None:
    results = await asyncio.gather(
        *(store.claim_event(event_id="Ev", conversation="c") for _ in range(20))
    )
    assert sorted(results) == [False] * 19 + [True]


def test_outcomes_keep_the_strings_stored_and_exported() -> None:
    """Event statuses in existing databases and the ``outcome`` metrics label hold these."""
    assert {outcome.name: str(outcome) for outcome in Outcome} == {
        "ANSWERED": "answered",
        "FAILED": "failed",
        "DUPLICATE": "duplicate",
        "IGNORED": "ignored",
        "REFUSED": "refused",
        "COMMAND": "command",
    }


async def test_finish_event_rejects_unknown_outcomes(store: SQLiteStore) -> None:
    await store.claim_event(event_id="Ev1", conversation="c")
    with pytest.raises(ValueError, match="outcome"):
        await store.finish_event(event_id="Ev1", outcome="claimed")  # type: ignore[arg-type]
    assert await pending(store) == [("Ev1", "c")]


# --- settings, usage, state ---------------------------------------------------------------


async def test_channel_settings(store: SQLiteStore) -> None:
    assert await store.get_channel_setting(channel="C1", name="model") is None
    await store.set_channel_setting(channel="C1", name="model", value="a/b")
    await store.set_channel_setting(channel="C2", name="model", value="c/d")
    assert await store.get_channel_setting(channel="C1", name="model") == "a/b"

    await store.set_channel_setting(channel="C1", name="model", value="e/f")
    assert await store.get_channel_setting(channel="C1", name="model") == "e/f"

    await store.set_channel_setting(channel="C1", name="model", value=None)
    assert await store.get_channel_setting(channel="C1", name="model") is None
    assert await store.get_channel_setting(channel="C2", name="model") == "c/d"
    await store.set_channel_setting(channel="C1", name="model", value=None)  # no-op

    await store.set_channel_setting(channel="C2", name="prompt", value="Be brief.")
    assert await store.channel_settings(channel="C2") == {"model": "c/d", "prompt": "Be brief."}
    assert await store.channel_settings(channel="C1") == {}


def usage_record(
    *,
    conversation: str = "c1",
    channel: str = "C1",
    user_id: str = "U1",
    cost_usd: float | None = 0.5,
    created_at: float = 1_000.0,
    input_tokens: int = 100,
    output_tokens: int = 10,
    workspace: str | None = "T1",
) -> UsageRecord:
    return UsageRecord(
        conversation=conversation,
        channel=channel,
        user_id=user_id,
        model="openrouter/x",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost_usd,
        created_at=created_at,
        workspace=workspace,
    )


async def test_usage_totals_with_each_filter(store: SQLiteStore) -> None:
    assert await store.usage_totals() == UsageTotals(0, 0, 0, 0.0)
    records = [
        usage_record(),
        usage_record(user_id="U2", cost_usd=None, created_at=2_000.0, input_tokens=1),
        usage_record(channel="C2", conversation="c2", cost_usd=0.25, created_at=3_000.0),
        usage_record(channel="C2", conversation="c3", user_id="U2", created_at=4_000.0),
    ]
    for record in records:
        await store.record_usage(record)

    assert await store.usage_totals() == UsageTotals(4, 301, 40, 1.25)
    assert await store.usage_totals(user_id="U1") == UsageTotals(2, 200, 20, 0.75)
    assert await store.usage_totals(user_id="U2") == UsageTotals(2, 101, 20, 0.5)
    assert await store.usage_totals(channel="C2") == UsageTotals(2, 200, 20, 0.75)
    assert await store.usage_totals(conversation="c1") == UsageTotals(2, 101, 20, 0.5)
    assert await store.usage_totals(since=2_000.0) == UsageTotals(3, 201, 30, 0.75)
    assert await store.usage_totals(user_id="U2", channel="C1") == UsageTotals(1, 1, 10, 0.0)
    assert await store.usage_totals(
        user_id="U2", channel="C2", conversation="c3", since=4_000.0
    ) == UsageTotals(1, 100, 10, 0.5)
    assert await store.usage_totals(user_id="nobody") == UsageTotals(0, 0, 0, 0.0)


DAY = 86_400.0


async def age(store: SQLiteStore, table: str, column: str, seconds: float, where: str) -> None:
    """Make rows look ``seconds`` old, as if written then."""
    await store._db.conn.execute(
        f"UPDATE {table} SET {column} = ? WHERE {where}", (time.time() - seconds,)
    )
    await store._db.conn.commit()


async def test_expire_older_than_deletes_old_rows_in_batches_and_keeps_recent_ones(
    store: SQLiteStore, db_path: Path
) -> None:
    now = time.time()
    # An old conversation with a file of its own, one shared with a recent conversation, and
    # annotations; a recent conversation.
    await append_items(store, conversation="old", items=turn("old question", "old answer"))
    await append_items(store, conversation="older", items=turn("older question"))
    own = await store.save_file(conversation="old", name="o.txt", mime_type="text/plain", data=b"o")
    shared = await store.save_file(
        conversation="old", name="s.pdf", mime_type="application/pdf", data=b"%PDF s"
    )
    await store.save_annotations(conversation="old", file_sha256=shared.sha256, annotations=[{}])
    await append_items(store, conversation="recent", items=turn("recent question"))
    await store.save_file(
        conversation="recent", name="s.pdf", mime_type="application/pdf", data=b"%PDF s"
    )
    await age(store, "conversations", "updated_at", 40 * DAY, "key IN ('old', 'older')")
    # Usage: 40 days old (twice), yesterday, today.
    for created_at in (now - 40 * DAY, now - 40 * DAY, now - DAY + 60, now):
        await store.record_usage(usage_record(conversation="old", created_at=created_at))
    today = await store.usage_totals(since=day_start(now))
    # Events: an old answered one, an old one never finished (a restart tells its user), a
    # recent one; observed messages: an old one and a recent one.
    for event_id in ("E-old", "E-cut", "E-new"):
        await store.claim_event(event_id=event_id, conversation="old")
    await store.finish_event(event_id="E-old", outcome=Outcome.ANSWERED)
    await store.finish_event(event_id="E-new", outcome=Outcome.ANSWERED)
    await age(store, "processed_events", "finished_at", 40 * DAY, "event_id = 'E-old'")
    await age(store, "processed_events", "claimed_at", 40 * DAY, "event_id IN ('E-old', 'E-cut')")
    await store.observe_message(conversation="t", message_id="m1", author="U", text="a", keep=9)
    await store.observe_message(conversation="t", message_id="m2", author="U", text="b", keep=9)
    await age(store, "observed_messages", "created_at", 40 * DAY, "message_id = 'm1'")

    cutoff = now - 30 * DAY
    first = await store.expire_older_than(cutoff=cutoff, limit=1)
    assert first == Expired(conversations=1, files=1, usage_rows=1, events=1, observed=1)
    batches = [first]
    while batches[-1] != Expired(0, 0, 0, 0, 0):
        batches.append(await store.expire_older_than(cutoff=cutoff, limit=1))
    assert len(batches) == 3  # one row of each kind per batch, then nothing left
    assert sum(b.conversations for b in batches) == 2
    assert sum(b.usage_rows for b in batches) == 2

    assert await count_items(store, conversation="old") == 0
    assert await count_items(store, conversation="older") == 0
    assert await store.list_files(conversation="old") == []
    assert await store.load_annotations(conversation="old", file_sha256=shared.sha256) is None
    assert await store.get_file_bytes(sha256=own.sha256) is None
    assert await store.get_file_bytes(sha256=shared.sha256) == b"%PDF s"  # still linked
    assert await contents(store, "recent") == ["recent question"]
    assert [f.name for f in await store.list_files(conversation="recent")] == ["s.pdf"]
    assert await store.usage_totals(since=day_start(now)) == today
    assert (await store.usage_totals()).turns == 2
    assert await inspect(db_path, "SELECT event_id FROM processed_events ORDER BY 1") == [
        ("E-cut",),
        ("E-new",),
    ]
    assert await pending(store) == [("E-cut", "old")]
    assert [m.message_id for m in await store.observed_messages(conversation="t")] == ["m2"]


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


async def test_state(store: SQLiteStore) -> None:
    assert await store.get_state(key="commands_hash") is None
    await store.set_state(key="commands_hash", value="abc")
    await store.set_state(key="other", value="1")
    await store.set_state(key="commands_hash", value="def")
    assert await store.get_state(key="commands_hash") == "def"
    assert await store.get_state(key="other") == "1"


# --- lifecycle ----------------------------------------------------------------------------


async def test_closed_store_refuses_work_and_close_is_idempotent(
    db_path: Path, closing: Callable[[SQLiteStore], SQLiteStore]
) -> None:
    store = closing(await SQLiteStore.open(db_path))
    await store.close()
    await store.close()
    with pytest.raises(StoreClosedError):
        await store.get_state(key="k")
    with pytest.raises(StoreClosedError):
        await append_items(store, conversation="c", items=turn("hi"))


async def test_everything_survives_a_reopen(
    db_path: Path, closing: Callable[[SQLiteStore], SQLiteStore]
) -> None:
    store = closing(await SQLiteStore.open(db_path))
    await append_items(store, conversation="c", items=turn("hi", "hello"))
    await store.set_state(key="k", value="v")
    await store.close()

    reopened = closing(await SQLiteStore.open(db_path))
    try:
        assert await contents(reopened, "c") == ["hi", "hello"]
        assert await reopened.get_state(key="k") == "v"
    finally:
        await reopened.close()
    # A clean close checkpoints the WAL into the database file and removes it.
    assert not await asyncio.to_thread(Path(f"{db_path}-wal").exists)


async def test_two_stores_on_one_file_share_it_safely(
    db_path: Path, closing: Callable[[SQLiteStore], SQLiteStore]
) -> None:
    # Like two processes starting at once: both migrate, then write concurrently; the second
    # writer waits on busy_timeout instead of failing with "database is locked".
    async def open_one() -> SQLiteStore:
        return closing(await SQLiteStore.open(db_path))

    first, second = await asyncio.gather(open_one(), open_one())
    assert sorted([first.migrations_applied, second.migrations_applied]) == [(), (1, 2, 3, 4, 5, 6)]

    await asyncio.gather(
        *(
            append_items(store, conversation="c", items=turn(f"{n}", "reply"))
            for n in range(20)
            for store in (first, second)
        )
    )
    history = await first.load_history(conversation="c", max_items=100, max_tokens=10_000)
    assert len(history) == 80
    assert [entry.seq for entry in history] == list(range(1, 81))
    assert all(entry.turn_start == (entry.seq % 2 == 1) for entry in history)


async def test_latest_conversation_of_a_user_in_a_channel(store: SQLiteStore) -> None:
    assert await store.latest_conversation(user_id="U1", channel="C1") is None
    for conversation, user, channel, at in [
        ("old", "U1", "C1", 1.0),
        ("new", "U1", "C1", 3.0),
        ("other-user", "U2", "C1", 5.0),
        ("other-channel", "U1", "C2", 6.0),
    ]:
        await store.record_usage(
            usage_record(conversation=conversation, user_id=user, channel=channel, created_at=at)
        )
    assert await store.latest_conversation(user_id="U1", channel="C1") == "new"
    assert await store.latest_conversation(user_id="U2", channel="C1") == "other-user"


async def test_observed_messages_are_kept_few_and_taken_by_a_completed_turn(
    store: SQLiteStore,
) -> None:
    for n in range(5):
        await store.observe_message(
            conversation="c", message_id=f"{n}", author="U1", text=f"m{n}", keep=3
        )
    await store.observe_message(conversation="c", message_id="4", author="U1", text="again", keep=3)
    await store.observe_message(conversation="d", message_id="1", author="U2", text="other", keep=3)

    seen = await store.observed_messages(conversation="c")
    assert [m.text for m in seen] == ["m2", "m3", "m4"]  # newest 3, a redelivery ignored

    await store.observe_message(conversation="c", message_id="9", author="U1", text="late", keep=3)
    await store.complete_turn(
        conversation="c", items=turn("q", "a"), usage=None, event_id=None, observed_upto=seen[-1].id
    )
    # What the turn took in is gone; what came during the turn waits for the next one.
    assert [m.text for m in await store.observed_messages(conversation="c")] == ["late"]
    assert [m.text for m in await store.observed_messages(conversation="d")] == ["other"]


async def test_a_lone_surrogate_round_trips_through_history(store: SQLiteStore) -> None:
    """A model can emit one; UTF-8 cannot encode it, so it is stored as a JSON escape."""
    await append_items(store, conversation="c", items=turn("odd \ud800 text", "plain é"))
    assert await contents(store, "c") == ["odd \ud800 text", "plain é"]
