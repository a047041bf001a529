"""Discord's REST wire format: JSON bodies, errors, rate-limit headers."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.discord.constants import REDACTED, JSONDict
from tests.fakes.discord.records import RecordedRequest


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str, errors: JSONDict | None = None):
        super().__init__(message)
        self.status = status
        self.body: JSONDict = {"message": message, "code": code}
        if errors is not None:
            self.body["errors"] = errors


def form_error(path: str, code: str, message: str) -> ApiError:
    """Discord's 50035 ``Invalid Form Body`` with the error nested at ``path`` (dotted)."""
    errors: JSONDict = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(path.split(".")):
        errors = {part: errors}
    return ApiError(400, 50035, "Invalid Form Body", errors)


def unknown(what: str, code: int) -> ApiError:
    return ApiError(404, code, f"Unknown {what}")


@dataclass(slots=True)
class Ctx:
    request: web.Request
    record: RecordedRequest
    body: Any

    def param(self, name: str) -> str:
        return self.request.match_info[name]

    def int_param(self, name: str) -> int:
        value = self.request.match_info[name]
        if not value.isdigit():
            raise ApiError(404, 0, "404: Not Found")
        return int(value)

    def json_object(self) -> JSONDict:
        if self.body is None:
            return {}
        if not isinstance(self.body, dict):
            raise ApiError(400, 50109, "The request body contains invalid JSON.")
        return self.body


Handler = Callable[[Ctx], Awaitable[web.StreamResponse]]


AiohttpHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON response with Discord's exact ``Content-Type: application/json``: discord.py's
    ``json_or_text`` compares the header verbatim, so aiohttp's ``; charset=utf-8`` would make
    it hand every body back as a string."""
    body = json.dumps(data, separators=(",", ":")).encode()
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")


def error_response(exc: ApiError) -> web.Response:
    return json_response(exc.body, status=exc.status)


def rate_headers(limit: int, remaining: int, reset_after: float, bucket: str) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(remaining, 0)),
        "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        "X-RateLimit-Reset-After": f"{reset_after:.3f}",
        "X-RateLimit-Bucket": bucket,
    }


async def read_body(request: web.Request) -> Any:
    """The JSON body (``None`` if there is none). Multipart bodies (file uploads, which the bot
    never sends) are not emulated: refused with a 400 that says so."""
    if request.content_type.startswith("multipart/"):
        raise ApiError(400, 0, "multipart uploads are not emulated by this fake")
    if not request.can_read_body:
        return None
    text = await request.text()
    return json.loads(text) if text.strip() else None


def redact(value: str) -> str:
    scheme, sep, _ = value.partition(" ")
    return f"{scheme} {REDACTED}" if sep else REDACTED
