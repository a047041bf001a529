"""The fakes as the world runs them (a listen backlog for bursts) and the settings that point a
bot at them. Only the world process imports this module."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.fakes.discord import FakeDiscord, FakeGuild, FakeUser, new_snowflake
from tests.fakes.open_meteo import FakeOpenMeteo
from tests.fakes.openrouter import FakeOpenRouter, TextReply, last_user_text
from tests.fakes.slack import FakeSlack

JSONDict = dict[str, Any]

BACKLOG = 4096
"""Listen backlog of the fakes: big enough for a burst of hundreds of connections."""
SECRET = "bench-load-signing-secret-0123456789"
"""The Slack app's signing secret (the fake signs every delivery with it)."""


class LoadOpenRouter(FakeOpenRouter):
    def _site_options(self) -> dict[str, Any]:
        return {"backlog": BACKLOG}


class LoadSlack(FakeSlack):
    """FakeSlack that is not the bottleneck of a burst: a listen backlog for hundreds of
    connections, and deliveries over a session without aiohttp's 100-connection cap (Slack
    delivers from many hosts at once)."""

    def _site_options(self) -> dict[str, Any]:
        return {"backlog": BACKLOG}

    async def _on_started(self) -> None:
        await super()._on_started()
        if self._session is not None:
            await self._session.close()
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=60), connector=aiohttp.TCPConnector(limit=0)
        )


class LoadDiscord(FakeDiscord):
    def _site_options(self) -> dict[str, Any]:
        return {"backlog": BACKLOG}


class LoadOpenMeteo(FakeOpenMeteo):
    def _site_options(self) -> dict[str, Any]:
        return {"backlog": BACKLOG}


def guild_world(
    name: str,
    *,
    channels: Sequence[str],
    threads: Sequence[str] = (),
    users: int = 20,
    bot_name: str = "FakeBot",
    **options: Any,
) -> LoadDiscord:
    """A guild with these channels and threads (under the first channel), the bot and
    ``users`` people; ``options`` go to FakeDiscord (e.g. ``default_limit``)."""
    bot = FakeUser(id=new_snowflake(), username=bot_name, bot=True)
    people = [
        FakeUser(id=new_snowflake(), username=f"user{i}", global_name=f"User {i}")
        for i in range(users)
    ]
    guild = FakeGuild.create(
        name,
        owner=people[0],
        members=[bot, *people],
        channel_names=list(channels),
        thread_names=list(threads),
    )
    return LoadDiscord(bot=bot, guilds=[guild], users=people, **options)


# --------------------------------------------------------------------------- the model's shape

SHAPE_MARK = re.compile(r"\[(\d+)x([0-9.]+)s\]$")
"""A question ending in ``[3x0.010s]`` is answered in 3 chunks 0.010 s apart, whatever the
model's default shape (one model serves several shapes)."""


@dataclass(frozen=True)
class ModelShape:
    """How the fake model answers "echo: <question>": first byte after ``latency`` s, then
    ``chunks`` content deltas ``delay`` s apart (the first one too: FakeOpenRouter waits before
    each)."""

    latency: float
    chunks: int = 1
    delay: float = 0.0

    @property
    def first_chunk_s(self) -> float:
        return self.latency + self.delay

    @property
    def last_chunk_s(self) -> float:
        return self.latency + self.chunks * self.delay

    def describe(self) -> str:
        if self.chunks == 1:
            return f"first byte after {self.latency:.2f} s, the answer in one chunk"
        return (
            f"first byte after {self.latency:.2f} s, the answer in {self.chunks} chunks"
            f" {self.delay:.2f} s apart (first text at {self.first_chunk_s:.2f} s, last at"
            f" {self.last_chunk_s:.2f} s)"
        )

    def mark(self) -> str:
        """The SHAPE_MARK asking a model of another default shape to stream like this one."""
        return f" [{self.chunks}x{self.delay:.3f}s]"

    def responder(self, body: JSONDict) -> TextReply:
        text = last_user_text(body)
        found = SHAPE_MARK.search(text)
        chunks, delay = (int(found[1]), float(found[2])) if found else (self.chunks, self.delay)
        return TextReply(f"echo: {text}", chunks=chunks, delay=delay)


# --------------------------------------------------------------------------- the bot's settings


def openrouter_settings(fake: FakeOpenRouter) -> JSONDict:
    return {"OPENROUTER_API_KEY": fake.api_key, "OPENROUTER_BASE_URL": fake.base_url}


def slack_settings(fake: FakeSlack, *, native: bool = True) -> JSONDict:
    """Slack in HTTP mode (signed ``POST /slack/events``), its Web API on the fake."""
    return {
        "SLACK_BOT_TOKEN": fake.bot_token,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url,
        "SLACK_NATIVE_STREAMING": native,
    }


def discord_settings(fake: FakeDiscord) -> JSONDict:
    return {
        "DISCORD_BOT_TOKEN": fake.token,
        "DISCORD_API_BASE": fake.rest_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
    }


def open_meteo_settings(fake: FakeOpenMeteo) -> JSONDict:
    return {"OPEN_METEO_URL": fake.base_url, "OPEN_METEO_GEOCODING_URL": fake.base_url}
