"""Requests for approval of a tool call on Discord, and the clicks on their buttons.

- ``DiscordReply.ask_approval`` posts the question where the answer goes, naming (and pinging:
  they have to act) the person who asked, with two buttons: custom ids ``ap:yes:<id>`` and
  ``ap:no:<id>``, the request's id in them. Registered as a ``DynamicItem`` at start, so a
  click reaches the core whichever process receives it.
- A click is answered as every button's is (``clicks``): acked at once, decided through the
  core (which checks who clicked), its outcome told to the clicker alone. The question itself
  is edited by the waiting turn: the buttons go, the outcome shows.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord

from adapters.common.inflight import InFlight
from adapters.discord.clicks import answer_click
from bot.events import Event
from bot.reply import ApprovalRequest, Verdict, approval_outcome

if TYPE_CHECKING:
    from bot.core import Core

log = logging.getLogger(__name__)

CUSTOM_ID = re.compile(r"ap:(?P<answer>yes|no):(?P<id>[0-9a-f]{1,32})")
Clicked = Callable[[discord.Interaction[Any], bool, str], Awaitable[None]]


class ApprovalButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=CUSTOM_ID,
):
    """Approve or Deny under a question: the answer and the request are in its id."""

    def __init__(self, approve: bool, approval_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.success if approve else discord.ButtonStyle.danger,
                label="Approve" if approve else "Deny",
                custom_id=f"ap:{'yes' if approve else 'no'}:{approval_id}",
            )
        )
        self.approve = approve
        self.approval_id = approval_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> ApprovalButton:
        return cls(match["answer"] == "yes", match["id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        clicked: Clicked | None = getattr(interaction.client, "approval_clicked", None)
        if clicked is None:  # a client without approvals: nothing to decide with
            return
        await clicked(interaction, self.approve, self.approval_id)


def question_view(request: ApprovalRequest) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(ApprovalButton(True, request.id))
    view.add_item(ApprovalButton(False, request.id))
    return view


def question_content(request: ApprovalRequest) -> str:
    asker = f"<@{request.requester}>"
    return f"{asker} {request.question}\n-# {request.who_may_answer(asker)}"


def closed_content(request: ApprovalRequest, verdict: Verdict, by: str | None) -> str:
    return f"{request.question}\n-# {approval_outcome(verdict, f'<@{by}>' if by else None)}"


def asker_only(request: ApprovalRequest) -> discord.AllowedMentions:
    """The question pings the person who asked, and nobody else (whatever the arguments say)."""
    return discord.AllowedMentions(
        everyone=False, roles=False, users=[discord.Object(int(request.requester))]
    )


def register(client: discord.Client) -> None:
    """Route clicks on every question's buttons to ``ApprovalButton``."""
    client.add_dynamic_items(ApprovalButton)


class ApprovalClicks:
    """What a click does: ack, decide through the core, tell the clicker."""

    def __init__(self, core: Core, *, inflight: InFlight) -> None:
        self.core = core
        self._inflight = inflight

    async def clicked(
        self, interaction: discord.Interaction[Any], approve: bool, approval_id: str
    ) -> None:
        async def decide(click: Event) -> str:
            decided = await self.core.decide_approval(
                click, approval_id=approval_id, approve=approve
            )
            return decided.text

        await answer_click(interaction, name="approval", inflight=self._inflight, act=decide)
