"""One process or many, the session drives the same ``Runner``: the engine and the coordinator of workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from stressor.distributed.coordinator import Coordinator
from stressor.engine import Engine
from stressor.profile import parse_profile
from stressor.progress import Progress
from stressor.session import Runner

pytestmark = pytest.mark.anyio


class _NoTarget:
    """Never called: the engine is built, not run."""


class _NoBackend:
    async def run(self, *_: object) -> None: ...

    async def capacity(self) -> int:
        return 1


async def test_the_engine_and_the_coordinator_are_both_runners() -> None:
    profile = parse_profile({"stages": [{"duration": "10s", "rate": "1/s"}]}, "p.toml", Path())
    engine = Engine(profile, _NoTarget())  # type: ignore[arg-type]
    coordinator = Coordinator(
        profile, _NoBackend(), workers=2, base_url="http://127.0.0.1:9", api_key="sk_test_runner", enforce_budget=False
    )
    assert isinstance(engine, Runner) and isinstance(coordinator, Runner)
    for runner in (engine, coordinator):  # what the live display reads, the same way on both
        assert isinstance(runner.progress(), Progress)
