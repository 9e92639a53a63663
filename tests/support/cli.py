"""The ``stressor`` command run in this process, on virtual time, against the simulator in memory.

``stressor_here(*args)`` is what ``sessions.run_stressor`` is in a process of its own, for commands that need
no process: the command's event loop is a ``VirtualTimeLoop`` (``runtime.run`` is swapped for the test), and a
session's embedded simulator and webhook receiver live in memory (``MemorySurroundings``), so a 10 s profile
takes milliseconds. It gives the exit code, stdout and stderr (the ``stressor`` loggers' lines included, as a
process without a handler prints them), and ``surroundings`` holds the simulators started (their truth).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from typer.testing import CliRunner

from stressor import runtime, session
from stressor.clock import LoopClock
from support.memory import MemorySurroundings
from support.virtual import VirtualTimeLoop

T = TypeVar("T")
# what a user's environment could point stressor at: never inherited from the tests' own
_CLEARED = {"STRESSOR_BASE_URL": None, "THUNDERPHONE_API_KEY": None, "STRESSOR_WEBHOOK_SECRET": None}


@dataclass(frozen=True, slots=True)
class Done:
    """How a command ended: its exit code, stdout, stderr, and the session's surroundings."""

    returncode: int
    stdout: str
    stderr: str
    surroundings: MemorySurroundings
    loop: VirtualTimeLoop


@contextmanager
def _virtual_runtime(loop: VirtualTimeLoop) -> Iterator[None]:
    """``runtime.run`` on ``loop`` (once: a command runs one loop) for the block."""
    used: list[bool] = []

    def run(fn: Callable[..., Awaitable[T]], *args: Any, **_: Any) -> T:
        assert not used, "the command ran a second event loop"
        used.append(True)
        return anyio.run(fn, *args, backend="asyncio", backend_options={"loop_factory": lambda: loop})

    original = runtime.run
    runtime.run = run  # type: ignore[assignment]
    try:
        yield
    finally:
        runtime.run = original


@contextmanager
def _surroundings(surroundings: MemorySurroundings) -> Iterator[None]:
    original = session.OwnSurroundings
    session.OwnSurroundings = lambda: surroundings  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        session.OwnSurroundings = original  # type: ignore[misc]


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is logged (as Python's last-resort handler does)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        import sys

        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def stressor_here(*args: str, env: Mapping[str, str] | None = None) -> Done:
    """``stressor ARGS`` in this process, on virtual time, its embedded simulator in memory."""
    from stressor.cli import app

    loop = VirtualTimeLoop()
    surroundings = MemorySurroundings(LoopClock(loop, loop.wall_at_zero))
    handler = _CurrentStderr()
    handler.setLevel(logging.WARNING)
    logger = logging.getLogger("stressor")
    logger.addHandler(handler)
    try:
        with _virtual_runtime(loop), _surroundings(surroundings):
            result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **_CLEARED, **(env or {})})
    finally:
        logger.removeHandler(handler)
        if not loop.is_closed():
            loop.close()
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Done(result.exit_code, result.stdout, result.stderr, surroundings, loop)
