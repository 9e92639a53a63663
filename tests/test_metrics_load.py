"""Offered and achieved load: offered counts only the runs the plan made due (not the rest of a plan a stop cut
off), achieved divides the runs submitted by the time they were really being submitted."""

from __future__ import annotations

from pathlib import Path

import pytest

from stressor.metrics import Metrics
from stressor.profile import Profile, parse_profile
from stressor.report.results import offered_load
from stressor.timestamps import NS_PER_S, ClockAnchor

T0 = 1_000 * NS_PER_S


def plan(seconds: int, rate: str) -> Profile:
    return parse_profile({"stages": [{"duration": f"{seconds}s", "rate": rate}]}, "load.toml", Path())


def batch(metrics: Metrics, due_s: float, answered_s: float | None, runs: int = 1) -> None:
    """One batch due at ``due_s``, its create answered at ``answered_s`` (None: it failed)."""
    metrics.planned_runs += runs
    due = T0 + round(due_s * NS_PER_S)
    metrics.record_batch_start(due, due)
    if answered_s is not None:
        metrics.record_submit(due, T0 + round(answered_s * NS_PER_S))
        metrics.submitted_runs += runs


def test_a_breaker_stop_offers_only_what_became_due() -> None:
    # A 20 s plan at 10 batches/s, stopped by the breaker 2 s in: 21 batches were due (the last one refused at
    # the trip), standing for the plan's first 2.1 s; the engine counts the 179 others planned, never due.
    metrics = Metrics(ClockAnchor.now())
    for i in range(20):
        batch(metrics, i / 10, None)
    metrics.planned_runs += 1 + 179
    metrics.record_not_started("breaker", 180)  # the batch refused at the trip, and the rest of the plan
    metrics.never_due_runs, metrics.plan_ran_s = 179, 2.1
    load = offered_load(metrics, plan(20, "10/s"), elapsed_s=7.0).to_json()
    assert load["offered_runs_per_s"] == pytest.approx(10.0)  # not 200 planned runs over 7 s elapsed (28.6/s)


def test_a_throttled_run_achieves_less_than_it_offered() -> None:
    # 30 batches due over 3 s, but the server's limit stretched their creates over 6 s.
    metrics = Metrics(ClockAnchor.now())
    for i in range(30):
        batch(metrics, i / 10, 0.2 + i * 0.2, runs=2)
    load = offered_load(metrics, plan(3, "10/s"), elapsed_s=8.0).to_json()
    assert load["offered_runs_per_s"] == pytest.approx(20.0)
    assert load["achieved_runs_per_s"] == pytest.approx(60 / 6.0)


def test_an_unthrottled_run_achieves_what_it_offered() -> None:
    metrics = Metrics(ClockAnchor.now())
    for i in range(30):
        batch(metrics, i / 10, i / 10 + 0.005, runs=2)
    load = offered_load(metrics, plan(3, "10/s"), elapsed_s=4.0).to_json()
    assert load["offered_runs_per_s"] == pytest.approx(20.0)
    # the last create was answered at 2.905 s, within the 3 s the plan offered them over: what was offered
    assert load["achieved_runs_per_s"] == pytest.approx(load["offered_runs_per_s"])
    empty = offered_load(Metrics(ClockAnchor.now()), plan(3, "10/s"), elapsed_s=4.0).to_json()
    assert empty["offered_runs_per_s"] == 0 and empty["achieved_runs_per_s"] == 0
