"""The Agents SDK's ``Session`` protocol over our store, for code that lets the Runner keep memory.

The core does not hand a session to the Runner: the Runner writes history as the run goes, so a
turn that fails half-way would leave a user message or a tool call without its answer. The core
loads a token-fitted window itself and writes each finished turn in one transaction
(``Store.complete_turn``). This class reads and writes the very same rows, so both views agree.
"""

from __future__ import annotations

from typing import Any

from agents.memory.session_settings import SessionSettings

from bot.tokens import estimate_tokens
from storage.base import NewItem, Store

ALL_ITEMS = 1_000_000_000


class StoreSession:
    """One conversation of the store as an SDK session (``session_id`` = conversation key)."""

    def __init__(self, store: Store, conversation: str, *, max_tokens: int = ALL_ITEMS) -> None:
        self.session_id = conversation
        self.session_settings: SessionSettings | None = None
        self._store = store
        self._max_tokens = max_tokens

    async def get_items(self, limit: int | None = None) -> list[Any]:
        rows = await self._store.load_history(
            conversation=self.session_id,
            max_items=limit if limit is not None else ALL_ITEMS,
            max_tokens=self._max_tokens,
        )
        return [row.item for row in rows]

    async def add_items(self, items: list[Any]) -> None:
        rows = [
            NewItem(
                item=dict(item),
                tokens=estimate_tokens(item),
                turn_start=_is_user_message(item),
            )
            for item in items
        ]
        await self._store.append_items(conversation=self.session_id, items=rows)

    async def pop_item(self) -> Any | None:
        return await self._store.pop_last_item(conversation=self.session_id)

    async def clear_session(self) -> None:
        await self._store.forget_conversation(conversation=self.session_id)


def _is_user_message(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and item.get("role") == "user"
        and item.get("type") in (None, "message")
    )
