"""How a run is run (stressor.runtime): the event loop chosen and the collector's settings put back."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from stressor import runtime


async def _loop_name(value: int) -> tuple[str, int]:
    return type(asyncio.get_running_loop()).__module__, value


def test_run_returns_the_result_and_puts_the_collector_back() -> None:
    before = gc.get_threshold()
    seen: list[tuple[tuple[int, int, int], int]] = []

    async def inside() -> str:
        seen.append((gc.get_threshold(), gc.get_freeze_count()))
        return "done"

    assert runtime.run(inside, loop="asyncio") == "done"
    threshold, frozen = seen[0]
    assert threshold[0] >= runtime.GEN0_THRESHOLD and frozen > 0  # tuned while the run runs
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_garbage_made_before_the_run_is_freed_not_frozen() -> None:
    class Node:
        me: object

    node = Node()
    node.me = node  # a cycle: only the collector frees it
    gone = weakref.ref(node)
    del node
    with runtime.tuned_gc():
        assert gone() is None


def test_the_collector_is_put_back_when_the_run_fails() -> None:
    before = gc.get_threshold()

    async def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        runtime.run(fails, loop="asyncio")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_asyncio_when_asked_and_uvloop_only_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    module, value = runtime.run(_loop_name, 7, loop="asyncio", tune_gc=False)
    assert module.startswith("asyncio") and value == 7
    if runtime.uvloop_available():
        assert runtime.run(_loop_name, 1, loop="uvloop")[0].startswith("uvloop")
        assert runtime.loop_for("auto") == "uvloop"
    monkeypatch.setattr(runtime, "uvloop_available", lambda: False)
    assert runtime.loop_for("auto") == "asyncio"
    with pytest.raises(RuntimeError, match="uvloop was asked for but is not installed"):
        runtime.loop_for("uvloop")
