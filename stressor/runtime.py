"""How a load run is run: the event loop it gets and the garbage collector's settings while it runs.

``run(async_fn, *args)`` is ``anyio.run`` on asyncio, over uvloop when it is installed, with the collector tuned
for the run (``tuned_gc``). Why: docs/internals.md#event-loop-and-garbage-collector.
"""

from __future__ import annotations

import gc
import importlib.util
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal, TypeVar

import anyio

T = TypeVar("T")
Loop = Literal["auto", "asyncio", "uvloop"]
GEN0_THRESHOLD = 50_000  # allocations between young collections (CPython's default: 700)


def uvloop_available() -> bool:
    """Whether uvloop can be imported here (a dependency on every platform but Windows, yet it may be absent)."""
    return importlib.util.find_spec("uvloop") is not None


def loop_for(loop: Loop = "auto") -> str:
    """The event loop ``run`` will use: ``"uvloop"`` or ``"asyncio"``."""
    if loop == "uvloop" and not uvloop_available():
        raise RuntimeError("uvloop was asked for but is not installed (pip install uvloop)")
    if loop == "auto":
        return "uvloop" if uvloop_available() else "asyncio"
    return loop


@contextmanager
def tuned_gc(gen0_threshold: int | None = None) -> Iterator[None]:
    """Freeze what exists now out of the collector's reach and space out young collections; undone after.

    Cycles made during the run are still collected (the collector stays on); only objects that exist when the
    block starts are skipped by it, and they become collectable again when it ends."""
    before = gc.get_threshold()
    # The young generations only: what start-up left as garbage is mostly there, and a full pass over
    # everything imported would lengthen every run's start. Older garbage is frozen with the rest: a few
    # import-time cycles, collectable again when the run ends.
    gc.collect(1)
    gc.freeze()
    gen0 = GEN0_THRESHOLD if gen0_threshold is None else gen0_threshold
    gc.set_threshold(max(gen0, before[0]), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def run(async_fn: Callable[..., Awaitable[T]], *args: Any, loop: Loop = "auto", tune_gc: bool = True) -> T:
    """``anyio.run(async_fn, *args)`` on asyncio, over uvloop when available (see ``loop``), with the
    garbage collector tuned for the run (``tune_gc``)."""
    options = {"use_uvloop": True} if loop_for(loop) == "uvloop" else {}
    if not tune_gc:
        return anyio.run(async_fn, *args, backend="asyncio", backend_options=options)
    with tuned_gc():
        return anyio.run(async_fn, *args, backend="asyncio", backend_options=options)
