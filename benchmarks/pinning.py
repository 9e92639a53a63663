"""Core pinning for benchmarks: the server on one core, the client on the other, where the machine allows."""

from __future__ import annotations

import os


def usable_cores() -> set[int]:
    """The cores this process may run on (read before any pinning), or an empty set when unknown."""
    return set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()


def pin(pid: int, core: int, cores: set[int]) -> str:
    """Pin a process to one core when there are two or more to split; say what was done."""
    if len(cores) < 2 or core not in cores:
        return f"not pinned (usable cores: {sorted(cores) or 'unknown'})"
    os.sched_setaffinity(pid, {core})
    return f"pinned to core {core}"
