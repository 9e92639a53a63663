"""Call logs (and transcripts) of the runs that ended, fetched as they end and written to the calls log.

``CallFetcher`` is offered each run as it ends; one with a call id has its log fetched ``[calls] delay`` later,
``[calls] concurrency`` fetches at most at once, and one line written per call to ``CallsLog``. Its queue is
bounded, so memory stays flat however many runs (docs/results.md, "The calls log").
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import anyio
import orjson
from anyio.streams.memory import MemoryObjectReceiveStream

from stressor.clock import Clock
from stressor.metrics import CALL_LOG_RECORD_FIELDS, Outcome, RunRecord
from stressor.profile import Calls
from stressor.targets.testcalls.calls import CALL_LOG_FIELDS
from stressor.timestamps import NS_PER_S

QUEUE_BOUND = 100_000  # calls waiting for their fetch; more are counted ``queue_full``, not held
# A run record's fields taken from its call's log, and the call-log field each comes from.
RECORD_FIELDS: tuple[tuple[str, str], ...] = tuple(
    zip(
        CALL_LOG_RECORD_FIELDS,
        ("duration_seconds", "end_reason", "product", "billable_minutes", "billing_total_cents"),
        strict=True,
    )
)
NOT_FETCHED = "not_fetched"  # still to fetch when [calls] wait ran out, or when the run was interrupted
QUEUE_FULL = "queue_full"


class CallSource(Protocol):
    """Where call logs come from (the test-calls target): each fetch gives the value, or None, and the class
    its request was counted under."""

    async def fetch_call_log(self, call_id: str) -> tuple[dict[str, Any] | None, str]: ...

    async def fetch_transcript(self, call_id: str) -> tuple[list[dict[str, Any]] | None, str]: ...


class CallsLog:
    """The calls log: each line goes to the file as it is written (a transcript is held no longer than its
    line), and ``flush`` (twice a second, as the runs log) pushes it to the system. The file is created at the
    first line. A write that fails (a full disk) is said once through ``warn``, and later lines are dropped:
    the run goes on, the call logs' fields still reach the results."""

    def __init__(self, path: Path, warn: Callable[[str], None] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._warn = warn
        self._file: IO[bytes] | None = None
        self.lines = 0
        self.error: str | None = None  # why lines stopped being written

    def write(self, line: Mapping[str, Any]) -> None:
        if self.error is not None:
            return
        try:
            if self._file is None:
                self._file = self.path.open("wb")
            self._file.write(orjson.dumps(line) + b"\n")
        except OSError as exc:
            self._failed(exc)
            return
        self.lines += 1

    def flush(self) -> None:
        if self._file is not None and self.error is None:
            try:
                self._file.flush()
            except OSError as exc:
                self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        self.error = exc.strerror or str(exc)
        if self._warn is not None:
            self._warn(f"could not write the calls log {self.path} ({self.error}): later calls are not in it")

    def close(self) -> None:
        if self._file is not None:
            self.flush()
            with contextlib.suppress(OSError):  # said by flush already
                self._file.close()
            self._file = None


@dataclass(frozen=True, slots=True)
class _Due:
    """A call to fetch, when, and the run it belongs to."""

    due_ns: int
    call_id: str
    run_id: str | None
    scenario: str
    variant: str
    outcome: str


@dataclass(frozen=True, slots=True)
class CallsReport:
    """What came of the fetches: the calls log's path (None: none written), call logs fetched, calls whose log
    could not be had (by class), transcripts fetched and those that could not be had (by class)."""

    log: str | None
    fetched: int
    failed: Mapping[str, int]
    transcripts: int
    transcripts_failed: Mapping[str, int] = field(default_factory=dict)


class CallFetcher:
    """Fetches the calls of runs as they end (see the module): ``offer`` each run, ``run`` the fetches beside
    the engine, then ``drain``. ``on_call`` is told of every call log fetched (call id, its fields)."""

    def __init__(
        self,
        source: CallSource,
        settings: Calls,
        *,
        clock: Clock,
        log: CallsLog | None = None,
        on_call: Callable[[str, Mapping[str, Any]], None] | None = None,
        warn: Callable[[str], None] | None = None,
        queue_bound: int = QUEUE_BOUND,
    ) -> None:
        self._source = source
        self._settings = settings
        self._clock = clock
        self._log = log
        self._on_call = on_call
        self._warn = warn
        # transcripts only when asked, and only where they are written
        self._transcripts = settings.transcripts and log is not None
        self._send, self._receive = anyio.create_memory_object_stream[_Due](queue_bound)
        self._scope = anyio.CancelScope()
        self._done = anyio.Event()
        self.offered = 0
        self.fetched = 0
        self.failed: Counter[str] = Counter()
        self.transcripts = 0
        self.transcripts_failed: Counter[str] = Counter()

    def offer(self, record: RunRecord) -> None:
        """A run that ended: its call is fetched ``[calls] delay`` from now, if it has one."""
        if record.outcome not in (Outcome.COMPLETED, Outcome.FAILED) or not record.call_id:
            return
        due = _Due(
            due_ns=self._clock.now_ns() + round(self._settings.delay_s * NS_PER_S),
            call_id=record.call_id,
            run_id=record.run_id,
            scenario=record.scenario,
            variant=record.variant,
            outcome=str(record.outcome),
        )
        try:
            self._send.send_nowait(due)
        except (anyio.WouldBlock, anyio.ClosedResourceError):
            # the fetches are that far behind (or over): the call is counted, never held
            self.failed[QUEUE_FULL] += 1
            if self.failed[QUEUE_FULL] == 1 and self._warn is not None:
                self._warn(
                    "call logs are fetched slower than runs end: calls beyond the queue are not fetched (counted "
                    f"as {QUEUE_FULL}); raise [calls] concurrency or lower [calls] delay"
                )
            return
        self.offered += 1

    async def run(self) -> None:
        """The fetches, ``[calls] concurrency`` at once, each when its call is due, until ``drain`` or ``stop``."""
        try:
            with self._scope:
                async with anyio.create_task_group() as workers:
                    for _ in range(self._settings.concurrency):
                        workers.start_soon(self._work, self._receive.clone())
                    self._receive.close()
        finally:
            self._done.set()

    async def drain(self, wait_s: float) -> None:
        """No more runs: fetch the calls still queued for at most ``wait_s``, then give up the rest (counted
        ``not_fetched``)."""
        self._send.close()
        with anyio.move_on_after(wait_s if math.isfinite(wait_s) else None):
            await self._done.wait()
        self.stop()
        await self._done.wait()

    async def drained(self) -> None:
        """Return once the fetches are over (drained, or stopped)."""
        await self._done.wait()

    def stop(self) -> None:
        """Stop now (Ctrl-C): the calls not fetched yet are counted ``not_fetched``."""
        self._send.close()
        self._scope.cancel()

    def report(self, log_path: str | None) -> CallsReport:
        failed = Counter(self.failed)
        left = self.offered - self.fetched - sum(n for cause, n in self.failed.items() if cause != QUEUE_FULL)
        if left > 0:
            failed[NOT_FETCHED] += left
        return CallsReport(
            log=log_path,
            fetched=self.fetched,
            failed=dict(sorted(failed.items())),
            transcripts=self.transcripts,
            transcripts_failed=dict(sorted(self.transcripts_failed.items())),
        )

    async def _work(self, calls: MemoryObjectReceiveStream[_Due]) -> None:
        async with calls:
            async for due in calls:
                await self._clock.sleep_until(due.due_ns)
                await self._fetch(due)

    async def _fetch(self, due: _Due) -> None:
        call_log, label = await self._source.fetch_call_log(due.call_id)
        turns, turns_label = None, None
        if call_log is None:
            self.failed[label] += 1
        elif self._transcripts:
            turns, turns_label = await self._source.fetch_transcript(due.call_id)
        # Counted once both are in: a call is either fetched or failed, never both (report counts the rest).
        if call_log is not None:
            self.fetched += 1
            if self._on_call is not None:
                self._on_call(due.call_id, call_log)
        if turns_label is not None:
            if turns is None:
                self.transcripts_failed[turns_label] += 1
            else:
                self.transcripts += 1
        if self._log is not None:
            fields = call_log if call_log is not None else dict.fromkeys(CALL_LOG_FIELDS)
            self._log.write(
                {
                    "run_id": due.run_id,
                    "call_id": due.call_id,
                    "scenario": due.scenario,
                    "variant": due.variant,
                    "outcome": due.outcome,
                    "fetched_at": self._clock.wall(),
                    "error": None if call_log is not None else label,
                    **{name: value for name, value in fields.items() if name != "call_id"},
                    "transcript": turns,
                    "transcript_error": None if turns is not None else turns_label,
                }
            )
