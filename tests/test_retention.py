"""BOT_RETENTION_DAYS: the job that deletes old conversations, files and records, against a
real SQLite file and a real PostgreSQL database, and its start in the running bot."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from bot.budgets import day_start
from bot.retention import expire_once, run_retention
from bot.wiring import build_core, open_services
from storage import NewItem, SQLiteStore, SQLStore, UsageRecord
from tests.conftest import make_settings
from tests.helpers import append_items, count_items, eventually
from tests.stores import StoreBackend

DAY = 86_400.0


@pytest.fixture
async def db(backend: StoreBackend) -> SQLStore:
    """A store on SQLite, then on PostgreSQL (``backend`` in ``conftest``)."""
    return await backend.open()


async def add_conversation(store: SQLStore, key: str, *, age_days: float = 0.0) -> None:
    """A conversation with one turn and a file, last active ``age_days`` ago."""
    await append_items(
        store,
        conversation=key,
        items=[NewItem({"role": "user", "content": key}, 5, turn_start=True)],
    )
    await store.save_file(
        conversation=key, name=f"{key}.txt", mime_type="text/plain", data=key.encode()
    )
    async with store._db.transaction() as session:
        await session.execute(
            "UPDATE conversations SET updated_at = ? WHERE key = ?",
            (time.time() - age_days * DAY, key),
        )


def usage(created_at: float) -> UsageRecord:
    return UsageRecord(
        conversation="c",
        channel="C",
        user_id="test:U1",
        model="m",
        input_tokens=10,
        output_tokens=5,
        cost_usd=0.01,
        created_at=created_at,
    )


async def test_the_job_runs_at_once_then_every_interval(
    db: SQLStore, caplog: pytest.LogCaptureFixture
) -> None:
    now = time.time()
    await add_conversation(db, "old", age_days=40)
    await add_conversation(db, "recent", age_days=1)
    for created_at in (now - 40 * DAY, now):
        await db.record_usage(usage(created_at))
    today = await db.usage_totals(since=day_start(now))

    caplog.set_level(logging.INFO, logger="bot.retention")
    job = asyncio.create_task(run_retention(db, 30, interval_s=0.05))
    try:
        await eventually(lambda: runs(caplog))
        # Something that grows old later is deleted by a later run.
        await add_conversation(db, "later", age_days=31)
        await eventually(lambda: any(counts(r)["conversations"] for r in runs(caplog)[1:]))
    finally:
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job

    assert await count_items(db, conversation="recent") == 1
    assert [f.name for f in await db.list_files(conversation="recent")] == ["recent.txt"]
    assert await db.list_files(conversation="old") == []
    assert await db.usage_totals(since=day_start(now)) == today
    assert (await db.usage_totals()).turns == 1
    first, *later = runs(caplog)
    assert first.getMessage() == "retention: deleted what is older than 30 days"
    assert counts(first) == {
        "conversations": 1,
        "files": 1,
        "usage_rows": 1,
        "events": 0,
        "observed": 0,
    }
    assert [counts(r)["conversations"] for r in later if counts(r)["conversations"]] == [1]
    assert await count_items(db, conversation="later") == 0


def runs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The retention job's log lines: one per run."""
    return [r for r in caplog.records if r.name == "bot.retention"]


def counts(record: logging.LogRecord) -> dict[str, int]:
    names = ("conversations", "files", "usage_rows", "events", "observed")
    return {name: getattr(record, name) for name in names}


async def test_a_large_backlog_goes_in_batches_that_never_hold_up_the_loop(
    db: SQLStore,
) -> None:
    """A first run with years of data deletes it in many short transactions: other work on
    the loop (and the store) keeps going meanwhile."""
    old = time.time() - 400 * DAY
    for n in range(300):
        await add_conversation(db, f"c{n}", age_days=400)
    async with db._db.transaction() as session:
        await session.executemany(
            "INSERT INTO usage (conversation, channel, user_id, model, input_tokens,"
            " output_tokens, created_at) VALUES ('c', 'C', 'U', 'm', 1, 1, ?)",
            [(old,)] * 5_000,
        )

    late: list[float] = []
    reads: list[float] = []

    async def ticker() -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.005)
            late.append(time.perf_counter() - started - 0.005)

    async def reader() -> None:
        while True:
            started = time.perf_counter()
            await db.usage_totals(user_id="U")
            reads.append(time.perf_counter() - started)
            await asyncio.sleep(0.005)

    background = [asyncio.create_task(ticker()), asyncio.create_task(reader())]
    try:
        counts = await expire_once(db, 30, batch=50)
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)

    assert counts["conversations"] == 300 and counts["usage_rows"] == 5_000
    assert counts["files"] == 300
    assert (await db.usage_totals()).turns == 0
    assert len(reads) > 3, reads  # the store answered others between batches
    assert max(late) < 0.25, max(late)
    assert max(reads) < 0.5, max(reads)


async def test_the_running_bot_starts_the_job_only_when_retention_is_set(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = await SQLiteStore.open(tmp_path / "bot.db")
    await add_conversation(store, "old", age_days=3)
    await store.close()

    async with open_services(make_settings(tmp_path)) as services:
        core = await build_core(services)
        await core.close()
        assert services.jobs == []  # BOT_RETENTION_DAYS=0: everything is kept

    async with open_services(make_settings(tmp_path, BOT_RETENTION_DAYS=2)) as services:
        caplog.set_level(logging.INFO, logger="bot.retention")
        core = await build_core(services)
        try:
            [run] = await eventually(lambda: runs(caplog))
        finally:
            await core.close()
        assert counts(run)["conversations"] == 1
        assert await count_items(services.store, conversation="old") == 0
        [job] = services.jobs
    assert job.cancelled()  # stopped before the store closed
