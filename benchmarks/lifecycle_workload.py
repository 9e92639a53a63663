"""The lifecycle workload of ``benchmarks/peers.py`` as its standalone clients (``locustfile.py``,
``bare_lifecycle.py``) get it: settings from the environment, and the create request they send. stressor's is
the profile ``peers.py`` writes."""

from __future__ import annotations

import os
from typing import NamedTuple


class Workload(NamedTuple):
    """What ``peers.py`` sets in the environment (the defaults are for running a client by hand)."""

    rate: float  # PEERS_RATE: batch starts per second
    duration_s: float  # PEERS_DURATION: seconds of schedule
    runs_per_batch: int  # PEERS_RUNS
    poll_interval_s: float  # PEERS_POLL_INTERVAL
    out: str  # PEERS_OUT: the JSON file the figures are written to
    api_key: str  # PEERS_API_KEY: the Bearer key
    in_flight: int  # PEERS_IN_FLIGHT: runs kept in flight (closed: a batch whenever there is room); 0: open

    @classmethod
    def from_env(cls, out: str) -> Workload:
        env = os.environ
        return cls(
            rate=float(env.get("PEERS_RATE", "20")),
            duration_s=float(env.get("PEERS_DURATION", "10")),
            runs_per_batch=int(env.get("PEERS_RUNS", "5")),
            poll_interval_s=float(env.get("PEERS_POLL_INTERVAL", "0.25")),
            out=env.get("PEERS_OUT", out),
            api_key=env.get("PEERS_API_KEY", "sk_test_benchmark"),
            in_flight=int(env.get("PEERS_IN_FLIGHT", "0")),
        )


def batch_body(runs: int) -> dict[str, object]:
    """``POST /v1/test-call-batches``: ``runs`` runs against agent 101, launched together, charge consented."""
    return {
        "target_type": "agent",
        "target_id": 101,
        "direction": "outbound",
        "mode": "bot",
        "consent_to_charge": True,
        "run_count": runs,
        "stagger_seconds": 0,
        "scenario_prompts": ["Ask for the opening hours."],
    }
