"""The preflight: what a few non-billable reads of the lists show before the first create, and `stressor check`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from support.cli import stressor_here

from stressor.targets.testcalls.listing import ListLearner
from stressor.targets.testcalls.preflight import BATCHES, RUNS, CheckRow, Inspection, check_rows, probe_lists

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)


class Server:
    """Lists of ``runs`` runs and ``batches`` batches, run i created i ms after T0, with a server's quirks."""

    def __init__(
        self,
        runs: int,
        batches: int = 0,
        *,
        oldest_first: bool = False,
        cap: int | None = None,
        ignore_offset: bool = False,
    ) -> None:
        self.lists = {RUNS: runs, BATCHES: batches}
        self.oldest_first, self.cap, self.ignore_offset = oldest_first, cap, ignore_offset
        self.asked: list[tuple[str, int, int]] = []

    async def get(self, path: str, limit: int, offset: int) -> list[Any] | None:
        self.asked.append((path, limit, offset))
        count = self.lists[path]
        ids = list(range(count)) if self.oldest_first else list(reversed(range(count)))
        start = 0 if self.ignore_offset else offset
        size = min(limit, self.cap) if self.cap is not None else limit
        stamp = lambda i: (T0 + timedelta(milliseconds=i)).isoformat()  # noqa: E731
        return [{"id": f"{path[-5:]}{i}", "created_at": stamp(i), "name": f"b{i}"} for i in ids[start : start + size]]


async def test_a_newest_first_list_that_pages_is_the_docs_reading() -> None:
    server = Server(300, 10)
    preflight = await probe_lists(server.get, ListLearner())
    facts = preflight.facts
    assert (facts.order, facts.offset, facts.page_cap) == ("newest_first", "honoured", None)
    assert preflight.refusal() is None and preflight.adaptations() == []
    assert len(preflight.run_anchors) == 100 and "-runs299" not in preflight.run_anchors
    assert len(server.asked) == 4  # first pages of both lists, two single items: nothing billable, little at all


async def test_a_capped_oldest_first_list_is_measured_and_adapted_to() -> None:
    server = Server(1234, 40, oldest_first=True, cap=50)
    preflight = await probe_lists(server.get, ListLearner())
    facts = preflight.facts
    assert (facts.order, facts.page_cap) == ("oldest_first", 50)
    assert preflight.run_length == 1234 and preflight.batch_length == 40
    assert preflight.refusal() is None
    assert len(preflight.adaptations()) == 2  # oldest first, and pages of 50
    assert preflight.run_anchors == frozenset()  # the first page of an oldest-first list is its oldest


async def test_a_list_that_cannot_be_followed_is_refused_before_anything_is_created() -> None:
    preflight = await probe_lists(Server(500, oldest_first=True, ignore_offset=True).get, ListLearner())
    assert preflight.facts.offset == "ignored"
    assert preflight.refusal() is not None and "never be on the one page" in preflight.refusal()  # type: ignore[operator]
    newest = await probe_lists(Server(500, ignore_offset=True).get, ListLearner())
    assert newest.refusal() is None  # newest first, the first page shows new runs: followed there, loudly
    assert any("counted unknown" in line for line in newest.adaptations())


async def test_an_empty_list_is_read_as_empty_and_an_unreadable_one_as_nothing() -> None:
    empty = await probe_lists(Server(0).get, ListLearner())
    assert empty.runs_read and empty.run_length == 0 and empty.batch_length == 0

    async def failing(path: str, limit: int, offset: int) -> list[Any] | None:
        return None

    unread = await probe_lists(failing, ListLearner())
    assert not unread.runs_read and unread.run_length is None and unread.batch_length is None
    assert any("could not be read" in line for line in unread.adaptations())


def test_check_rows_say_what_a_run_does_about_each_fact() -> None:
    assert check_rows(Inspection(unreachable="the connection was refused")) == [
        CheckRow("reachable", "the connection was refused", "fail")
    ]
    refused = check_rows(Inspection(key_status=401))
    assert CheckRow("API key", "refused: GET /v1/test-calls answered 401", "fail") in refused


@pytest.mark.e2e
def test_stressor_check_against_a_simulator_that_lists_oldest_first_in_short_pages(tmp_path: Any) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text('name = "p"\n[[stages]]\nduration = "1s"\nrate = "1/s"\n')
    done = stressor_here("check", str(profile), "--json", real_time=True)  # the simulator in its own process
    assert done.returncode == 0, done.stderr
    rows = {row["check"]: row for row in orjson.loads(done.stdout)}
    assert rows["API key"]["verdict"] == "ok"
    assert rows["run list order"]["verdict"] == "later"  # an empty list shows nothing yet
    table = stressor_here("check", str(profile), real_time=True)
    assert table.returncode == 0 and table.stdout.splitlines()[0].split() == ["check", "verdict", "seen"]
