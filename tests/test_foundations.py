"""Settings, conversation keys, log redaction, token budgets."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from bot.events import ConversationKey
from bot.logs import REDACTED, KeyValueFormatter, RedactSecrets
from bot.settings import ConfigError, Settings, database_path, load_settings
from bot.tokens import UNKNOWN_CONTEXT_TOKENS, context_tokens, history_budget
from tests.conftest import OutboundConnectionBlocked, check_address

# --- settings ---------------------------------------------------------------------------------


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    s = load_settings()
    assert s.bot_model == "openrouter/openai/gpt-5-mini"
    assert s.openrouter_base_url == "https://openrouter.ai/api/v1"
    assert s.bot_temperature == 0.2
    assert s.database_url == "sqlite:///data/bot.db"
    assert s.open_meteo_url == "https://api.open-meteo.com"
    assert s.open_meteo_geocoding_url == "https://geocoding-api.open-meteo.com"
    assert s.bot_fallback_models == [] and s.log_level == "INFO"
    assert s.openrouter_api_key is None


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("BOT_TEMPERATURE", "hot", "BOT_TEMPERATURE is invalid"),
        ("BOT_TEMPERATURE", "3", "BOT_TEMPERATURE is invalid"),
        ("DATABASE_URL", "mysql://db/x", "DATABASE_URL is invalid"),
        ("OPENROUTER_BASE_URL", "openrouter.ai", "OPENROUTER_BASE_URL is invalid"),
        ("OPEN_METEO_URL", "https://api.open-meteo.com/v1/forecast", "must be a host only"),
        ("LOG_LEVEL", "chatty", "LOG_LEVEL is invalid"),
        ("BOT_MODEL", "two words", "BOT_MODEL is invalid"),
        ("BOT_REASONING_EFFORT", "extreme", "expected one of low, medium, high"),
    ],
)
def test_invalid_values_fail_with_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert expected in message and "\n" not in message


def test_lists_urls_and_levels_are_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_FALLBACK_MODELS", " openrouter/a/b , openrouter/c/d ,")
    monkeypatch.setenv("OPENROUTER_BASE_URL", "http://127.0.0.1:8080/api/v1/")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.bot_fallback_models == ["openrouter/a/b", "openrouter/c/d"]
    assert s.openrouter_base_url == "http://127.0.0.1:8080/api/v1"
    assert s.log_level == "DEBUG"


def test_missing_key_is_explained() -> None:
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="OPENROUTER_API_KEY is not set"):
        s.require_openrouter_key()


def test_database_path_forms() -> None:
    assert database_path("sqlite:///data/bot.db") == Path("data/bot.db")
    assert database_path("sqlite:////var/lib/bot.db") == Path("/var/lib/bot.db")
    assert database_path("sqlite:///:memory:") is None
    with pytest.raises(ValueError):
        database_path("mysql://x")


def test_secrets_are_never_in_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-v1-supersecret")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert "supersecret" not in repr(s) and "supersecret" not in str(s.model_dump())
    assert s.secrets == ["sk-or-v1-supersecret"]


# --- conversation keys ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["slack:T1:C1:1700000000.000100", "discord:123:456", "console:default"]
)
def test_conversation_key_round_trips(text: str) -> None:
    key = ConversationKey.parse(text)
    assert str(key) == text and ConversationKey.parse(str(key)) == key


@pytest.mark.parametrize("bad", ["slack", "slack:", ":x", "slack::C1"])
def test_conversation_key_rejects_malformed(bad: str) -> None:
    with pytest.raises(ValueError):
        ConversationKey.parse(bad)


# --- logging ------------------------------------------------------------------------------------


def test_secrets_are_redacted_everywhere_in_a_record() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(KeyValueFormatter())
    handler.addFilter(RedactSecrets(["sk-or-v1-abcdef123456", "xoxb-1-2-3-secret"]))
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("key %s used", "sk-or-v1-abcdef123456", extra={"token": "xoxb-1-2-3-secret"})
        try:
            raise RuntimeError("auth failed for sk-or-v1-abcdef123456")
        except RuntimeError:
            logger.exception("boom")
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert "abcdef123456" not in text and "xoxb-1-2-3-secret" not in text
    # message, extra field, and in the traceback both the source line and the exception text
    assert text.count(REDACTED) == 4
    assert "RuntimeError" in text  # the traceback is kept, only the secret is gone


def test_formatter_prints_structured_fields() -> None:
    record = logging.makeLogRecord(
        {"name": "bot.core", "levelname": "INFO", "levelno": 20, "msg": "turn",
         "outcome": "answered", "latency_ms": 12.5}
    )  # fmt: skip
    line = KeyValueFormatter().format(record)
    assert line.endswith("bot.core turn outcome=answered latency_ms=12.5")


# --- context budget ---------------------------------------------------------------------------


def test_context_size_comes_from_the_registry_and_unknown_models_are_safe() -> None:
    assert context_tokens("openrouter/openai/gpt-5-mini") > 100_000
    assert context_tokens("openrouter/nobody/unknown-model-7b") == UNKNOWN_CONTEXT_TOKENS
    assert history_budget("openrouter/nobody/unknown-model-7b", 50_000, 1_000) < 32_000
    assert history_budget("openrouter/openai/gpt-5-mini", 50_000, 1_000) == 50_000
    assert history_budget("openrouter/nobody/unknown-model-7b", 50_000, 10**9) == 0


# --- the test guard itself ------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["192.0.2.1", "openrouter.ai", "10.0.0.1"])
def test_network_guard_blocks_non_loopback(host: str) -> None:
    with pytest.raises(OutboundConnectionBlocked):
        check_address((host, 443))


def test_network_guard_blocks_dns_for_real_hosts() -> None:
    import socket

    with pytest.raises(OutboundConnectionBlocked):
        socket.getaddrinfo("openrouter.ai", 443)
    assert socket.getaddrinfo("127.0.0.1", 80)
