"""Sharding: which gateway session an event goes to, as Discord routes it.

A session that IDENTIFYs with ``"shard": [shard_id, shard_count]`` gets the events of the
guilds with ``(guild_id >> 22) % shard_count == shard_id`` (their READY entry, GUILD_CREATE,
messages, interactions...) and, on shard 0 only, those outside any guild (DMs). A session
without ``shard`` gets everything, as a bot that does not shard does. The latest session per
shard id is the one events are routed to; unsharded, the latest and every other one with its
socket open (processes side by side), an interaction only the latest.
"""

from __future__ import annotations

from tests.fakes.discord.constants import JSONDict
from tests.fakes.discord.payloads import Payloads
from tests.fakes.discord.records import Session

GUILD_OBJECT_EVENTS = frozenset({"GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE"})
"""Events whose ``d`` is the guild itself (its ``id`` is the guild id)."""


def event_guild(event: str, data: JSONDict) -> int | None:
    """The guild an event belongs to, or None (a DM, a DM interaction; or a malformed id, as
    tests of hostile payloads send: routed like a DM)."""
    raw = data.get("guild_id")
    if raw is None and event in GUILD_OBJECT_EVENTS:
        raw = data.get("id")
    try:
        return None if raw is None else int(raw)
    except (TypeError, ValueError):
        return None


class Shards(Payloads):
    """``sessions_for`` an event, and the shard bookkeeping IDENTIFY fills in."""

    def _current_sessions(self, *, side_by_side: bool = False) -> list[Session]:
        """The unsharded session, then the one per shard id, as events are routed to them.

        ``side_by_side``: also every other unsharded session with its socket open, as Discord
        sends each event to every session of the bot (unsharded processes running side by
        side each get all of them); the latest stays first, kept for RESUME while it is down.
        """
        unsharded = [] if self._session is None else [self._session]
        if side_by_side:
            unsharded += [
                s
                for s in self._sessions.values()
                if s.shard is None
                and s is not self._session
                and s.conn is not None
                and not s.invalid
            ]
        return unsharded + [self._shards[i] for i in sorted(self._shards)]

    def sessions_for(self, event: str, data: JSONDict) -> list[Session]:
        """The current sessions Discord would send ``event`` to (an interaction: one, as it
        is answered once)."""
        guild_id = event_guild(event, data)
        side_by_side = event != "INTERACTION_CREATE"
        return [s for s in self._current_sessions(side_by_side=side_by_side) if s.serves(guild_id)]

    def shard_sessions(self) -> dict[int, str]:
        """The current session id per shard id (for tests: who got what, in ``dispatched``)."""
        return {shard_id: session.id for shard_id, session in self._shards.items()}

    def _require_session(self) -> None:
        if self._session is None and not self._shards:
            raise RuntimeError("no gateway session: the client has not identified yet")

    @staticmethod
    def _valid_shard(value: object) -> tuple[int, int] | None:
        """IDENTIFY's ``shard``, if it is ``[shard_id, shard_count]`` with the id in range."""
        if not isinstance(value, list) or len(value) != 2:
            return None
        shard_id, count = value
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return None
        return (shard_id, count) if 0 <= shard_id < count else None

    def _adopt(self, session: Session) -> None:
        """Route events to ``session`` from now on (it replaces the earlier one of its shard)."""
        if session.shard is None:
            self._session = session
        else:
            self._shards[session.shard[0]] = session
