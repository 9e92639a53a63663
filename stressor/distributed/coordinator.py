"""The coordinator: deals the run to its workers, folds their snapshots into one tally, relays stop orders.

It is a ``stressor.session.Runner``, as the engine is (``run``, ``progress``, ``stop``, ``interrupt``, ``metrics``,
``governor``...), so the live display, abort thresholds, runs log and results work the same on one process or
many.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

from stressor.distributed.snapshot import Snapshot, WorkerLost
from stressor.distributed.tally import Tally
from stressor.distributed.worker import Command, WorkerSpec
from stressor.engine import EngineResult
from stressor.governor import Governor
from stressor.metrics import Metrics, RunRecord
from stressor.profile import Profile
from stressor.progress import Progress
from stressor.shares import Share
from stressor.timestamps import NS_PER_S, ClockAnchor


class Backend(Protocol):
    """Where workers run: processes of this machine, or a cluster."""

    async def run(
        self,
        specs: Sequence[WorkerSpec],
        deliver: Callable[[Snapshot | WorkerLost], None],
        command: Callable[[], Command],
    ) -> None: ...

    async def capacity(self) -> int:
        """How many workers to run when the user asked for one per core."""
        ...


class Coordinator:
    """Runs one profile on ``workers`` workers of a backend, starting together ``lead_s`` from now (time for
    the workers to start up: a spawned Python process imports stressor first)."""

    def __init__(
        self,
        profile: Profile,
        backend: Backend,
        *,
        workers: int,
        base_url: str,
        api_key: str,
        enforce_budget: bool,
        on_record: Callable[[RunRecord], None] | None = None,
        keep_records: bool = True,
        lead_s: float = 2.0,
        warn: Callable[[str], None] | None = None,
        trust_env: bool = True,
    ) -> None:
        self.profile = profile
        self.backend = backend
        self.workers = workers
        self._on_record = on_record
        self._keep_records = keep_records  # False when ``on_record`` keeps them (the runs log)
        self._warn = warn
        anchor = ClockAnchor.now()
        start_at = anchor.wall_ns / NS_PER_S + lead_s
        self._start_ns = anchor.to_mono_ns(start_at)
        self.tally = Tally(profile, workers, anchor, self._start_ns)
        self.specs = [
            WorkerSpec(profile, Share(index, workers), base_url, api_key, start_at, enforce_budget, trust_env)
            for index in range(workers)
        ]
        self._command: Command = "run"
        self._stop: tuple[str, str] | None = None

    # ------------------------------------------------------------------------------------------ the Runner

    @property
    def metrics(self) -> Metrics:
        """The merged figures so far."""
        return self.tally.metrics()

    @property
    def governor(self) -> Governor:
        """The workers' governors, summed."""
        return self.tally.governor()

    @property
    def t0_ns(self) -> int:
        """The shared start, on this process's monotonic clock."""
        return self._start_ns

    def elapsed_s(self) -> float:
        """Seconds since the shared start (0 before it)."""
        return max(0.0, (time.perf_counter_ns() - self._start_ns) / NS_PER_S)

    def progress(self) -> Progress:
        """A live snapshot of the whole run."""
        return self.tally.progress(self.elapsed_s())

    def stop(self, reason: str, *, cause: str = "fatal") -> None:
        """Tell every worker to stop starting batches (runs in flight are followed through the grace)."""
        self._stop = self._stop or (reason, cause)
        if self._command == "run":
            self._command = "stop"

    def interrupt(self) -> None:
        """Tell every worker to stop now (Ctrl-C)."""
        self._command = "interrupt"

    # ------------------------------------------------------------------------------------------ running

    def _deliver(self, message: Snapshot | WorkerLost) -> None:
        if isinstance(message, WorkerLost):
            self.tally.lose(message)
            if self._warn is not None:
                self._warn(f"worker {message.worker} of {self.workers} lost: {message.reason}; the others go on")
            return
        for record in self.tally.add(message):
            if self._on_record is not None:
                self._on_record(record)
        if not self._keep_records:
            self.tally.records.clear()  # the runs log has them; a long run's memory stays flat

    async def run(self) -> EngineResult:
        """Run every worker to its end and return the merged result."""
        await self.backend.run(self.specs, self._deliver, lambda: self._command)
        result = self.tally.result()
        if self._stop is not None and result.stop_cause in (None, "threshold"):
            reason, cause = self._stop  # the workers only heard "stop": the reason is the coordinator's
            return replace(result, stop_reason=reason, stop_cause=cause)
        return result
