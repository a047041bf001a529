"""The store's behaviour, each test once on SQLite (a temporary file) and once on PostgreSQL
(a database of its own on the session's server): the ``backend`` fixture in ``conftest``.

What only one database has (SQLite's pragmas and query plans, PostgreSQL's advisory lock and
URLs) is in ``test_storage_sqlite.py`` and ``test_storage_postgres.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path

import pytest

from bot.budgets import day_start
from storage import (
    AnswerRecord,
    ApprovalRecord,
    Expired,
    Forgotten,
    NewItem,
    Outcome,
    SQLiteStore,
    SQLStore,
    Store,
    StoreClosedError,
    UsageRecord,
    UsageTotals,
    VoteShare,
)
from storage.history import fit_history
from storage.migrate import Migration
from storage.postgres import PostgresStore
from tests.helpers import append_items, count_items, pending
from tests.stores import SQLiteBackend, StoreBackend, assert_intact, contents, item, turn


def _conforms(sqlite: SQLiteStore, postgres: PostgresStore) -> list[Store]:
    return [sqlite, postgres]  # mypy rejects this line if either drifts from the Store protocol


@pytest.fixture
async def store(backend: StoreBackend) -> SQLStore:
    """A store on the test's database, migrated at open (closed by ``backend``)."""
    return await backend.open()


# --- schema and migrations ----------------------------------------------------------------


async def test_reopening_applies_no_migration_twice(backend: StoreBackend) -> None:
    first = await backend.open()
    await first.close()
    recorded = await backend.query("SELECT * FROM schema_migrations ORDER BY 1")

    second = await backend.open()
    await second.close()

    assert first.migrations_applied == (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
    assert second.migrations_applied == ()
    assert await backend.query("SELECT * FROM schema_migrations ORDER BY 1") == recorded


async def test_a_failing_migration_is_rolled_back_whole(
    backend: StoreBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    await (await backend.open()).close()  # at the current version
    fresh = await backend.new_database()
    broken = Migration(11, "broken", ("CREATE TABLE extra (x INTEGER)", "THIS IS NOT SQL"))
    backend.add_migrations(monkeypatch, broken)

    for target in (None, fresh):
        with pytest.raises(backend.bad_sql):
            await backend.open(target)

    assert await backend.query("SELECT version FROM schema_migrations ORDER BY 1") == [
        (1,),
        (2,),
        (3,),
        (4,),
        (5,),
        (6,),
        (7,),
        (8,),
        (9,),
        (10,),
    ]
    assert not await backend.has_table("extra")
    # A fresh database gets all pending migrations in one transaction: none of them, here.
    assert await backend.query("SELECT version FROM schema_migrations", target=fresh) == []
    assert not await backend.has_table("history_items", target=fresh)


async def test_a_database_from_newer_code_is_refused(
    backend: StoreBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    newer = Migration(11, "newer", ("CREATE TABLE extra (x INTEGER)",))
    with monkeypatch.context() as patch:
        backend.add_migrations(patch, newer)
        await (await backend.open()).close()

    with pytest.raises(RuntimeError, match="newer than this code"):
        await backend.open()


# --- opening by URL -----------------------------------------------------------------------


# --- history ------------------------------------------------------------------------------


async def test_items_round_trip_exactly_and_in_order(store: SQLStore) -> None:
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


async def test_seq_continues_across_appends(store: SQLStore) -> None:
    await append_items(store, conversation="c", items=turn("a", "a1"))
    await append_items(store, conversation="c", items=turn("b", "b1"))
    history = await store.load_history(conversation="c", max_items=10, max_tokens=100)
    assert [entry.seq for entry in history] == [1, 2, 3, 4]
    assert [entry.item["content"] for entry in history] == ["a", "a1", "b", "b1"]


async def test_conversations_are_separate(store: SQLStore) -> None:
    await append_items(store, conversation="slack:T1:C1:1.0", items=turn("one"))
    await append_items(store, conversation="slack:T1:C1:2.0", items=turn("two"))
    assert await contents(store, "slack:T1:C1:1.0") == ["one"]
    assert await contents(store, "slack:T1:C1:2.0") == ["two"]


@pytest.fixture
async def three_turns(store: SQLStore) -> SQLStore:
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
    three_turns: SQLStore, max_tokens: int, expected: list[str]
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
async def test_max_items_window(three_turns: SQLStore, max_items: int, expected: list[str]) -> None:
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


async def test_unknown_conversation(store: SQLStore) -> None:
    assert await store.load_history(conversation="nope", max_items=10, max_tokens=100) == []
    assert await store.forget_conversation(conversation="nope") == Forgotten(0, 0)


async def test_concurrent_appends_never_interleave_a_turn(
    store: SQLStore, backend: StoreBackend
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
    await assert_intact(backend)


async def test_unserialisable_item_writes_nothing(store: SQLStore) -> None:
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
    store: SQLStore, backend: StoreBackend
) -> None:
    await append_items(store, conversation="c", items=turn("before"))
    batch = [
        NewItem(item("first"), 1, turn_start=True),
        NewItem(item("negative tokens"), -1),  # violates CHECK (tokens >= 0)
        NewItem(item("third"), 1),
    ]
    with pytest.raises(backend.rejected):
        await append_items(store, conversation="new", items=batch)
    with pytest.raises(backend.rejected):
        await append_items(store, conversation="c", items=batch)

    assert await contents(store, "c") == ["before"]
    assert await backend.query("SELECT key FROM conversations") == [("c",)]
    # The failed transaction was rolled back and the lock released: the store still works.
    await append_items(store, conversation="c", items=turn("after"))
    history = await store.load_history(conversation="c", max_items=10, max_tokens=100)
    assert [(entry.seq, entry.item["content"]) for entry in history] == [
        (1, "before"),
        (2, "after"),
    ]


async def test_cancelled_appends_leave_whole_turns_and_a_usable_store(
    store: SQLStore, backend: StoreBackend
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
    await assert_intact(backend)


async def test_complete_turn_writes_items_usage_and_answer_together(
    store: SQLStore, backend: StoreBackend
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
    assert await backend.query("SELECT status FROM processed_events") == [("answered",)]


async def test_complete_turn_without_usage_or_event(store: SQLStore, backend: StoreBackend) -> None:
    await store.complete_turn(conversation="c", items=turn("q", "a"), usage=None, event_id=None)
    assert await contents(store, "c") == ["q", "a"]
    assert await store.usage_totals() == UsageTotals(0, 0, 0, 0.0)
    assert await backend.query("SELECT COUNT(*) FROM processed_events") == [(0,)]


async def test_complete_turn_marks_an_unclaimed_event_answered(store: SQLStore) -> None:
    await store.complete_turn(conversation="c", items=turn("q"), usage=None, event_id="Ev9")
    assert await store.claim_event(event_id="Ev9", conversation="c") is False
    assert await pending(store) == []


@pytest.mark.parametrize("broken", ["items", "usage"])
async def test_complete_turn_is_all_or_nothing(
    store: SQLStore, backend: StoreBackend, broken: str
) -> None:
    assert await store.claim_event(event_id="Ev1", conversation="c")
    items = turn("question", "answer")
    usage = usage_record(conversation="c")
    if broken == "items":
        items.append(NewItem(item("bad"), -1))  # violates CHECK (tokens >= 0)
    else:
        usage = usage_record(conversation="c", input_tokens="many")  # type: ignore[arg-type]

    with pytest.raises(backend.rejected):
        await store.complete_turn(conversation="c", items=items, usage=usage, event_id="Ev1")

    assert await count_items(store, conversation="c") == 0
    assert await store.usage_totals() == UsageTotals(0, 0, 0, 0.0)
    assert await pending(store) == [("Ev1", "c")]


async def test_forget_conversation_forgets_its_files_and_annotations_but_keeps_usage(
    three_turns: SQLStore, backend: StoreBackend
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
    assert await backend.query("SELECT COUNT(*) FROM files") == [(1,)]

    assert await store.forget_conversation(conversation="c") == Forgotten(0, 0)
    await append_items(store, conversation="c", items=turn("fresh"))
    assert await contents(store, "c") == ["fresh"]
    assert await store.forget_conversation(conversation="other") == Forgotten(items=1, files=1)
    assert await backend.query("SELECT COUNT(*) FROM files") == [(0,)]


# --- files and annotations ----------------------------------------------------------------


async def test_same_bytes_are_stored_once_across_conversations(
    store: SQLStore, backend: StoreBackend
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
    assert await backend.query("SELECT COUNT(*) FROM files") == [(2,)]
    assert await store.get_file_bytes(sha256=first.sha256) == data
    assert await store.get_file_bytes(sha256="0" * 64) is None
    assert await store.list_files(conversation="c1") == [first]
    assert await store.list_files(conversation="c2") == [second, other]
    assert await store.list_files(conversation="nope") == []


async def test_saving_the_same_file_again_in_a_conversation_keeps_one_link(
    store: SQLStore,
) -> None:
    await store.save_file(conversation="c", name="a.txt", mime_type="text/plain", data=b"x")
    renamed = await store.save_file(
        conversation="c", name="b.txt", mime_type="text/plain", data=b"x"
    )
    assert await store.list_files(conversation="c") == [renamed]
    assert renamed.name == "b.txt"


async def test_annotations_save_overwrite_load(store: SQLStore) -> None:
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


async def test_claim_event_only_once_even_after_reopening(backend: StoreBackend) -> None:
    store = await backend.open()
    assert await store.claim_event(event_id="Ev1", conversation="c") is True
    assert await store.claim_event(event_id="Ev1", conversation="c") is False
    assert await store.claim_event(event_id="Ev2", conversation="d") is True
    await store.close()

    reopened = await backend.open()
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
    rows = await backend.query(
        "SELECT event_id, status, finished_at IS NOT NULL FROM processed_events"
    )
    assert sorted(rows) == [("Ev1", "answered", 1), ("Ev2", "failed", 1)]


async def test_unfinished_events_keep_their_address_and_filter_by_platform_and_age(
    store: SQLStore, backend: StoreBackend
) -> None:
    await store.claim_event(event_id="S1", conversation="slack:T:C:1", address='{"c": "C"}')
    await store.claim_event(event_id="D1", conversation="discord:g:1:2")
    await store.claim_event(event_id="S2", conversation="slack:T:C:2", address="x")
    for event_id, at in (("S1", 100.0), ("D1", 200.0), ("S2", 300.0)):
        await backend.execute(
            "UPDATE processed_events SET claimed_at = ? WHERE event_id = ?", (at, event_id)
        )

    slack = await store.unfinished_events(prefix="slack:")
    assert [(e.event_id, e.address, e.claimed_at) for e in slack] == [
        ("S1", '{"c": "C"}', 100.0),
        ("S2", "x", 300.0),
    ]
    assert [e.event_id for e in await store.unfinished_events(before=250.0)] == ["S1", "D1"]
    assert [e.address for e in await store.unfinished_events(prefix="discord:")] == [None]


async def test_usage_totals_by_workspace(store: SQLStore) -> None:
    await store.record_usage(usage_record(workspace="T1", created_at=10.0))
    await store.record_usage(usage_record(workspace="T1", created_at=20.0, input_tokens=5))
    await store.record_usage(usage_record(workspace="T2", created_at=20.0))
    await store.record_usage(usage_record(workspace=None, created_at=20.0))
    assert await store.usage_totals(workspace="T1") == UsageTotals(2, 105, 20, 1.0)
    assert await store.usage_totals(workspace="T1", since=15.0) == UsageTotals(1, 5, 10, 0.5)
    assert await store.usage_totals(workspace="T3") == UsageTotals(0, 0, 0, 0.0)


async def test_concurrent_claims_of_one_event_have_one_winner(store: SQLStore) -> None:
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


async def test_finish_event_rejects_unknown_outcomes(store: SQLStore) -> None:
    await store.claim_event(event_id="Ev1", conversation="c")
    with pytest.raises(ValueError, match="outcome"):
        await store.finish_event(event_id="Ev1", outcome="claimed")  # type: ignore[arg-type]
    assert await pending(store) == [("Ev1", "c")]


# --- settings, usage, state ---------------------------------------------------------------


async def test_channel_settings(store: SQLStore) -> None:
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


async def test_channels_with_settings_newest_first_within_a_prefix(store: SQLStore) -> None:
    await store.set_channel_setting(channel="slack:T1:C1", name="model", value="a/b")
    await store.set_channel_setting(channel="slack:T2:C9", name="model", value="x/y")
    await store.set_channel_setting(channel="slack:T1:C2", name="prompt", value="Be brief.")
    await store.set_channel_setting(channel="slack:T1:C2", name="mention", value="required")
    await store.set_channel_setting(channel="slack:T1:C3", name="pdf_engine", value="native")
    await store.set_channel_setting(channel="discord:T1:C4", name="model", value="c/d")

    found = await store.channels_with_settings(prefix="slack:T1:", limit=10)
    assert list(found) == ["slack:T1:C3", "slack:T1:C2", "slack:T1:C1"]
    assert found["slack:T1:C2"] == {"mention": "required", "prompt": "Be brief."}
    assert list(await store.channels_with_settings(prefix="slack:T1:", limit=2)) == [
        "slack:T1:C3",
        "slack:T1:C2",
    ]
    # A channel whose last setting was removed is gone; a prefix with LIKE wildcards is literal.
    await store.set_channel_setting(channel="slack:T1:C1", name="model", value=None)
    assert "slack:T1:C1" not in await store.channels_with_settings(prefix="slack:T1:", limit=10)
    assert await store.channels_with_settings(prefix="slack:T_:", limit=10) == {}


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


async def test_usage_totals_with_each_filter(store: SQLStore) -> None:
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


async def age(backend: StoreBackend, table: str, column: str, seconds: float, where: str) -> None:
    """Make rows look ``seconds`` old, as if written then."""
    await backend.execute(
        f"UPDATE {table} SET {column} = ? WHERE {where}", (time.time() - seconds,)
    )


async def test_expire_older_than_deletes_old_rows_in_batches_and_keeps_recent_ones(
    store: SQLStore, backend: StoreBackend
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
    await age(backend, "conversations", "updated_at", 40 * DAY, "key IN ('old', 'older')")
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
    await age(backend, "processed_events", "finished_at", 40 * DAY, "event_id = 'E-old'")
    await age(backend, "processed_events", "claimed_at", 40 * DAY, "event_id IN ('E-old', 'E-cut')")
    await store.observe_message(conversation="t", message_id="m1", author="U", text="a", keep=9)
    await store.observe_message(conversation="t", message_id="m2", author="U", text="b", keep=9)
    await age(backend, "observed_messages", "created_at", 40 * DAY, "message_id = 'm1'")
    # Answers: an old one with a vote (both go), a recent one with a vote (both stay).
    for event_id, created_at in (("E-old", now - 40 * DAY), ("E-new", now)):
        answer = AnswerRecord(event_id, "old", "test:T1:C1", "m", created_at)
        await store.save_answer(answer=answer, platform="test", message_ids=[f"M-{event_id}"])
        await store.vote(event_id=event_id, user_id="test:U1", value="up", now=created_at)

    cutoff = now - 30 * DAY
    first = await store.expire_older_than(cutoff=cutoff, limit=1)
    assert first == Expired(conversations=1, files=1, usage_rows=1, events=1, observed=1, answers=1)
    batches = [first]
    while batches[-1] != Expired(0, 0, 0, 0, 0, 0):
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
    assert await backend.query("SELECT event_id FROM processed_events ORDER BY 1") == [
        ("E-cut",),
        ("E-new",),
    ]
    assert await pending(store) == [("E-cut", "old")]
    assert [m.message_id for m in await store.observed_messages(conversation="t")] == ["m2"]
    assert await store.answer_of_message(platform="test", message_id="M-E-old") is None
    assert await store.vote_shares() == [VoteShare("m", "test:T1:C1", up=1, down=0)]


# --- feedback on answers -------------------------------------------------------------------


def answer_record(
    event_id: str, *, channel: str = "slack:T1:C1", model: str = "m1"
) -> AnswerRecord:
    return AnswerRecord(event_id, f"{channel}:1.0", channel, model, time.time())


async def test_an_answer_is_found_by_any_of_its_messages(store: SQLStore) -> None:
    answer = answer_record("E1")
    await store.save_answer(answer=answer, platform="slack", message_ids=["C1:1.1", "C1:1.2"])
    await store.save_answer(answer=answer, platform="slack", message_ids=["C1:1.2", "C1:1.3"])

    for message_id in ("C1:1.1", "C1:1.2", "C1:1.3"):
        assert await store.answer_of_message(platform="slack", message_id=message_id) == answer
    assert await store.answer_of_message(platform="slack", message_id="C1:9.9") is None
    assert await store.answer_of_message(platform="discord", message_id="C1:1.1") is None


async def test_a_second_vote_changes_the_first_and_shares_follow(
    store: SQLStore, backend: StoreBackend
) -> None:
    await store.save_answer(answer=answer_record("E1"), platform="slack", message_ids=["a"])
    await store.save_answer(
        answer=answer_record("E2", model="m2"), platform="slack", message_ids=["b"]
    )
    await store.save_answer(
        answer=answer_record("E3", channel="slack:T1:C2"), platform="slack", message_ids=["c"]
    )

    assert await store.vote(event_id="E1", user_id="slack:U1", value="up", now=1.0) is None
    assert await store.vote(event_id="E1", user_id="slack:U1", value="up", now=2.0) == "up"
    assert await store.vote_shares(channel="slack:T1:C1") == [VoteShare("m1", "slack:T1:C1", 1, 0)]
    assert await store.vote(event_id="E1", user_id="slack:U1", value="down", now=3.0) == "up"
    assert await store.vote(event_id="E1", user_id="slack:U2", value="up", now=4.0) is None
    await store.vote(event_id="E2", user_id="slack:U1", value="down", now=5.0)
    await store.vote(event_id="E3", user_id="slack:U1", value="up", now=6.0)

    assert await store.vote_shares(channel="slack:T1:C1") == [
        VoteShare("m1", "slack:T1:C1", up=1, down=1),
        VoteShare("m2", "slack:T1:C1", up=0, down=1),
    ]
    assert await store.vote_shares() == [
        VoteShare("m1", "slack:T1:C1", up=1, down=1),
        VoteShare("m2", "slack:T1:C1", up=0, down=1),
        VoteShare("m1", "slack:T1:C2", up=1, down=0),
    ]
    assert await store.vote_shares(channel="slack:T1:C9") == []
    # One row per answer and user, the first vote's time kept.
    assert await backend.query(
        "SELECT user_id, value, created_at, updated_at FROM votes WHERE event_id = 'E1'"
        " ORDER BY user_id"
    ) == [("slack:U1", "down", 1.0, 3.0), ("slack:U2", "up", 4.0, 4.0)]


async def test_votes_at_once_from_one_user_leave_one_row(backend: StoreBackend) -> None:
    # Two instances on one database, as two clicks reaching two processes at once.
    first, second = await backend.open(), await backend.open()
    try:
        await first.save_answer(answer=answer_record("E1"), platform="slack", message_ids=["a"])
        replaced = await asyncio.gather(
            *(
                store.vote(event_id="E1", user_id="slack:U1", value=value, now=float(n))
                for n, (store, value) in enumerate([(first, "up"), (second, "down")] * 5)
            )
        )
        assert replaced.count(None) == 1  # one of them was first; the others replaced a vote
        rows = await backend.query("SELECT value FROM votes WHERE event_id = 'E1'")
        assert len(rows) == 1
    finally:
        await second.close()
        await first.close()


async def test_approval_is_decided_once_whoever_races(backend: StoreBackend) -> None:
    # Two instances on one database: clicks on both, and the waiting turn's expiry, at once.
    first, second = await backend.open(), await backend.open()
    try:
        await first.renew_lease(instance="i1", now=100.0, lease_s=15.0)
        record = ApprovalRecord(
            "A1", "slack:T1:C1:1.1", "slack:U1", "notes.delete_note", "i1", 100.0, 700.0
        )
        await first.open_approval(record)
        assert await second.approval(approval_id="A1") == record
        won = await asyncio.gather(
            *(
                store.decide_approval(approval_id="A1", decision=decision, by=by, now=101.0)
                for store, decision, by in [
                    (first, "approved", "slack:U1"),
                    (second, "denied", "slack:UADMIN"),
                    (first, "expired", ""),
                    (second, "approved", "slack:U1"),
                ]
            )
        )
        assert won.count(True) == 1
        decided = await first.approval(approval_id="A1")
        assert decided is not None and decided.decision in ("approved", "denied", "expired")
        assert not await first.decide_approval(
            approval_id="A1", decision="denied", by="x", now=102.0
        )
        assert await first.approval(approval_id="A1") == decided
        assert not await first.decide_approval(
            approval_id="nope", decision="denied", by="x", now=102.0
        )
        assert await first.approval(approval_id="nope") is None
    finally:
        await second.close()
        await first.close()


async def test_approval_takes_no_answer_once_nobody_waits(store: SQLStore) -> None:
    await store.renew_lease(instance="i1", now=100.0, lease_s=15.0)
    for approval_id in ("late", "orphan", "gone"):
        await store.open_approval(ApprovalRecord(approval_id, "c", "u", "t", "i1", 100.0, 160.0))
    # Past its expiry: no answer counts; the waiting turn's own "expired" still does.
    assert not await store.decide_approval(
        approval_id="late", decision="approved", by="u", now=161.0
    )
    assert await store.decide_approval(approval_id="late", decision="expired", by="", now=161.0)
    # Its instance's lease lapsed (a crash): nobody waits for the answer.
    assert not await store.decide_approval(
        approval_id="orphan", decision="approved", by="u", now=116.0
    )
    assert await store.decide_approval(approval_id="gone", decision="approved", by="u", now=114.0)
    # Asked a day later, the old rows go.
    await store.open_approval(ApprovalRecord("new", "c", "u", "t", "i1", 100.0 + 86_401, 1e9))
    assert await store.approval(approval_id="late") is None
    assert await store.approval(approval_id="new") is not None


async def test_state(store: SQLStore) -> None:
    assert await store.get_state(key="commands_hash") is None
    await store.set_state(key="commands_hash", value="abc")
    await store.set_state(key="other", value="1")
    await store.set_state(key="commands_hash", value="def")
    assert await store.get_state(key="commands_hash") == "def"
    assert await store.get_state(key="other") == "1"


# --- lifecycle ----------------------------------------------------------------------------


async def test_closed_store_refuses_work_and_close_is_idempotent(backend: StoreBackend) -> None:
    store = await backend.open()
    await store.close()
    await store.close()
    with pytest.raises(StoreClosedError):
        await store.get_state(key="k")
    with pytest.raises(StoreClosedError):
        await append_items(store, conversation="c", items=turn("hi"))


async def test_everything_survives_a_reopen(backend: StoreBackend) -> None:
    store = await backend.open()
    await append_items(store, conversation="c", items=turn("hi", "hello"))
    await store.set_state(key="k", value="v")
    await store.close()

    reopened = await backend.open()
    try:
        assert await contents(reopened, "c") == ["hi", "hello"]
        assert await reopened.get_state(key="k") == "v"
    finally:
        await reopened.close()
    if isinstance(backend, SQLiteBackend):
        # A clean close checkpoints the WAL into the database file and removes it.
        assert not await asyncio.to_thread(Path(f"{backend.path}-wal").exists)


async def test_two_stores_on_one_database_share_it_safely(backend: StoreBackend) -> None:
    # Like two processes starting at once: one migrates (SQLite: in its write transaction;
    # PostgreSQL: under an advisory lock), then both write concurrently. On SQLite the second
    # writer waits on busy_timeout instead of failing with "database is locked"; on
    # PostgreSQL on the conversation's row.
    async def open_one() -> SQLStore:
        return await backend.open()

    first, second = await asyncio.gather(open_one(), open_one())
    assert sorted([first.migrations_applied, second.migrations_applied]) == [
        (),
        (1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
    ]

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


async def test_latest_conversation_of_a_user_in_a_channel(store: SQLStore) -> None:
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
    store: SQLStore,
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


async def test_a_lone_surrogate_round_trips_through_history(store: SQLStore) -> None:
    """A model can emit one; UTF-8 cannot encode it, so it is stored as a JSON escape."""
    await append_items(store, conversation="c", items=turn("odd \ud800 text", "plain é"))
    assert await contents(store, "c") == ["odd \ud800 text", "plain é"]


async def test_nul_characters_in_chat_text_are_dropped_alike_on_both_databases(
    store: SQLStore,
) -> None:
    """PostgreSQL's TEXT cannot hold NUL; in history (JSON) it is escaped and kept."""
    await store.observe_message(
        conversation="c", message_id="m", author="U\x00", text="a\x00b", keep=5
    )
    assert [(m.author, m.text) for m in await store.observed_messages(conversation="c")] == [
        ("U", "ab")
    ]
    await store.set_channel_setting(channel="C", name="prompt", value="be\x00 brief")
    assert await store.get_channel_setting(channel="C", name="prompt") == "be brief"
    saved = await store.save_file(
        conversation="c", name="a\x00.txt", mime_type="text/plain", data=b"x"
    )
    assert saved.name == "a.txt"
    await append_items(store, conversation="c", items=turn("nul \x00 kept"))
    assert await contents(store, "c") == ["nul \x00 kept"]
