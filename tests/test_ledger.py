"""The creation ledger, and scans that start below the runs this client created after the ones they look for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stressor.targets.ledger import ORDER_SLACK_S, CreationLedger
from stressor.targets.testcalls.lister import SKIP_MARGIN_RUNS, RunLister

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


def test_the_ledger_counts_runs_created_strictly_after_an_instant() -> None:
    ledger = CreationLedger()
    for i in range(10):
        ledger.add(100.0 + i, 5)
    ledger.add(None, 5)  # an unknown creation time counts nowhere
    assert ledger.created_after(104.0) == 25  # 105..109
    assert ledger.created_after(99.0) == 50
    assert ledger.created_after(109.0) == 0


def test_the_ledger_never_counts_more_than_there_are() -> None:
    # An answer noted late, a little out of order, still counts; one far out of order ends the walk early.
    ledger = CreationLedger()
    for created_at in (100.0, 101.0, 100.5, 103.0):
        ledger.add(created_at, 2)
    assert ledger.created_after(100.2) == 6
    far = CreationLedger()
    for created_at in (200.0, 100.0 - ORDER_SLACK_S - 1, 201.0):
        far.add(created_at, 1)
    assert far.created_after(150.0) == 1  # fewer than the 2 there are: a lower bound, never more
    # Forgotten creates lower the count too.
    short = CreationLedger(entries=3)
    for i in range(6):
        short.add(100.0 + i, 1)
    assert short.created_after(99.0) == 3


def run(i: int) -> dict[str, object]:
    """Run ``tc_<i>``, created i ms before T0 (the list is newest first: it sits at offset i)."""
    created = (T0 - timedelta(milliseconds=i)).isoformat()
    return {"id": f"tc_{i}", "status": "completed", "created_at": created, "started_at": created,
            "completed_at": created, "error_message": ""}  # fmt: skip


def lister_over(depth: int, ledger: CreationLedger) -> tuple[RunLister, list[int]]:
    """A lister over a list of ``depth`` runs, newest first, and the offsets it asked for."""
    offsets: list[int] = []

    async def newest_first(purpose: str, path: str, params: dict[str, int]) -> tuple[object, int]:
        offsets.append(params["offset"])
        return [run(i) for i in range(params["offset"], min(params["offset"] + params["limit"], depth))], 0

    return RunLister(newest_first, page_size=100, ledger=ledger), offsets


async def test_a_scan_starts_below_the_runs_this_client_created_after_the_wanted_ones() -> None:
    ledger = CreationLedger()
    for i in range(400):  # this client created runs 0..399 (run i at T0 - i ms)
        ledger.add((T0 - timedelta(milliseconds=i)).timestamp(), 1)
    lister, offsets = lister_over(2_000, ledger)
    wanted = {f"tc_{i}": (T0 - timedelta(milliseconds=i)).timestamp() for i in (350, 380)}
    found = await lister.lookup(wanted)
    assert set(found) == {"tc_350", "tc_380"}
    start = 350 - SKIP_MARGIN_RUNS - 350 // 10
    assert offsets == [start]  # one page, from just above the newest wanted run, not the 4 pages from the top


async def test_a_list_shallower_than_the_ledger_says_is_scanned_again_from_the_top() -> None:
    # The ledger claims 300 runs newer than the wanted one, but the list holds it at offset 40 (say, runs were
    # deleted): the page at the skipped offset shows older runs, so the scan starts over at the top.
    ledger = CreationLedger()
    for _ in range(300):
        ledger.add((T0 + timedelta(seconds=5)).timestamp(), 1)
    lister, offsets = lister_over(500, ledger)
    found = await lister.lookup({"tc_40": (T0 - timedelta(milliseconds=40)).timestamp()})
    assert set(found) == {"tc_40"}
    assert offsets[0] > 40 and offsets[1:] == [0]
