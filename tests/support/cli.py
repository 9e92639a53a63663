"""The ``stressor`` command run in this process, on virtual time, against the simulator in memory.

``stressor_here(*args)`` is what ``sessions.run_stressor`` is in a process of its own, for commands that need
no process: the command's event loop is a ``VirtualTimeLoop`` (``runtime.run`` is swapped for the test), and the
embedded simulator and the webhook receiver live in memory (``MemorySurroundings``, also standing for
``SimulatorProcess``), so a 10 s profile takes milliseconds. It gives the exit code, stdout and stderr (the
``stressor`` loggers' lines included, as a process without a handler prints them), and ``surroundings`` holds
the simulators started (their truth). ``servers``: simulators (configs) or other ASGI apps started in the
command's loop before it runs, as a real API it is pointed at (``--base-url http://simulator-1.test``, or
``http://api-1.test`` for an app first in the list); ``beside(surroundings)``, a task
run beside the command (it may kill a server). ``real_time=True``: the machine's
clock and the network, for a command that must reach a real address (a closed port).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from typer.testing import CliRunner

from stressor import runtime, session
from stressor.beside import tasks_beside
from stressor.clock import LoopClock
from stressor.sim import server
from stressor.sim.config import SimConfig
from support.memory import App, MemorySurroundings
from support.virtual import VirtualTimeLoop

T = TypeVar("T")
Beside = Callable[[MemorySurroundings], Awaitable[None]]
Server = SimConfig | App  # a simulator, or an API of the test's own
# what a user's environment could point stressor at: never inherited from the tests' own
_CLEARED = {"STRESSOR_BASE_URL": None, "THUNDERPHONE_API_KEY": None, "STRESSOR_WEBHOOK_SECRET": None}


def stderr_so_far() -> str:
    """What the command running in this process has written to stderr so far (for a task beside it)."""
    sys.stderr.flush()
    return sys.stderr.buffer.getvalue().decode(errors="replace")  # type: ignore[attr-defined]


def stdout_so_far() -> str:
    """What the command running in this process has written to stdout so far (for a task beside it)."""
    sys.stdout.flush()
    return sys.stdout.buffer.getvalue().decode(errors="replace")  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Done:
    """How a command ended: its exit code, stdout, stderr, and the session's surroundings."""

    returncode: int
    stdout: str
    stderr: str
    surroundings: MemorySurroundings
    loop: VirtualTimeLoop


@contextmanager
def _virtual_runtime(
    loop: VirtualTimeLoop, surroundings: MemorySurroundings, servers: Sequence[Server], beside: Beside | None
) -> Iterator[None]:
    """``runtime.run`` on ``loop`` (once: a command runs one loop) for the block, ``servers`` and ``beside``
    running beside the command."""
    used: list[bool] = []

    async def beside_servers(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        async with AsyncExitStack() as stack:
            for number, server in enumerate(servers, 1):
                if isinstance(server, SimConfig):
                    await stack.enter_async_context(surroundings.process(server))
                else:
                    await stack.enter_async_context(surroundings.api(server, f"http://api-{number}.test"))
            tasks = await stack.enter_async_context(tasks_beside())
            if beside is not None:
                tasks.start_soon(beside, surroundings)
            return await fn(*args)

    def run(fn: Callable[..., Awaitable[T]], *args: Any, **_: Any) -> T:
        assert not used, "the command ran a second event loop"
        used.append(True)
        return anyio.run(beside_servers, fn, *args, backend="asyncio", backend_options={"loop_factory": lambda: loop})

    original = runtime.run
    runtime.run = run  # type: ignore[assignment]
    try:
        yield
    finally:
        runtime.run = original


@contextmanager
def _surroundings(surroundings: MemorySurroundings) -> Iterator[None]:
    """Sessions (and the capacity search's ``SimulatorProcess``) get ``surroundings`` for the block."""
    originals = session.OwnSurroundings, server.SimulatorProcess
    session.OwnSurroundings = lambda: surroundings  # type: ignore[assignment,misc]
    server.SimulatorProcess = surroundings.process  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        session.OwnSurroundings, server.SimulatorProcess = originals  # type: ignore[misc]


@contextmanager
def _real_runtime() -> Iterator[None]:
    """``runtime.run`` without its tuning of the garbage collector (the test process's own) for the block."""
    original = runtime.run

    def run(fn: Callable[..., Awaitable[T]], *args: Any, **_: Any) -> T:
        return anyio.run(fn, *args, backend="asyncio")

    runtime.run = run  # type: ignore[assignment]
    try:
        yield
    finally:
        runtime.run = original


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is logged (as Python's last-resort handler does)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def stressor_here(
    *args: str,
    env: Mapping[str, str] | None = None,
    servers: Sequence[Server] = (),
    beside: Beside | None = None,
    real_time: bool = False,
) -> Done:
    """``stressor ARGS`` in this process, on virtual time, its embedded simulator in memory (see the module)."""
    from stressor.cli.app import app

    loop = VirtualTimeLoop()
    surroundings = MemorySurroundings(LoopClock(loop, loop.wall_at_zero))
    handler = _CurrentStderr()
    handler.setLevel(logging.WARNING)
    logger = logging.getLogger("stressor")
    logger.addHandler(handler)
    try:
        with ExitStack() as patched:
            if real_time:
                patched.enter_context(_real_runtime())
            else:
                patched.enter_context(_virtual_runtime(loop, surroundings, servers, beside))
                patched.enter_context(_surroundings(surroundings))
            result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **_CLEARED, **(env or {})})
    finally:
        logger.removeHandler(handler)
        if not loop.is_closed():
            loop.close()
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Done(result.exit_code, result.stdout, result.stderr, surroundings, loop)
