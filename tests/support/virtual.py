"""Virtual time for tests: an asyncio event loop whose clock jumps to the next timer whenever nothing is ready.

The idea of trio's ``MockClock(autojump_threshold=0)``: ``loop.time()`` is virtual, and when the loop would
block (no callback ready, no I/O ready), it moves its clock to the earliest timer instead of sleeping, so a
10 s profile runs in the milliseconds its CPU work takes, the same way every time. I/O is still polled (without
waiting), so threads and signals that wake the loop still do. A loop with nothing scheduled and nothing ready
would wait for ever: it waits ``DEADLOCK_WAIT_S`` of real time for a thread, then raises ``Deadlock`` naming
the tasks stuck. Virtual time past ``horizon_s`` raises too (a task that never ends, ticking for ever).

``run(fn, *args)`` is ``anyio.run`` on such a loop; pytest's anyio tests get it from the ``virtual`` fixture's
backend (``tests/conftest.py``). ``clock()`` is the ``stressor.clock`` reading the running loop's time.
"""

from __future__ import annotations

import asyncio
import math
import selectors
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

from stressor.clock import SYSTEM, Clock, LoopClock

T = TypeVar("T")
START_S = 1_000.0  # the loop's time when it starts: not 0, which code may read as "not started yet"
WALL_AT_ZERO = 1_767_225_600.0  # 2026-01-01T00:00:00Z, the wall time at the loop's time 0: the same every run
DEADLOCK_WAIT_S = 2.0  # real seconds a loop with nothing to do waits for a thread before calling it a deadlock
HORIZON_S = 7 * 24 * 3600.0  # virtual seconds after which a loop calls its test runaway


class Deadlock(RuntimeError):
    """Nothing is scheduled and nothing can become ready: the test would hang for ever."""


class _JumpingSelector(selectors.BaseSelector):
    """The loop's selector, polled without waiting; when it has nothing, the loop's clock jumps instead."""

    def __init__(self, inner: selectors.BaseSelector, loop: VirtualTimeLoop, deadlock_wait_s: float) -> None:
        self._inner = inner
        self._loop = loop
        self._deadlock_wait_s = deadlock_wait_s

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._inner.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            ready = self._inner.select(self._deadlock_wait_s)  # a thread or a signal may still wake the loop
            if not ready:
                raise Deadlock(self._loop.stuck())
            return ready
        self._loop.jump()
        return []

    def close(self) -> None:
        self._inner.close()

    def get_map(self) -> Any:
        return self._inner.get_map()

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.get_key(fileobj)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio loop on virtual time (see the module docstring); ``wall_at_zero`` gives its wall clock."""

    def __init__(
        self, *, start_s: float = START_S, horizon_s: float = HORIZON_S, deadlock_wait_s: float = DEADLOCK_WAIT_S
    ) -> None:
        self._now_ns = round(start_s * 1e9)
        self._horizon_ns = self._now_ns + round(horizon_s * 1e9)
        self.wall_at_zero = WALL_AT_ZERO
        self.jumps = 0
        super().__init__(selectors.DefaultSelector())
        self._selector = _JumpingSelector(self._selector, self, deadlock_wait_s)

    def time(self) -> float:
        return self._now_ns / 1e9

    def advance(self, seconds: float) -> None:
        """Move the clock on by ``seconds`` now, as if the loop had been blocked that long (a slow disk)."""
        self._now_ns += round(seconds * 1e9)

    def jump(self) -> None:
        """Move the clock to the earliest timer (the loop runs it next)."""
        if not self._scheduled:
            return
        # the loop has just dropped the cancelled timers from the head of its heap: the head is the next one
        when = self._scheduled[0].when()
        when_ns = math.ceil(when * 1e9)
        while when_ns / 1e9 < when:  # never short of it: a timer that checks the time would set itself again
            when_ns += 1
        if when_ns > self._horizon_ns:
            raise Deadlock(f"virtual time would pass its horizon: a task never ends\n{self.stuck()}")
        self._now_ns = max(self._now_ns, when_ns)
        self.jumps += 1

    def stuck(self) -> str:
        """The tasks still pending and where each waits: what a deadlock's message shows."""
        lines = ["deadlock: nothing is scheduled and nothing can become ready; tasks waiting:"]
        for task in asyncio.all_tasks(self):
            frames = task.get_stack(limit=3)
            where = " <- ".join(f"{f.f_code.co_name} ({f.f_code.co_filename}:{f.f_lineno})" for f in frames)
            lines.append(f"  {task.get_name()}: {where or task!r}")
        return "\n".join(lines)


VIRTUAL = ("asyncio", {"loop_factory": VirtualTimeLoop})
"""What an ``anyio_backend`` fixture returns for its module's async tests to run on virtual time."""


def clock() -> LoopClock:
    """The running loop's clock (virtual on a ``VirtualTimeLoop``, with its fixed wall time)."""
    loop = asyncio.get_running_loop()
    return LoopClock(loop, getattr(loop, "wall_at_zero", None))


def running_clock() -> Clock:
    """The running loop's clock when it is a virtual one, else the machine's (``SYSTEM``)."""
    loop = asyncio.get_running_loop()
    return LoopClock(loop, loop.wall_at_zero) if isinstance(loop, VirtualTimeLoop) else SYSTEM


def run(fn: Callable[..., Awaitable[T]], *args: Any, **loop_options: float) -> T:
    """``anyio.run(fn, *args)`` on a virtual-time loop (made with ``loop_options``)."""
    options = {"loop_factory": lambda: VirtualTimeLoop(**loop_options)}
    return anyio.run(fn, *args, backend="asyncio", backend_options=options)
