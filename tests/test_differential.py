"""Differential test: stressor against servers the docs allow, under faults, checked against ground truth.

Hypothesis draws a server (the simulator's switches for what the docs leave open) and a fault mix (resets,
5xx and slow answers after the server created the runs, 429/503 storms with and without Retry-After), runs a
short profile against it (in memory, on virtual time: seconds of the profile take milliseconds, the
same way every run), and checks the promises a user pays for: no run created twice;
``submitted`` never above what the server created; every run the server created accounted for as ended,
open or ``unknown``; the status of every ended run as the server has it; no run the server ended long before
the end reported ``open``; no traceback; a results document always built. CI runs a fixed number of examples;
set ``STRESSOR_DIFFERENTIAL_EXAMPLES`` (say 1000) for a night's run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.truth import KEY, check_against_truth, run_against
from support.virtual import run

from stressor.profile import Profile, parse_profile
from stressor.sim.config import SimConfig

EXAMPLES = int(os.environ.get("STRESSOR_DIFFERENTIAL_EXAMPLES", "50"))

SERVERS = st.fixed_dictionaries(
    {
        "list_order": st.sampled_from(["newest", "oldest"]),
        "list_offset": st.sampled_from(["honoured", "honoured", "ignored"]),
        "page_cap": st.sampled_from([None, 7, 30]),
        "batch_name": st.sampled_from(["whole", "absent", "truncated"]),
        "batch_name_length": st.sampled_from([5, 16]),
        "clock_offset": st.sampled_from([0.0, -6.0, 6.0]),
        "ids": st.sampled_from(["int", "string"]),
    }
)
FAULTS = st.fixed_dictionaries(
    {
        "reset_rate": st.sampled_from([0.0, 0.1]),
        "error_rate": st.sampled_from([0.0, 0.15, 0.3]),
        "error_status": st.sampled_from(["500", "503", "mixed"]),
        "fault_after_create": st.sampled_from([0.0, 0.5, 1.0]),
        "slow_after_create": st.sampled_from([0.0, 0.2]),
        "slow_after_create_delay": st.just(0.6),
        "rate_limit": st.sampled_from([None, 40.0]),
        "rate_limit_status": st.sampled_from([429, 503]),
        "retry_after": st.sampled_from(["seconds", "none"]),
        "rate_limit_scope": st.sampled_from(["all", "create"]),
    }
)


def profile_for(submit: str) -> Profile:
    runs = 1 if submit == "single" else 3
    data = {
        "name": "differential",
        "target": {"submit": submit, "poll_interval": "30ms", "request_timeout": "400ms"},
        "batch": {"runs": runs, "stagger": "0s"},
        "stages": [{"duration": "1s", "rate": "6/s"}],
        "grace": "4s",
        "limits": {"backoff_base": "10ms", "backoff_cap": "200ms"},
    }
    return parse_profile(data, "differential.toml", Path())


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= 100,  # CI: the same examples every time
    suppress_health_check=[HealthCheck.too_slow],
)
@given(server=SERVERS, faults=FAULTS, submit=st.sampled_from(["batch", "batch", "single"]), seed=st.integers(0, 99))
def test_stressor_keeps_its_promises_against_any_server_the_docs_allow(
    server: dict[str, Any], faults: dict[str, Any], submit: str, seed: int
) -> None:
    config = SimConfig.from_mapping(
        {
            "api_key": KEY,
            "seed": seed,
            "slots": 50,
            "call_duration": "fixed(0.2)",
            "time_scale": 1.0,
            **server,
            **faults,
        }
    )
    profile = profile_for(submit)
    outcome = run(run_against, profile, config)
    check_against_truth(outcome, 1 if submit == "single" else 3)
