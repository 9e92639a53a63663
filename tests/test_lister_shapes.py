"""The lister against run lists the docs allow: oldest first, pages capped below the limit, offset ignored."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stressor.targets.ledger import CreationLedger
from stressor.targets.testcalls.lister import RunLister
from stressor.targets.testcalls.listing import ListLearner

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)


def created(i: int) -> float:
    return (T0 + timedelta(milliseconds=i)).timestamp()


@dataclass
class RunList:
    """Runs ``r0`` .. ``r<n-1>``, run i created i ms after T0, listed as a server with these quirks would."""

    runs: int
    oldest_first: bool = False
    cap: int | None = None
    ignore_offset: bool = False
    asked: list[tuple[int, int]] = field(default_factory=list)

    async def get(self, purpose: str, path: str, params: dict[str, int]) -> tuple[list[Any], int]:
        limit, offset = params["limit"], params["offset"]
        self.asked.append((offset, limit))
        ids = list(range(self.runs)) if self.oldest_first else list(reversed(range(self.runs)))
        start = 0 if self.ignore_offset else offset
        size = min(limit, self.cap) if self.cap is not None else limit
        page = [
            {"id": f"r{i}", "status": "completed", "created_at": (T0 + timedelta(milliseconds=i)).isoformat()}
            for i in ids[start : start + size]
        ]
        return page, 0


def lister(runs: RunList, learner: ListLearner | None = None) -> RunLister:
    return RunLister(runs.get, page_size=100, ledger=CreationLedger(), learner=learner)


async def test_a_capped_page_is_read_past_not_taken_for_the_end() -> None:
    # Pages hold 50 runs whatever the limit: the run at depth 120 is below three such pages.
    runs = RunList(300, cap=50)
    learner = ListLearner()
    seen = await lister(runs, learner).lookup_all({"r179": created(179)})
    assert set(seen.found) == {"r179"} and not seen.missing
    offsets = [offset for offset, _ in runs.asked]
    assert offsets == [0, 50, 100]  # advanced by what each page held, not by the limit asked
    assert learner.facts.page_cap == 50


async def test_a_capped_list_proves_a_run_missing_only_past_its_creation() -> None:
    runs = RunList(120, cap=50)
    seen = await lister(runs).lookup_all({"gone": created(30)})
    assert seen.missing == {"gone"}
    assert [offset for offset, _ in runs.asked][-1] >= 90  # read down past 30 ms (depth 90), not stopped at 50


async def test_an_oldest_first_list_is_learned_and_runs_are_found_at_their_place() -> None:
    runs = RunList(250, oldest_first=True)
    learner = ListLearner()
    the_lister = lister(runs, learner)
    first = await the_lister.lookup_all({"r240": created(240)})
    assert learner.facts.order == "oldest_first"
    # The first scan took the list for newest first and read it to its end; the run was still found.
    assert set(first.found) == {"r240"}
    runs.asked.clear()
    again = await the_lister.lookup_all({"r245": created(245)}, floors={"r245": 200})
    assert set(again.found) == {"r245"} and again.places == {"r245": 245}
    assert [offset for offset, _ in runs.asked] == [200]  # straight to its place: one page


async def test_an_oldest_first_scan_reads_to_the_end_for_a_run_not_yet_listed() -> None:
    runs = RunList(150, oldest_first=True)
    learner = ListLearner()
    learner.saw_order("oldest_first")
    the_lister = lister(runs, learner)
    seen = await the_lister.lookup_all({"r999": created(999)}, floors={"r999": 100})
    assert seen.missing == {"r999"}
    assert [offset for offset, _ in runs.asked] == [100, 150]  # from its floor to an empty page
    assert the_lister.length == 150


async def test_an_ignored_offset_is_learned_and_then_only_the_first_page_is_read() -> None:
    runs = RunList(500, ignore_offset=True)
    learner = ListLearner()
    the_lister = lister(runs, learner)
    for _ in range(2):  # each scan that reads a second page sees it repeat the first
        await the_lister.lookup_all({"r100": created(100)})
    assert learner.facts.offset == "ignored"
    runs.asked.clear()
    seen = await the_lister.lookup_all({"r100": created(100), "r450": created(450)})
    assert set(seen.found) == {"r450"}  # on the one page there is
    assert seen.unreached == {"r100"}  # never to be seen again
    assert runs.asked == [(0, 200)]  # the largest page the API gives, once


async def test_a_newest_first_list_is_confirmed_not_misread() -> None:
    runs = RunList(300)
    learner = ListLearner()
    seen = await lister(runs, learner).lookup_all({"r150": created(150)})
    assert set(seen.found) == {"r150"}
    assert learner.facts.order == "newest_first" and learner.facts.page_cap is None


async def test_ids_are_matched_as_the_list_gives_them_integers_or_strings_never_booleans() -> None:
    # The docs' ids are integers; a client keeps them as text. An integer in the list is the run whose text
    # spells it exactly ("7", not "007"); ``true`` is no run's id, though it equals 1 in Python.
    def item(run_id: object, status: str = "in_progress") -> dict[str, object]:
        return {"id": run_id, "status": status, "created_at": "2026-11-29T12:00:00.000Z"}

    page = [item(True), item(7, "completed"), item("tc_a"), item(12), item(-3, "failed")]

    async def get(purpose: str, path: str, params: dict[str, int]) -> tuple[object, int]:
        return (page if params["offset"] == 0 else []), 0

    lister = RunLister(get, page_size=100, ledger=CreationLedger())
    seen = await lister.lookup_all(dict.fromkeys(["1", "7", "tc_a", "012", "-3"]))
    assert set(seen.found) == {"7", "tc_a", "-3"}
    assert seen.found["7"].ended and seen.found["7"].created_at is not None
    assert not seen.found["tc_a"].ended
    assert seen.missing == {"1", "012"}  # read to the list's end without them
