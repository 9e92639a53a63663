"""One run of a profile, put together: webhook receiver, embedded simulator, target, engine, grades.

A ``Session`` owns everything started for the run and stops it again, in order (the receiver outlives the
simulator that posts to it), and drives a ``Runner``: the engine in one process, or the coordinator of many
workers. What it starts around itself, and the clock, come from its ``Surroundings``: its own processes and
sockets (``OwnSurroundings``), or for tests, the simulator and the receiver in memory on virtual time.
"""

from __future__ import annotations

import functools
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import anyio
import httpx

from stressor.beside import tasks_beside
from stressor.calllogs import RECORD_FIELDS, CallFetcher, CallsLog, CallsReport
from stressor.clock import SYSTEM, Clock, anchor_of
from stressor.engine import Engine, EngineResult
from stressor.governor import Governor
from stressor.grades import GradeBook
from stressor.metrics import Metrics, Outcome, RunRecord
from stressor.profile import Profile
from stressor.progress import Progress
from stressor.runlog import LoggedRecords, RunLog, counters_line, keep_flushed, with_grade
from stressor.scores import BadEvent, parse_grade
from stressor.secrets import mask_secret
from stressor.sim.config import SimConfig
from stressor.sim.records import TruthRecord
from stressor.targets.base import RunEnd
from stressor.targets.from_profile import build_target
from stressor.targets.inbox import CompletionInbox
from stressor.targets.testcalls.target import TestCallsTarget
from stressor.webhooks.events import CallGraded, RunCompleted
from stressor.webhooks.receiver import ReceiverStats, WebhookReceiver

if TYPE_CHECKING:
    from stressor.distributed.coordinator import Coordinator

EMBEDDED_API_KEY = "sk_test_stressor_embedded_simulator"
GRADE_FETCH_CONCURRENCY = 16


@runtime_checkable
class Runner(Protocol):
    """What runs a profile, in one process (``Engine``) or on many workers (``Coordinator``): the session, the
    live display, abort thresholds and the runs log drive either through this alone."""

    @property
    def metrics(self) -> Metrics:
        """The figures so far (merged across workers)."""
        ...

    @property
    def governor(self) -> Governor: ...

    @property
    def t0_ns(self) -> int:
        """The monotonic instant the run began (or begins, for workers that start together)."""
        ...

    def elapsed_s(self) -> float: ...

    def progress(self) -> Progress: ...

    def stop(self, reason: str, *, cause: str = "fatal") -> None:
        """Start no more batches; runs in flight are followed through the grace period."""
        ...

    def interrupt(self) -> None:
        """Stop now (Ctrl-C): no new batches, no grace period."""
        ...

    async def run(self) -> EngineResult: ...


@dataclass(frozen=True, slots=True)
class Where:
    """The target of a run: a base URL and its key, or None for the embedded simulator (with its config)."""

    base_url: str | None
    api_key: str
    simulator: SimConfig | None = None
    webhook_secrets: tuple[str, ...] = ()
    webhook_allow_remote: bool = False  # the receiver may bind a non-loopback address (--webhook-allow-remote)

    def __repr__(self) -> str:
        # masked: a repr lands in tracebacks and in dask's "Compute Failed" log lines
        hooks = tuple(mask_secret(secret) for secret in self.webhook_secrets)
        return (
            f"Where(base_url={self.base_url!r}, api_key={mask_secret(self.api_key)!r}, "
            f"simulator={self.simulator!r}, webhook_secrets={hooks!r})"
        )


@dataclass(frozen=True, slots=True)
class Scale:
    """Run on several workers: ``workers`` processes (None: one per core, or per thread of the cluster),
    on this machine or on the Dask cluster whose scheduler is at ``cluster``."""

    workers: int | None = None
    cluster: str | None = None
    lead_s: float = 2.0  # from the decision to the shared start: time for the workers to come up


@dataclass(frozen=True, slots=True)
class Embedded:
    """The embedded simulator as a session reaches it: at ``base_url``, its ground truth from ``truth()``."""

    base_url: str
    truth: Callable[[], Awaitable[list[TruthRecord]]]


class Surroundings(Protocol):
    """What a session starts around itself, and the clock it runs on."""

    clock: Clock

    def receiver(
        self, receiver: WebhookReceiver, host: str, port: int, *, allow_remote: bool
    ) -> AbstractAsyncContextManager[str]:
        """Serve ``receiver`` for the block; gives the URL its deliveries go to."""
        ...

    def simulator(self, config: SimConfig) -> AbstractAsyncContextManager[Embedded]:
        """Run the embedded simulator for the block."""
        ...

    def transport(self, base_url: str) -> httpx.AsyncBaseTransport | None:
        """How the target reaches ``base_url`` (None: over the network)."""
        ...


class OwnSurroundings:
    """The machine's clock, the receiver on a socket, the simulator in a process of its own."""

    clock: Clock = SYSTEM

    @asynccontextmanager
    async def receiver(
        self, receiver: WebhookReceiver, host: str, port: int, *, allow_remote: bool
    ) -> AsyncIterator[str]:
        from stressor.webhooks.server import serve_receiver  # noqa: PLC0415 (uvicorn: only when asked)

        async with serve_receiver(receiver, host, port, allow_remote=allow_remote) as running:
            yield running.url

    @asynccontextmanager
    async def simulator(self, config: SimConfig) -> AsyncIterator[Embedded]:
        from stressor.sim.server import SimulatorProcess, fetch_truth_async  # noqa: PLC0415 (the embedded one's)

        async with SimulatorProcess(config) as base_url:
            yield Embedded(base_url, functools.partial(fetch_truth_async, base_url))

    def transport(self, base_url: str) -> httpx.AsyncBaseTransport | None:
        return None


@dataclass(frozen=True, slots=True)
class SessionResult:
    """The engine's result, grades joined in, and what the session saw of the target and its webhooks."""

    engine: EngineResult
    base_url: str
    webhook_url: str | None
    webhooks: ReceiverStats | None
    late_polls: int
    truth: tuple[TruthRecord, ...] | None = None  # the embedded simulator's ground truth, when asked for
    server: dict[str, object] | None = None  # what the target learned of the server (lists, clock)
    calls: CallsReport | None = None  # what came of fetching the call logs ([calls] fetch), None when not asked


class Session:
    """Runs one profile against one target."""

    def __init__(
        self,
        profile: Profile,
        where: Where,
        *,
        enforce_budget: bool,
        keep_truth: bool = False,
        runs_log: RunLog | None = None,
        calls_log: CallsLog | None = None,
        scale: Scale | None = None,
        warn: Callable[[str], None] | None = None,
        surroundings: Surroundings | None = None,
    ) -> None:
        self.surroundings = surroundings if surroundings is not None else OwnSurroundings()
        self.clock = self.surroundings.clock
        self.profile = profile
        self.scale = scale
        self.warn = warn
        self.keep_truth = keep_truth
        self.runs_log = runs_log
        self.calls_log = calls_log
        self.where = where
        self.enforce_budget = enforce_budget
        self.metrics = Metrics(anchor_of(self.clock))
        self.governor = Governor(profile.limits)
        self.grades = GradeBook(profile.grades.scale)
        # The grades call logs carry: a run's grade only when no webhook nor grade fetch gave it one.
        self.call_log_grades = GradeBook(profile.grades.scale)
        # Per call id, the run record's fields from its call's log (RECORD_FIELDS' order): small, joined at the end.
        self._call_fields: dict[str, tuple[Any, ...]] = {}
        self.fetcher: CallFetcher | None = None
        self.inbox = CompletionInbox() if profile.webhooks.enabled else None
        self.engine: Runner | None = None
        self._interrupted = False

    def interrupt(self) -> None:
        """Stop the run now (Ctrl-C), even if it has not started yet."""
        self._interrupted = True
        if self.engine is not None:
            self.engine.interrupt()
        if self.fetcher is not None:
            self.fetcher.stop()

    def _on_webhook(self, event: RunCompleted | CallGraded, received_ns: int) -> None:
        if isinstance(event, CallGraded):
            self.grades.record(event)
            return
        if self.inbox is not None and event.status in ("completed", "failed"):
            self.inbox.deliver(
                RunEnd(
                    run_id=event.run_id,
                    status=event.status,  # type: ignore[arg-type]
                    detected_ns=received_ns,
                    started_at=event.started_at,
                    completed_at=event.completed_at,
                    error_message=event.error_message,
                    call_id=event.call_id,
                )
            )

    async def run(self) -> SessionResult:
        """Start what the run needs, run the engine, collect grades, stop everything."""
        profile, where = self.profile, self.where
        async with AsyncExitStack() as stack:
            receiver, webhook_url = None, None
            if profile.webhooks.enabled:
                secrets_ = where.webhook_secrets or (f"whsec_{secrets.token_hex(24)}",)
                hooks = profile.webhooks
                # the sender posts to the public URL: its path is served as well as /webhooks (a reverse proxy
                # may pass it through or rewrite it); deliveries gone astray are counted and said once
                receiver = WebhookReceiver(
                    secrets_,
                    self._on_webhook,
                    clock_ns=self.clock.now_ns,
                    wall=self.clock.wall,
                    public_url=hooks.public_url,
                    notice=self.warn,
                )
                url = await stack.enter_async_context(
                    self.surroundings.receiver(
                        receiver, hooks.listen_host, hooks.listen_port, allow_remote=where.webhook_allow_remote
                    )
                )
                webhook_url = hooks.public_url or url
                where = replace(where, webhook_secrets=secrets_)
            base_url, embedded = where.base_url, None
            if base_url is None:
                assert where.simulator is not None
                config = where.simulator
                if webhook_url is not None:
                    config = replace(config, webhook_url=webhook_url, webhook_secret=where.webhook_secrets[0])
                embedded = await stack.enter_async_context(self.surroundings.simulator(config))
                base_url = embedded.base_url
            # the embedded simulator is our own child on loopback: reached directly, whatever HTTP_PROXY says
            target = build_target(
                profile,
                base_url,
                where.api_key,
                self.metrics,
                self.governor,
                self.inbox,
                trust_env=embedded is None,
                clock=self.clock,
                transport=self.surroundings.transport(base_url),
            )
            stack.push_async_callback(target.aclose)
            await target.check()
            fetcher = self._call_fetcher(target)
            on_record = self._ended if self.runs_log is not None or fetcher is not None else None
            runner: Runner
            if self.scale is None:
                runner = Engine(
                    profile,
                    target,
                    metrics=self.metrics,
                    governor=self.governor,
                    enforce_budget=self.enforce_budget,
                    on_record=on_record,
                    keep_records=not self._records_in_log,  # the runs log keeps them: memory stays flat
                    clock=self.clock,
                )
            else:
                coordinator = await self._coordinator(base_url, where.api_key, on_record)
                coordinator.tally.own_requests.update(self.metrics.requests)  # the check, made here
                runner = coordinator
            own_requests = Counter(self.metrics.requests)
            self.engine = runner
            if self._interrupted:  # Ctrl-C came while the simulator or the receiver was starting
                runner.interrupt()
            async with tasks_beside() as beside:
                if fetcher is not None:  # call logs are fetched as runs end, beside the engine
                    beside.start_soon(fetcher.run)
                    if self.calls_log is not None:
                        beside.start_soon(functools.partial(keep_flushed, self.calls_log, None, clock=self.clock))
                result = await self._run_engine(runner, base_url)
                if fetcher is not None:
                    beside.start_soon(fetcher.drain, 0.0 if result.interrupted else profile.calls.wait_s)
                if self._grading and not result.interrupted:
                    await self._collect_grades(result, target)
                if fetcher is not None:
                    await fetcher.drained()
            if self.calls_log is not None:
                self.calls_log.flush()
            if result.metrics is not self.metrics:
                # on workers: what this process asked after the check (grades, call logs) is in no worker's figures
                result.metrics.requests.update(self.metrics.requests - own_requests)
            # The webhook figures are taken here, once: from now on the receiver answers 503, so that no
            # delivery is acknowledged that the results do not count (the sender retries it instead).
            webhooks = receiver.close() if receiver is not None else None
            result = self._join(result)
            truth = None
            if self.keep_truth and embedded is not None:
                truth = tuple(await embedded.truth())
            calls = None
            if fetcher is not None:
                written = self.calls_log is not None and self.calls_log.lines > 0
                calls = fetcher.report(str(self.calls_log.path) if written and self.calls_log else None)
            return SessionResult(
                engine=result,
                base_url=base_url,
                webhook_url=webhook_url,
                webhooks=webhooks,
                late_polls=target.late_polls,
                truth=truth,
                server=target.server_json(),
                calls=calls,
            )

    def _call_fetcher(self, target: TestCallsTarget) -> CallFetcher | None:
        """The fetcher of the runs' call logs, when the profile asks for them."""
        if not self.profile.calls.fetch:
            return None
        self.fetcher = CallFetcher(
            target,
            self.profile.calls,
            clock=self.clock,
            log=self.calls_log,
            on_call=self._on_call_log,
            warn=self.warn,
        )
        if self._interrupted:
            self.fetcher.stop()
        return self.fetcher

    def _on_call_log(self, call_id: str, call_log: Mapping[str, Any]) -> None:
        """A call's log came: keep what the run's record takes from it, and its grade as a fallback."""
        self._call_fields[call_id] = tuple(call_log.get(source) for _, source in RECORD_FIELDS)
        score, status = call_log.get("grade_score"), call_log.get("grade_status")
        if score is not None and status in (None, "completed"):
            grade = parse_grade(call_id, {"score": score, "status": status})
            if not isinstance(grade, BadEvent) and grade.score is not None:
                self.call_log_grades.record(grade)

    def _ended(self, record: RunRecord) -> None:
        """A run ended: into the runs log, and its call to fetch."""
        if self.runs_log is not None:
            self._log_run(record)
        if self.fetcher is not None:
            self.fetcher.offer(record)

    async def _coordinator(
        self, base_url: str, api_key: str, on_record: Callable[[RunRecord], None] | None
    ) -> Coordinator:
        # Worker processes and Dask only for --workers / --cluster: a plain run does not pay their imports.
        from stressor.distributed.cluster import ClusterWorkers  # noqa: PLC0415
        from stressor.distributed.coordinator import Coordinator  # noqa: PLC0415
        from stressor.distributed.local import LocalWorkers  # noqa: PLC0415

        assert self.scale is not None
        scale = self.scale
        backend = LocalWorkers() if scale.cluster is None else ClusterWorkers(scale.cluster)
        return Coordinator(
            self.profile,
            backend,
            workers=scale.workers or await backend.capacity(),
            base_url=base_url,
            api_key=api_key,
            enforce_budget=self.enforce_budget,
            on_record=on_record,
            keep_records=not self._records_in_log,
            lead_s=scale.lead_s,
            warn=self.warn,
            trust_env=self.where.base_url is not None,
        )

    async def _run_engine(self, engine: Runner, base_url: str) -> EngineResult:
        """The engine, with the runs log started before it and flushed twice a second while it runs; the
        result's records are then read back from the log (the engine kept none)."""
        log = self.runs_log
        if log is None:
            return await engine.run()

        def counters() -> dict[str, Any]:
            return counters_line(engine.metrics, engine.elapsed_s())

        log.write(
            {
                "type": "start",
                "profile": self.profile.name,
                "source": self.profile.source,
                "started_at": self.clock.wall(),
                "target": {"base_url": base_url, "embedded_simulator": self.where.base_url is None},
            }
        )
        log.flush()
        async with anyio.create_task_group() as flusher:
            flusher.start_soon(functools.partial(keep_flushed, log, counters, clock=self.clock))
            result = await engine.run()
            flusher.cancel_scope.cancel()
        log.write(counters_line(result.metrics, result.elapsed_s))
        log.write(
            {
                "type": "end",
                "ended_at": result.metrics.anchor.to_wall_s(result.ended_ns),
                "interrupted": result.interrupted,
                "stop_reason": result.stop_reason,
            }
        )
        log.flush()
        return replace(result, records=LoggedRecords(log.path, result.t0_ns)) if self._records_in_log else result

    @property
    def _records_in_log(self) -> bool:
        """Whether the run's records are read back from the runs log rather than kept: not when there is no
        log, nor when it is not a file that reads back (``--runs-log /dev/null``)."""
        log = self.runs_log
        return log is not None and (log.path.is_file() or not log.path.exists())

    def _log_run(self, record: RunRecord) -> None:
        assert self.runs_log is not None and self.engine is not None
        self.runs_log.write({"type": "run", **record.to_json(self.metrics.anchor, self.engine.t0_ns)})

    @property
    def _grading(self) -> bool:
        grades = self.profile.grades
        return grades.fetch or grades.threshold is not None or self.profile.webhooks.enabled or self.profile.calls.fetch

    async def _collect_grades(self, result: EngineResult, target: TestCallsTarget) -> None:
        """Listen ``grades.wait`` longer for grades (a call may be graded again later: fast, then full), then
        fetch the missing ones if asked to."""
        calls = [r.call_id for r in result.records if r.outcome is Outcome.COMPLETED and r.call_id]
        await anyio.sleep(self.profile.grades.wait_s)
        if not self.profile.grades.fetch:
            return
        limiter = anyio.CapacityLimiter(GRADE_FETCH_CONCURRENCY)

        async def fetch(call_id: str) -> None:
            async with limiter:
                grade = await target.fetch_grade(call_id)
            if grade is not None:
                self.grades.record(grade)

        async with anyio.create_task_group() as fetches:
            for call_id in calls:
                if self.grades.get(call_id) is None:
                    fetches.start_soon(fetch, call_id)

    def _grade_of(self, call_id: str | None) -> CallGraded | None:
        """A call's grade: from a webhook or a grade fetch, else (for its score) from its call log."""
        grade = self.grades.get(call_id)
        if grade is None or grade.score is None:
            return self.call_log_grades.get(call_id) or grade
        return grade

    def _call_of(self, call_id: str | None) -> dict[str, Any] | None:
        """The run record's fields from its call's log (those the log had), None when it was not fetched."""
        fields = self._call_fields.get(call_id) if call_id is not None else None
        if fields is None:
            return None
        return {name: value for (name, _), value in zip(RECORD_FIELDS, fields, strict=True) if value is not None}

    def _join(self, result: EngineResult) -> EngineResult:
        """The records with their grades and their call logs' fields joined; the grades counted."""
        if not self._grading:
            return result
        threshold = self.profile.grades.threshold
        grade_of, call_of = self._grade_of, self._call_of
        if isinstance(result.records, LoggedRecords):  # walked twice, never held: here and when written
            records: Sequence[RunRecord] = result.records.with_grades(grade_of).with_calls(call_of)
        else:

            def joined(record: RunRecord) -> RunRecord:
                record = with_grade(record, grade_of(record.call_id))
                return record if (fields := call_of(record.call_id)) is None else replace(record, **fields)

            records = tuple(map(joined, result.records))
        for record in records:
            if record.outcome is Outcome.COMPLETED:
                result.metrics.record_grade(record, threshold)
        return replace(result, records=records)
