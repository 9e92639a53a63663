"""How deep the shared scan of the run list reads each tick: the reach that costs the fewest requests, list
pages down to it plus a batch poll for every open batch below it. Pure, no sockets."""

from __future__ import annotations

import math
import random

import pytest

from stressor.polling import even_scan_reads_all, scan_reach
from stressor.targets.testcalls.lister import skip_start

OLD_FIXED_REACH = 1000  # the reach before it adapted: batches below the first 1,000 runs were polled one by one


def requests_a_tick(bottoms: list[int], reach: int, page: int, start: int = 0) -> int:
    """What a tick costs with this reach: the pages from ``start`` down to the deepest batch within it, and a
    batch poll for each batch below it."""
    within = [bottom for bottom in bottoms if bottom <= reach]
    pages = math.ceil(max(0, max(within) - start) / page) if within else 0
    return pages + len(bottoms) - len(within)


def packed(in_flight: int, runs_per_batch: int) -> list[int]:
    """Batches packed at the list's top (this client's own runs only): each one's deepest run."""
    return list(range(runs_per_batch, in_flight + 1, runs_per_batch))


@pytest.mark.parametrize(("in_flight", "runs_per_batch"), [(1_000, 20), (5_000, 20), (10_000, 5), (10_000, 20)])
def test_runs_packed_at_the_top_are_all_read_by_the_scan_however_deep(in_flight: int, runs_per_batch: int) -> None:
    bottoms = packed(in_flight, runs_per_batch)
    reach = scan_reach(bottoms, 200)
    assert reach == in_flight  # every batch within it, none polled on its own
    assert requests_a_tick(bottoms, reach, 200) == math.ceil(in_flight / 200)
    if in_flight > OLD_FIXED_REACH:
        # the fixed reach read 5 pages and polled every batch below them: 205 requests a tick at 5,000 in
        # flight in batches of 20, against 25
        assert requests_a_tick(bottoms, reach, 200) < requests_a_tick(bottoms, OLD_FIXED_REACH, 200) / 5


def test_a_few_batches_far_below_are_polled_on_their_own() -> None:
    # Long calls: two batches still open 5,000 runs below the young ones (the runs between have ended).
    # Reading 26 pages a tick to reach them would cost more than asking their two batches.
    bottoms = [*packed(400, 20), 5_020, 5_040]
    reach = scan_reach(bottoms, 200)
    assert reach == 400
    assert requests_a_tick(bottoms, reach, 200) == 2 + 2


def test_a_band_of_open_batches_below_the_newest_is_read_from_where_the_scan_starts() -> None:
    # Nothing young is open: the scan starts just above the band (the lister skips the newer runs), so reading
    # the band's 4 pages costs less than polling its 10 batches.
    bottoms = [5_000 + 20 * k for k in range(1, 11)]
    start = skip_start(5_000)
    assert scan_reach(bottoms, 200) == 0  # from the top of the list it would not pay
    reach = scan_reach(bottoms, 200, start)
    assert reach == 5_200
    assert requests_a_tick(bottoms, reach, 200, start) == 4


def test_pages_smaller_than_a_batch_make_batch_polls_the_cheaper_way() -> None:
    # A server that gives 10 runs a page (a cap the lister learnt): a batch of 20 costs two pages, or one poll.
    assert scan_reach(packed(400, 20), 10) == 0


def test_on_a_tie_the_scan_reads_deeper() -> None:
    # One page or one batch poll: the scan sees each run's own end, the counters only that one ended.
    assert scan_reach([20], 200) == 20
    assert scan_reach([], 200) == 0


def test_the_reach_costs_no_more_than_any_other_reach() -> None:
    rng = random.Random(19)
    for _ in range(300):
        page = rng.choice([10, 50, 100, 200])
        bottoms = sorted(rng.sample(range(1, 20_000), rng.randint(1, 40)))
        start = rng.choice([0, bottoms[0] // 2])
        reach = scan_reach(bottoms, page, start)
        best = min(requests_a_tick(bottoms, r, page, start) for r in [0, *bottoms, OLD_FIXED_REACH])
        assert requests_a_tick(bottoms, reach, page, start) == best


@pytest.mark.parametrize("runs_per_batch", [1, 5, 20])
@pytest.mark.parametrize("page", [10, 100, 200])
def test_the_plans_rule_is_the_targets_for_batches_packed_evenly(runs_per_batch: int, page: int) -> None:
    for in_flight in (runs_per_batch, 300, 1_000, 10_000):
        reach = scan_reach(packed(in_flight, runs_per_batch), page)
        assert (reach == in_flight) is even_scan_reads_all(runs_per_batch, page)
        assert reach in (0, in_flight)
