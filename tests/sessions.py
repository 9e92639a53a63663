"""Helpers for end-to-end tests: run a profile against a simulator (through a Session in its own process, or an
engine beside an in-process server), keep the truth."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import httpx

from stressor.engine import Engine, EngineResult
from stressor.governor import Governor
from stressor.metrics import Metrics
from stressor.profile import Profile, parse_profile
from stressor.session import Session, SessionResult, Where
from stressor.sim.config import SimConfig
from stressor.sim.records import TruthRecord
from stressor.sim.server import serve
from stressor.targets.testcalls.target import TestCallsTarget
from stressor.timestamps import ClockAnchor


def profile_of(data: Mapping[str, Any]) -> Profile:
    return parse_profile(data, "e2e.toml", Path())


def run_session(profile: Profile, simulator: Mapping[str, Any]) -> SessionResult:
    """Run ``profile`` against a simulator process configured by ``simulator``; the result carries the truth."""
    config = SimConfig.from_mapping({"api_key": "sk_test_e2e", **simulator})
    where = Where(base_url=None, api_key="sk_test_e2e", simulator=config)
    return anyio.run(Session(profile, where, enforce_budget=False, keep_truth=True).run)


async def drive(
    profile: Profile, simulator: Mapping[str, Any], transport: httpx.AsyncBaseTransport | None = None
) -> tuple[EngineResult, list[TruthRecord], dict[str, Any]]:
    """Run ``profile``'s engine against an in-process simulator (seed 4 unless ``simulator`` says otherwise)
    over ``transport`` (default: the real one); the result, the simulator's truth and its ``/_sim/stats``."""
    config = SimConfig.from_mapping({"seed": 4, **simulator})
    async with serve(config) as sim:
        metrics = Metrics(ClockAnchor.now())
        governor = Governor(profile.limits)
        target = TestCallsTarget(
            sim.base_url,
            "sk_test_e2e",
            metrics,
            governor=governor,
            poll_interval_s=profile.target.poll_interval_s,
            timeout_s=profile.target.request_timeout_s,
            transport=transport,
        )
        try:
            result = await Engine(profile, target, metrics=metrics, governor=governor).run()
        finally:
            await target.aclose()
        async with httpx.AsyncClient(base_url=sim.base_url) as client:
            stats = (await client.get("/_sim/stats")).json()
        return result, sim.model.truth(), stats


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
