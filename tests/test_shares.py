"""Shares of a run: the workers' batches together are the single-process plan, their limits add up."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sessions import profile_of

from stressor.plan import open_starts
from stressor.profile import Cost, Limits
from stressor.shares import Share


@settings(max_examples=60, deadline=None)
@given(
    workers=st.integers(1, 7),
    stages=st.lists(
        st.tuples(st.integers(1, 5), st.integers(0, 12), st.integers(0, 12), st.booleans()),
        min_size=1,
        max_size=4,
    ),
)
def test_the_workers_starts_together_are_the_plan_exactly(workers: int, stages: list) -> None:
    profile = profile_of(
        {
            "stages": [
                {"duration": f"{d}s", "pause": True}
                if pause
                else {"duration": f"{d}s", "rate": {"from": f"{a}/s", "to": f"{b}/s"}}
                for d, a, b, pause in stages
            ]
        }
    )
    plan = list(open_starts(profile))
    dealt = [s for i in range(workers) for s in open_starts(profile) if Share(i, workers).owns(s.seq)]
    assert sorted(dealt, key=lambda s: s.seq) == plan
    counts = [sum(Share(i, workers).owns(s.seq) for s in plan) for i in range(workers)]
    assert max(counts, default=0) - min(counts, default=0) <= 1  # dealt round robin: nobody gets two more


@pytest.mark.parametrize("workers", [1, 2, 3, 8])
@pytest.mark.parametrize("total", [0, 1, 5, 20, 10_001])
def test_whole_parts_add_up_to_the_total(workers: int, total: int) -> None:
    parts = [Share(i, workers).part(total) for i in range(workers)]
    assert sum(parts) == total
    assert max(parts) - min(parts) <= 1


def test_closed_stage_batch_numbers_stay_unique_across_workers() -> None:
    seen: set[int] = set()
    for index in range(3):
        share, seq = Share(index, 3), 0
        for _ in range(50):
            seq = share.next_seq(seq)
            assert share.owns(seq) and seq not in seen
            seen.add(seq)
            seq += 1


def test_limits_and_budget_are_divided_among_the_workers() -> None:
    limits = Limits(create_rate=10.0, poll_rate=math.inf, max_runs_in_flight=5, max_batches_in_flight=None)
    shares = [Share(i, 2) for i in range(2)]
    assert [s.limits(limits).create_rate for s in shares] == [5.0, 5.0]
    assert all(math.isinf(s.limits(limits).poll_rate) for s in shares)
    assert [s.limits(limits).max_runs_in_flight for s in shares] == [3, 2]
    assert all(s.limits(limits).max_batches_in_flight is None for s in shares)
    assert [s.cost(Cost(budget_cents=100.0)).budget_cents for s in shares] == [50.0, 50.0]
    # A limit smaller than the number of workers still lets each start a batch.
    assert [Share(i, 4).limits(Limits(max_runs_in_flight=2)).max_runs_in_flight for i in range(4)] == [1, 1, 1, 1]


def test_a_whole_share_changes_nothing() -> None:
    profile = profile_of({"stages": [{"duration": "1s", "rate": "2/s"}], "limits": {"create_rate": "3/s"}})
    assert Share().profile(profile) == profile


@pytest.mark.parametrize(("index", "count"), [(0, 0), (2, 2), (-1, 3)])
def test_a_share_that_does_not_exist_is_refused(index: int, count: int) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        Share(index, count)
