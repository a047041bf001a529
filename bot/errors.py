"""Turn any failure of a turn into a kind, a retry decision and one short line for the user.

Classification is by duck typing (HTTP status, well-known class names) so it covers litellm's,
openai's and the Agents SDK's exceptions without importing them.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass


class ErrorKind(enum.StrEnum):
    AUTH = "auth"
    QUOTA = "quota"
    RATE_LIMIT = "rate_limit"
    PROVIDER = "provider"
    TIMEOUT = "timeout"
    """No answer in time: nothing for ``BOT_MODEL_TIMEOUT``, or the provider timed out."""
    STALLED = "stalled"
    """The model stopped sending mid-answer (nothing for ``BOT_MODEL_TIMEOUT`` after text)."""
    TURN_TIMEOUT = "turn_timeout"
    """The whole turn (model calls and tools) ran past ``BOT_TURN_TIMEOUT``."""
    TOO_MANY_STEPS = "too_many_steps"
    """``BOT_MAX_TOOL_ROUNDS`` model calls went by without a final answer."""
    CONTEXT_TOO_LONG = "context_too_long"
    BAD_REQUEST = "bad_request"
    CONTENT_POLICY = "content_policy"
    MODEL_NOT_FOUND = "model_not_found"
    TOOL = "tool"
    CUT_OFF = "cut_off"
    """The provider failed (an error, a dropped stream) after part of the answer was shown."""
    USER_RATE_LIMIT = "user_rate_limit"
    """The user sent more than ``BOT_USER_RATE_LIMIT`` messages a minute (not the provider)."""
    UNDELIVERABLE = "undeliverable"
    """The platform refused the answer (channel gone, bot removed, no permission)."""
    BUDGET = "budget"
    """A daily token/cost budget (per user or workspace) is spent."""
    NOT_APPROVED = "not_approved"
    """A tool call waited for its approval past ``BOT_APPROVAL_TIMEOUT``: the turn was cancelled."""
    INTERNAL = "internal"


@dataclass(frozen=True, slots=True)
class Classified:
    kind: ErrorKind
    retryable: bool
    """Worth another attempt at the same model after a pause."""
    try_fallback: bool
    """Worth trying the next model (a different model may well succeed)."""
    retry_after: float | None = None


USER_MESSAGES: dict[ErrorKind, str] = {
    ErrorKind.AUTH: "The bot is misconfigured (the model provider refused its credentials). "
    "Please tell whoever runs it.",
    ErrorKind.QUOTA: "The bot's model account is out of credits. Please tell whoever runs it.",
    ErrorKind.RATE_LIMIT: "The model provider is rate-limiting us right now. "
    "Please try again in a minute.",
    ErrorKind.PROVIDER: "The model provider is having trouble right now. Please try again shortly.",
    ErrorKind.TIMEOUT: "The model took too long to answer. Please try again.",
    ErrorKind.STALLED: "The answer was cut off because the model stopped sending it. "
    "You can ask again.",
    ErrorKind.TURN_TIMEOUT: "The answer took longer than my time limit, so I stopped. "
    "Please try again, perhaps asking for less at once.",
    ErrorKind.TOO_MANY_STEPS: "I needed too many tool steps for that one. "
    "Could you ask more specifically?",
    ErrorKind.CONTEXT_TOO_LONG: "This conversation is too long for the model. "
    "Use /reset to start a fresh one, then ask again.",
    ErrorKind.BAD_REQUEST: "The model provider rejected this request. "
    "Try rephrasing, or /reset if it keeps happening.",
    ErrorKind.CONTENT_POLICY: "The model provider declined to answer this request.",
    ErrorKind.MODEL_NOT_FOUND: "The configured model is not available. "
    "Pick another with /model, or tell whoever runs the bot.",
    ErrorKind.TOOL: "A tool failed while answering. Please try again.",
    ErrorKind.CUT_OFF: "The answer was cut off because the model provider failed mid-answer. "
    "You can ask again.",
    ErrorKind.NOT_APPROVED: "Nobody answered the request to run a tool in time, so I stopped. "
    "Ask again when you can answer it.",
    ErrorKind.INTERNAL: "Something went wrong on my side. Please try again.",
}
"""The line for each kind a model call, a tool or the core can fail with. The admission's
kinds have none: its refusals (``USER_RATE_LIMIT``, ``BUDGET``) are worded where they are made,
with when to try again, and an ``UNDELIVERABLE`` answer has nowhere to be shown."""


CUT_LINES: dict[ErrorKind, str] = {
    ErrorKind.TURN_TIMEOUT: "The answer was cut off because it took longer than my time limit. "
    "You can ask again, perhaps for less at once.",
}
"""Lines for kinds that read differently once part of the answer is on screen."""


def user_message(kind: ErrorKind) -> str:
    return USER_MESSAGES[kind]


def failure_line(kind: ErrorKind, *, shown_text: bool = False) -> str:
    """The one line the user gets for a failed turn; ``shown_text``: part of the answer is
    already on screen, and the line follows it."""
    return (shown_text and CUT_LINES.get(kind)) or USER_MESSAGES[kind]


def turn_failure(exc: BaseException, *, shown_text: bool, turn_timed_out: bool) -> ErrorKind:
    """Why a turn's run failed, as the kind whose line is true for it.

    ``turn_timed_out``: the turn's own cap (``BOT_TURN_TIMEOUT``) fired, whatever the exception
    says (a timeout looks the same from inside). Once text is shown, a timeout means the model
    stopped sending, and a provider error or rate limit means it failed mid-answer.
    """
    if turn_timed_out:
        return ErrorKind.TURN_TIMEOUT
    if "MaxTurnsExceeded" in _names(exc):
        return ErrorKind.TOO_MANY_STEPS
    kind = classify(exc).kind
    if shown_text and kind is ErrorKind.TIMEOUT:
        return ErrorKind.STALLED
    if shown_text and kind in (ErrorKind.PROVIDER, ErrorKind.RATE_LIMIT):
        return ErrorKind.CUT_OFF
    return kind


def _status(exc: BaseException) -> int | None:
    for attr in ("status_code", "status", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    response = getattr(exc, "response", None)
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) else None


def _retry_after(exc: BaseException) -> float | None:
    # litellm keeps the provider's headers in ``litellm_response_headers``; its
    # ``exc.response.headers`` is empty. Plain HTTP errors carry ``headers``.
    response = getattr(exc, "response", None)
    for headers in (
        getattr(exc, "litellm_response_headers", None),
        getattr(exc, "headers", None),
        getattr(response, "headers", None),
    ):
        if not headers:
            continue
        try:
            raw = headers.get("retry-after") or headers.get("Retry-After")
            if raw is not None:
                return float(raw)
        except (TypeError, ValueError, AttributeError):
            continue
    return None


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def classify(exc: BaseException) -> Classified:
    names = _names(exc)
    status = _status(exc)
    text = str(exc).lower()
    if "MidStreamFallbackError" in names:
        return Classified(ErrorKind.PROVIDER, retryable=True, try_fallback=True)
    if "ContextWindowExceededError" in names or "context length" in text:
        return Classified(ErrorKind.CONTEXT_TOO_LONG, retryable=False, try_fallback=True)
    if "ContentPolicyViolationError" in names:
        return Classified(ErrorKind.CONTENT_POLICY, retryable=False, try_fallback=False)
    if "AuthenticationError" in names or "PermissionDeniedError" in names or status in (401, 403):
        return Classified(ErrorKind.AUTH, retryable=False, try_fallback=False)
    if status == 402 or "BudgetExceededError" in names:
        return Classified(ErrorKind.QUOTA, retryable=False, try_fallback=False)
    if "RateLimitError" in names or status == 429:
        return Classified(
            ErrorKind.RATE_LIMIT, retryable=True, try_fallback=True, retry_after=_retry_after(exc)
        )
    if (
        isinstance(exc, TimeoutError | asyncio.TimeoutError)
        or "Timeout" in names
        or "ModelTimeoutError" in names
        or "APITimeoutError" in names
        or status in (408, 504)
    ):
        return Classified(ErrorKind.TIMEOUT, retryable=True, try_fallback=True)
    if "NotFoundError" in names or status == 404:
        return Classified(ErrorKind.MODEL_NOT_FOUND, retryable=False, try_fallback=True)
    if (
        "APIConnectionError" in names
        or "ModelConnectionError" in names
        or (status is not None and status >= 500)
    ):
        return Classified(ErrorKind.PROVIDER, retryable=True, try_fallback=True)
    if "BadRequestError" in names or "UnprocessableEntityError" in names or status in (400, 422):
        return Classified(ErrorKind.BAD_REQUEST, retryable=False, try_fallback=True)
    if "ToolTimeoutError" in names or "ToolError" in names:
        return Classified(ErrorKind.TOOL, retryable=False, try_fallback=False)
    if "APIError" in names or "ServiceUnavailableError" in names:
        return Classified(ErrorKind.PROVIDER, retryable=True, try_fallback=True)
    return Classified(ErrorKind.INTERNAL, retryable=False, try_fallback=False)
