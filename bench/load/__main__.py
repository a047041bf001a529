"""``python -m bench.load --scenario NAME [options]``: see ``bench/load/__init__.py``.

One scenario with one model client runs here: this process hosts the bot, a child process
the world. Several (a group such as ``discord``, ``--model-client both``, ``answers
--platform all``) run one after another, each in a fresh ``python -m bench.load`` process so
that no run inherits another's memory, and their key figures are then printed side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import _shared
from bench.load.figures import SummaryRow
from bench.load.scenarios import ANSWER_PLATFORMS, GROUPS, SCENARIOS

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


def expand(args: argparse.Namespace) -> list[tuple[str, str, list[str]]]:
    """(scenario, model client, extra options) of every run asked for."""
    scenarios = GROUPS.get(args.scenario, [args.scenario])
    clients = MODEL_CLIENTS if args.model_client == "both" else (args.model_client,)
    runs: list[tuple[str, str, list[str]]] = []
    for scenario in scenarios:
        platforms: list[list[str]] = [[]]
        if scenario == "answers" and getattr(args, "platform", None) == "all":
            platforms = [["--platform", p] for p in ANSWER_PLATFORMS]
        for extra in platforms:
            runs.extend((scenario, client, extra) for client in clients)
    return runs


def run_many(argv: list[str], runs: list[tuple[str, str, list[str]]]) -> int:
    """Each run in its own process (the options given, then the run's own: the last wins),
    then the key figures of every run side by side."""
    results: list[tuple[str, str, dict[str, Any] | None, int]] = []
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        for i, (scenario, client, extra) in enumerate(runs):
            label = " ".join([scenario, *extra[1:]])
            print(
                f"\n##### run {i + 1}/{len(runs)}: {label}, BOT_MODEL_CLIENT={client}", flush=True
            )
            out = Path(tmp) / f"{i}.json"
            command = [sys.executable, "-m", "bench.load", *argv, "--scenario", scenario]
            command += ["--model-client", client, *extra, "--summary-json", str(out)]
            code = subprocess.run(command, check=False).returncode
            summary = json.loads(out.read_text()) if out.exists() else None
            results.append((label, client, summary, code))
    print_side_by_side(results)
    return 0 if all(code == 0 for *_, code in results) else 1


def print_side_by_side(results: list[tuple[str, str, dict[str, Any] | None, int]]) -> None:
    """Per scenario (and platform), one column per model client."""
    labels = list(dict.fromkeys(label for label, *_ in results))
    for label in labels:
        columns = [(client, s, code) for lab, client, s, code in results if lab == label]
        title = next((s["summary"]["title"] for _, s, _ in columns if s and s["summary"]), label)
        names: list[str] = []
        cells: dict[tuple[str, str], str] = {}
        targets: dict[str, str] = {}
        for client, summary, code in columns:
            rows = [SummaryRow(**r) for r in (summary or {}).get("summary", {}).get("rows", [])]
            if not rows:
                cells[("(run)", client)] = f"failed (exit status {code})"
                names.append("(run)")
            for summary_row in rows:
                names.append(summary_row.name)
                cells[(summary_row.name, client)] = summary_row.cell()
                targets[summary_row.name] = targets.get(summary_row.name) or summary_row.target
        names = list(dict.fromkeys(names))
        width = max([len(n) for n in names] + [len("BOT_MODEL_CLIENT")])
        colw = max([len(c) for c in cells.values()] + [len(c) for c, _, _ in columns] + [12])
        print(f"\n=== {title}")
        header = "".join(f"  {client:<{colw}}" for client, _, _ in columns)
        print(f"  {'BOT_MODEL_CLIENT':<{width}}{header}  target")
        for name in names:
            row = "".join(f"  {cells.get((name, c), '-'):<{colw}}" for c, _, _ in columns)
            print(f"  {name:<{width}}{row}  {targets.get(name, '')}")


def main() -> None:
    argv = sys.argv[1:]
    args = parse(argv)
    runs = expand(args)
    if len(runs) > 1:
        sys.exit(run_many(argv, runs))
    from bot.settings import prepare_library_environment

    prepare_library_environment()  # before the agent stack is imported: litellm offline, quiet
    if args.event_loop == "uvloop":
        import uvloop

        ok, summary = uvloop.run(run_one(args))
    else:
        ok, summary = asyncio.run(run_one(args))
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps({"ok": ok, "summary": summary}))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
