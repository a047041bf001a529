"""Snowflakes and timestamps shaped like Discord's."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from tests.fakes.discord.constants import DISCORD_EPOCH_MS

_last_snowflake = 0


def new_snowflake(at: float | None = None) -> int:
    """A Discord snowflake for ``at`` (default: now), strictly increasing within this process."""
    global _last_snowflake
    ms = int((time.time() if at is None else at) * 1000)
    value = max((ms - DISCORD_EPOCH_MS) << 22, _last_snowflake + 1)
    _last_snowflake = value
    return value


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard a guild's gateway events go to, by Discord's formula."""
    return (guild_id >> 22) % shard_count


def new_snowflake_on_shard(shard_id: int, shard_count: int) -> int:
    """A new snowflake that, as a guild id, lives on ``shard_id`` (a millisecond or a few later
    than now: the shard is read from the timestamp bits)."""
    value = new_snowflake()
    while shard_of(value, shard_count) != shard_id:
        value = new_snowflake(((value >> 22) + 1.5 + DISCORD_EPOCH_MS) / 1000)
    return value


def snowflake_time(snowflake: int) -> datetime:
    return datetime.fromtimestamp(((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000, UTC)


def iso(snowflake_or_time: int | float) -> str:
    if isinstance(snowflake_or_time, int):
        moment = snowflake_time(snowflake_or_time)
    else:
        moment = datetime.fromtimestamp(snowflake_or_time, UTC)
    return moment.isoformat(timespec="microseconds")


def opt_str(value: int | None) -> str | None:
    return None if value is None else str(value)
