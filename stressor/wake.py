"""Waking at an instant to the microsecond without spinning: a Linux timerfd, watched by the event loop.

``PreciseTimer.open()`` is None where there is no timerfd (not Linux, or the loop cannot watch a file
descriptor). Why: docs/internals.md#precise-wake.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import sys
import time
from collections.abc import Callable

_ABSOLUTE = 1  # TFD_TIMER_ABSTIME


class _TimeSpec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class _TimerSpec(ctypes.Structure):
    _fields_ = (("it_interval", _TimeSpec), ("it_value", _TimeSpec))


def _libc_timerfd() -> tuple[Callable[[], int], Callable[[int, int], None]] | None:
    """timerfd_create and an absolute timerfd_settime from libc, or None where libc has no timerfd."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        create, settime = libc.timerfd_create, libc.timerfd_settime
    except (OSError, AttributeError):
        return None
    create.argtypes = (ctypes.c_int, ctypes.c_int)
    settime.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.POINTER(_TimerSpec), ctypes.c_void_p)
    spec = _TimerSpec()

    def open_fd() -> int:
        fd = create(time.CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        return fd

    def arm(fd: int, deadline_ns: int) -> None:
        spec.it_value.tv_sec, spec.it_value.tv_nsec = divmod(deadline_ns, 1_000_000_000)
        if settime(fd, _ABSOLUTE, ctypes.byref(spec), None) != 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")

    return open_fd, arm


class PreciseTimer:
    """One wait at a time until an instant of ``CLOCK_MONOTONIC`` (``time.perf_counter_ns`` on Linux), woken
    by the loop when the kernel's timer fires: never before the instant. Owned by one task; ``close`` it."""

    def __init__(self, fd: int, arm: Callable[[int, int], None], loop: asyncio.AbstractEventLoop) -> None:
        self._fd = fd
        self._arm = arm
        self._loop = loop
        self._waiter: asyncio.Future[None] | None = None
        loop.add_reader(fd, self._fired)

    @classmethod
    def open(cls) -> PreciseTimer | None:
        """A timer on the running asyncio loop, or None where the system or the loop cannot give one."""
        calls = _libc_timerfd()
        if calls is None:
            return None
        open_fd, arm = calls
        try:
            fd = open_fd()
        except OSError:
            return None
        try:
            return cls(fd, arm, asyncio.get_running_loop())
        except (NotImplementedError, RuntimeError, OSError):  # a loop that cannot watch a descriptor
            os.close(fd)
            return None

    async def sleep_until(self, deadline_ns: int) -> None:
        """Return at ``deadline_ns`` (monotonic ns) or at once when it has passed. Cancellable."""
        if time.clock_gettime_ns(time.CLOCK_MONOTONIC) >= deadline_ns:
            return
        self._arm(self._fd, deadline_ns)  # re-arming drops any expiry of an earlier wait not yet read
        waiter = self._waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None
            if not waiter.done():  # cancelled: disarm, so that a late expiry wakes no one
                self._arm(self._fd, 0)

    def _fired(self) -> None:
        try:
            os.read(self._fd, 8)
        except BlockingIOError:
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self) -> None:
        """Stop watching the timer and release it."""
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
