"""The precise timer (``stressor.wake``): never early, cancellable, not fooled by an expiry it no longer wants,
on asyncio and on uvloop. Checked against CLOCK_MONOTONIC, never by how late it is (a shared machine)."""

from __future__ import annotations

import importlib.util
import random
import sys
import time
from collections.abc import Awaitable, Callable

import anyio
import pytest

from stressor import wake
from stressor.wake import PreciseTimer

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="timerfd is Linux's")

LOOPS = [
    "asyncio",
    pytest.param("uvloop", marks=pytest.mark.skipif(not importlib.util.find_spec("uvloop"), reason="no uvloop")),
]
MS = 1_000_000


def now_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def on_loop(loop: str, test: Callable[[PreciseTimer], Awaitable[None]]) -> None:
    async def main() -> None:
        timer = PreciseTimer.open()
        assert timer is not None
        try:
            await test(timer)
        finally:
            timer.close()

    anyio.run(main, backend="asyncio", backend_options={"use_uvloop": loop == "uvloop"})


@pytest.mark.parametrize("loop", LOOPS)
def test_a_wait_never_returns_before_its_deadline(loop: str) -> None:
    rng = random.Random(7)

    async def waits(timer: PreciseTimer) -> None:
        for _ in range(40):
            deadline = now_ns() + rng.randint(50_000, 3 * MS)
            await timer.sleep_until(deadline)
            assert now_ns() >= deadline
        before = now_ns()
        await timer.sleep_until(before - MS)  # passed: at once
        assert now_ns() - before < 50 * MS

    on_loop(loop, waits)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_cancelled_wait_leaves_no_expiry_behind(loop: str) -> None:
    async def cancelled_then_waits(timer: PreciseTimer) -> None:
        with anyio.move_on_after(0.002):
            await timer.sleep_until(now_ns() + 20 * MS)
        deadline = now_ns() + 40 * MS
        await timer.sleep_until(deadline)  # the 20 ms expiry, had it stayed armed, would end this one early
        assert now_ns() >= deadline

    on_loop(loop, cancelled_then_waits)


@pytest.mark.parametrize("loop", LOOPS)
def test_an_expiry_read_after_its_wait_was_cancelled_does_not_wake_the_next_one(loop: str) -> None:
    async def stale(timer: PreciseTimer) -> None:
        async with anyio.create_task_group() as tasks:
            scope = anyio.CancelScope()

            async def waiter() -> None:
                with scope:
                    await timer.sleep_until(now_ns() + 1 * MS)

            tasks.start_soon(waiter)
            await anyio.sleep(0)  # the waiter has armed the timer
            time.sleep(0.005)  # the loop is held: the timer expires before anyone reads it
            scope.cancel()
        deadline = now_ns() + 30 * MS
        await timer.sleep_until(deadline)
        assert now_ns() >= deadline

    on_loop(loop, stale)


def test_without_a_timerfd_there_is_no_precise_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wake, "_libc_timerfd", lambda: None)

    async def main() -> PreciseTimer | None:
        return PreciseTimer.open()

    assert anyio.run(main) is None


def test_only_linux_is_asked_for_a_timerfd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert wake._libc_timerfd() is None
