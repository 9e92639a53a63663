"""Issue 15's reproductions, each against the simulator switched the way the docs allow (in memory, on virtual time):
lost create answers never bill a run twice whatever the server's clock, names and pages; runs are never
silently left open on lists that ignore ``offset`` or list oldest first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.truth import KEY, check_against_truth, run_against
from support.virtual import run

from stressor.metrics import Outcome
from stressor.profile import Profile, parse_profile
from stressor.sim.config import SimConfig

# Every run-creating POST that is answered with a reset had created its runs first: the answer is lost.
LOST_ANSWERS = {"reset_rate": 0.25, "fault_after_create": 1.0}


def profile(batches: int, runs: int, *, submit: str = "batch", rate: str = "10/s", grace: str = "6s") -> Profile:
    data = {
        "name": "servers",
        "target": {"submit": submit, "poll_interval": "30ms", "request_timeout": "400ms"},
        "batch": {"runs": runs, "stagger": "0s"},
        "stages": [{"duration": f"{batches / float(rate.split('/', maxsplit=1)[0]):g}s", "rate": rate}],
        "grace": grace,
        "limits": {"backoff_base": "10ms", "backoff_cap": "200ms"},
    }
    return parse_profile(data, "servers.toml", Path())


def against(the_profile: Profile, **simulator: Any) -> dict[str, Any]:
    config = SimConfig.from_mapping(
        {"api_key": KEY, "seed": 15, "slots": 200, "call_duration": "fixed(0.3)", "time_scale": 1.0, **simulator}
    )
    return run(run_against, the_profile, config)


@pytest.mark.parametrize(
    "server",
    [
        pytest.param({"clock_offset": "-6s"}, id="clock-6s-behind"),
        pytest.param({"clock_offset": "6s"}, id="clock-6s-ahead"),
        pytest.param({"batch_name": "absent"}, id="names-absent"),
        pytest.param({"batch_name": "truncated", "batch_name_length": 16}, id="names-truncated"),
        pytest.param({"page_cap": 50}, id="pages-of-50"),
        pytest.param({"list_order": "oldest", "clock_offset": "-6s"}, id="oldest-first"),
    ],
)
def test_lost_create_answers_never_bill_a_run_twice(server: dict[str, Any]) -> None:
    the_profile = profile(batches=10, runs=5)
    run = against(the_profile, **server, **LOST_ANSWERS)
    check_against_truth(run, runs_per_order=5)
    assert len(run["truth"]) <= 50  # never more runs than the plan's 50 (the issue saw 75, 80, 154)
    assert sum(1 for r in run["result"].records if r.run_id is not None) >= 20  # and the run did drive the server


def test_single_runs_with_a_skewed_clock_are_never_created_twice() -> None:
    run = against(profile(batches=30, runs=1, submit="single"), clock_offset="-6s", **LOST_ANSWERS)
    check_against_truth(run, runs_per_order=1)
    assert len(run["truth"]) <= 30  # the issue saw 46 for 30


def test_a_list_that_ignores_offset_never_leaves_ended_runs_open_with_exit_0() -> None:
    # 400 runs of 1.5 s created at 200 a second: most sink below the one page such a list shows before they end.
    the_profile = profile(batches=20, runs=20, rate="10/s", grace="5s")
    run = against(the_profile, list_offset="ignored", call_duration="fixed(1.5)")
    check_against_truth(run, runs_per_order=20)
    outcomes = run["result"].metrics.outcomes
    assert outcomes[Outcome.OPEN] == 0  # the issue: 287 of 400 completed runs reported open, exit 0
    assert outcomes[Outcome.UNKNOWN] > 0 and run["document"].errors["run_not_found"] == outcomes[Outcome.UNKNOWN]
    assert run["document"].server.run_list.offset == "ignored"


def test_an_oldest_first_list_is_followed_to_every_runs_end() -> None:
    run = against(profile(batches=12, runs=10), list_order="oldest", page_cap=30)
    check_against_truth(run, runs_per_order=10)
    outcomes = run["result"].metrics.outcomes
    assert outcomes[Outcome.COMPLETED] == 120  # the issue: 78 of 120 reported open
    assert run["document"].server.run_list.order == "oldest_first"
