"""The event loop the bot runs on: uvloop where it is installed, else asyncio's own.

Each streamed token reaches the bot as its own TCP packet, and on this project's 2-core machines
the loop's own work per packet (the wake-up, the read, the callbacks) was most of an answer's
CPU: uvloop, libuv under asyncio's API, does that work in C and cut a 500-packet stream's CPU
by about 40% (bench: ``python -m bench.load --scenario answers``). ``BOT_EVENT_LOOP=asyncio``
runs on the standard loop instead (uvloop has no Windows build).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from bot.settings import Settings

T = TypeVar("T")
log = logging.getLogger(__name__)


def run(main: Coroutine[Any, Any, T], settings: Settings) -> T:
    """``asyncio.run(main)`` on the loop ``settings.event_loop`` names."""
    if settings.event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            log.info("uvloop is not installed; running on asyncio's own event loop")
        else:
            return uvloop.run(main)
    return asyncio.run(main)
