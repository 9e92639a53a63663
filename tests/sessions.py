"""Helpers for end-to-end tests: run a profile through a Session against a simulator process, keep the truth."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio

from stressor.profile import Profile, parse_profile
from stressor.session import Session, SessionResult, Where
from stressor.sim.config import SimConfig


def profile_of(data: Mapping[str, Any]) -> Profile:
    return parse_profile(data, "e2e.toml", Path())


def run_session(profile: Profile, simulator: Mapping[str, Any]) -> SessionResult:
    """Run ``profile`` against a simulator process configured by ``simulator``; the result carries the truth."""
    config = SimConfig.from_mapping({"api_key": "sk_test_e2e", **simulator})
    where = Where(base_url=None, api_key="sk_test_e2e", simulator=config)
    return anyio.run(Session(profile, where, enforce_budget=False, keep_truth=True).run)
