"""Daily token and cost budgets (``BOT_DAILY_*``): which apply to an event, and the UTC day.

The core refuses a turn once one is spent; ``/usage`` shows how much of each is used today.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.events import Event
from bot.settings import Settings

DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class Budget:
    subject: str
    """Who it is for, as a sentence starts: "You" or "This workspace"."""
    filters: dict[str, str]
    """The ``Store.usage_totals`` filters that select its usage."""
    tokens: int
    """Tokens in + out a day; 0: no token budget."""
    usd: float
    """OpenRouter cost a day; 0: no cost budget."""


def budgets_for(settings: Settings, event: Event) -> list[Budget]:
    """The budgets set for this event's user and workspace (none by default)."""
    found: list[Budget] = []
    if settings.daily_user_tokens or settings.daily_user_usd:
        found.append(
            Budget(
                "You",
                {"user_id": f"{event.platform}:{event.author.id}"},
                settings.daily_user_tokens,
                settings.daily_user_usd,
            )
        )
    if event.workspace and (settings.daily_workspace_tokens or settings.daily_workspace_usd):
        found.append(
            Budget(
                "This workspace",
                {"workspace": event.workspace},
                settings.daily_workspace_tokens,
                settings.daily_workspace_usd,
            )
        )
    return found


def day_start(now: float) -> float:
    """The UTC midnight that began the day of ``now`` (budgets reset at UTC midnight)."""
    return now - now % DAY_S
