"""Runs created against runs planned, per kind of server the API's docs allow, with create answers lost.

Each row runs a short profile against the embedded simulator (in process, on loopback) switched one way the
docs leave open, with every create answered by a reset after the runs were made (a quarter of them), and
prints what the simulator's ground truth says was created beside what stressor reported: a run created
twice shows as ``duplicates`` > 0 or ``created`` > ``planned``; a run the server made that stressor cannot
account for as ``unaccounted`` > 0. Issue 15 reproduced 75 created for 50 planned with a clock 6 s behind.

    python benchmarks/servers.py            # every kind, ~1 minute
"""

from __future__ import annotations

import argparse
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import anyio

from stressor.engine import Engine
from stressor.governor import Governor
from stressor.metrics import Metrics, Outcome
from stressor.profile import Profile, parse_profile
from stressor.sim.config import SimConfig
from stressor.sim.server import serve
from stressor.targets.base import TargetUnavailable
from stressor.targets.testcalls.target import TestCallsTarget
from stressor.timestamps import ClockAnchor

KEY = "sk_test_servers_benchmark"
LOST = {"reset_rate": 0.25, "fault_after_create": 1.0}
KINDS: list[tuple[str, str, int, int, dict[str, Any]]] = [
    # name, submit, orders, runs per order, simulator switches
    ("docs' reading", "batch", 10, 5, {}),
    ("clock 6 s behind", "batch", 10, 5, {"clock_offset": -6.0}),
    ("clock 6 s ahead", "batch", 10, 5, {"clock_offset": 6.0}),
    ("batch names absent", "batch", 10, 5, {"batch_name": "absent"}),
    ("batch names cut to 16", "batch", 10, 5, {"batch_name": "truncated", "batch_name_length": 16}),
    ("pages of at most 50", "batch", 30, 5, {"page_cap": 50}),
    ("oldest first", "batch", 10, 5, {"list_order": "oldest"}),
    ("offset ignored", "batch", 10, 5, {"list_offset": "ignored"}),
    ("single runs, clock 6 s behind", "single", 30, 1, {"clock_offset": -6.0}),
]


def profile(submit: str, orders: int, runs: int) -> Profile:
    data = {
        "name": "servers",
        "target": {"submit": submit, "poll_interval": "30ms", "request_timeout": "400ms"},
        "batch": {"runs": runs, "stagger": "0s"},
        "stages": [{"duration": f"{orders / 10:g}s", "rate": "10/s"}],
        "grace": "6s",
        "limits": {"backoff_base": "10ms", "backoff_cap": "200ms"},
    }
    return parse_profile(data, "servers.toml", Path())


async def one(submit: str, orders: int, runs: int, switches: dict[str, Any], seed: int) -> dict[str, Any]:
    config = SimConfig.from_mapping(
        {"api_key": KEY, "seed": seed, "slots": 200, "call_duration": "fixed(0.3)", "time_scale": 1.0}
        | switches
        | LOST
    )
    the_profile = profile(submit, orders, runs)
    async with serve(config) as sim:
        metrics = Metrics(ClockAnchor.now())
        governor = Governor(the_profile.limits)
        target = TestCallsTarget(
            sim.base_url,
            KEY,
            metrics,
            governor=governor,
            submit_mode=submit,
            poll_interval_s=0.03,
            timeout_s=0.4,
            reconcile_deadline_s=3.0,
        )
        try:
            await target.check()
            result = await Engine(the_profile, target, metrics=metrics, governor=governor).run()
        except TargetUnavailable as refused:
            return {"refused": str(refused)}
        finally:
            await target.aclose()
        truth = sim.model.truth()
        names = Counter(
            batch.sent_name for b in {t.batch_id for t in truth if t.batch_id} if (batch := sim.model.get_batch(b))
        )
    seen = {r.run_id for r in result.records if r.run_id is not None}
    unknown_creates = sum(runs for r in result.records if r.outcome is Outcome.UNKNOWN and r.run_id is None) // runs
    return {
        "planned": metrics.planned_runs,
        "created": len(truth),
        "submitted": metrics.submitted_runs,
        "duplicates": sum(n - 1 for n in names.values()),
        "unaccounted": max(0, len({t.id for t in truth} - seen) - unknown_creates * runs),
        "unknown": metrics.outcomes[Outcome.UNKNOWN],
        "open": metrics.outcomes[Outcome.OPEN],
        "errored": metrics.outcomes[Outcome.ERRORED],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    print(f"commit {commit.stdout.strip() or '?'}; a quarter of creates answered by a reset after creating")
    columns = ("planned", "created", "submitted", "duplicates", "unaccounted", "unknown", "open", "errored")
    print(f"{'server':<30}" + "".join(f"{c:>12}" for c in columns))
    for name, submit, orders, runs, switches in KINDS:
        row = anyio.run(one, submit, orders, runs, switches, args.seed)
        if "refused" in row:
            print(f"{name:<30}  refused before any create: {row['refused']}")
            continue
        print(f"{name:<30}" + "".join(f"{row[c]:>12}" for c in columns))


if __name__ == "__main__":
    main()
