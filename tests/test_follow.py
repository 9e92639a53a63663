"""When a batch is polled, without HTTP: the shared grid near the list's top, growth with age, backoff after
failed polls, a batch polled on its own at its own phase, and what each poll asks of the list."""

from __future__ import annotations

import itertools

from stressor.polling import PollSchedule
from stressor.targets.testcalls.follow import Follow, PollBatch, ScanList

MS = 1_000_000
S = 1_000 * MS


def follow(
    *,
    started_ns: int = 10 * S + 37 * MS,
    near: bool = True,
    first_offset_s: float = 0.0,
    batch_known: bool = True,
    interval_s: float = 0.1,
    max_interval_s: float = 0.1,
    backoff: float = 0.0,
) -> Follow:
    return Follow(
        PollSchedule(interval_s, max_interval_s),
        started_ns=started_ns,
        near=near,
        first_offset_s=first_offset_s,
        batch_known=batch_known,
        backoff=lambda failures: backoff * failures,
    )


def polls(machine: Follow, count: int, *, now: int = 10 * S + 37 * MS, took_ns: int = 0) -> list[int]:
    """The instants of ``count`` polls from ``now`` on, each taking ``took_ns`` after its instant."""
    instants: list[int] = []
    for _ in range(count):
        instants.append(machine.next_poll_ns(now))
        now = instants[-1] + took_ns
    return instants


def test_batches_near_the_top_poll_on_the_shared_grid_of_ticks() -> None:
    # Two batches submitted 37 ms and 81 ms into a second: both poll at the next 100 ms ticks, together.
    first = polls(follow(started_ns=10 * S + 37 * MS), 3)
    second = polls(follow(started_ns=10 * S + 81 * MS), 3)
    assert first == second == [10 * S + 100 * MS, 10 * S + 200 * MS, 10 * S + 300 * MS]


def test_a_poll_that_took_long_does_not_stretch_the_cadence() -> None:
    # A poll that takes 30 ms: the next is still on the grid, not 30 ms later.
    assert polls(follow(), 3, took_ns=30 * MS) == [10 * S + 100 * MS, 10 * S + 200 * MS, 10 * S + 300 * MS]
    far = follow(near=False, batch_known=True, first_offset_s=0.05)
    assert polls(far, 3, took_ns=30 * MS) == [10 * S + 87 * MS, 10 * S + 187 * MS, 10 * S + 287 * MS]


def test_polls_grow_with_age_on_grids_that_nest() -> None:
    # 100 ms at first, then a tenth of the batch's age, at most 1 s: on the grid of 100 ms * 2^k.
    machine = follow(interval_s=0.1, max_interval_s=1.0, started_ns=0)
    instants = polls(machine, 40, now=0)
    gaps = [b - a for a, b in itertools.pairwise(instants)]
    assert gaps[0] == 100 * MS and max(gaps) <= 1 * S
    assert gaps == sorted(gaps)  # never shorter again
    assert {gap // MS for gap in gaps} <= {100, 200, 400, 800}
    assert all(instant % gap == 0 for instant, gap in zip(instants[1:], gaps, strict=False))  # on its grid


def test_failed_polls_back_off_and_an_answer_resets_the_backoff() -> None:
    machine = follow(near=False, backoff=0.05)
    assert machine.woke(near=False) == PollBatch()
    first = machine.next_poll_ns(0)
    assert machine.counted(None, 0) is None  # failed: nothing to scan
    second = machine.next_poll_ns(first)
    assert second - first == 150 * MS  # the interval, plus the backoff of one failure
    assert machine.counted(None, 0) is None
    third = machine.next_poll_ns(second)
    assert third - second == 200 * MS
    assert machine.counted(0, 0) is None  # answered, nothing ended: no scan, no backoff any more
    assert machine.next_poll_ns(third) - third == 100 * MS


def test_a_batch_polled_on_its_own_asks_the_list_only_when_its_counters_moved() -> None:
    machine = follow(near=False)
    assert machine.woke(near=False) == PollBatch()
    assert machine.counted(2, 2) is None  # two ended, both already seen
    assert machine.counted(3, 2) == ScanList(near=False)
    machine.scanned(unreached=False)
    assert machine.woke(near=False) == PollBatch()


def test_a_batch_that_comes_within_the_reach_polls_once_more_on_its_own_then_joins_the_grid() -> None:
    # The scan's reach grew to take it in (chosen afresh every tick): it woke at its own phase, 60 ms into the
    # interval, so this poll is its own; the next is on the shared grid, with the scan.
    machine = follow(near=False, first_offset_s=0.06, started_ns=5 * S)
    first = machine.next_poll_ns(5 * S)
    assert first == 5 * S + 60 * MS
    assert machine.woke(near=True) == PollBatch()
    assert machine.counted(0, 0) is None
    assert machine.next_poll_ns(first) == 5 * S + 100 * MS
    assert machine.woke(near=True) == ScanList(near=True)
    # and back on its own when the reach no longer takes it in
    assert machine.woke(near=False) == PollBatch()


def test_a_batch_the_server_does_not_know_is_looked_for_in_the_list_from_then_on() -> None:
    machine = follow(near=False)
    assert machine.woke(near=False) == PollBatch()
    assert machine.batch_unknown() == ScanList(near=False)
    assert machine.woke(near=False) == ScanList(near=False)
    assert follow(near=False, batch_known=False).woke(near=False) == ScanList(near=False)  # runs made one by one


def test_a_near_batch_scans_the_top_until_it_sinks_or_a_scan_does_not_reach_it() -> None:
    machine = follow(near=True)
    assert machine.woke(near=True) == ScanList(near=True)
    machine.scanned(unreached=True)  # deeper than the shared scan reads
    assert machine.woke(near=True) == PollBatch()
    sinking = follow(near=True)
    assert sinking.woke(near=False) == PollBatch()  # this client created many runs since: it sank
    assert sinking.near is False


def test_a_batch_polled_on_its_own_keeps_its_phase_and_leaves_the_grid() -> None:
    # The phase the shell drew (60 ms into the first interval) holds from poll to poll.
    machine = follow(near=False, first_offset_s=0.06, started_ns=5 * S)
    assert polls(machine, 3, now=5 * S) == [5 * S + 60 * MS, 5 * S + 160 * MS, 5 * S + 260 * MS]
    # A poll due in the past (the loop was late) is done now, and the cadence goes on from there.
    late = follow(near=False, started_ns=0)
    assert late.next_poll_ns(7 * S) == 7 * S
    assert late.next_poll_ns(7 * S) == 7 * S + 100 * MS
