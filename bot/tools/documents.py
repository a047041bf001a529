"""``read_document``: the agent's way into the PDFs of a conversation (see bot/documents.py)."""

from __future__ import annotations

import logging

from agents import RunContextWrapper, function_tool

from bot.context import TurnContext
from bot.tools.failure import tool_failed

logger = logging.getLogger(__name__)


@function_tool
async def read_document(ctx: RunContextWrapper[TurnContext], question: str, document: str) -> str:
    """Answer a question from the PDF documents shared in this conversation.

    Call this for every question about a PDF the user attached, on the turn it arrives or many
    messages later: you do not see the documents' text otherwise, so never answer about them
    from memory. Ask one self-contained question; the answer quotes the documents.

    Args:
        question: The question to answer from the document(s), complete on its own
            (e.g. "What is the total in the March invoice?").
        document: The document's file name (or part of it) when the user means one; an empty
            string to use all documents of this conversation.
    """
    turn = ctx.context
    reader = turn.tools.documents
    if reader is None:
        return tool_failed(ctx, "Documents cannot be read in this setup.")
    try:
        return await reader.ask(
            conversation=turn.conversation,
            channel=turn.channel,
            model=turn.model,
            question=question,
            document=document,
        )
    except Exception:
        logger.exception("read_document failed unexpectedly")
        return tool_failed(
            ctx, "Reading the document failed unexpectedly. Tell the user to try again later."
        )
