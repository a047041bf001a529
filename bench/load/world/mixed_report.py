"""The mixed world's report: per-message verdicts counted, overhead, the faults injected."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench._shared import dist as _dist
from bench._shared import percentile

JSONDict = dict[str, Any]
Say = Callable[..., None]
TARGET_P99_MS = 50.0


def dist(values: Sequence[float], unit: str = "ms") -> str:
    return _dist(values, unit, ps=(50, 95, 99), count=True)


@dataclass
class Verdicts:
    """The per-message verdicts of a run, counted."""

    turns: list[JSONDict]

    def count(self, verdict: str, platform: str | None = None) -> int:
        return sum(
            1
            for t in self.turns
            if t["verdict"] == verdict and (platform is None or t["platform"] == platform)
        )

    @property
    def lost(self) -> int:
        return self.count("lost") + self.count("partial")

    @property
    def doubled(self) -> int:
        return self.count("doubled")

    def overhead(self, keep: Callable[[JSONDict], bool] = lambda t: True) -> list[float]:
        return [
            float(t["overhead_ms"])
            for t in self.turns
            if "overhead_ms" in t and t["verdict"] in ("answered", "failed") and keep(t)
        ]


def print_verdicts(say: Say, result: JSONDict, outcomes: dict[str, dict[str, int]]) -> Verdicts:
    """The exactly-once part of the report."""
    v = Verdicts(result["turns"])
    n = len(v.turns)
    kinds = Counter(t["kind"] for t in v.turns)
    by_platform = Counter(t["platform"] for t in v.turns)
    say(
        f"  events sent:           {n} (Slack {by_platform['slack']}: "
        f"{kinds['slack-new']} new threads, {kinds['slack-follow-up']} follow-ups, plus"
        f" {result['redeliveries']} redeliveries; Discord {by_platform['discord']}:"
        f" {kinds['discord-channel']} channel mentions, {kinds['discord-thread']} thread"
        f" mentions, {kinds['discord-reply']} replies to an answer);"
        f" {result['users_per_platform']} users per platform"
    )
    for label, verdict in (
        ("answered exactly once", "answered"),
        ("told of a failure", "failed"),
    ):
        say(
            f"  {label + ':':<22} {v.count(verdict):5d}  (Slack {v.count(verdict, 'slack')},"
            f" Discord {v.count(verdict, 'discord')})"
        )
    failures = Counter(t["failure"] for t in v.turns if t["verdict"] == "failed")
    for line, count in failures.most_common():
        say(f"      {count:4d} x {line!r}")
    lost_ok = v.lost == 0
    say(
        f"  lost:                  {v.lost:5d}  (no answer and no failure line: {v.count('lost')};"
        f" only part of the answer: {v.count('partial')})   target 0:"
        f" {'met' if lost_ok else 'NOT met'}"
    )
    say(
        f"  doubled:               {v.doubled:5d}   target 0:"
        f" {'met' if v.doubled == 0 else 'NOT met'}"
    )
    for t in v.turns:
        if t["verdict"] in ("lost", "partial", "doubled"):
            say(
                f"      {t['verdict']}: {t['kind']}, {t['messages']} message(s), model attempts"
                f" {t['attempts']} ({t['model_5xx']} 5xx),"
                f" 429s {t['slack_429'] + t['discord_429']},"
                f" redelivered {t['redelivered']}; last text {t['text']!r}"
            )
    redelivered = [t for t in v.turns if t["redelivered"]]
    say(
        f"  Slack redeliveries:    {len(redelivered)} (acks {result['redelivery_acks']}); of their"
        f" messages {sum(t['verdict'] == 'answered' for t in redelivered)} answered once,"
        f" {sum(t['verdict'] == 'failed' for t in redelivered)} told of a failure,"
        f" {sum(t['verdict'] == 'doubled' for t in redelivered)} doubled; the adapters counted"
        f" {outcomes['slack'].get('duplicate', 0)} Slack and"
        f" {outcomes['discord'].get('duplicate', 0)} Discord duplicates"
    )
    say(f"  adapter outcomes:      {outcomes}")
    return v


def print_faults(say: Say, result: JSONDict, v: Verdicts) -> None:
    statuses = result["model_statuses"]
    fivexx = sum(n for s, n in statuses.items() if s.isdigit() and int(s) >= 500)
    model_n = result["model_requests"]
    touched = sum(1 for t in v.turns if t["model_5xx"])
    say(
        f"  model 5xx injected:    {fivexx} of {model_n} model requests"
        f" ({100 * fivexx / max(model_n, 1):.1f}%; statuses {statuses}); messages that met one:"
        f" {touched}; attempts per message {dist([float(t['attempts']) for t in v.turns], '')}"
    )
    slack_n = result["slack_calls"]
    say(
        f"  Slack 429s injected:   {result['slack_429']} of {slack_n} Web API calls"
        f" ({100 * result['slack_429'] / max(slack_n, 1):.1f}%; {result['slack_429_by_method']});"
        f" messages that met one: {sum(1 for t in v.turns if t['slack_429'])}"
    )
    say(f"  Slack calls by method: {result['slack_calls_by_method']}")
    say(f"  Slack acks:            {result['slack_acks']}")
    say(
        f"  Discord REST:          {result['discord_statuses']}; messages that met a 429:"
        f" {sum(1 for t in v.turns if t['discord_429'])}; gateway connections"
        f" {result['discord_connections']}"
    )
    if result["unattributed"]:
        say(f"  not attributed to a message: {result['unattributed']}")


def on(platform: str) -> Callable[[JSONDict], bool]:
    return lambda t: bool(t["platform"] == platform)


def print_overhead(say: Say, v: Verdicts) -> tuple[bool, float]:
    """Overhead lines; whether the p99 target is met, and the p99."""
    every = v.overhead()
    p99 = percentile(every, 99)
    met = bool(every) and p99 <= TARGET_P99_MS
    say(
        f"  overhead, every ended message:   {dist(every)}   target p99 <="
        f" {TARGET_P99_MS:.0f} ms: {'met' if met else 'NOT met'}"
    )
    say(f"    messages without a fault:      {dist(v.overhead(lambda t: not t['faulted']))}")
    say(f"    messages that met a fault:     {dist(v.overhead(lambda t: t['faulted']))}")
    for platform in ("slack", "discord"):
        say(f"    {platform + ':':<31}{dist(v.overhead(on(platform)))}")
    clean = [t for t in v.turns if not t["faulted"] and "before_model_ms" in t]
    say(
        "      of which, without a fault: delivery (or the previous answer) -> the model request"
        f" reached the fake {dist([float(t['before_model_ms']) for t in clean])}"
    )
    say(
        "                                 the model's last byte -> the final text reached the"
        f" fake {dist([float(t['after_model_ms']) for t in clean])}"
    )
    e2e = [float(t["e2e_ms"]) for t in v.turns if "e2e_ms" in t]
    queued = [float(t["queued_ms"]) for t in v.turns if t.get("queued_ms", 0) > 0]
    say(f"  delivery -> final text (whole):  {dist(e2e)}")
    say(
        f"    behind an earlier message of the same conversation: {len(queued)} messages,"
        f" waited {dist(queued)}"
    )
    return met, p99
