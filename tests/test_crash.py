"""kill -9 with turns in flight, then a restart: the real ``python -m bot`` process serving Slack
and Discord together (the scenario of ``bench/crash.py``, small)."""

from __future__ import annotations

from pathlib import Path

from bench.crash import run


async def test_kill_9_mid_turn_then_restart_tells_each_user_once(tmp_path: Path) -> None:
    report = await run(turns=4, workdir=tmp_path)

    assert report.in_flight_at_kill == report.at_the_model_at_kill == 4
    assert report.partial_answers_on_screen >= 1  # some answers were visibly cut mid-stream
    assert report.integrity == "ok"
    assert report.unfinished_after_kill == 4 and report.half_written_turns == 0
    assert report.told_once == 4, report
    assert report.told_twice_or_more == report.re_answered == report.lost == 0
    assert report.redeliveries_answered == 0  # Slack's retries after the restart: not answered
    assert report.history_intact and report.clean_exit
    assert report.ok and not report.problems
