"""Ids and timestamps shaped like Slack's."""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from typing import Final


class _TsClock:
    """Message timestamps like Slack's (``"1700000000.000100"``): wall time, strictly increasing."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            micros = max(int(time.time() * 1_000_000), self._last + 1)
            self._last = micros
        seconds, fraction = divmod(micros, 1_000_000)
        return f"{seconds}.{fraction:06d}"


_CLOCK: Final = _TsClock()
_COUNTER: Final = itertools.count(1)
_ALNUM: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def new_ts() -> str:
    """A fresh message timestamp, unique and increasing across the process."""
    return _CLOCK.next()


def slack_id(prefix: str, length: int = 10) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


def block_id() -> str:
    return "".join(
        secrets.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        for _ in range(5)
    )


def new_event_id() -> str:
    return slack_id("Ev", 10)


def new_trigger_id() -> str:
    head = f"{next(_COUNTER)}{secrets.randbelow(10**9)}"
    return f"{head}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"


def channel_type_of(channel: str) -> str:
    if channel.startswith("D"):
        return "im"
    if channel.startswith("G"):
        return "group"
    return "channel"
