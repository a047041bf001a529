"""The mixed world's ledger: the fakes' records read back into what happened to each message.

Model requests are matched to their message by the token every question starts with
(``q000042``); Slack calls by ``thread_ts`` or the ``ts`` of a message an earlier call created;
Discord requests by the message a POST replies to and the message a PATCH edits. Each message
then gets a verdict from the texts in place (``verdict``) and, once it ended, its overhead net
of the waits outside the bot (``Ledger.turn_result``).
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from tests.fakes.discord import FakeDiscord
from tests.fakes.openrouter import FakeOpenRouter, last_user_text
from tests.fakes.slack import FakeSlack

if TYPE_CHECKING:
    from bench.load.world.mixed import Turn

JSONDict = dict[str, Any]

TOKEN = re.compile(r"\bq(\d{6})\b")
"""Every question starts with its turn's token, ``q000042``: model requests map back to it."""
DISCORD_MESSAGES = re.compile(r"^/api/v10/channels/(\d+)/messages(?:/(\d+))?$")


def failure_line(text: str) -> str | None:
    """The failure line closing ``text`` (its last paragraph in italics: ``_..._`` on Slack,
    ``*...*`` on Discord, as the adapters' ``fail`` renders it), or None."""
    last = text.strip().rsplit("\n\n", 1)[-1].strip()
    if len(last) > 2 and last[0] == last[-1] and last[0] in "_*":
        return last[1:-1]
    return None


def verdict(turn: Turn, texts: list[str]) -> str:
    """answered | failed | doubled | partial | lost, from the texts of the turn's messages.

    An answer split over two messages (a full stream continued in a new one) is still one
    answer; the answer twice, an answer and a failure line, or an answer and any other
    message are doubled."""
    if not texts:
        return "lost"
    whole = "".join(texts)
    answers = whole.count(turn.expected) if turn.expected else 0
    failed = any(failure_line(t) is not None for t in texts)
    if answers >= 2 or (answers == 1 and (failed or whole != turn.expected)):
        return "doubled"
    if answers == 1:
        return "answered"
    return "failed" if failed else "partial"


def union_length(intervals: Iterable[tuple[float, float]], lo: float, hi: float) -> float:
    """Total length of the union of ``intervals`` clipped to [lo, hi]."""
    clipped = sorted((max(a, lo), min(b, hi)) for a, b in intervals if b > lo and a < hi)
    total, end = 0.0, lo
    for a, b in clipped:
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


# =========================================================================== the world (child)


class Ledger:
    """What the fakes recorded, attributed to the messages (turns) that caused it."""

    def __init__(self, openrouter: FakeOpenRouter, slack: FakeSlack, discord: FakeDiscord) -> None:
        self.openrouter = openrouter
        self.slack = slack
        self.discord = discord
        self.turns: list[Turn] = []
        self.warmups: list[Turn] = []
        self.by_token: dict[str, Turn] = {}
        # Slack: (channel, root ts) -> the turn answered there now; (channel, message ts) -> turn
        self.slack_thread: dict[tuple[str, str], Turn] = {}
        self.slack_message: dict[tuple[str, str], Turn] = {}
        # Discord: user message id -> turn; bot message id -> turn
        self.discord_user_message: dict[int, Turn] = {}
        self.discord_answer: dict[int, Turn] = {}
        self.discord_answered: list[Turn] = []
        """Turns answered in a channel (not a thread): what replies may continue."""
        self.unattributed: Counter[str] = Counter()
        self.pending_429: dict[tuple[str, ...], float] = {}
        self._calls_seen = 0
        self._discord_seen = 0
        self._discord_open: list[Any] = []
        self._model_seen = 0
        self._model_open: list[Any] = []
        self._finals: dict[str, list[float]] | None = None

    def track(self) -> None:
        """Attribute the fakes' new records to turns (model requests, Slack calls, Discord
        requests), and note when a turn's final text landed."""
        self._track_model()
        self._track_slack()
        self._track_discord()

    def _track_model(self) -> None:
        requests = self.openrouter.requests
        fresh = requests[self._model_seen :]
        self._model_seen = len(requests)
        still_open = []
        for r in [*self._model_open, *fresh]:
            if r.finished_at is None:
                still_open.append(r)
                continue
            if r.body is None:
                continue
            text = last_user_text(r.body)
            tokens = TOKEN.findall(text)
            turn = self.by_token.get(f"q{tokens[-1]}") if tokens else None
            if turn is None:
                turn = next((w for w in self.warmups if text.startswith(w.question)), None)
            if turn is None:
                continue
            status = r.status or 0
            turn.model.append((r.received_at, r.finished_at, status))
            if status == 200 and turn.expected is None:
                turn.expected = f"echo: {text}"
            r.body = None  # seen: let the memory go
        self._model_open = still_open

    def _track_slack(self) -> None:
        calls = self.slack.api_calls
        fresh = calls[self._calls_seen :]
        self._calls_seen = len(calls)
        for call in fresh:
            params = call.params
            channel = str(params.get("channel") or params.get("channel_id") or "")
            thread_ts = str(params.get("thread_ts") or "")
            turn: Turn | None
            target: tuple[str, ...]
            if thread_ts:
                turn = self.slack_thread.get((channel, thread_ts))
                target = (call.method, channel, thread_ts)
            else:
                ts = str(params.get("ts") or "")
                turn = self.slack_message.get((channel, ts))
                target = (call.method, channel, ts)
            if turn is None:
                if call.method != "auth.test":
                    self.unattributed[f"slack {call.method}"] += 1
                continue
            waited_since = self.pending_429.pop(target, None)
            if waited_since is not None:
                turn.limited.append((waited_since, call.at))
            if call.status == 429:
                turn.slack_429 += 1
                self.pending_429[target] = call.at
                continue
            if not call.ok:
                continue
            if call.method in ("chat.postMessage", "chat.startStream"):
                ts = str(call.response.get("ts") or "")
                self.slack_message[(channel, ts)] = turn
                turn.messages.append(ts)
            if call.method.startswith("chat.") and turn.final_at is None and self._complete(turn):
                turn.final_at = call.at

    def _track_discord(self) -> None:
        requests = self.discord.requests
        fresh = requests[self._discord_seen :]
        self._discord_seen = len(requests)
        still_open = []
        for r in [*self._discord_open, *fresh]:
            if r.status is None:
                still_open.append(r)
                continue
            found = DISCORD_MESSAGES.match(r.path)
            if found is None:
                continue
            turn: Turn | None
            target: tuple[str, ...]
            if r.method == "POST" and found[2] is None:
                body = r.body if isinstance(r.body, dict) else {}
                reference = body.get("message_reference") or {}
                replied = reference.get("message_id")
                turn = self.discord_user_message.get(int(replied)) if replied else None
                target = ("POST", r.path, str(replied))
            elif r.method == "PATCH" and found[2] is not None:
                turn = self.discord_answer.get(int(found[2]))
                target = ("PATCH", r.path)
            else:
                continue
            if turn is None:
                self.unattributed[f"discord {r.method}"] += 1
                continue
            waited_since = self.pending_429.pop(target, None)
            if waited_since is not None:
                turn.limited.append((waited_since, r.received_at))
            if r.status == 429:
                turn.discord_429 += 1
                self.pending_429[target] = r.received_at
                continue
            if r.status != 200:
                continue
            if r.method == "POST" and isinstance(r.response, dict):
                message_id = int(r.response["id"])
                self.discord_answer[message_id] = turn
                turn.messages.append(str(message_id))
            if turn.final_at is None and self._complete(turn):
                turn.final_at = r.received_at
                if turn.kind in ("discord-channel", "discord-reply") and turn.expected:
                    self.discord_answered.append(turn)
        self._discord_open = still_open

    def texts(self, turn: Turn) -> list[str]:
        """The texts of the turn's messages now, as the fakes store them."""
        out = []
        for ref in turn.messages:
            if turn.platform == "slack":
                try:
                    out.append(str(self.slack.message(turn.channel, ref).get("text") or ""))
                except LookupError:
                    continue
            else:
                with contextlib.suppress(KeyError):
                    message = self.discord.message(int(ref))
                    if not message.deleted:
                        out.append(message.content)
        return out

    def _complete(self, turn: Turn) -> bool:
        """The turn's final text is in place: the whole answer, or a failure line, with no
        Slack stream left open."""
        if turn.platform == "slack":
            for ts in turn.messages:
                with contextlib.suppress(LookupError):
                    if self.slack.stream(turn.channel, ts).state == "in_progress":
                        return False
        return verdict(turn, self.texts(turn)) in ("answered", "failed", "doubled")

    def results(self, traffic_s: float, extra: JSONDict) -> JSONDict:
        """Per message and in all, what the fakes saw (``extra``: the world's own counts)."""
        per_turn = [self.turn_result(t) for t in self.turns]
        calls = self.slack.api_calls
        model = self.openrouter.requests
        return {
            "traffic_s": traffic_s,
            "turns": per_turn,
            "model_requests": len(model),
            "model_statuses": dict(Counter(str(r.status) for r in model)),
            "slack_calls": len(calls),
            "slack_429": self.slack.random_429s,
            "slack_429_by_method": dict(Counter(c.method for c in calls if c.status == 429)),
            "slack_calls_by_method": dict(Counter(c.method for c in calls)),
            "slack_acks": dict(Counter(str(s) for t in self.turns for s in t.acks)),
            "discord_statuses": dict(
                Counter(f"{r.method} {r.status}" for r in self.discord.requests if r.route)
            ),
            "discord_connections": len(self.discord.connections),
            "unattributed": dict(self.unattributed),
            **extra,
        }

    def turn_result(self, turn: Turn) -> JSONDict:
        texts = self.texts(turn)
        outcome = verdict(turn, texts)
        if outcome in ("answered", "failed") and turn.final_at is None:
            outcome = "partial"  # its text is there, but the request that completed it was not seen
        failure = next((f for t in texts if (f := failure_line(t)) is not None), None)
        attempts = sorted(turn.model)
        faulted = turn.slack_429 + turn.discord_429 + sum(s >= 500 for *_, s in attempts) > 0
        result: JSONDict = {
            "platform": turn.platform,
            "kind": turn.kind,
            "verdict": outcome,
            "failure": failure,
            "faulted": faulted,
            "attempts": len(attempts),
            "model_5xx": sum(1 for *_, s in attempts if s >= 500),
            "slack_429": turn.slack_429,
            "discord_429": turn.discord_429,
            "redelivered": turn.redeliver,
            "messages": len(turn.messages),
            "text": texts[-1][:200] if texts and outcome not in ("answered", "failed") else None,
        }
        if turn.final_at is None:
            return result
        previous = self._previous_final(turn)
        start = max(turn.dispatched, previous or 0.0)
        waits = [(a, b) for a, b, _ in attempts]
        waits += [(a[1], b[0]) for a, b in itertools.pairwise(attempts) if a[2] != 200]
        waits += turn.limited
        external = union_length(waits, start, turn.final_at)
        if attempts:
            result.update(
                before_model_ms=(attempts[0][0] - start) * 1000,
                after_model_ms=(turn.final_at - attempts[-1][1]) * 1000,
            )
        result.update(
            e2e_ms=(turn.final_at - turn.dispatched) * 1000,
            queued_ms=(start - turn.dispatched) * 1000,
            external_ms=external * 1000,
            overhead_ms=(turn.final_at - start - external) * 1000,
        )
        return result

    def _previous_final(self, turn: Turn) -> float | None:
        """When the answer before this one in the same conversation landed, if any."""
        finals = self._finals_by_conversation().get(turn.conversation, [])
        assert turn.final_at is not None
        i = bisect.bisect_left(finals, turn.final_at)
        return finals[i - 1] if i > 0 else None

    def _finals_by_conversation(self) -> dict[str, list[float]]:
        if self._finals is None:
            grouped: dict[str, list[float]] = defaultdict(list)
            for t in self.turns:
                if t.final_at is not None:
                    grouped[t.conversation].append(t.final_at)
            self._finals = {k: sorted(v) for k, v in grouped.items()}
        return self._finals
