"""Helpers for end-to-end tests: run a profile against the simulator (through a Session, or an engine beside it)
on virtual time with the simulator in memory, keep the truth; or run ``stressor`` in its own process."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
from support.memory import MemorySurroundings, in_memory
from support.virtual import clock, run

from stressor.clock import anchor_of
from stressor.engine import Engine, EngineResult
from stressor.governor import Governor
from stressor.metrics import Metrics
from stressor.profile import Profile, parse_profile
from stressor.session import Session, SessionResult, Where
from stressor.sim.config import SimConfig
from stressor.sim.records import TruthRecord
from stressor.targets.testcalls.target import TestCallsTarget

Wrap = Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport]


def profile_of(data: Mapping[str, Any]) -> Profile:
    return parse_profile(data, "e2e.toml", Path())


def run_session(profile: Profile, simulator: Mapping[str, Any]) -> SessionResult:
    """Run ``profile`` through a Session against the simulator configured by ``simulator``, in memory on virtual
    time; the result carries the truth."""
    config = SimConfig.from_mapping({"api_key": "sk_test_e2e", **simulator})
    where = Where(base_url=None, api_key="sk_test_e2e", simulator=config)

    async def session() -> SessionResult:
        surroundings = MemorySurroundings(clock())
        return await Session(profile, where, enforce_budget=False, keep_truth=True, surroundings=surroundings).run()

    return run(session)


async def drive(
    profile: Profile, simulator: Mapping[str, Any], wrap: Wrap | None = None
) -> tuple[EngineResult, list[TruthRecord], dict[str, Any]]:
    """Run ``profile``'s engine against the simulator in memory (seed 4 unless ``simulator`` says otherwise) on
    the loop's clock, through ``wrap(transport)`` when given; the result, the simulator's truth and its
    ``/_sim/stats``. Run it with ``support.virtual.run``."""
    config = SimConfig.from_mapping({"seed": 4, **simulator})
    async with in_memory(config) as sim:
        metrics = Metrics(anchor_of(sim.clock))
        governor = Governor(profile.limits, random.Random(config.seed))
        target = TestCallsTarget(
            sim.base_url,
            "sk_test_e2e",
            metrics,
            governor=governor,
            poll_interval_s=profile.target.poll_interval_s,
            timeout_s=profile.target.request_timeout_s,
            transport=wrap(sim.transport) if wrap is not None else sim.transport,
            clock=sim.clock,
            rng=random.Random(config.seed),
        )
        try:
            result = await Engine(profile, target, metrics=metrics, governor=governor, clock=sim.clock).run()
        finally:
            await target.aclose()
        return result, sim.model.truth(), await sim.stats_json()


def run_stressor(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``stressor ARGS`` in its own process, as a user runs it: never against a base URL or with a key from the
    environment of the tests (only those in ``env``), with wide lines so that messages are not wrapped."""
    environment = {k: v for k, v in os.environ.items() if k not in ("STRESSOR_BASE_URL", "THUNDERPHONE_API_KEY")}
    return subprocess.run(
        [sys.executable, "-m", "stressor", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**environment, "COLUMNS": "200", **(env or {})},
        check=False,
    )
