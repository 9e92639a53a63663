"""The governor: limits shared by every task, the server's push-back obeyed (or only recorded), the breaker."""

from __future__ import annotations

import email.utils
import random
from dataclasses import replace

import pytest

from stressor.governor import Governor
from stressor.limits import HttpOutcome
from stressor.profile import Limits

WALL = 1_800_000_000.0


def governor(**changes: object) -> Governor:
    return Governor(replace(Limits(backoff_base_s=0.01, backoff_cap_s=0.1), **changes), random.Random(3))


def test_client_rates_are_separate_for_creates_and_polls() -> None:
    g = governor(create_rate=10.0, poll_rate=100.0)
    assert [round(g.reserve("create", 0.0), 3) for _ in range(3)] == [0.0, 0.1, 0.2]
    assert [round(g.reserve("poll", 0.0), 3) for _ in range(3)] == [0.0, 0.01, 0.02]
    assert g.throttle_wait_s == pytest.approx(0.33)


def test_retry_after_pauses_every_request_not_only_the_one_that_heard_it() -> None:
    g = governor()
    decision = g.after_attempt("poll", HttpOutcome(429, {"Retry-After": "2"}), attempt=0, now=10.0, now_wall=WALL)
    assert decision.action == "retry"
    assert decision.delay == pytest.approx(2.0)
    assert g.reserve("create", 10.5) == pytest.approx(1.5)  # a create that never saw the 429 waits too
    assert g.reserve("poll", 11.0) >= 1.0
    assert g.server_pause_s == pytest.approx(2.0)
    assert g.retry_after.summary().max_s == pytest.approx(2.0)
    assert g.retries == {"http_429": 1}


def test_an_http_date_retry_after_and_an_exhausted_quota_pause_too() -> None:
    g = governor()
    now_wall = 1_800_000_000.0
    date = email.utils.formatdate(now_wall + 5, usegmt=True)
    g.after_attempt("create", HttpOutcome(503, {"Retry-After": date}), attempt=0, now=0.0, now_wall=now_wall)
    assert g.reserve("poll", 0.0) == pytest.approx(5.0)
    quota = governor()
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "3"}
    assert quota.after_attempt("poll", HttpOutcome(200, headers), attempt=0, now=0.0, now_wall=WALL).action == "done"
    assert quota.reserve("create", 0.0) == pytest.approx(3.0)


def test_stress_mode_records_push_back_but_neither_pauses_nor_retries_creates() -> None:
    g = governor(mode="stress")
    decision = g.after_attempt("create", HttpOutcome(429, {"Retry-After": "5"}), attempt=0, now=0.0, now_wall=WALL)
    assert (decision.action, decision.cause) == ("fail", "http_429")
    assert g.reserve("create", 0.0) == 0.0
    assert g.retry_after.count == 1
    assert g.server_pause_s == 0


def test_runs_in_flight_limit_shrinks_on_overload_and_grows_back_when_busy() -> None:
    g = governor(max_runs_in_flight=100)
    assert g.run_capacity() == 100
    g.after_attempt("create", HttpOutcome(503), attempt=0, now=0.0, now_wall=WALL)
    assert g.run_capacity() == 90
    g.after_attempt("create", HttpOutcome(503), attempt=0, now=0.1, now_wall=WALL)
    assert g.run_capacity() == 90  # one cut per cooldown, not one per 503 of a burst
    for i in range(5):
        g.runs_in_flight = g.run_capacity() or 0  # busy: every slot of the limit in use
        g.after_attempt("poll", HttpOutcome(200), attempt=0, now=2.0 + i, now_wall=WALL)
    assert g.run_capacity() == 95
    g.runs_in_flight = 10  # not busy: no growth
    g.after_attempt("poll", HttpOutcome(200), attempt=0, now=9.0, now_wall=WALL)
    assert g.run_capacity() == 95
    assert governor(max_runs_in_flight=100, adaptive=False).run_capacity() == 100
    assert governor().run_capacity() is None


def test_breaker_needs_more_than_half() -> None:
    g = governor(breaker_min_requests=20, max_retries=0)
    for i in range(10):
        g.after_attempt("poll", HttpOutcome(200), attempt=0, now=float(i), now_wall=WALL)
        g.after_attempt("poll", HttpOutcome(503), attempt=0, now=float(i), now_wall=WALL)
    assert g.trip(10.0) is None
    g.after_attempt("poll", HttpOutcome(503), attempt=0, now=10.0, now_wall=WALL)
    trip = g.trip(10.0)
    assert trip is not None
    assert trip.describe().startswith("stopped submitting: 11 of 21 requests failed")
    assert governor(mode="stress").trip(10.0) is None


def test_retries_respect_the_budget_and_the_limit() -> None:
    g = governor(max_retries=2)
    outcome = HttpOutcome(503)
    assert g.after_attempt("create", outcome, attempt=0, now=0.0, now_wall=WALL).action == "retry"
    assert g.after_attempt("create", outcome, attempt=1, now=0.0, now_wall=WALL).action == "retry"
    assert g.after_attempt("create", outcome, attempt=2, now=0.0, now_wall=WALL).action == "fail"
    starved = governor(retry_ratio=0.0)
    fails = [starved.after_attempt("poll", outcome, attempt=0, now=0.0, now_wall=WALL).action for _ in range(30)]
    assert fails.count("retry") == 10  # the floor of the budget, then no more
    assert starved.after_attempt("poll", outcome, attempt=0, now=0.0, now_wall=WALL, retry=False).delay is None


def test_a_create_that_may_exist_is_reconciled_and_a_poll_is_retried() -> None:
    g = governor()
    assert g.after_attempt("create", "read_timeout", attempt=0, now=0.0, now_wall=WALL).action == "reconcile"
    assert g.after_attempt("create", HttpOutcome(502), attempt=0, now=0.0, now_wall=WALL).action == "reconcile"
    assert g.after_attempt("create", "connect_error", attempt=0, now=0.0, now_wall=WALL).action == "retry"
    assert g.after_attempt("poll", "read_timeout", attempt=0, now=0.0, now_wall=WALL).action == "retry"


def test_the_servers_quota_policy_paces_every_request_up_front() -> None:
    g = governor()
    headers = {"RateLimit-Policy": '"default";q=20;w=1', "RateLimit": '"default";r=19;t=1'}
    g.after_attempt("poll", HttpOutcome(200, headers), attempt=0, now=0.0, now_wall=WALL)
    assert g.server_rate == 20
    waits = [g.reserve("create" if i % 2 else "poll", 1.0) for i in range(4)]
    assert waits == pytest.approx([0.0, 0.05, 0.1, 0.15])  # one shared pace for creates and polls
    assert governor(mode="stress").server_rate is None
