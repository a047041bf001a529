"""The container files, which cannot be built here (no Docker): what can be checked without
it. The Dockerfile runs the bot as a non-root PID 1 in exec form on a Python pyproject allows,
and its HEALTHCHECK one-liner really tells a healthy bot from an unhealthy one; compose runs two
replicas on a healthy PostgreSQL 15."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import tomllib
from pathlib import Path

import pytest
from aiohttp import web

REPO = Path(__file__).resolve().parent.parent


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's (INSTRUCTION, arguments), continuation lines joined."""
    text = (REPO / "Dockerfile").read_text()
    text = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def _last(instruction: str) -> str:
    return [rest for word, rest in _instructions() if word == instruction][-1]


def test_the_image_runs_the_bot_as_pid_1_and_not_as_root() -> None:
    assert json.loads(_last("CMD")) == ["python", "-m", "bot"]  # exec form: no shell as PID 1
    user = _last("USER").split(":")[0]
    assert user not in ("root", "0")
    assert "ENTRYPOINT" not in dict(_instructions())
    floor = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    image = re.fullmatch(r"python:(\d+)\.(\d+)-slim", _last("FROM"))
    assert image and floor == ">=3.11" and (int(image[1]), int(image[2])) >= (3, 11)
    assert "[dev]" not in _last("RUN") and any(
        "pip install ." in rest for word, rest in _instructions() if word == "RUN"
    )
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".env", ".venv", "data", ".git"} <= set(ignored)


async def test_the_healthcheck_one_liner_tells_healthy_from_not(unused_tcp_port: int) -> None:
    healthcheck = _last("HEALTHCHECK")
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3 :])
    assert command[:2] == ["python", "-c"]
    status = 200

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": status == 200}, status=status)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    try:
        codes = []
        for status in (200, 503):  # noqa: B007 (read by the handler)
            check = await asyncio.create_subprocess_exec(
                sys.executable, *command[1:],
                env={"PORT": str(unused_tcp_port)},
                stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            codes.append(await asyncio.wait_for(check.wait(), 10))
        assert codes[0] == 0 and codes[1] != 0
    finally:
        await runner.cleanup()


def test_compose_runs_two_replicas_on_a_healthy_postgres_15() -> None:
    yaml = pytest.importorskip("yaml")  # PyYAML, installed with litellm
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    db, bot = compose["services"]["db"], compose["services"]["bot"]
    assert db["image"].startswith("postgres:15")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert bot["depends_on"]["db"]["condition"] == "service_healthy"
    assert bot["deploy"]["replicas"] == 2
    assert bot["env_file"] == ".env"
    assert re.fullmatch(r"postgresql://bot:\S+@db:5432/bot", bot["environment"]["DATABASE_URL"])
    grace = int(bot["stop_grace_period"].removesuffix("s"))
    assert grace > 25  # past BOT_SHUTDOWN_GRACE's default
