"""Shared fixtures. Two guards are autouse: no environment leaks in, no traffic leaks out."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.settings import Settings, prepare_library_environment
from tests.pg_cluster import Cluster, start_cluster
from tests.stores import PostgresBackend, SQLiteBackend, StoreBackend

prepare_library_environment()

from agents import set_tracing_disabled  # noqa: E402

set_tracing_disabled(True)  # no background exporter thread, no uploads, in any test

_ENV_PREFIXES = ("BOT_", "OPENROUTER_", "OR_", "SLACK_", "DISCORD_", "OPEN_METEO", "MAX_", "LOG_")
_ENV_NAMES = {"DATABASE_URL", "OPENAI_API_KEY", "PDF_ENGINE", "WEB_CONCURRENCY"}
_LOCAL_NAMES = {"localhost", "localhost.localdomain", ""}


class OutboundConnectionBlocked(AssertionError):
    pass


def is_local(host: object) -> bool:
    if not isinstance(host, str):
        return False
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def check_address(address: Any) -> None:
    if isinstance(address, tuple) and address and not is_local(address[0]):
        raise OutboundConnectionBlocked(f"tests may only connect to 127.0.0.1, not {address[0]}")


@pytest.fixture(autouse=True)
def _no_outbound_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any connection or DNS lookup that is not to this machine's loopback."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            check_address(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            check_address(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not is_local(host.decode() if isinstance(host, bytes) else host):
            raise OutboundConnectionBlocked(f"tests may not resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own keys and settings never reach a test."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES) or name in _ENV_NAMES:
            monkeypatch.delenv(name, raising=False)


MODEL_CLIENTS = ("openrouter", "litellm")
BOTH_CLIENTS_MODULES = frozenset(
    {
        "tests.test_integration",
        "tests.test_slack",
        "tests.test_slack_home",
        "tests.test_slack_shortcuts",
        "tests.test_discord",
        "tests.test_discord_installs",
        "tests.test_discord_menus",
        "tests.test_documents",
        "tests.test_hostile",
        "tests.test_retention",
        "tests.test_redact_integration",
        "tests.test_reasoning",
        "tests.test_web_search",
    }
)
"""Suites that run the whole bot over the fake OpenRouter: each of their tests runs through
both model paths (``BOT_MODEL_CLIENT``), unless ``--model-client`` picks one."""
MODEL_CLIENT: str | None = None
"""The model path of the running test (None: the setting's default)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--model-client",
        choices=MODEL_CLIENTS,
        default=None,
        help="run every test's model calls through this BOT_MODEL_CLIENT only",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "model_client" not in metafunc.fixturenames:
        return
    chosen = metafunc.config.getoption("--model-client")
    if chosen is not None:
        clients: tuple[str, ...] = (chosen,)
    elif metafunc.module.__name__ in BOTH_CLIENTS_MODULES:
        clients = MODEL_CLIENTS
    else:
        return
    metafunc.parametrize("model_client", clients, indirect=True, scope="function")


@pytest.fixture(autouse=True)
def model_client(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Sets the model path ``make_settings`` gives this test (see ``BOTH_CLIENTS_MODULES``)."""
    global MODEL_CLIENT
    MODEL_CLIENT = getattr(request, "param", None)
    try:
        yield MODEL_CLIENT
    finally:
        MODEL_CLIENT = None


def make_settings(tmp_path: Path, **values: Any) -> Settings:
    """Settings for a test: no .env, a database under tmp_path, loopback-only URLs."""
    defaults: dict[str, Any] = {
        "OPENROUTER_API_KEY": "sk-or-test-key-123456",
        "OPENROUTER_BASE_URL": "http://127.0.0.1:9/api/v1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "OPEN_METEO_URL": "http://127.0.0.1:9",
        "OPEN_METEO_GEOCODING_URL": "http://127.0.0.1:9",
        "BOT_RETRY_BACKOFF": 0,
    }
    if MODEL_CLIENT is not None:
        defaults["BOT_MODEL_CLIENT"] = MODEL_CLIENT
    defaults.update(values)
    return Settings(_env_file=None, **defaults)  # type: ignore[call-arg]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def tmp_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    yield tmp_path


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """The session's PostgreSQL server (see ``tests/pg_cluster.py``), started on first use."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreBackend]:
    """The test's database, once on SQLite and once on PostgreSQL (``tests/stores.py``)."""
    chosen: StoreBackend
    if request.param == "sqlite":
        chosen = SQLiteBackend(tmp_path)
    else:
        postgres = PostgresBackend(request.getfixturevalue("pg_cluster"))
        await postgres.start()
        chosen = postgres
    try:
        yield chosen
    finally:
        await chosen.close()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Any]:
    from storage import open_store

    s = await open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        yield s
    finally:
        await s.close()
