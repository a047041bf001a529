"""``python -m tests.fakes.slack --port 8098``: the fake Slack alone, for manual checks."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Sequence

from tests.fakes.slack.server import FakeSlack


async def _serve(port: int) -> None:
    async with FakeSlack(port=port) as fake:
        print(
            f"fake Slack API at {fake.api_url} (bot token {fake.bot_token!r}, "
            f"app token {fake.app_token!r}); Ctrl-C to stop",
            flush=True,
        )
        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.slack", description="Run the fake Slack on 127.0.0.1."
    )
    parser.add_argument("--port", type=int, default=8098)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port))


if __name__ == "__main__":
    main()
