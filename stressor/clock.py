"""Time, injected: a monotonic now in nanoseconds, the wall time in epoch seconds, and sleeping until an instant.

``SYSTEM`` reads the machine's clocks (``now_ns`` is ``time.perf_counter_ns`` itself: nothing added per call);
``LoopClock`` reads the running event loop's, which a test's virtual-time loop makes virtual. Code that waits
or reads time takes a ``Clock``; what it waits on goes through the loop, so both clocks agree with its timers.
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio

from stressor.timestamps import NS_PER_S, ClockAnchor


class Clock(Protocol):
    """Where time comes from."""

    def now_ns(self) -> int:
        """Monotonic now, in nanoseconds."""
        ...

    def wall(self) -> float:
        """Wall-clock now, in epoch seconds."""
        ...

    async def sleep_until(self, when_ns: int) -> None:
        """Return at monotonic ``when_ns`` (after a checkpoint only, when it has passed)."""
        ...


class SystemClock:
    """The machine's clocks: ``time.perf_counter_ns`` (what ``ClockAnchor`` pairs with) and ``time.time``."""

    now_ns = staticmethod(time.perf_counter_ns)
    wall = staticmethod(time.time)

    async def sleep_until(self, when_ns: int) -> None:
        await anyio.sleep(max(0.0, (when_ns - time.perf_counter_ns()) / NS_PER_S))

    def __repr__(self) -> str:
        return "SYSTEM"


SYSTEM = SystemClock()


class LoopClock:
    """The running asyncio loop's time (``loop.time()``), and a wall clock that moves with it from
    ``wall_at_zero`` (the wall time at the loop's time 0; by default, the machine's now minus the loop's now)."""

    def __init__(self, loop: LoopTime, wall_at_zero: float | None = None) -> None:
        self._time = loop.time
        self.wall_at_zero = time.time() - loop.time() if wall_at_zero is None else wall_at_zero

    def now_ns(self) -> int:
        return round(self._time() * NS_PER_S)

    def wall(self) -> float:
        return self.wall_at_zero + self._time()

    async def sleep_until(self, when_ns: int) -> None:
        await anyio.sleep(max(0.0, when_ns / NS_PER_S - self._time()))


class LoopTime(Protocol):
    """What ``LoopClock`` reads of an event loop."""

    def time(self) -> float: ...


def now_s(clock: Clock) -> float:
    """The clock's monotonic now in seconds."""
    return clock.now_ns() / NS_PER_S


def anchor_of(clock: Clock) -> ClockAnchor:
    """One reading of both of the clock's times (``ClockAnchor.now()`` for ``SYSTEM``)."""
    if clock is SYSTEM:
        return ClockAnchor.now()
    return ClockAnchor(wall_ns=round(clock.wall() * NS_PER_S), mono_ns=clock.now_ns())


def is_system(clock: Clock) -> bool:
    """Whether ``clock`` reads the machine's clocks (the kernel's timer and real waits then apply)."""
    return clock is SYSTEM
