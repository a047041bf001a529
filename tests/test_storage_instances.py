"""Several instances on one database, at the store: leases, orphaned claims, conversation
locks and the shared rate limit. Each test runs on SQLite and on PostgreSQL, and two stores
opened on one database stand for two instances (two connections, or two pools)."""

from __future__ import annotations

import asyncio
import time

import pytest

from storage import Outcome, SQLStore
from tests.stores import StoreBackend

LEASE = 10.0


@pytest.fixture
async def pair(backend: StoreBackend) -> tuple[SQLStore, SQLStore]:
    return await backend.open(), await backend.open()


async def live(backend: StoreBackend, now: float) -> list[str]:
    """The instances whose lease holds at ``now``, read as another process would."""
    rows = await backend.query("SELECT id FROM instances WHERE expires_at >= ? ORDER BY id", (now,))
    return [str(row[0]) for row in rows]


async def test_a_lease_is_new_then_renewed_then_lapsed_after_its_time(
    pair: tuple[SQLStore, SQLStore], backend: StoreBackend
) -> None:
    a, b = pair
    now = time.time()
    assert await a.renew_lease(instance="A", now=now, lease_s=LEASE, info="host 1") is False
    assert await a.renew_lease(instance="A", now=now + 3, lease_s=LEASE) is True
    assert await b.renew_lease(instance="B", now=now, lease_s=LEASE) is False
    assert await live(backend, now + 5) == ["A", "B"]
    assert await live(backend, now + 12) == ["A"]  # B's ran out at now + 10
    # A renewal after the lease ran out says so: what A held may have been taken over.
    assert await a.renew_lease(instance="A", now=now + 14, lease_s=LEASE) is False
    assert await backend.query("SELECT info, started_at FROM instances WHERE id = 'A'") == [
        ("host 1", now)
    ]
    await a.end_lease(instance="A")
    assert await live(backend, now + 14) == []


async def test_orphans_are_the_claims_of_dead_instances_and_each_goes_to_one_adopter(
    pair: tuple[SQLStore, SQLStore],
) -> None:
    a, b = pair
    now = time.time()
    for name, until in (("alive", now + LEASE), ("other", now + LEASE), ("dead", now - 1)):
        await a.renew_lease(instance=name, now=until - LEASE, lease_s=LEASE)
    await a.claim_event(event_id="1", conversation="slack:T:C:1", address="x", owner="alive")
    await a.claim_event(event_id="2", conversation="slack:T:C:2", address="y", owner="dead")
    await a.claim_event(event_id="3", conversation="discord:G:C", address="z", owner="dead")
    await a.claim_event(event_id="4", conversation="slack:T:C:4", owner="gone-long-ago")
    await a.claim_event(event_id="5", conversation="slack:T:C:5")  # no owner: an older version
    await a.claim_event(event_id="6", conversation="slack:T:C:6", owner="dead")
    await a.finish_event(event_id="6", outcome=Outcome.ANSWERED)

    adopted, again = await asyncio.gather(
        a.adopt_orphans(instance="alive", prefix="slack:", now=now, unowned_before=now + 1),
        b.adopt_orphans(instance="other", prefix="slack:", now=now, unowned_before=now + 1),
    )
    taken = sorted(e.event_id for e in adopted + again)
    assert taken == ["2", "4", "5"]  # never 1 (alive), 3 (another platform) or 6 (finished)
    assert not {e.event_id for e in adopted} & {e.event_id for e in again}
    # Adopted, they belong to a live instance: only the other platform's orphan is left.
    adopted = await b.adopt_orphans(instance="alive", prefix="", now=now, unowned_before=now + 1)
    assert [e.event_id for e in adopted] == ["3"]
    assert await b.adopt_orphans(instance="alive", prefix="", now=now, unowned_before=now + 1) == []
    # An unowned claim from after the adopter started is no orphan (it may be running).
    await a.claim_event(event_id="7", conversation="slack:T:C:7")
    assert (
        await a.adopt_orphans(instance="alive", prefix="", now=now, unowned_before=now - 60) == []
    )


async def test_many_adopters_at_once_take_each_orphan_exactly_once(
    pair: tuple[SQLStore, SQLStore],
) -> None:
    a, b = pair
    now = time.time()
    for i in range(40):
        await a.claim_event(event_id=f"e{i}", conversation=f"slack:c{i}", owner="dead")
    for name in ("A", "B", "C", "D"):
        await a.renew_lease(instance=name, now=now, lease_s=LEASE)
    batches = await asyncio.gather(
        *(
            store.adopt_orphans(instance=name, prefix="slack:", now=now, unowned_before=0)
            for store, name in ((a, "A"), (b, "B"), (a, "C"), (b, "D"))
        )
    )
    ids = [e.event_id for batch in batches for e in batch]
    assert sorted(ids) == sorted(f"e{i}" for i in range(40))  # each once, none lost


async def test_a_conversation_lock_is_held_by_one_live_instance(
    pair: tuple[SQLStore, SQLStore],
) -> None:
    a, b = pair
    now = time.time()
    await a.renew_lease(instance="A", now=now, lease_s=LEASE)
    await b.renew_lease(instance="B", now=now, lease_s=LEASE)
    assert await a.lock_conversation(conversation="c", instance="A", now=now)
    assert not await b.lock_conversation(conversation="c", instance="B", now=now)
    assert await a.lock_conversation(conversation="c", instance="A", now=now)  # A's already
    assert await b.lock_conversation(conversation="d", instance="B", now=now)  # others run
    await b.unlock_conversation(conversation="c", instance="B")  # not B's: stays A's
    assert not await b.lock_conversation(conversation="c", instance="B", now=now)
    await a.unlock_conversation(conversation="c", instance="A")
    assert await b.lock_conversation(conversation="c", instance="B", now=now)
    # B dies (its lease runs out): A takes its locks, without B ever letting go.
    assert await a.lock_conversation(conversation="c", instance="A", now=now + LEASE + 1)
    # A clean shutdown gives the locks up at once.
    await a.end_lease(instance="A")
    assert await b.lock_conversation(conversation="c", instance="B", now=now)


async def test_a_lock_whose_release_was_lost_is_taken_after_the_longest_turn(
    pair: tuple[SQLStore, SQLStore],
) -> None:
    a, b = pair
    now = time.time()
    await a.renew_lease(instance="A", now=now, lease_s=LEASE)
    await b.renew_lease(instance="B", now=now, lease_s=LEASE)
    assert await a.lock_conversation(conversation="c", instance="A", now=now - 400)
    # A is alive, but no turn runs 360 s: the lock outlived its turn (its release failed).
    assert not await b.lock_conversation(
        conversation="c", instance="B", now=now, stale_before=now - 500
    )
    assert await b.lock_conversation(
        conversation="c", instance="B", now=now, stale_before=now - 360
    )


async def test_racing_instances_get_a_conversation_lock_once(
    pair: tuple[SQLStore, SQLStore],
) -> None:
    a, b = pair
    now = time.time()
    names = [f"i{n}" for n in range(12)]
    for name in names:
        await a.renew_lease(instance=name, now=now, lease_s=LEASE)
    won = await asyncio.gather(
        *(
            (a if n % 2 else b).lock_conversation(conversation="c", instance=name, now=now)
            for n, name in enumerate(names)
        )
    )
    assert won.count(True) == 1


async def test_the_rate_limit_is_a_sliding_window_shared_by_instances(
    pair: tuple[SQLStore, SQLStore],
) -> None:
    a, b = pair
    now = 1_000.0
    assert await a.hit_rate(key="u", limit=2, window_s=60, now=now) == 0
    assert await b.hit_rate(key="u", limit=2, window_s=60, now=now + 10) == 0
    assert await a.hit_rate(key="u", limit=2, window_s=60, now=now + 20) == pytest.approx(40)
    assert await b.hit_rate(key="v", limit=2, window_s=60, now=now + 20) == 0  # per key
    # A refused event is not counted: the first hit leaves the window at now + 60.
    assert await b.hit_rate(key="u", limit=2, window_s=60, now=now + 60.5) == 0
    assert await a.hit_rate(key="u", limit=2, window_s=60, now=now + 61) == pytest.approx(9)


async def test_concurrent_hits_from_two_instances_never_exceed_the_limit(
    pair: tuple[SQLStore, SQLStore],
) -> None:
    a, b = pair
    now = time.time()
    waits = await asyncio.gather(
        *((a, b)[i % 2].hit_rate(key="u", limit=3, window_s=60, now=now) for i in range(16))
    )
    assert sum(1 for w in waits if w == 0) == 3


async def test_sweeping_drops_old_rate_hits_and_long_dead_instances(
    pair: tuple[SQLStore, SQLStore], backend: StoreBackend
) -> None:
    a, _ = pair
    now = time.time()
    await a.hit_rate(key="old", limit=5, window_s=60, now=now - 120)
    await a.hit_rate(key="new", limit=5, window_s=60, now=now - 1)
    await a.renew_lease(instance="ancient", now=now - 2 * 86_400, lease_s=LEASE)
    await a.renew_lease(instance="recent", now=now - 60, lease_s=LEASE)
    await a.sweep_instances(now=now, rate_window_s=60)
    assert await backend.query("SELECT key FROM rate_hits") == [("new",)]
    assert await backend.query("SELECT id FROM instances") == [("recent",)]
