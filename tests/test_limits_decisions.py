"""After each attempt: polls retry freely, creates retry only when nothing can exist, else reconcile first."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import formatdate

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stressor.limits import (
    TRANSPORT_FAILURES,
    Backoff,
    Decision,
    HttpOutcome,
    RetryBudget,
    classify_attempt,
    plan_retry,
)

NOW_WALL = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC).timestamp()


def classify(kind: str, outcome: object) -> Decision:
    return classify_attempt(kind, outcome, now_wall=NOW_WALL)  # type: ignore[arg-type]


# (outcome, create decision, poll decision), as (action, cause)
TABLE = [
    (200, ("done", "ok"), ("done", "ok")),
    (201, ("done", "ok"), ("done", "ok")),
    (204, ("done", "ok"), ("done", "ok")),
    (429, ("retry", "http_429"), ("retry", "http_429")),
    (503, ("retry", "http_503"), ("retry", "http_503")),
    (500, ("reconcile", "http_5xx"), ("retry", "http_5xx")),
    (502, ("reconcile", "http_5xx"), ("retry", "http_5xx")),
    (504, ("reconcile", "http_5xx"), ("retry", "http_5xx")),
    (501, ("fail", "http_5xx"), ("fail", "http_5xx")),
    (400, ("fail", "http_400"), ("fail", "http_400")),
    (401, ("fail", "http_401"), ("fail", "http_401")),
    (402, ("fail", "http_402"), ("fail", "http_402")),
    (403, ("fail", "http_403"), ("fail", "http_403")),
    (404, ("fail", "http_404"), ("fail", "http_404")),
    (408, ("fail", "http_408"), ("fail", "http_408")),
    (409, ("fail", "http_409"), ("fail", "http_409")),
    (422, ("fail", "http_422"), ("fail", "http_422")),
    (302, ("fail", "http_302"), ("fail", "http_302")),
    (700, ("fail", "http_invalid"), ("fail", "http_invalid")),
    ("connect_refused", ("retry", "connect"), ("retry", "connect")),
    ("connect_error", ("retry", "connect"), ("retry", "connect")),
    ("connect_timeout", ("retry", "timeout"), ("retry", "timeout")),
    ("read_timeout", ("reconcile", "timeout"), ("retry", "timeout")),
    ("write_error", ("reconcile", "write"), ("retry", "write")),
    ("reset", ("reconcile", "reset"), ("retry", "reset")),
    ("remote_protocol", ("reconcile", "protocol"), ("retry", "protocol")),
]


@pytest.mark.parametrize(("outcome", "create", "poll"), TABLE)
def test_decision_table(outcome: int | str, create: tuple[str, str], poll: tuple[str, str]) -> None:
    for kind, expected in (("create", create), ("poll", poll)):
        decision = classify(kind, outcome)
        assert (decision.action, decision.cause) == expected, kind
        assert decision.delay is None


def test_status_with_headers_and_bare_status_agree() -> None:
    assert classify("poll", HttpOutcome(502, {"X-Whatever": "1"})) == classify("poll", 502)


def test_table_covers_every_transport_failure() -> None:
    assert {row[0] for row in TABLE if isinstance(row[0], str)} == TRANSPORT_FAILURES


@given(
    outcome=st.one_of(st.integers(min_value=100, max_value=599), st.sampled_from(sorted(TRANSPORT_FAILURES))),
)
def test_a_create_is_repeated_only_when_nothing_can_exist(outcome: int | str) -> None:
    """A blind retry of a create that reached the server is a second billed call: never do it."""
    decision = classify("create", outcome)
    if decision.action == "retry":
        assert outcome in (429, 503, "connect_refused", "connect_error", "connect_timeout")
    poll = classify("poll", outcome)
    assert poll.action != "reconcile"


@pytest.mark.parametrize("kind", ["create", "poll"])
def test_server_delay_from_retry_after_seconds(kind: str) -> None:
    decision = classify(kind, HttpOutcome(429, {"Retry-After": "7"}))
    assert decision == Decision("retry", 7.0, "http_429")


def test_server_delay_from_retry_after_date() -> None:
    decision = classify("create", HttpOutcome(503, {"retry-after": formatdate(NOW_WALL + 20, usegmt=True)}))
    assert decision.action == "retry"
    assert decision.delay == pytest.approx(20.0)


def test_server_delay_from_an_exhausted_quota() -> None:
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW_WALL) + 12)}
    assert classify("poll", HttpOutcome(429, headers)).delay == pytest.approx(12.0)


def test_server_delay_is_clamped() -> None:
    decision = classify_attempt("poll", HttpOutcome(429, {"Retry-After": "100000"}), now_wall=NOW_WALL, max_pause=60)
    assert decision.delay == 60.0


def test_bad_retry_after_leaves_the_delay_to_backoff() -> None:
    assert classify("poll", HttpOutcome(429, {"Retry-After": "later"})).delay is None


def test_retry_after_on_a_500_does_not_turn_a_create_into_a_retry() -> None:
    decision = classify("create", HttpOutcome(500, {"Retry-After": "1"}))
    assert decision == Decision("reconcile", None, "http_5xx")


def test_programming_errors_raise() -> None:
    with pytest.raises(ValueError, match="kind"):
        classify("delete", 200)
    with pytest.raises(ValueError, match="unknown transport failure"):
        classify("poll", "dns_error")
    with pytest.raises(TypeError, match="outcome"):
        classify("poll", 2.5)


# --- plan_retry ---------------------------------------------------------------------------------------------


def test_plan_retry_passes_other_decisions_through() -> None:
    backoff = Backoff(rng=random.Random(0))
    for decision in (Decision("done", None, "ok"), Decision("reconcile", None, "timeout")):
        assert plan_retry(decision, attempt=0, now=0.0, backoff=backoff) is decision


def test_plan_retry_keeps_the_server_delay() -> None:
    decision = plan_retry(Decision("retry", 7.0, "http_429"), attempt=3, now=0.0, backoff=Backoff(rng=random.Random(0)))
    assert decision == Decision("retry", 7.0, "http_429")


def test_plan_retry_backs_off_with_jitter_when_the_server_said_nothing() -> None:
    backoff = Backoff(base=0.5, cap=10.0, rng=random.Random(0))
    delays = [
        plan_retry(Decision("retry", None, "reset"), attempt=2, now=0.0, backoff=backoff).delay for _ in range(50)
    ]
    assert all(d is not None and 0.0 <= d <= 2.0 for d in delays)
    assert len(set(delays)) == 50


def test_plan_retry_gives_up_after_max_retries_with_the_real_cause() -> None:
    backoff = Backoff(rng=random.Random(0))
    decision = plan_retry(Decision("retry", None, "http_503"), attempt=5, now=0.0, backoff=backoff, max_retries=5)
    assert decision == Decision("fail", None, "http_503")


def test_plan_retry_obeys_the_budget_without_spending_it() -> None:
    backoff = Backoff(rng=random.Random(0))
    budget = RetryBudget(ratio=0.1, min_per_s=0.0)
    for _ in range(10):
        budget.record_request(0.0)
    retry = Decision("retry", None, "timeout")
    assert plan_retry(retry, attempt=0, now=0.0, backoff=backoff, budget=budget).action == "retry"
    assert budget.counts(0.0) == (10, 0)  # the caller records the retry when it makes it
    budget.record_retry(0.0)
    assert plan_retry(retry, attempt=0, now=0.0, backoff=backoff, budget=budget) == Decision(
        "fail", None, "retry_budget"
    )
