"""Runs within the shared scan's reach are followed by one scan a tick; batches below it by their own counters."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import anyio
import anyio.lowlevel
import httpx
import pytest
import respx

from stressor.targets.base import Submission, SubmittedRun
from stressor.targets.ledger import CreationLedger
from stressor.targets.testcalls.lister import PAGES_AT_ONCE, RunLister
from stressor.targets.testcalls.target import TestCallsTarget

# respx at the client level: it sees requests whatever transport the client uses.
pytestmark = [pytest.mark.anyio, pytest.mark.respx(using="httpx", assert_all_called=False)]

BASE = "http://127.0.0.1:9"
T0 = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
REACH = 1000  # a reach the lister is given, in runs from the list's top


def run(i: int, status: str = "completed") -> dict[str, object]:
    """Run ``tc_<i>``, created i ms before T0 (the list is newest first: it sits at offset i)."""
    created = (T0 - timedelta(milliseconds=i)).isoformat()
    return {"id": f"tc_{i}", "status": status, "created_at": created, "started_at": created,
            "completed_at": created, "error_message": ""}  # fmt: skip


def created(i: int) -> float:
    return (T0 - timedelta(milliseconds=i)).timestamp()


def lister_over(depth: int) -> tuple[RunLister, list[list[int]]]:
    """A lister over ``depth`` runs, newest first, and the offsets of each group of pages read together."""
    groups: list[list[int]] = []
    in_flight: list[int] = []

    async def newest_first(purpose: str, path: str, params: dict[str, int]) -> tuple[object, int]:
        in_flight.append(params["offset"])
        await anyio.sleep(0.01)  # pages asked for together are all in flight at once
        if in_flight:
            groups.append(sorted(in_flight))
            in_flight.clear()
        return [run(i) for i in range(params["offset"], min(params["offset"] + params["limit"], depth))], 0

    return RunLister(newest_first, page_size=100, ledger=CreationLedger()), groups


async def test_a_lookup_within_a_reach_gives_up_below_it_without_calling_the_runs_missing() -> None:
    lister, groups = lister_over(1_000)
    seen = await lister.lookup_all({"tc_50": created(50), "tc_250": created(250)}, within=200)
    assert set(seen.found) == {"tc_50"}
    assert seen.unreached == {"tc_250"} and not seen.missing
    assert [offset for group in groups for offset in group] == [0, 100]  # no page below the reach was read


async def test_a_lookup_without_a_reach_still_reads_as_deep_as_it_must() -> None:
    lister, _ = lister_over(1_000)
    seen = await lister.lookup_all({"tc_750": created(750)})
    assert set(seen.found) == {"tc_750"} and not seen.unreached


async def test_a_scan_reads_at_once_as_many_pages_as_the_last_one_needed() -> None:
    lister, groups = lister_over(1_000)
    await lister.lookup_all({"tc_350": created(350)})
    assert groups == [[0], [100], [200], [300]]  # the first scan knows no better: a page at a time
    groups.clear()
    await lister.lookup_all({"tc_360": created(360)})
    assert PAGES_AT_ONCE == 3
    assert groups == [[0, 100, 200], [300]]  # two round trips, not four


async def test_a_scan_reads_at_once_down_to_the_depth_its_callers_expect() -> None:
    lister, groups = lister_over(1_000)
    seen = await lister.lookup_all({"tc_550": created(550)}, depth=551)
    assert set(seen.found) == {"tc_550"}
    assert groups == [[0, 100, 200], [300, 400, 500]]  # a few pages at a time


async def test_one_scan_serves_every_follower_woken_on_the_same_tick() -> None:
    lister, groups = lister_over(1_000)

    async def follower(i: int) -> None:
        seen = await lister.lookup_all({f"tc_{i}": created(i)}, within=REACH)
        assert f"tc_{i}" in seen.found

    async with anyio.create_task_group() as followers:
        for i in (10, 20, 30, 40, 50):
            followers.start_soon(follower, i)
    assert groups == [[0]]


async def test_one_scan_serves_the_followers_of_a_tick_woken_a_millisecond_apart() -> None:
    # Each follower sleeps on its own timer; the loop's timers keep whole milliseconds, so the followers of one
    # tick wake up to a millisecond or so apart. They still share one scan.
    lister, groups = lister_over(1_000)

    async def follower(i: int, late_s: float) -> None:
        await anyio.sleep(late_s)
        seen = await lister.lookup_all({f"tc_{i}": created(i)}, within=REACH)
        assert f"tc_{i}" in seen.found

    async with anyio.create_task_group() as followers:
        for i, late_s in ((10, 0.0), (20, 0.0), (30, 0.001), (40, 0.001), (50, 0.0012)):
            followers.start_soon(follower, i, late_s)
    assert groups == [[0]]


def page(request: httpx.Request, runs: list[dict[str, object]]) -> httpx.Response:
    offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
    return httpx.Response(200, json=runs[offset : offset + limit])


def ended_batch(run_id: str) -> httpx.Response:
    counters = {"status": "completed", "total_runs": 1, "completed_runs": 1, "failed_runs": 0}
    return httpx.Response(200, json={"id": "tb_0", **counters, "run_ids": [run_id]})


def submission(seq: int, first: int, runs: int = 5) -> Submission:
    ids = range(first, first + runs)
    return Submission(
        batch_id=f"tb_{seq}",
        runs=tuple(SubmittedRun(f"tc_{i}", index, created(i), 16.0) for index, i in enumerate(ids)),
    )


async def test_batches_near_the_top_are_followed_by_list_scans_alone(respx_mock: respx.MockRouter) -> None:
    # Ten batches in flight; their runs end after a few ticks. No batch is polled: every tick, one scan of
    # the list's top sees the ends of all of them.
    ended_after = anyio.current_time() + 0.1
    runs = lambda: [run(i, "completed" if anyio.current_time() > ended_after else "in_progress") for i in range(50)]  # noqa: E731
    lists = respx_mock.get(f"{BASE}/v1/test-calls").mock(side_effect=lambda request: page(request, runs()))
    batches = respx_mock.get(url__regex=rf"{BASE}/v1/test-call-batches/.*").mock(return_value=httpx.Response(500))
    target = TestCallsTarget(BASE, "sk_test_near", requests=_Log(), poll_interval_s=0.05)
    ends: list[str] = []
    with anyio.fail_after(5):
        async with anyio.create_task_group() as followers:
            for seq in range(10):
                followers.start_soon(target.follow, submission(seq, seq * 5), lambda end: ends.append(end.run_id))
    await target.aclose()
    assert sorted(ends) == sorted(f"tc_{i}" for i in range(50))
    assert batches.call_count == 0
    assert lists.call_count <= 10  # ~one a tick for all ten batches (ticks of 50 ms until 100 ms, and a margin)


async def test_a_lone_batch_deep_below_a_young_one_polls_its_batch(respx_mock: respx.MockRouter) -> None:
    # 5,000 runs this client created (and that ended) lie between a young batch and an old one: reading 26
    # pages down to the old batch costs more than asking its counters, so the scan reads the young batch's page
    # alone, and the old batch is polled on its own; the list is read for it only once its counters moved.
    young_ends = anyio.current_time() + 0.2
    runs = lambda: [  # noqa: E731
        run(0, "completed" if anyio.current_time() > young_ends else "in_progress"), *(run(i) for i in range(1, 5002))
    ]
    lists = respx_mock.get(f"{BASE}/v1/test-calls").mock(side_effect=lambda request: page(request, runs()))
    old = respx_mock.get(f"{BASE}/v1/test-call-batches/tb_1").mock(return_value=ended_batch("tc_5001"))
    young = respx_mock.get(f"{BASE}/v1/test-call-batches/tb_0").mock(return_value=httpx.Response(500))
    target = TestCallsTarget(BASE, "sk_test_near", requests=_Log(), poll_interval_s=0.05)
    ends: list[str] = []
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tasks:
            target._created.add(created(5001), 1)
            tasks.start_soon(target.follow, submission(1, 5001, runs=1), lambda end: ends.append(end.run_id))
            while not target._scannable:  # it took the ledger's count before the next creates
                await anyio.lowlevel.checkpoint()
            target._created.add(created(1), 5000)
            target._created.add(created(0), 1)
            target._reach_due_ns = None  # as at the next tick: the reach is chosen afresh from both batches
            tasks.start_soon(target.follow, submission(0, 0, runs=1), lambda end: ends.append(end.run_id))
    await target.aclose()
    assert sorted(ends) == ["tc_0", "tc_5001"]
    assert old.call_count >= 1 and young.call_count == 0
    offsets = [int(call.request.url.params["offset"]) for call in lists.calls]
    assert offsets.count(0) >= 2  # the young batch's scans, every tick until its run ended
    assert len(offsets) - offsets.count(0) <= 3, str(offsets)  # the old batch's run looked for near its own depth, once


async def test_batches_deeper_than_a_thousand_runs_are_still_followed_by_the_scan(
    respx_mock: respx.MockRouter,
) -> None:
    # 75 batches of 20 runs in flight, 1,500 runs: pages of 200 reach the deepest in 8 pages a tick, where
    # polling each batch below the first thousand runs (the reach was fixed at 1,000) cost 25 requests a tick.
    # The runs end 0.2 s after the last batch is followed: none ends (and leaves the scan) while they are added.
    ended_after = [math.inf]
    state = lambda: "completed" if anyio.current_time() > ended_after[0] else "in_progress"  # noqa: E731
    runs = lambda: [run(i, state()) for i in range(1500)]  # noqa: E731
    lists = respx_mock.get(f"{BASE}/v1/test-calls").mock(side_effect=lambda request: page(request, runs()))
    batches = respx_mock.get(url__regex=rf"{BASE}/v1/test-call-batches/.*").mock(return_value=httpx.Response(500))
    target = TestCallsTarget(BASE, "sk_test_near", requests=_Log(), poll_interval_s=0.05)
    ends: list[str] = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as followers:
            for count, seq in enumerate(reversed(range(75)), 1):  # the oldest first: tc_1499 was created first
                target._created.add(created(seq * 20 + 19), 20)
                followers.start_soon(target.follow, submission(seq, seq * 20, 20), lambda end: ends.append(end.run_id))
                while len(target._scannable) < count:  # it took the ledger's count before the next create
                    await anyio.lowlevel.checkpoint()
            ended_after[0] = anyio.current_time() + 0.2
    await target.aclose()
    assert sorted(ends) == sorted(f"tc_{i}" for i in range(1500))
    assert batches.call_count == 0
    assert {int(call.request.url.params["limit"]) for call in lists.calls} == {200}


async def test_runs_a_scan_does_not_reach_are_then_followed_through_their_batch(respx_mock: respx.MockRouter) -> None:
    # Other clients' runs (not in this client's ledger) push the batch below the reach of the shared scan.
    others = [run(i, "in_progress") for i in range(REACH + 100)]
    ours = {**run(REACH + 100), "id": "tc_ours"}
    lists = respx_mock.get(f"{BASE}/v1/test-calls").mock(side_effect=lambda request: page(request, [*others, ours]))
    batch = respx_mock.get(f"{BASE}/v1/test-call-batches/tb_0").mock(return_value=ended_batch("tc_ours"))
    target = TestCallsTarget(BASE, "sk_test_near", requests=_Log(), poll_interval_s=0.05)
    order = Submission(batch_id="tb_0", runs=(SubmittedRun("tc_ours", 0, created(REACH + 100), 16.0),))
    ends: list[str] = []
    with anyio.fail_after(5):
        await target.follow(order, lambda end: ends.append(end.run_id))
    await target.aclose()
    assert ends == ["tc_ours"]
    assert batch.call_count >= 1
    assert lists.call_count >= 2  # the scan that gave up at its reach, then the deep one


class _Log:
    """A request log that only counts."""

    def __init__(self) -> None:
        self.count = 0

    def record_request(self, kind: str, outcome: str) -> None:
        self.count += 1


def test_the_batches_a_reach_took_in_stay_within_it_while_newer_runs_sink_them() -> None:
    # The reach is chosen once a tick. Runs this client creates meanwhile push every open batch deeper alike:
    # the deepest batch the reach took in must not fall out of it (it would be polled on its own for nothing).
    target = TestCallsTarget(BASE, "sk_test_near", requests=_Log(), poll_interval_s=0.1)
    for seq in range(50):  # 1,000 runs in flight, in batches of 20, the oldest first
        target._created.add(created(1000 - 20 * seq), 20)
        target._scannable[seq] = (target._created.total, 20)  # the ledger's count once its create was answered
    oldest = {"tc_999": created(999)}
    assert target._near_top(oldest, 20, 20, target._reach())
    target._created.add(created(0) + 1, 500)  # within the same tick: 25 batches more were answered
    assert target._near_top(oldest, 20, 20, target._reach())
    assert target._reach() == 1500  # and the scan is told to read that deep


async def test_runs_of_creates_not_answered_yet_are_looked_for_below_them(respx_mock: respx.MockRouter) -> None:
    # The server has made 400 runs whose creates this client has not had answered: they sit above its batch,
    # deeper than the ledger says. The scan still finds the batch's runs instead of giving them up as unreached.
    others = [{**run(i, "in_progress"), "id": f"tc_new_{i}"} for i in range(400)]
    ours = {**run(400), "id": "tc_ours"}
    lists = respx_mock.get(f"{BASE}/v1/test-calls").mock(side_effect=lambda request: page(request, [*others, ours]))
    batch = respx_mock.get(f"{BASE}/v1/test-call-batches/tb_0").mock(return_value=ended_batch("tc_ours"))
    target = TestCallsTarget(BASE, "sk_test_near", requests=_Log(), poll_interval_s=0.05)
    target._creating = 400
    ends: list[str] = []
    order = Submission(batch_id="tb_0", runs=(SubmittedRun("tc_ours", 0, created(400), 16.0),))
    with anyio.fail_after(5):
        await target.follow(order, lambda end: ends.append(end.run_id))
    await target.aclose()
    assert ends == ["tc_ours"]
    assert batch.call_count == 0 and lists.call_count >= 1


async def test_runs_of_another_client_between_ours_are_learnt_and_read_past(respx_mock: respx.MockRouter) -> None:
    # Another client (a second worker, say) creates a run after each of ours: our runs lie twice as deep in the
    # list as this client's ledger says. The scan learns that from the runs it finds and reads that much deeper,
    # rather than giving the deeper batches up as unreached and polling each on its own.
    made: list[int] = []  # the first run index of each batch made so far (batch k: tc_<295 - 5k> .. +4)
    ended_after = anyio.current_time() + 1.7

    def listed() -> list[dict[str, object]]:
        status = "completed" if anyio.current_time() > ended_after else "in_progress"
        items: list[dict[str, object]] = []
        for first in sorted(made):  # newest first: a smaller index is a later creation
            for i in range(first, first + 5):
                items += [run(i, status), {**run(i, "in_progress"), "id": f"other_{i}"}]
        return items

    lists = respx_mock.get(f"{BASE}/v1/test-calls").mock(side_effect=lambda request: page(request, listed()))
    batches = respx_mock.get(url__regex=rf"{BASE}/v1/test-call-batches/.*").mock(return_value=httpx.Response(500))
    target = TestCallsTarget(BASE, "sk_test_near", requests=_Log(), poll_interval_s=0.05)
    ends: list[str] = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as followers:
            for seq in range(60):  # 300 runs of ours, 600 in the list: three pages
                first = 295 - 5 * seq
                made.append(first)
                target._created.add(created(first), 5)
                followers.start_soon(target.follow, submission(seq, first), lambda end: ends.append(end.run_id))
                await anyio.sleep(0.025)
    await target.aclose()
    assert sorted(ends) == sorted(f"tc_{i}" for i in range(300))
    assert batches.call_count == 0
    assert target._lister.spread == pytest.approx(2.0, abs=0.3)
    assert target.facts.order == "newest_first" and lists.call_count >= 1
