"""``python -m bot`` (run the platforms), ``python -m bot chat`` and ``python -m bot check``.

Start-up imports only light modules, and the platforms take events at once; the agent stack
loads in the background meanwhile (see bot.wiring), and questions wait for it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from bot.helptext import CHAT_HELP, HELP
from bot.loop import run
from bot.settings import EXIT_CONFIG, EXIT_RUNTIME, ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from bot.core import Core
    from bot.credentials import Verdict
    from bot.ops import OpsServer

log = logging.getLogger("bot")
STARTED = time.monotonic()
"""About when the process started (this module is imported first)."""

NO_PLATFORM = (
    "No chat platform is configured: set SLACK_BOT_TOKEN (with SLACK_APP_TOKEN or "
    "SLACK_SIGNING_SECRET) or DISCORD_BOT_TOKEN, in the environment or in .env.\n"
    "To talk to the bot from this terminal instead: python -m bot chat"
)


def _parser() -> argparse.ArgumentParser:
    fields = Settings.model_fields
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        usage="%(prog)s [--workers N] [chat | check] [-h]",
        description=HELP.format(
            model=fields["bot_model"].default, database=fields["database_url"].default
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="run N bot processes sharing PORT (overrides WEB_CONCURRENCY; default 1)",
    )
    # Set by a --workers parent on each worker it starts: which one it is.
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    # The description lists the commands, with what no command does; argparse's list would not.
    sub = parser.add_subparsers(
        dest="command", metavar="command", help=argparse.SUPPRESS, prog="python -m bot"
    )
    chat = sub.add_parser(
        "chat",
        description=CHAT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    chat.add_argument(
        "--conversation",
        default="default",
        metavar="NAME",
        help="keep a separate history under this name (default: %(default)s)",
    )
    sub.add_parser(
        "check",
        description="Check the settings, ask OpenRouter, Slack and Discord whether they accept "
        "their key or token, and say what `python -m bot` would start. Exits 2 on a problem.",
    )
    return parser


async def _chat(settings: Settings, conversation: str) -> int:
    from adapters.console.chat import DIM, PLAIN, ConsoleSession, log_path, run_chat
    from bot.wiring import open_services, start_core

    settings.require_openrouter_key()
    interactive = sys.stdin.isatty()
    async with open_services(settings) as services:
        # The agent stack loads while the user reads the prompt and types.
        core = start_core(services)
        session = ConsoleSession(
            core=core,
            name=conversation,
            interactive=interactive,
            spinner=interactive and sys.stdout.isatty(),
        )
        banner = (
            f"Chatting as conversation '{session.name}' with {settings.bot_model}. "
            "/help for commands, /attach PATH to send a file.\n"
            "Ctrl-C stops an answer; Ctrl-C twice or Ctrl-D quits. "
            f"{DIM}Log lines go to {log_path(settings)}.{PLAIN}"
        )
        try:
            await run_chat(session, sys.stdin, banner=banner)
        finally:
            await core.close()
    return 0


async def _check(settings: Settings) -> int:
    """Print the configuration as the bot would run it, asking each service whether it
    accepts its credential; the database is inspected, never created or migrated."""
    import aiohttp

    from bot.credentials import Verdict, verify_openrouter
    from bot.wiring import platforms_configured
    from storage import inspect_database

    problems = 0

    def show(label: str, verdict: Verdict) -> None:
        nonlocal problems
        problems += not verdict.ok
        print(f"{label:<10} {'ok: ' if verdict.ok else 'PROBLEM: '}{verdict.line}")

    fallbacks = settings.bot_fallback_models
    print(f"model:     {settings.bot_model}", end="")
    print(f" (fallbacks: {', '.join(fallbacks)})" if fallbacks else "")
    configured = [name for name, on in platforms_configured(settings).items() if on]
    async with aiohttp.ClientSession() as http:
        show("openrouter:", await verify_openrouter(settings, http))
        try:
            show("database:", Verdict(True, await inspect_database(settings.database_url)))
        except Exception as exc:
            show("database:", Verdict(False, f"cannot be read ({type(exc).__name__}: {exc})"))
        print(f"weather:   {settings.open_meteo_url}, {settings.open_meteo_geocoding_url}")
        print(f"limits:    {_limits(settings)}")
        if settings.redact_pii:
            print(
                "privacy:   PII redaction on (e-mails, phones, cards, IBANs; national phone "
                f"numbers of {settings.redact_phone_region}); PDFs are not taken"
            )
        show("workers:", _workers(settings))
        lease = settings.lease_s
        print(
            f"instance:  {settings.instance_id or 'host-pid-random (BOT_INSTANCE_ID unset)'}; "
            f"lease {lease:g} s, renewed every {lease / 3:g} s"
        )
        print(f"platforms: {', '.join(configured) or 'none (python -m bot chat still works)'}")
        if "slack" in configured:
            from adapters.slack.credentials import verify_slack

            if settings.slack_app_token is not None:
                print(f"slack:     Socket Mode; Web API at {settings.slack_api_url}")
            elif settings.slack_signing_secret is not None:
                print(
                    f"slack:     HTTP on port {settings.port} of {settings.host} "
                    f"(POST /slack/events); Web API at {settings.slack_api_url}"
                )
            else:
                show(
                    "slack:",
                    Verdict(
                        False, "set SLACK_SIGNING_SECRET (HTTP) or SLACK_APP_TOKEN (Socket Mode)"
                    ),
                )
            for verdict in await verify_slack(settings, http):
                show("slack:", verdict)
        if "discord" in configured:
            from adapters.discord.credentials import verify_discord

            guild = settings.discord_guild_id
            count, ids = settings.discord_shard_count, settings.discord_shard_ids
            shards = (
                "; not sharded (every instance receives every server's events)"
                if count is None
                else f"; shards {', '.join(map(str, ids)) if ids else 'all'} of {count}"
            )
            syncs = count is None or not ids or 0 in ids
            print(
                f"discord:   REST at {settings.discord_api_base}, gateway at "
                f"{settings.discord_gateway_url}{shards}; commands synced "
                + (
                    "by the instance running shard 0"
                    if not syncs
                    else (f"to guild {guild}" if guild else "globally")
                )
            )
            show("discord:", await verify_discord(settings, http))
    print(f"ops:       {_ops(settings, configured)}")
    for verdict in await _mcp_servers(settings):
        show("mcp:", verdict)
    print("ok" if not problems else f"{problems} problem{'s' if problems > 1 else ''} found")
    return EXIT_CONFIG if problems else 0


async def _mcp_servers(settings: Settings) -> list[Verdict]:
    """Each configured MCP server, started and stopped again: how many tools it offers."""
    from bot.credentials import Verdict

    if settings.mcp is None:
        return []
    if not settings.mcp.servers:
        return [Verdict(True, f"{settings.mcp.path}: no servers")]
    from bot.wiring import start_mcp

    hub = await start_mcp(settings)
    assert hub is not None
    verdicts = []
    try:
        for name, status in hub.status.items():
            where = status.config.url or status.config.command
            channels = status.config.channels
            scope = f"; channels {', '.join(channels)}" if channels else "; every channel"
            notes = "".join(f"; {note}" for note in status.notes)
            if status.started:
                count = len(status.tools)
                tools = f"{count} tool{'s' if count != 1 else ''}"
                if status.tools:
                    tools += f" ({', '.join(f'{name}.{tool}' for tool in status.tools)})"
                line = f"{name} ({status.config.transport}, {where}): {tools}"
                verdicts.append(Verdict(True, f"{line}{scope}{notes}"))
            else:
                verdicts.append(Verdict(False, f"{name} ({where}): {status.problem}"))
    finally:
        await hub.close()
    return verdicts


def _ops(settings: Settings, configured: list[str]) -> str:
    slack_http = "slack" in configured and settings.slack_app_token is None
    if not slack_http and not settings.ops_requested:
        return "GET /healthz and /metrics not served (set PORT or BOT_OPS_PORT)"
    where = f"GET /healthz and /metrics on {settings.ops_host} port {settings.ops_port}"
    if slack_http and settings.ops_share_slack_listener:
        where += " (Slack's listener)"
    auth = "a bearer token" if settings.metrics_token else "no token (set BOT_METRICS_TOKEN)"
    return f"{where}; /metrics needs {auth}"


def _workers(settings: Settings) -> Verdict:
    from bot.credentials import Verdict
    from bot.workers import check_workers

    count = settings.workers
    if count == 1:
        return Verdict(True, "1 process (--workers N or WEB_CONCURRENCY=N runs more)")
    try:
        check_workers(settings)
    except ConfigError as exc:
        return Verdict(False, str(exc))
    return Verdict(True, f"{count} processes sharing port {settings.port} (SO_REUSEPORT)")


def _limits(settings: Settings) -> str:
    rate = settings.user_rate_limit
    parts = [
        f"{rate} messages a minute per user" if rate else "no per-user rate limit",
        f"{settings.max_concurrent_turns} turns at once",
    ]
    budgets = [
        (settings.daily_user_tokens, "{:,} tokens a day per user"),
        (settings.daily_user_usd, "${:,.2f} a day per user"),
        (settings.daily_workspace_tokens, "{:,} tokens a day per workspace"),
        (settings.daily_workspace_usd, "${:,.2f} a day per workspace"),
    ]
    parts += [text.format(value) for value, text in budgets if value]
    parts.append(f"{settings.shutdown_grace_s:g} s shutdown grace")
    return ", ".join(parts)


async def _serve(settings: Settings, *, parent: int | None = None) -> int:
    """Run the platforms until a signal, or until they fail; ``parent``: as a ``--workers``
    worker, the pid of the parent, whose death stops this process too."""
    from bot.wiring import open_services, platforms_configured, start_core

    configured = [name for name, on in platforms_configured(settings).items() if on]
    if not configured:
        print(NO_PLATFORM, file=sys.stderr)
        return EXIT_CONFIG
    settings.require_openrouter_key()
    factories: list[Callable[[Core, Settings], Platform]] = []
    # Settings are checked before anything connects or loads.
    if "slack" in configured:
        from adapters.slack import SlackAdapter, require_slack_settings

        require_slack_settings(settings)
        factories.append(SlackAdapter)
    if "discord" in configured:
        from adapters.discord import DiscordAdapter, require_discord_settings

        require_discord_settings(settings)
        factories.append(DiscordAdapter)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Opening the store may wait for a database that is down (PostgreSQL): a signal then still
    # ends the process at once, as nothing runs yet; from here on it stops the bot gently.
    async with open_services(settings) as services:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        orphaned = None
        if parent is not None:
            from bot.workers import stop_when_orphaned

            orphaned = asyncio.create_task(stop_when_orphaned(stop, parent))
        # The agent stack loads in the background from here; the platforms take events at
        # once, and questions wait for it (see bot.core).
        core = start_core(services)
        running: list[Platform] = []
        ops: OpsServer | None = None

        async def start_up() -> None:
            nonlocal ops
            slack_http = "slack" in configured and settings.slack_app_token is None
            # Their own server, unless they are on Slack's events server or not wanted.
            own_ops_server = (
                not settings.ops_share_slack_listener if slack_http else settings.ops_requested
            )
            if own_ops_server:
                from bot.ops import OpsServer

                # Up before the platforms, so /healthz says 503 (not "refused") while starting.
                ops = OpsServer(core)
                await ops.start(
                    settings.ops_host, settings.ops_port, reuse_port=settings.reuse_port
                )
            for name in configured:  # not healthy until every platform has started
                core.health[name] = lambda: False
            # The lease before any event: the other instances must see this one alive.
            await core.instance.start()
            for factory in factories:  # Slack and Discord share this one event loop
                platform = factory(core, settings)
                running.append(platform)  # closed in the end even if its start fails
                await platform.start()

        code = 0
        try:
            # A signal stops start-up too (a platform still connecting or retrying): nothing
            # is in flight yet, so it is simply cancelled.
            if not await _unless_stopped(start_up(), stop):
                log.info("stopped before start-up finished")
                return 0
            log.info(
                "bot running on %s with %s; Ctrl-C or SIGTERM stops it",
                ", ".join(configured),
                settings.bot_model,
            )
            if not await _until_stopped_or_failed(stop, core, running, configured):
                code = EXIT_RUNTIME
            log.info("stopping")
        finally:
            await asyncio.gather(*(p.close() for p in reversed(running)), return_exceptions=True)
            if ops is not None:
                await ops.close()
            await core.close()
            if orphaned is not None:
                orphaned.cancel()
    return code


async def _until_stopped_or_failed(
    stop: asyncio.Event, core: Core, running: Sequence[Platform], names: Sequence[str]
) -> bool:
    """Serve until a signal (True), or until every platform failed for good or the agent stack
    failed to load (False: the supervisor should restart us). A platform that fails while
    another still runs is logged and left down (/healthz says 503): Slack does not stop because
    Discord refused the bot, nor the reverse."""
    stopped = asyncio.create_task(stop.wait())
    loaded = asyncio.create_task(core.loaded())
    failures = {
        asyncio.create_task(p.failed.wait()): name for p, name in zip(running, names, strict=True)
    }
    try:
        pending: set[asyncio.Task[Any]] = {stopped, loaded, *failures}
        while True:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if stopped in done:
                return True
            if loaded in done:
                if loaded.exception() is not None:  # logged with its cause where it failed
                    log.error("stopping, as no question can be answered")
                    return False
                log.info(
                    "answering: the agent stack loaded %.1f s after start",
                    time.monotonic() - STARTED,
                )
            for task in done & failures.keys():
                log.error(
                    "%s: its connection failed for good; the other platforms keep running and "
                    "/healthz reports 503",
                    failures[task],
                )
            if pending.isdisjoint(failures):
                log.error(
                    "every platform connection failed; stopping so the supervisor restarts us"
                )
                return False
    finally:
        for task in (stopped, loaded, *failures):
            task.cancel()


async def _unless_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Run ``work`` unless ``stop`` is set first (then cancel it): did it finish? Its
    exceptions propagate."""
    task = asyncio.create_task(work)
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if task.cancelled():
        return False
    task.result()
    return True


class Platform(Protocol):
    failed: asyncio.Event

    @property
    def healthy(self) -> bool: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # A worker notes its parent at once: if that one is killed, the worker stops by itself.
    parent = os.getppid() if args.worker is not None else None
    try:
        # --workers wins over WEB_CONCURRENCY: given here, it outranks the environment.
        overrides = {} if args.workers is None else {"WEB_CONCURRENCY": args.workers}
        settings = load_settings(**overrides)
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.worker is not None:
        from bot.workers import as_worker

        settings = as_worker(settings, args.worker)
    from bot.logs import setup_logging

    log_file = None
    if args.command == "chat" and sys.stdin.isatty():
        from adapters.console.chat import log_path

        log_file = log_path(settings)  # log lines would interleave with the conversation
    setup_logging(settings.log_level, settings.secrets, file=log_file)
    try:
        if args.command == "chat":
            return run(_chat(settings, args.conversation), settings)
        if args.command == "check":
            return run(_check(settings), settings)
        if settings.workers > 1 and args.worker is None:
            from bot.workers import supervise

            return supervise(settings)  # the workers are each a python -m bot of their own
        return run(_serve(settings, parent=parent), settings)
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
