"""``python -m bench.load --scenario NAME [options]``: see ``bench/load/__init__.py``.

One scenario with one model client runs here: this process hosts the bot, a child process
the world; or, for a scenario whose world leads (``instances``), this process is the world and
starts the bot processes. Several (a group such as ``discord``, ``--model-client both``,
``answers --platform all``, ``instances --processes 1,2 --database sqlite,postgres``) run one
after another, each in a fresh ``python -m bench.load`` process so that no run inherits
another's memory, and their key figures are then printed side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import _shared
from bench.load.figures import SummaryRow
from bench.load.scenarios import ANSWER_PLATFORMS, GROUPS, SCENARIOS, listed

MODEL_CLIENTS = ("litellm", "openrouter")
COMMON = {
    "scenario",
    "model_client",
    "event_loop",
    "profile",
    "top",
    "profile_out",
    "summary_json",
}
"""Options of the bot process; every other option goes to the world."""


def _common(parser: argparse.ArgumentParser, *, required: bool) -> None:
    names = [*SCENARIOS, *GROUPS]
    parser.add_argument(
        "--scenario",
        choices=names,
        required=required,
        metavar="NAME",
        help="what to run: " + ", ".join(names),
    )
    parser.add_argument(
        "--model-client",
        choices=(*MODEL_CLIENTS, "both"),
        default="openrouter",
        help="BOT_MODEL_CLIENT of the bot (both: one run each, figures side by side)",
    )
    parser.add_argument(
        "--event-loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="the bot process's event loop (BOT_EVENT_LOOP; the bot's default is uvloop)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the bot over the measured blocks"
    )
    parser.add_argument("--top", type=int, default=20, help="functions listed from the profile")
    parser.add_argument("--profile-out", metavar="PATH", help="with --profile: save the stats")
    parser.add_argument("--summary-json", metavar="PATH", help=argparse.SUPPRESS)


def _epilog() -> str:
    lines = ["scenarios:"]
    lines += [f"  {s.name:<20} {s.summary}" for s in SCENARIOS.values()]
    lines += [f"  {g:<20} {', '.join(members)}" for g, members in GROUPS.items()]
    lines.append("python -m bench.load --scenario NAME --help lists the scenario's options.")
    return "\n".join(lines)


def parse(argv: list[str]) -> argparse.Namespace:
    """The scenario first, then its own options (with its own defaults)."""
    first = argparse.ArgumentParser(add_help=False)
    _common(first, required=False)
    known, _ = first.parse_known_args(argv)
    parser = argparse.ArgumentParser(
        prog="python -m bench.load",
        description=(sys.modules["bench.load"].__doc__ or "").splitlines()[0],
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(parser, required=True)
    names = GROUPS.get(known.scenario, [known.scenario]) if known.scenario else []
    if names:
        scenario = SCENARIOS[names[0]]
        scenario.arguments(parser.add_argument_group(f"{known.scenario} options"))
    args = parser.parse_args(argv)
    for name in names:
        problem = SCENARIOS[name].check(args)
        if problem:
            parser.error(problem)
    return args


def world_options(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if k not in COMMON}


# --------------------------------------------------------------------------- one run


async def run_one(args: argparse.Namespace) -> tuple[bool, dict[str, Any] | None]:
    """The run's verdict (the world's) and its key figures."""
    from bench.load.host import serve
    from bench.load.protocol import world_process

    profile = cProfile.Profile() if args.profile else None
    async with world_process(args.scenario, world_options(args)) as world:
        result = await serve(world, model_client=args.model_client, profile=profile)
    if profile is not None:
        _shared.print_profile(
            profile,
            _shared.profile_view(
                ("/slack_bolt/", "slack_bolt"),
                ("/slack_sdk/", "slack_sdk"),
                ("/discord/", "discord.py"),
            ),
            runs=f"{args.scenario}'s measured blocks (the bot's main thread)",
            turns=result.turns,
            top=args.top,
            save_to=args.profile_out,
        )
    return bool(result.done.get("ok")), result.summary


# --------------------------------------------------------------------------- several runs


@dataclass(frozen=True)
class Run:
    """One run of several: its options, and where its figures go in the side-by-side table."""

    scenario: str
    client: str
    extra: list[str]
    """Options of this run (after the ones given: the last wins)."""
    table: str
    """The table its figures go in (one per scenario and platform)."""
    column: str
    header: str = "BOT_MODEL_CLIENT"
    """What the columns of its table differ in."""


def expand(args: argparse.Namespace) -> list[Run]:
    """Every run asked for."""
    scenarios = GROUPS.get(args.scenario, [args.scenario])
    clients = MODEL_CLIENTS if args.model_client == "both" else (args.model_client,)
    runs: list[Run] = []
    for scenario in scenarios:
        if scenario == "instances":
            for database in listed(args.database):
                for processes in listed(args.processes):
                    for client in clients:
                        column = f"{processes} x {database}" + (
                            f" ({client})" if len(clients) > 1 else ""
                        )
                        extra = ["--processes", processes, "--database", database]
                        runs.append(Run(scenario, client, extra, scenario, column, "processes"))
            continue
        platforms: list[list[str]] = [[]]
        if scenario == "answers" and getattr(args, "platform", None) == "all":
            platforms = [["--platform", p] for p in ANSWER_PLATFORMS]
        for extra in platforms:
            table = " ".join([scenario, *extra[1:]])
            runs.extend(Run(scenario, client, extra, table, client) for client in clients)
    return runs


Result = tuple[Run, dict[str, Any] | None, int]
"""A run, its summary (None if it wrote none) and its exit status."""


def run_many(argv: list[str], runs: list[Run]) -> int:
    """Each run in its own process (the options given, then the run's own: the last wins),
    then the key figures of every run side by side."""
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        for i, run in enumerate(runs):
            print(
                f"\n##### run {i + 1}/{len(runs)}: {run.table}, {run.header} {run.column},"
                f" BOT_MODEL_CLIENT={run.client}",
                flush=True,
            )
            out = Path(tmp) / f"{i}.json"
            command = [sys.executable, "-m", "bench.load", *argv, "--scenario", run.scenario]
            command += ["--model-client", run.client, *run.extra, "--summary-json", str(out)]
            code = subprocess.run(command, check=False).returncode
            summary = json.loads(out.read_text()) if out.exists() else None
            results.append((run, summary, code))
    print_side_by_side(results)
    print_scaling(results)
    return 0 if all(code == 0 for *_, code in results) else 1


def print_side_by_side(results: list[Result]) -> None:
    """Per table (scenario and platform), one column per run."""
    tables = list(dict.fromkeys(run.table for run, *_ in results))
    for table in tables:
        columns = [(run, s, code) for run, s, code in results if run.table == table]
        title = next((s["summary"]["title"] for _, s, _ in columns if s and s["summary"]), table)
        header = columns[0][0].header
        names: list[str] = []
        cells: dict[tuple[str, str], str] = {}
        targets: dict[str, str] = {}
        for run, summary, code in columns:
            rows = [SummaryRow(**r) for r in (summary or {}).get("summary", {}).get("rows", [])]
            if not rows:
                cells[("(run)", run.column)] = f"failed (exit status {code})"
                names.append("(run)")
            for summary_row in rows:
                names.append(summary_row.name)
                cells[(summary_row.name, run.column)] = summary_row.cell()
                targets[summary_row.name] = targets.get(summary_row.name) or summary_row.target
        names = list(dict.fromkeys(names))
        width = max([len(n) for n in names] + [len(header)])
        colw = max([len(c) for c in cells.values()] + [len(r.column) for r, _, _ in columns] + [12])
        print(f"\n=== {title}")
        line = "".join(f"  {run.column:<{colw}}" for run, _, _ in columns)
        print(f"  {header:<{width}}{line}  target")
        for name in names:
            row = "".join(f"  {cells.get((name, r.column), '-'):<{colw}}" for r, _, _ in columns)
            print(f"  {name:<{width}}{row}  {targets.get(name, '')}")


def print_scaling(results: list[Result]) -> None:
    """Runs that differ only in their number of bot processes: each one's throughput over the
    one process's (the target: more processes answer more turns a second)."""
    found: dict[tuple[str, str], dict[int, float]] = {}
    for run, summary, _ in results:
        scaling = ((summary or {}).get("summary") or {}).get("scaling")
        if scaling:
            key = (scaling["database"], run.client)
            found.setdefault(key, {})[int(scaling["processes"])] = float(scaling["throughput"])
    lines = []
    for (database, client), by_processes in found.items():
        one = by_processes.get(1)
        for processes, throughput in sorted(by_processes.items()):
            if processes == 1 or not one:
                continue
            ratio = throughput / one
            lines.append(
                f"  {database} ({client}): {processes} processes {throughput:.1f} turns/s vs 1"
                f" process {one:.1f}: x{ratio:.2f}   target > 1: {_shared.verdict(ratio > 1)}"
            )
    if lines:
        print("\nthroughput of N processes over 1 process:", *lines, sep="\n")


def main() -> None:
    argv = sys.argv[1:]
    args = parse(argv)
    runs = expand(args)
    if len(runs) > 1:
        sys.exit(run_many(argv, runs))
    from bot.settings import prepare_library_environment

    prepare_library_environment()  # before the agent stack is imported: litellm offline, quiet
    if SCENARIOS[args.scenario].leads:
        # This process is the world; it starts the bot processes.
        import importlib

        world = importlib.import_module(f"bench.load.world.{SCENARIOS[args.scenario].module}")
        ok, summary = asyncio.run(world.lead(args))
    elif args.event_loop == "uvloop":
        import uvloop

        ok, summary = uvloop.run(run_one(args))
    else:
        ok, summary = asyncio.run(run_one(args))
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps({"ok": ok, "summary": summary}))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
