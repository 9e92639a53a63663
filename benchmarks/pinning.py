"""Core pinning for benchmarks: the server on one core, the client on the other, where the machine allows."""

from __future__ import annotations

import os
import subprocess


def usable_cores() -> set[int]:
    """The cores this process may run on (read before any pinning), or an empty set when unknown."""
    return set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()


def pin(pid: int, core: int, cores: set[int]) -> str:
    """Pin a process to one core when there are two or more to split; say what was done."""
    if len(cores) < 2 or core not in cores:
        return f"not pinned (usable cores: {sorted(cores) or 'unknown'})"
    os.sched_setaffinity(pid, {core})
    return f"pinned to core {core}"


class ServerChild:
    """A benchmark's trivial server in a child process (``argv``, which prints ``listening PORT`` once it
    listens on 127.0.0.1), pinned to ``core`` where the machine allows; ``stop`` ends it."""

    def __init__(self, argv: list[str], core: int, cores: set[int]) -> None:
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError(f"the server {argv[1:]} did not start: {line!r}")
        self.base_url = f"http://127.0.0.1:{int(line.split()[1])}"
        self.pinning = pin(self.process.pid, core, cores)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
