"""Web API arguments as Slack reads them, and its ``{"ok": false}`` errors."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any, Final

from aiohttp import web

from tests.fakes.slack.constants import JSONDict
from tests.fakes.slack.records import Workspace

JSON_PARAMS: Final = frozenset({"prompts", "loading_messages", "view"})
"""Arguments that come JSON-encoded in a form body."""
NOT_EMULATED: Final = ("blocks", "attachments", "chunks")
"""Arguments the bot never sends (Block Kit, legacy attachments, stream chunks): a call with one
is refused with ``invalid_arguments`` rather than half-emulated."""
CHANNEL_ID: Final = re.compile(r"^[CDG][A-Z0-9]+$")


class ApiError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


async def read_params(request: web.Request) -> tuple[JSONDict, str]:
    """Query string, then the body (JSON object or form) on top: how Slack reads arguments."""
    params: JSONDict = dict(request.query)
    ctype = request.content_type if request.can_read_body else ""
    if request.can_read_body:
        if ctype == "application/json":
            try:
                body = await request.json()
            except ValueError:
                body = None
            if isinstance(body, dict):
                params.update(body)
        elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, str):
                    params[key] = value
                elif isinstance(value, web.FileField):
                    params[key] = f"<file {value.filename}>"
    for key in JSON_PARAMS & params.keys():
        value = params[key]
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
    return params, ctype


def bot_workspace(workspace: Workspace | None) -> Workspace:
    if workspace is None:
        raise ApiError("not_allowed_token_type")
    return workspace


def as_str(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def missing(name: str) -> ApiError:
    return ApiError(
        "invalid_arguments",
        response_metadata={"messages": [f"[ERROR] missing required field: {name}"]},
    )


def required(params: JSONDict, name: str) -> str:
    value = as_str(params.get(name))
    if not value:
        raise missing(name)
    return value


def refuse_not_emulated(params: JSONDict) -> None:
    """Refuse a call with an argument the bot never sends (see ``NOT_EMULATED``)."""
    for name in NOT_EMULATED:
        if params.get(name) not in (None, ""):
            raise ApiError(
                "invalid_arguments",
                response_metadata={"messages": [f"[ERROR] {name} is not emulated by this fake"]},
            )


def channel_param(params: JSONDict, name: str) -> str:
    """A conversation id argument (``channel`` or ``channel_id``)."""
    channel = as_str(params.get(name))
    if not channel:
        if name == "channel":
            raise ApiError("channel_not_found")
        raise missing(name)
    if not CHANNEL_ID.match(channel):
        raise ApiError("channel_not_found")
    return channel


def public(message: JSONDict) -> JSONDict:
    """A message as the API returns it (without the fake's own bookkeeping keys)."""
    return {k: v for k, v in message.items() if k != "user_to"}
