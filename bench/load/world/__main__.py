"""``python -m bench.load.world CONFIG``: the world process (started by ``bench.load.host``).

CONFIG is JSON: ``{"scenario": name, "options": {...}}``. The scenario's module runs the fakes
and the traffic, talking to the bot process over stdin and stdout (``bench.load.protocol``);
the process ends once the bot process closes its stdin.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import sys
from collections.abc import Awaitable, Callable

from bench.load.protocol import BotLink
from bench.load.scenarios import SCENARIOS

Run = Callable[[BotLink, str, argparse.Namespace], Awaitable[None]]


async def _serve(run: Run, name: str, options: argparse.Namespace) -> None:
    await run(await BotLink.open(), name, options)


def main() -> None:
    config = json.loads(sys.argv[1])
    scenario = SCENARIOS[config["scenario"]]
    module = importlib.import_module(f"bench.load.world.{scenario.module}")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(_serve(module.run, scenario.name, argparse.Namespace(**config["options"])))


if __name__ == "__main__":
    main()
