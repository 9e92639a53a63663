"""The governor: limits shared by every task, the server's push-back obeyed (or only recorded), the breaker."""

from __future__ import annotations

import email.utils
import itertools
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
    # Wall time the client was held, not the waits summed: the three creates and three polls overlap.
    assert g.throttle_wait_s == pytest.approx(0.2)
    assert g.client_wait_s == pytest.approx(0.2)
    assert g.server_pause_s == 0 and g.server_rate_wait_s == 0


def test_retry_after_pauses_every_request_of_the_kind_refused_not_only_the_one_that_heard_it() -> None:
    g = governor()
    decision = g.after_attempt("poll", HttpOutcome(429, {"Retry-After": "2"}), attempt=0, now=10.0, now_wall=WALL)
    assert decision.action == "retry"
    assert decision.delay == pytest.approx(2.0)
    assert g.reserve("poll", 10.5) == pytest.approx(1.5)  # a poll that never saw the 429 waits too
    assert g.reserve("create", 10.5) == 0.0  # creates were not refused: the server may limit polls alone
    assert g.reserve("poll", 11.0) >= 1.0
    assert g.server_pause_s == pytest.approx(1.5)  # held from the first request that waited until the end
    assert g.client_wait_s == 0
    assert g.responses == {"429": 1}
    assert g.retry_after.summary().max_s == pytest.approx(2.0)
    assert g.retries == {"http_429": 1}


def test_an_http_date_retry_after_and_an_exhausted_quota_pause_too() -> None:
    g = governor()
    now_wall = 1_800_000_000.0
    date = email.utils.formatdate(now_wall + 5, usegmt=True)
    g.after_attempt("create", HttpOutcome(503, {"Retry-After": date}), attempt=0, now=0.0, now_wall=now_wall)
    assert g.reserve("create", 0.0) == pytest.approx(5.0)
    assert g.reserve("poll", 0.0) == 0.0
    quota = governor()
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "3"}
    assert quota.after_attempt("poll", HttpOutcome(200, headers), attempt=0, now=0.0, now_wall=WALL).action == "done"
    assert quota.reserve("create", 0.0) == pytest.approx(3.0)  # a stated quota covers every request


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
    g.admit(150)  # more than the limit (it was just lowered, say): the limit is where the cut starts
    g.after_attempt("create", HttpOutcome(503), attempt=0, now=0.0, now_wall=WALL)
    assert g.run_capacity() == 90
    g.after_attempt("create", HttpOutcome(503), attempt=0, now=0.1, now_wall=WALL)
    assert g.run_capacity() == 90  # one cut per cooldown, not one per 503 of a burst
    for i in range(5):
        g.admit((g.run_capacity() or 0) - g.runs_in_flight)  # busy: every slot of the limit in use
        g.after_attempt("poll", HttpOutcome(200), attempt=0, now=2.0 + i, now_wall=WALL)
    assert g.run_capacity() == 95
    g.release(g.runs_in_flight - 10)  # not busy: no growth
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
    assert g.trip(10.0) is None  # more than half now, but not yet for half the 30 s window
    assert g.trip(24.9) is None
    trip = g.trip(25.0)
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


def test_the_runs_in_flight_limit_binds_without_max_runs_in_flight() -> None:
    # No max_runs_in_flight: the first overload starts the limit from the runs then in flight and cuts it.
    g = governor()
    assert g.run_capacity() is None
    g.admit(200)
    g.after_attempt("create", HttpOutcome(503), attempt=0, now=0.0, now_wall=WALL)
    assert g.run_capacity() == 180
    g.after_attempt("create", HttpOutcome(429), attempt=0, now=1.5, now_wall=WALL)
    assert g.run_capacity() == 162
    assert g.report().run_limit == 162
    # A max_runs_in_flight above what is in flight: the cut starts from what is in flight, not from the max.
    capped = governor(max_runs_in_flight=1000)
    capped.admit(50)
    capped.after_attempt("create", "read_timeout", attempt=0, now=0.0, now_wall=WALL)
    assert capped.run_capacity() == 45
    # Few in flight: the limit never goes below the largest batch the API takes, or no batch could start.
    idle = governor()
    idle.admit(3)
    idle.after_attempt("create", HttpOutcome(503), attempt=0, now=0.0, now_wall=WALL)
    assert idle.run_capacity() == 20
    assert governor(max_runs_in_flight=5).run_capacity() == 5
    assert governor(adaptive=False).run_capacity() is None


def test_the_governor_counts_the_runs_it_admits_and_releases() -> None:
    g = governor()
    g.admit(5)
    g.admit(3)
    g.release(1)
    assert g.runs_in_flight == 7
    with pytest.raises(AttributeError):
        g.runs_in_flight = 0  # type: ignore[misc]  # only admit and release change it


def test_a_bare_429_pauses_its_kind_of_request_and_cuts_a_rate_learned_for_that_kind() -> None:
    g = governor(backoff_base_s=0.5, backoff_cap_s=4.0)
    for i in range(30):  # 30 answers accepted within the last second: the server took 30/s
        g.after_attempt("poll", HttpOutcome(200), attempt=0, now=9.15 + i * 0.028, now_wall=WALL)
    assert g.reserve("poll", 10.0) == 0.0  # no limit was ever shown: none is guessed
    decision = g.after_attempt("poll", HttpOutcome(429), attempt=0, now=10.0, now_wall=WALL)
    assert decision.action == "retry"
    rate = 30 / 1.0 / 2  # half the rate the server accepted over the last second
    assert g.learned_rates == pytest.approx({"poll": rate})
    # Every poll waits, not only the one that was refused: a pause of 0.25..0.5 s (the backoff's first step,
    # jittered but never next to nothing), then one poll per 1/15 s: released at the rate, not all at once.
    waits = [g.reserve("poll", 10.0) for i in range(6)]
    assert 0.25 <= waits[0] <= 0.5
    assert [b - a for a, b in itertools.pairwise(waits)] == pytest.approx([1 / rate] * 5)
    assert g.server_pause_s == pytest.approx(waits[0])
    assert g.server_rate_wait_s == pytest.approx(5 / rate)
    assert [g.reserve("create", 10.0) for _ in range(3)] == [0.0, 0.0, 0.0]  # creates were never refused
    # A refusal that arrives within the cooldown came from a request sent under the old rate: no second cut.
    g.after_attempt("poll", HttpOutcome(503), attempt=0, now=10.2, now_wall=WALL)
    assert g.learned_rates == pytest.approx({"poll": rate})
    assert g.responses == {"429": 1, "503": 1}
    # The next refusal after the pause is a new episode: a longer pause (the second backoff step).
    g.after_attempt("poll", HttpOutcome(429), attempt=0, now=12.0, now_wall=WALL)
    assert g.learned_rates["poll"] < rate
    assert 0.5 <= g.reserve("poll", 12.0) <= 1.0 + 1 / rate


def test_429s_on_creates_alone_never_slow_the_polls() -> None:
    # Issue 15: a server that limits run-creating requests only (the simulator's rate_limit_scope = "create").
    # Polls slowed by the creates' refusals would see runs end late (or never, within the grace period).
    g = governor(backoff_base_s=0.5, backoff_cap_s=4.0)
    now = 0.0
    for i in range(200):  # 10 s: creates refused one in two, bare and with Retry-After; polls all accepted
        if i % 2:
            headers = {"Retry-After": "1"} if i % 4 == 1 else {}
            g.after_attempt("create", HttpOutcome(429, headers), attempt=0, now=now, now_wall=WALL)
        else:
            g.after_attempt("create", HttpOutcome(200), attempt=0, now=now, now_wall=WALL)
        assert g.reserve("poll", now) == 0.0
        g.after_attempt("poll", HttpOutcome(200), attempt=0, now=now, now_wall=WALL)
        now += 0.05
    assert set(g.learned_rates) == {"create"}
    assert g.reserve("create", now) > 0  # the creates themselves are held
    # Refused polls learn a rate of their own, which leaves the creates' alone.
    create_rate = g.learned_rates["create"]
    g.after_attempt("poll", HttpOutcome(429), attempt=0, now=now, now_wall=WALL)
    assert g.learned_rates["create"] == create_rate and "poll" in g.learned_rates


def test_steady_503s_pause_but_do_not_drive_the_learned_rate_down() -> None:
    # A server failing 1 request in 20 with a bare 503, whatever the rate: "overloaded", not "too many". The
    # client backs off (pause) but learns no request rate, which would otherwise fall to its floor.
    g = governor()
    now = 0.0
    for i in range(2000):  # 100 requests/s for 20 s
        status = 503 if i % 20 == 19 else 200
        g.after_attempt("poll", HttpOutcome(status), attempt=1, now=now, now_wall=WALL)
        now += 0.01
    assert g.learned_rates == {}
    assert g.responses["503"] == 100
    g.after_attempt("poll", HttpOutcome(429), attempt=0, now=now, now_wall=WALL)
    assert "poll" in g.learned_rates  # a 429 does teach a rate


def test_the_learned_rate_grows_back_only_while_it_holds_requests() -> None:
    g = governor()
    g.after_attempt("poll", HttpOutcome(429), attempt=0, now=0.0, now_wall=WALL)
    assert g.learned_rates == {"poll": 1.0}  # nothing was accepted before: the floor (enough for the breaker)
    now = 2.0
    for _ in range(60):  # one accepted answer per 0.5 s for 30 s, every request held by the rate
        g.reserve("poll", now)
        g.reserve("poll", now)
        g.after_attempt("poll", HttpOutcome(200), attempt=0, now=now, now_wall=WALL)
        now += 0.5
    grown = g.learned_rates["poll"]
    assert 1.5 < grown < 2.5  # slowly: a few per cent per second
    for _ in range(20):  # answers keep coming but nothing waits on the rate: no evidence of room, no growth
        now += 0.5
        g.after_attempt("poll", HttpOutcome(200), attempt=0, now=now, now_wall=WALL)
    assert g.learned_rates["poll"] == grown


def test_stress_mode_counts_refusals_but_learns_no_rate() -> None:
    g = governor(mode="stress")
    g.after_attempt("create", HttpOutcome(503), attempt=0, now=0.0, now_wall=WALL)
    g.after_attempt("create", HttpOutcome(429), attempt=0, now=0.0, now_wall=WALL)
    assert g.responses == {"503": 1, "429": 1}
    assert g.learned_rates == {}
    assert g.reserve("create", 0.0) == 0.0
    assert g.report().responses == {"429": 1, "503": 1}


def test_requests_held_by_a_retry_after_pause_are_released_at_the_learned_rate() -> None:
    g = governor()
    for i in range(20):  # the server accepted 20 in the last second
        g.after_attempt("poll", HttpOutcome(200), attempt=0, now=9.15 + i * 0.04, now_wall=WALL)
    g.after_attempt("poll", HttpOutcome(429, {"Retry-After": "2"}), attempt=0, now=10.0, now_wall=WALL)
    assert g.learned_rates == pytest.approx({"poll": 10.0})
    waits = [g.reserve("poll", 10.5) for _ in range(5)]  # five requests queued behind the pause
    assert waits[0] == pytest.approx(1.5)
    assert [b - a for a, b in itertools.pairwise(waits)] == pytest.approx([0.1] * 4)  # not all at 12.0


def test_a_refusal_after_an_accepted_answer_within_a_pause_backs_off_from_the_first_step() -> None:
    # 503s mixed with successes (issue 15): an answer accepted during a bare 503's pause ends that episode, so
    # a refusal still inside the pause opens a new one at the backoff's first step instead of crashing the run.
    g = governor(backoff_base_s=0.5, backoff_cap_s=4.0)
    assert g.after_attempt("poll", HttpOutcome(503), attempt=0, now=10.0, now_wall=WALL).action == "retry"
    pause = g.reserve("poll", 10.0)
    assert 0.25 <= pause <= 0.5
    g.after_attempt("poll", HttpOutcome(200), attempt=0, now=10.01, now_wall=WALL)
    decision = g.after_attempt("poll", HttpOutcome(503), attempt=0, now=10.02, now_wall=WALL)
    assert (decision.action, decision.cause) == ("retry", "http_503")
    assert 0.25 - 0.02 <= g.reserve("poll", 10.02) <= 0.5  # the first step again, not a longer one
    # A pause the server named (Retry-After) is no episode of the backoff: a bare refusal within it is the first.
    named = governor(backoff_base_s=0.5, backoff_cap_s=4.0)
    named.after_attempt("poll", HttpOutcome(429, {"Retry-After": "2"}), attempt=0, now=0.0, now_wall=WALL)
    assert named.after_attempt("poll", HttpOutcome(503), attempt=0, now=0.5, now_wall=WALL).action == "retry"
    assert named.reserve("poll", 0.5) == pytest.approx(1.5)
