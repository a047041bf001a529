"""How a tool says that it could not do what was asked, so that its step shows as failed."""

from __future__ import annotations

from agents import RunContextWrapper
from agents.tool_context import ToolContext

from bot.context import TurnContext


def tool_failed(ctx: RunContextWrapper[TurnContext], note: str) -> str:
    """Mark the running tool call as failed (a service down, a bug) and return ``note``, what
    the model reads instead of a result. An answer such as "no place of that name" is no
    failure: the tool did its job."""
    if isinstance(ctx, ToolContext) and isinstance(ctx.context, TurnContext):
        ctx.context.failed_calls.add(ctx.tool_call_id)
    return note
