"""Prometheus metrics of one core: what ``/metrics`` serves (see ``bot.ops``).

A registry per core (not the library's global one), so tests and benchmarks that build several
cores never share counts. Recording is a few dict lookups per turn; rendering happens only when
Prometheus scrapes.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

TURN_BUCKETS = (0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)
MODEL_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 90)


class Metrics:
    def __init__(self) -> None:
        registry = self.registry = CollectorRegistry(auto_describe=True)
        self.events = Counter(
            "bot_events",
            "Messages and commands handled, by platform and outcome "
            "(answered, failed, duplicate, ignored, refused, command)",
            ["platform", "outcome"],
            registry=registry,
        )
        self.errors = Counter(
            "bot_errors",
            "Messages that ended in a failure line, by kind (provider, timeout, rate_limit, ...)",
            ["kind"],
            registry=registry,
        )
        self.model_errors = Counter(
            "bot_model_errors",
            "Failed model attempts by kind, including those a retry or fallback then recovered",
            ["kind"],
            registry=registry,
        )
        self.turn_seconds = Histogram(
            "bot_turn_seconds",
            "Time from taking a message to the end of its answer",
            buckets=TURN_BUCKETS,
            registry=registry,
        )
        self.model_seconds = Histogram(
            "bot_model_call_seconds",
            "One model call, request to last streamed chunk (every attempt)",
            ["outcome"],
            buckets=MODEL_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter("bot_tokens", "Model tokens used", ["direction"], registry=registry)
        self.cost = Counter("bot_cost_usd", "Model cost reported by OpenRouter", registry=registry)
        self.feedback = Counter(
            "bot_feedback",
            "Votes on answers stored (a changed vote counts again), by platform and value "
            "(up, down)",
            ["platform", "value"],
            registry=registry,
        )
        self.approvals = Counter(
            "bot_approvals",
            "Tool calls that asked for approval, by how each ended (approved, denied, expired)",
            ["verdict"],
            registry=registry,
        )
        self.waiting = Gauge(
            "bot_turns_waiting",
            "Turns queued behind their conversation's previous message or a model slot",
            registry=registry,
        )
        self.running = Gauge("bot_turns_running", "Turns running the model now", registry=registry)
        self.instance = Gauge(
            "bot_instance_lease_seconds",
            "Seconds until this instance's lease runs out unless renewed (negative: it has; "
            "other instances treat it as dead)",
            ["instance"],
            registry=registry,
        )

    def watch(
        self,
        waiting: Callable[[], float],
        running: Callable[[], float],
        instance: str,
        lease_left: Callable[[], float],
    ) -> None:
        """Read the queue gauges and the lease from the core at scrape time."""
        self.waiting.set_function(waiting)
        self.running.set_function(running)
        self.instance.labels(instance).set_function(lease_left)

    def render(self) -> bytes:
        """The text exposition format (what ``GET /metrics`` returns)."""
        return generate_latest(self.registry)
