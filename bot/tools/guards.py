"""Between the model's tool calls and the tools: caps on how many run, and unknown tool names.

Caps: a model may ask for any number of tool calls in one response (one asked for 50 weather
look-ups, 100 Open-Meteo requests), and the Agents SDK runs a response's function calls
concurrently, so counting inside the tools would let whichever call starts first win. The
decision is made once per response instead, in the order the model asked, by ``ToolCallCaps``:
the SDK awaits ``on_llm_end`` before it runs any call of that response. Each tool's input
guardrail then lets its call run, or answers the model with why it did not (the SDK's
"reject_content": no request is made, the run goes on, the model reads the reason).

Unknown names: by default the SDK fails the whole turn on a call to a tool the agent does not
have. ``tool_not_found_message`` is the run's ``tool_error_formatter``: with
``tool_not_found_behavior="return_error_to_model"`` the model is told which tools it has, and
answers.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any

from agents import (
    Agent,
    AgentHooks,
    FunctionTool,
    RunContextWrapper,
    Tool,
    ToolGuardrailFunctionOutput,
    ToolInputGuardrail,
    ToolInputGuardrailData,
)
from agents.items import ModelResponse
from agents.run_config import ToolErrorFormatterArgs
from openai.types.responses import ResponseFunctionToolCall

from bot.context import TurnContext

log = logging.getLogger(__name__)

MAX_LOGGED_NAME = 80


class ToolCallCaps(AgentHooks[TurnContext]):
    """Decides, as each model response arrives, which of its tool calls may run."""

    async def on_llm_end(
        self,
        context: RunContextWrapper[TurnContext],
        agent: Agent[TurnContext],
        response: ModelResponse,
    ) -> None:
        # Calls to tools the agent lacks run nothing (see tool_not_found_message): they do not
        # use up the caps.
        known = {tool.name for tool in agent.tools}
        calls = [
            item.call_id
            for item in response.output
            if isinstance(item, ResponseFunctionToolCall) and item.name in known
        ]
        if not calls:
            return
        budget = context.context.tool_calls
        refused = budget.admit(calls)
        if refused:
            log.warning(
                "tool calls over the cap not run",
                extra={"asked": len(calls), "refused": refused, "turn_total": budget.used},
            )


def _within_caps(data: ToolInputGuardrailData) -> ToolGuardrailFunctionOutput:
    turn = data.context.context
    refusal = (
        turn.tool_calls.refused.get(data.context.tool_call_id)
        if isinstance(turn, TurnContext)
        else None
    )
    if refusal is None:
        return ToolGuardrailFunctionOutput.allow()
    return ToolGuardrailFunctionOutput.reject_content(refusal)


WITHIN_CAPS: ToolInputGuardrail[TurnContext] = ToolInputGuardrail(
    guardrail_function=_within_caps, name="tool_call_caps"
)


def with_call_caps(tool: Tool) -> Tool:
    """``tool`` with the cap check before each call (for the agent, with ``ToolCallCaps``)."""
    if not isinstance(tool, FunctionTool):
        return tool
    guardrails = [*(tool.tool_input_guardrails or []), WITHIN_CAPS]
    return dataclasses.replace(tool, tool_input_guardrails=guardrails)


def tool_not_found_message(
    tool_names: Sequence[str],
) -> Callable[[ToolErrorFormatterArgs[Any]], str | None]:
    """The run's ``tool_error_formatter``: what the model reads after calling a tool that does
    not exist (None keeps the SDK's text for every other kind of tool error)."""
    names = ", ".join(tool_names)

    def message(args: ToolErrorFormatterArgs[Any]) -> str | None:
        if args.kind != "tool_not_found":
            return None
        log.warning(
            "the model called a tool it does not have",
            extra={"tool": args.tool_name[:MAX_LOGGED_NAME]},
        )
        # Its step shows as failed: also for a tool that went away after it was called (an
        # MCP server that dropped while the call waited for its approval).
        if isinstance(args.run_context.context, TurnContext):
            args.run_context.context.failed_calls.add(args.call_id)
        return (
            f"Error: there is no tool named {args.tool_name!r}. The tools you have are: "
            f"{names}. Use one of them, or answer without a tool."
        )

    return message
