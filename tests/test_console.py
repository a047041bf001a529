"""The terminal chat and the entry point, run as real processes against the fake OpenRouter."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import aiosqlite
import pytest

from bench._shared import free_port
from bot.approvals import DENIED_TO_MODEL
from bot.core import SHUTDOWN_LINE
from bot.errors import ErrorKind, user_message
from tests.fakes.discord import FakeDiscord
from tests.fakes.openrouter import FakeOpenRouter, HangReply, ToolCallReply
from tests.fakes.pdf import make_pdf
from tests.fakes.slack import BOT_USER_ID, FakeSlack, app_mention
from tests.helpers import wait_healthy
from tests.test_mcp import stdio_server, tool_output, write_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter() as server:
        yield server


def bot_env(tmp_path: Path, fake: FakeOpenRouter | None = None, **extra: str) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PYTHONPATH"] = str(REPO)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'bot.db'}"
    # Loopback only, so a mistake can never reach the internet.
    env["OPEN_METEO_URL"] = "http://127.0.0.1:9"
    env["OPEN_METEO_GEOCODING_URL"] = "http://127.0.0.1:9"
    if fake is not None:
        env["OPENROUTER_API_KEY"] = fake.api_key
        env["OPENROUTER_BASE_URL"] = fake.base_url
    env.update(extra)
    return env


def user_messages(fake: FakeOpenRouter) -> list[str]:
    body = fake.chat_requests[-1].body
    assert body is not None
    return [m["content"] for m in body["messages"] if m["role"] == "user"]


async def run_bot(
    args: list[str], env: dict[str, str], cwd: Path, stdin: str = ""
) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=cwd,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_scripted_chat_answers_each_line_and_keeps_history_across_runs(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    env = bot_env(tmp_path, fake)
    code, out, err = await run_bot(
        ["chat", "--conversation", "proj"], env, tmp_path, "first question\nsecond question\n"
    )
    assert code == 0, err
    assert out.splitlines() == ["echo: first question", "echo: second question"]
    assert fake.api_key not in err

    # A second run with the same conversation name continues it: the model sees the history.
    code, out, err = await run_bot(["chat", "--conversation", "proj"], env, tmp_path, "third\n")
    assert code == 0, err
    assert out.strip() == "echo: third"
    users = user_messages(fake)
    assert users == ["first question", "second question", "third"]

    # Another name is another conversation.
    await run_bot(["chat", "--conversation", "other"], env, tmp_path, "fresh\n")
    users = user_messages(fake)
    assert users == ["fresh"]


async def test_chat_commands_attach_and_tool_progress(fake: FakeOpenRouter, tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("# Launch plan\nShip on Friday.\n", encoding="utf-8")
    fake.enqueue(ToolCallReply.single("get_current_time", {"place": "Europe/Paris"}), "It is late.")
    script = "\n".join(
        [
            "/help",
            "what time is it in Paris?",
            f"/attach {notes}",
            "summarise the file",
            "/usage",
            "/model anthropic/claude-sonnet-4.5",
            "/model",
            "/reset",
            "/bogus",
            "/quit",
            "never sent",
        ]
    )
    code, out, err = await run_bot(["chat"], bot_env(tmp_path, fake), tmp_path, script + "\n")
    assert code == 0, err

    # The terminal's own help: plain text, with its own commands.
    assert "/reset" in out and "/attach <path>" in out.split("What I can do")[1]
    assert "It is late." in out
    assert "[Looking up the time in Europe/Paris…]" in err  # progress goes to stderr when scripted
    assert "Attached notes.md" in out
    sent = user_messages(fake)
    assert "Ship on Friday." in sent[-1] and "summarise the file" in sent[-1]
    assert "2 answers" in out  # /usage counted both answers
    assert "now uses openrouter/anthropic/claude-sonnet-4.5" in out  # no backticks on a terminal
    assert "This channel uses openrouter/anthropic/claude-sonnet-4.5" in out
    assert "forgotten" in out
    assert "Unknown command /bogus" in out
    assert not any("never sent" in str(r.body) for r in fake.chat_requests)


async def test_reset_forgets_the_conversations_documents(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    report = tmp_path / "report.pdf"
    report.write_bytes(make_pdf(["Revenue grew 42 percent."]))
    script = f"/attach {report}\nwhat is this?\n/files\n/reset\n/files\n"
    code, out, err = await run_bot(["chat"], bot_env(tmp_path, fake), tmp_path, script)
    assert code == 0, err
    listed, forgotten, after = out.split("Documents in this conversation")[1].split("\n")[1:4]
    assert listed.startswith("• report.pdf (") and "application/pdf" in listed
    assert forgotten == (
        "Done — I've forgotten this conversation and its 1 document. The next message starts fresh."
    )
    assert after.startswith("No documents in this conversation yet")


async def test_chat_reports_provider_errors_in_one_line(tmp_path: Path) -> None:
    async with FakeOpenRouter(api_key="the-right-key-123456") as server:
        env = bot_env(tmp_path, server, OPENROUTER_API_KEY="a-wrong-key-9876543")
        code, out, err = await run_bot(["chat"], env, tmp_path, "hello\n")
    assert code == 0
    assert out.strip() == "⚠️ " + user_message(ErrorKind.AUTH)
    assert "a-wrong-key-9876543" not in out + err
    assert "Traceback" not in err


async def test_no_platform_configured_says_what_to_set(tmp_path: Path) -> None:
    code, _out, err = await run_bot([], bot_env(tmp_path), tmp_path)
    assert code == 2  # a configuration error
    assert "SLACK_BOT_TOKEN" in err and "DISCORD_BOT_TOKEN" in err
    assert "python -m bot chat" in err
    assert len(err.strip().splitlines()) <= 2, err


async def test_invalid_setting_is_one_clear_line(tmp_path: Path) -> None:
    env = bot_env(tmp_path, BOT_TEMPERATURE="very hot")
    code, _out, err = await run_bot(["chat"], env, tmp_path)
    assert code == 2
    assert err.strip().splitlines() == [
        "Configuration error: BOT_TEMPERATURE is invalid: Input should be a valid number, "
        "unable to parse string as a number (expected a number from 0 to 2)"
    ]


async def test_chat_without_key_says_how_to_get_one(tmp_path: Path) -> None:
    code, _out, err = await run_bot(["chat"], bot_env(tmp_path), tmp_path, "hi\n")
    assert code == 2
    assert "OPENROUTER_API_KEY is not set" in err and "Traceback" not in err


async def test_check_reports_configuration(fake: FakeOpenRouter, tmp_path: Path) -> None:
    env = bot_env(tmp_path, fake, BOT_DAILY_USD_PER_WORKSPACE="5")
    code, out, err = await run_bot(["check"], env, tmp_path)
    assert code == 0, out + err
    assert "database:  ok" in out and "platforms: none" in out and out.strip().endswith("ok")
    assert (
        "limits:    10 messages a minute per user, 32 turns at once, $5.00 a day per workspace, "
        "25 s shutdown grace"
    ) in out
    lease = "lease 15 s, renewed every 5 s"
    assert f"instance:  host-pid-random (BOT_INSTANCE_ID unset); {lease}" in out
    assert fake.api_key not in out + err

    assert "privacy:" not in out  # PII redaction is off unless asked for

    code, out, _ = await run_bot(["check"], bot_env(tmp_path), tmp_path)
    assert code == 2 and "OPENROUTER_API_KEY is not set" in out and "1 problem found" in out


async def test_check_says_pii_redaction_is_on(fake: FakeOpenRouter, tmp_path: Path) -> None:
    env = bot_env(tmp_path, fake, BOT_REDACT_PII="true", BOT_REDACT_PHONE_REGION="gb")
    code, out, err = await run_bot(["check"], env, tmp_path)
    assert code == 0, out + err
    assert "privacy:   PII redaction on (e-mails, phones, cards, IBANs; national phone " in out
    assert "numbers of GB); PDFs are not taken" in out


async def test_env_file_is_read(fake: FakeOpenRouter, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"OPENROUTER_API_KEY={fake.api_key}\nOPENROUTER_BASE_URL={fake.base_url}\n"
        "BOT_MODEL=openrouter/google/gemini-2.5-flash\n",
        encoding="utf-8",
    )
    code, out, err = await run_bot(["chat"], bot_env(tmp_path), tmp_path, "hi\n")
    assert code == 0, err
    assert out.strip() == "echo: hi"
    body = fake.chat_requests[-1].body
    assert body is not None and body["model"] == "google/gemini-2.5-flash"


async def spawn_bot(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    """``python -m bot`` as a separate process, its output piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=cwd,
    )  # fmt: skip


SECRET = "process-test-signing-secret"


def slack_env(
    tmp_path: Path, fake: FakeOpenRouter, slack: FakeSlack, port: int, **extra: str
) -> dict[str, str]:
    """``bot_env`` for Slack's HTTP mode on ``port``, signed with ``SECRET``."""
    return bot_env(
        tmp_path,
        fake,
        SLACK_BOT_TOKEN=slack.bot_token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=slack.api_url,
        PORT=str(port),
        **extra,
    )


def socket_env(
    tmp_path: Path, fake: FakeOpenRouter, slack: FakeSlack, **extra: str
) -> dict[str, str]:
    """``bot_env`` for Slack's Socket Mode against ``slack``."""
    values = {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_APP_TOKEN": slack.app_token,
        "SLACK_API_URL": slack.api_url,
    }
    return bot_env(tmp_path, fake, **(values | extra))


async def test_bot_serves_slack_over_http_until_sigterm(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    """``python -m bot`` as the Procfile runs it: HTTP mode on $PORT, answers, stops cleanly."""
    port = free_port()
    async with FakeSlack() as slack:
        env = slack_env(tmp_path, fake, slack, port)
        code, out, _ = await run_bot(["check"], env, tmp_path)
        assert code == 0 and f"HTTP on port {port}" in out, out

        proc = await spawn_bot(env, tmp_path)
        try:
            await wait_healthy(port)  # the agent stack takes seconds to import
            event = app_mention(f"<@{BOT_USER_ID}> hello from a process")
            url = f"http://127.0.0.1:{port}/slack/events"
            status, _ = await slack.deliver_event(url, SECRET, event)
            assert status == 200
            await slack.wait_for(
                lambda: [m for m in slack.thread("C123", event["ts"]) if m.get("bot_id")], 30
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            out_b, err_b = await asyncio.wait_for(proc.communicate(), 30)
        answer = [m for m in slack.thread("C123", event["ts"]) if m.get("bot_id")]
        assert answer[0]["text"] == "echo: hello from a process"
        assert proc.returncode == 0, err_b.decode()
        logs = out_b.decode() + err_b.decode()
        assert slack.bot_token not in logs and SECRET not in logs and fake.api_key not in logs
        assert "Traceback" not in logs


# ``python -m bot`` with its import of the Agents SDK held until a line comes on stdin ("go",
# or "fail" to make the import fail): the agent stack's loading (in its worker thread) waits for
# the test, and anything that imported the SDK on the way to taking events would wait too, so
# start-up would hang. The wait is in the module's execution, under that module's own lock: a
# finder runs under the global import lock, and waiting there would hold up every import.
HOLD_THE_SDK = """
import importlib.abc, importlib.machinery, runpy, sys

class Held(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        if sys.stdin.readline().strip() == "fail":
            raise ImportError("the Agents SDK is broken (on purpose)")
        module.__loader__ = module.__spec__.loader = self.loader
        self.loader.exec_module(module)

class HoldTheSdk(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "agents":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        spec.loader = Held(spec.loader)
        return spec

sys.meta_path.insert(0, HoldTheSdk())
runpy.run_module("bot", run_name="__main__", alter_sys=True)
"""


async def test_an_event_taken_while_the_agent_stack_loads_is_answered_once_it_has(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    """Slack's listener is up before the agent stack has loaded: /healthz answers (saying it
    loads), an event and its retry are acked at once and the question is claimed ("thinking…"
    shows); once the stack is let through, it is answered, once."""
    port = free_port()
    async with FakeSlack() as slack:
        env = slack_env(tmp_path, fake, slack, port)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", HOLD_THE_SDK,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
        )  # fmt: skip
        assert proc.stdin is not None
        url = f"http://127.0.0.1:{port}"
        try:
            await wait_healthy(port, timeout=60)
            async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz") as resp:
                body = await resp.json()
                assert body["ok"] is True and body["loading"] is True
                assert body["instance"] and body["lease_expires_in_s"] > 0
                assert body["pid"] == proc.pid
            event = app_mention(f"<@{BOT_USER_ID}> early question")
            for retry in (None, 1):
                status, _ = await slack.deliver_event(
                    f"{url}/slack/events", SECRET, event, event_id="Ev0HELD", retry_num=retry
                )
                assert status == 200
            await slack.wait_for(lambda: slack.status("C123", event["ts"]), 10)
            assert not [m for m in slack.thread("C123", event["ts"]) if m.get("bot_id")]
            assert fake.chat_requests == []

            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
            await slack.wait_for(
                lambda: [m for m in slack.thread("C123", event["ts"]) if m.get("bot_id")], 60
            )
            async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz") as resp:
                body = await resp.json()
                assert body["ok"] is True and "loading" not in body
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err_b = await asyncio.wait_for(proc.communicate(), 30)
        answers = [m["text"] for m in slack.thread("C123", event["ts"]) if m.get("bot_id")]
    err = err_b.decode()
    assert answers == ["echo: early question"]
    assert len(fake.chat_requests) == 1
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "answering: the agent stack loaded" in err
    async with aiosqlite.connect(tmp_path / "bot.db") as db:
        rows = await (await db.execute("SELECT status FROM processed_events")).fetchall()
    assert [tuple(r) for r in rows] == [("answered",)]


async def test_an_agent_stack_that_fails_to_load_stops_the_bot_with_exit_1(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    """Slack's listener is up while the stack loads; when the load fails, one line says why
    and the process exits 1, so its supervisor restarts it."""
    port = free_port()
    async with FakeSlack() as slack:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", HOLD_THE_SDK,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=slack_env(tmp_path, fake, slack, port),
            cwd=tmp_path,
        )  # fmt: skip
        try:
            await wait_healthy(port, timeout=60)
        finally:
            _, err_b = await asyncio.wait_for(proc.communicate(b"fail\n"), 60)
    err = err_b.decode()
    assert proc.returncode == 1, err
    assert err.count("the agent stack failed to load") == 1, err
    assert "the Agents SDK is broken (on purpose)" in err
    assert "stopping, as no question can be answered" in err


async def test_slack_without_a_transport_secret_is_one_clear_line(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    env = bot_env(tmp_path, fake, SLACK_BOT_TOKEN="xoxb-1-not-used")
    code, _out, err = await run_bot([], env, tmp_path)
    assert code == 2
    assert err.strip().splitlines() == [
        "Configuration error: SLACK_SIGNING_SECRET is not set: HTTP mode needs it to verify "
        "Slack's requests (or set SLACK_APP_TOKEN for Socket Mode)"
    ]


async def test_bot_serves_discord_until_sigterm(fake: FakeOpenRouter, tmp_path: Path) -> None:
    """``python -m bot`` with a Discord token: gateway session, an answer, /healthz and /metrics
    on $PORT, a clean stop."""
    port = free_port()
    async with FakeDiscord() as discord_fake:
        env = bot_env(
            tmp_path,
            fake,
            DISCORD_BOT_TOKEN=discord_fake.token,
            DISCORD_API_BASE=discord_fake.rest_base,
            DISCORD_GATEWAY_URL=discord_fake.gateway_url,
            PORT=str(port),
        )
        code, out, _ = await run_bot(["check"], env, tmp_path)
        assert code == 0 and "discord:   REST at" in out, out

        proc = await spawn_bot(env, tmp_path)
        try:
            async with asyncio.timeout(60):
                await discord_fake.wait_for_identify()
                await discord_fake.wait_until(lambda: discord_fake.command_syncs)
                await discord_fake.send_user_message(
                    content=f"{discord_fake.bot.mention} hello from a process"
                )
                answer = await discord_fake.wait_for_message()
            # The gateway may deliver (and the bot answer) just before start-up has finished.
            await wait_healthy(port, timeout=10)
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    assert resp.status == 200
                await asyncio.sleep(0.2)  # the turn's metrics land just after its answer
                async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                    metrics = await resp.text()
            assert 'bot_events_total{outcome="answered",platform="discord"} 1.0' in metrics
        finally:
            proc.send_signal(signal.SIGTERM)
            out_b, err_b = await asyncio.wait_for(proc.communicate(), 30)
        assert answer.content == "echo: hello from a process"
        assert proc.returncode == 0, err_b.decode()
        logs = out_b.decode() + err_b.decode()
        assert discord_fake.token not in logs and fake.api_key not in logs
        assert "Traceback" not in logs and "invite it with" in logs


async def test_sigterm_cuts_a_hung_turn_after_the_grace_and_tells_its_user(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    """BOT_SHUTDOWN_GRACE through the real entry point: the turn in flight is cut after the
    grace, its user is told, the claim is closed (a restart will not tell them again), and the
    process exits 0 well inside Heroku's 30 s."""
    fake.enqueue(HangReply())
    port = free_port()
    async with FakeSlack() as slack:
        env = slack_env(tmp_path, fake, slack, port, BOT_SHUTDOWN_GRACE="1")
        proc = await spawn_bot(env, tmp_path)
        try:
            await wait_healthy(port)  # the agent stack takes seconds to import
            event = app_mention(f"<@{BOT_USER_ID}> a question that never ends")
            await slack.deliver_event(f"http://127.0.0.1:{port}/slack/events", SECRET, event)
            await asyncio.wait_for(fake.wait_for_requests(1), 30)
        finally:
            stopped_at = asyncio.get_running_loop().time()
            proc.send_signal(signal.SIGTERM)
            _, err_b = await asyncio.wait_for(proc.communicate(), 30)
        took = asyncio.get_running_loop().time() - stopped_at
        told = [m["text"] for m in slack.thread("C123", event["ts"]) if m.get("bot_id")]
        assert told == [f"_{SHUTDOWN_LINE}_"]
        assert proc.returncode == 0, err_b.decode()
        assert 1.0 <= took < 10, took
    async with aiosqlite.connect(tmp_path / "bot.db") as db:
        rows = await (await db.execute("SELECT status FROM processed_events")).fetchall()
    assert [tuple(r) for r in rows] == [("failed",)]


# --------------------------------------------------------------------------- wrong settings


async def test_check_asks_each_service_whether_it_accepts_its_credential(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    """``check`` with right credentials says so per service; with wrong ones, names each
    variable that was refused and exits 2; it never creates the database, and no secret is
    printed."""
    async with FakeSlack() as slack, FakeDiscord() as discord_fake:
        right = bot_env(
            tmp_path,
            fake,
            SLACK_BOT_TOKEN=slack.bot_token,
            SLACK_APP_TOKEN=slack.app_token,
            SLACK_API_URL=slack.api_url,
            DISCORD_BOT_TOKEN=discord_fake.token,
            DISCORD_API_BASE=discord_fake.rest_base,
            DISCORD_GATEWAY_URL=discord_fake.gateway_url,
        )
        code, out, err = await run_bot(["check"], right, tmp_path)
        assert code == 0, out + err
        assert "openrouter: ok: key accepted" in out
        assert "slack:     ok: SLACK_BOT_TOKEN accepted" in out
        assert "slack:     ok: SLACK_APP_TOKEN accepted" in out
        assert "discord:   ok: DISCORD_BOT_TOKEN accepted" in out

        wrong = right | {
            "OPENROUTER_API_KEY": "sk-or-v1-wrong-SECRET",
            "SLACK_BOT_TOKEN": "xoxb-wrong-SECRET",
            "SLACK_APP_TOKEN": "xapp-wrong-SECRET",
            "DISCORD_BOT_TOKEN": "wrong.discord.SECRET",
        }
        code, out, err = await run_bot(["check"], wrong, tmp_path)
    assert code == 2, out + err
    for name in ("OPENROUTER_API_KEY", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "DISCORD_BOT_TOKEN"):
        assert f"PROBLEM: {name} was refused" in out, out
    assert "4 problems found" in out
    assert "SECRET" not in out + err and "Traceback" not in err
    assert not (tmp_path / "bot.db").exists()  # inspected, never created


async def test_check_says_when_a_service_cannot_be_reached(tmp_path: Path) -> None:
    env = bot_env(
        tmp_path,
        OPENROUTER_API_KEY="sk-or-v1-x",
        OPENROUTER_BASE_URL=f"http://127.0.0.1:{free_port()}/api/v1",
    )
    code, out, _ = await run_bot(["check"], env, tmp_path)
    assert code == 2
    assert "PROBLEM: OPENROUTER_API_KEY not checked: cannot reach 127.0.0.1" in out


async def test_an_empty_variable_turns_a_setting_off_over_dotenv(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    """``SLACK_BOT_TOKEN= python -m bot`` with a token in .env: Slack is off for this run (here
    nothing else is configured, so the bot says so in two lines), not started and crashed."""
    (tmp_path / ".env").write_text(
        "SLACK_BOT_TOKEN=xoxb-from-dotenv\nSLACK_SIGNING_SECRET=s3cret\n", encoding="utf-8"
    )
    env = bot_env(tmp_path, fake, SLACK_BOT_TOKEN="")
    code, _, err = await run_bot([], env, tmp_path)
    assert code == 2, err
    assert err.startswith("No chat platform is configured") and "Traceback" not in err

    code, out, _ = await run_bot(["check"], env, tmp_path)
    assert "platforms: none" in out


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"DATABASE_URL": "postgresql://bot:hunter2@[db.internal:5432/bot"},
            "Configuration error: DATABASE_URL is invalid: invalid PostgreSQL URL: end of string "
            'reached when looking for matching "]" in IPv6 host address in URI: '
            '"postgresql://bot:***@[db.internal:5432/bot" (expected sqlite:///data/bot.db '
            "(relative), sqlite:////abs/path.db (absolute) or "
            "postgresql://user:password@host:5432/dbname)",
        ),
        (
            {"BOT_ADMINS": "U123"},
            "Configuration error: BOT_ADMINS is invalid: 'U123' needs its platform in front, e.g. "
            "slack:U123 (expected comma-separated platform:user_id, e.g. "
            "slack:U012AB,discord:81234)",
        ),
        (
            {"BOT_ALLOWED_CHANNELS": "slack:C1,:C2"},
            "Configuration error: BOT_ALLOWED_CHANNELS is invalid: ':C2' is not platform:id "
            "(e.g. slack:U012AB) (expected comma-separated platform:id, e.g. "
            "slack:C012AB,discord:81234)",
        ),
    ],
)
async def test_configuration_errors_are_one_tidy_line(
    tmp_path: Path, values: dict[str, str], expected: str
) -> None:
    for args in ([], ["check"], ["chat"]):
        code, out, err = await run_bot(args, bot_env(tmp_path, None, **values), tmp_path)
        assert code == 2, (args, out, err)
        assert err.strip().splitlines() == [expected]
        assert "hunter2" not in out + err


def _log_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


async def test_a_refused_slack_app_token_is_one_line_and_exit_2(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    """Socket Mode with a wrong SLACK_APP_TOKEN: not a retry every 10 s forever with a
    traceback each, but one line naming the variable and exit 2 at once."""
    async with FakeSlack() as slack:
        env = socket_env(tmp_path, fake, slack, SLACK_APP_TOKEN="xapp-1-wrong-SECRET")
        started = asyncio.get_running_loop().time()
        code, out, err = await run_bot([], env, tmp_path)
        took = asyncio.get_running_loop().time() - started
        opens = len(slack.calls("apps.connections.open"))
    assert code == 2, err
    assert "Configuration error: SLACK_APP_TOKEN was refused by Slack (invalid_auth)" in err
    assert "Traceback" not in out + err and "SECRET" not in out + err
    assert opens == 1 and took < 60
    noise = [line for line in _log_lines(err) if " INFO " not in line]
    assert len(noise) <= 2, err  # the refusal as Slack said it, and the configuration error
    assert "token` will be unused" not in err


async def test_a_refused_slack_bot_token_is_one_line_and_exit_2(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    """HTTP mode with a wrong SLACK_BOT_TOKEN: checked with auth.test at start, instead of a
    bot that says it runs and answers nobody."""
    async with FakeSlack() as slack:
        env = slack_env(tmp_path, fake, slack, free_port())
        env["SLACK_BOT_TOKEN"] = "xoxb-wrong-SECRET"
        code, out, err = await run_bot([], env, tmp_path)
    assert code == 2, err
    assert "Configuration error: SLACK_BOT_TOKEN was refused by Slack (invalid_auth)" in err
    assert "Traceback" not in out + err and "SECRET" not in out + err
    assert "bot running" not in err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_stops_the_bot_while_it_retries_to_connect(
    fake: FakeOpenRouter, tmp_path: Path, sig: signal.Signals
) -> None:
    """Socket Mode while Slack answers 500: each attempt is one log line (no traceback), and
    SIGTERM or SIGINT stops the process at once although it never got to "running"."""
    async with FakeSlack() as slack:
        slack.fail_next("apps.connections.open", "internal_error", times=100, status=500)
        env = socket_env(tmp_path, fake, slack)
        proc = await spawn_bot(env, tmp_path)
        try:
            await slack.wait_for(lambda: slack.calls("apps.connections.open"), timeout=60)
            await asyncio.sleep(0.5)  # into the pause before the next attempt
        finally:
            stopped_at = asyncio.get_running_loop().time()
            proc.send_signal(sig)
            _, err_b = await asyncio.wait_for(proc.communicate(), 30)
        took = asyncio.get_running_loop().time() - stopped_at
    err = err_b.decode()
    assert proc.returncode == 0, err
    assert took < 10, took
    assert "Traceback" not in err and "bot running" not in err
    assert "stopped before start-up finished" in err
    attempts = [
        line for line in err.splitlines() if "WSS URL" in line or "Failed to connect" in line
    ]
    assert attempts and all("WARNING" in line for line in attempts), err


async def test_a_bot_token_revoked_while_running_turns_healthz_503_with_one_line(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    port = free_port()
    async with FakeSlack() as slack:
        env = slack_env(tmp_path, fake, slack, port)
        proc = await spawn_bot(env, tmp_path)
        try:
            await wait_healthy(port)
            slack.revoke_token(slack.bot_token)
            url = f"http://127.0.0.1:{port}/slack/events"
            for n in range(3):
                event = app_mention(f"<@{BOT_USER_ID}> question {n}")
                await slack.deliver_event(url, SECRET, event)
            await asyncio.sleep(1.0)
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{port}/healthz") as resp,
            ):
                status = resp.status
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err_b = await asyncio.wait_for(proc.communicate(), 30)
    err = err_b.decode()
    assert status == 503, err
    assert err.count("SLACK_BOT_TOKEN was refused by Slack") == 1, err


async def test_chat_help_is_plain_text_for_the_terminal(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    code, out, err = await run_bot(["chat"], bot_env(tmp_path, fake), tmp_path, "/help\n")
    assert code == 0, err
    assert "What I can do" in out and "/attach <path>" in out and "/quit" in out
    assert "*" not in out and "`" not in out


async def test_slack_keeps_answering_when_discord_fails_for_good(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    """Discord closes the gateway with 4004 (authentication failed: the token was reset) while
    both platforms run: Discord is down for good, but Slack keeps answering, /healthz says 503
    and one line says why; SIGTERM still stops the process cleanly."""
    port = free_port()
    async with FakeSlack() as slack, FakeDiscord() as discord_fake:
        env = slack_env(
            tmp_path,
            fake,
            slack,
            port,
            DISCORD_BOT_TOKEN=discord_fake.token,
            DISCORD_API_BASE=discord_fake.rest_base,
            DISCORD_GATEWAY_URL=discord_fake.gateway_url,
        )
        proc = await spawn_bot(env, tmp_path)
        try:
            await wait_healthy(port)  # both platforms up
            await discord_fake.drop_connection(code=4004)
            url = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as http:
                for _ in range(200):
                    async with http.get(f"{url}/healthz") as resp:
                        if resp.status == 503:
                            break
                    await asyncio.sleep(0.05)
                assert resp.status == 503
            event = app_mention(f"<@{BOT_USER_ID}> still there?")
            await slack.deliver_event(f"{url}/slack/events", SECRET, event)
            await slack.wait_for(lambda: slack.bot_messages("C123"), timeout=30)
            assert proc.returncode is None
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err_b = await asyncio.wait_for(proc.communicate(), 30)
    err = err_b.decode()
    assert proc.returncode == 0, err
    assert err.count("discord: its connection failed for good") == 1, err
    assert [m["text"] for m in slack.bot_messages("C123")] == ["echo: still there?"]


async def test_chat_asks_y_n_before_a_tool_that_needs_approval(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    config = write_config(tmp_path, {"notes": stdio_server(require_approval=["delete_note"])})
    fake.enqueue(
        ToolCallReply.single("delete_note", {"topic": "deploys"}, id="call_1"),
        "Deleted it.",
        ToolCallReply.single("delete_note", {"topic": "drafts"}, id="call_2"),
        "Left it.",
    )
    # The line after each question answers its prompt: "y", then an empty line (No).
    script = "delete the deploys note\ny\ndelete the drafts note\n\n"
    env = bot_env(tmp_path, fake, BOT_MCP_CONFIG=config)
    code, out, err = await run_bot(["chat"], env, tmp_path, script)

    assert code == 0, err
    assert 'May I run `notes.delete_note` with topic="deploys"? [y/N] Deleted it.' in out
    assert "deleted deploys" in tool_output(fake.chat_requests[1])
    assert 'with topic="drafts"? [y/N] Left it.' in out
    assert tool_output(fake.chat_requests[3]) == DENIED_TO_MODEL
    assert "[approved]" in err and "[denied]" in err
    assert len(fake.chat_requests) == 4  # each answer line was an answer, not a question
