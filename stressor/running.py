"""The run use case without the command line: ``prepare`` (profile and flags merged, policy checked, into a
frozen value), then ``execute`` (the session, with Ctrl-C, abort thresholds and live watchers); ``conclude`` is
pure and lives above, in ``stressor.report.conclude``. Also the capacity search's loop, and the exit codes.

Start-up CPU counts against every command, and every command imports this module for ``ExitCode``: the session
(engine, targets, workers) and the estimates are imported inside the functions that use them.
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, fields, replace
from enum import IntEnum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from stressor import runtime
from stressor.loopback import is_loopback
from stressor.profile import Profile, RateScale, scale_duration, scale_rate
from stressor.thresholds import Threshold, ThresholdError, abort_breaches, parse_thresholds

if TYPE_CHECKING:
    from stressor.capacity import SearchPlan, Step
    from stressor.session import Runner, Scale, Session, SessionResult, Where
    from stressor.sim.config import SimConfig

T = TypeVar("T")


class ExitCode(IntEnum):
    """How a stressor command ended; ``meaning`` is what the README's table and ``stressor --help`` say."""

    meaning: str

    def __new__(cls, code: int, meaning: str) -> ExitCode:
        member = int.__new__(cls, code)
        member._value_ = code
        member.meaning = meaning
        return member

    OK = 0, "success"
    CRASH = 1, "stressor itself crashed (a bug)"
    USAGE = 2, "bad input"
    TARGET = 3, "the target cannot be used"
    BREAKER = 4, "the breaker stopped the run"
    THRESHOLDS = 5, "a threshold failed or had no data"
    REGRESSION = 6, "compare found a regression"
    WORKER_LOST = 7, "a worker was lost"
    UNKNOWN_RUNS = 8, "some runs are unknown"
    INTERRUPTED = 130, "interrupted by Ctrl-C or SIGTERM"


class RunError(Exception):
    """A run that cannot start or go on: one sentence for the user and the exit code it ends with."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code


MIN_RUNS_TO_ABORT = 20  # an abort threshold waits for this many settled runs: a rate over 3 says nothing
NO_KEY = "no API key: set THUNDERPHONE_API_KEY (or pass --api-key)"
WEBHOOK_SECRET_ENV = "STRESSOR_WEBHOOK_SECRET"  # the signing secrets of a real API's webhooks, comma-separated


# ---------------------------------------------------------------------------------------------------- prepare


@dataclass(frozen=True, slots=True)
class Overrides:
    """The run command's overrides of the profile; None leaves the profile's own."""

    base_url: str | None = None
    poll_interval_s: float | None = None
    grace_s: float | None = None
    grades_wait_s: float | None = None  # [grades] wait, and the [calls] delay that follows it
    mode: str | None = None
    create_rate: float | None = None
    poll_rate: float | None = None
    max_runs_in_flight: int | None = None
    max_batches_in_flight: int | None = None
    enabled: bool | None = None  # webhooks.enabled
    public_url: str | None = None
    fallback: float | str | None = None
    listen_host: str | None = None
    listen_port: int | None = None
    calls: bool | None = None  # calls.fetch (False: no call logs, nor transcripts)
    transcripts: bool | None = None  # calls.transcripts (True fetches the call logs too)
    rate: RateScale | None = None  # --rate: the stages' load scaled
    duration_s: float | None = None  # --duration: the stages stretched to last this long in all


_SECTIONS = (
    ("target", ("base_url", "poll_interval_s")),
    ("limits", ("mode", "create_rate", "poll_rate", "max_runs_in_flight", "max_batches_in_flight")),
    ("webhooks", ("enabled", "public_url", "fallback", "listen_host", "listen_port")),
)


def with_overrides(profile: Profile, overrides: Overrides) -> Profile:
    """The profile with the overrides given applied. Raises ``RunError`` (exit 2) when ``--rate`` or
    ``--duration`` cannot scale its stages."""
    given = {f.name: value for f in fields(overrides) if (value := getattr(overrides, f.name)) is not None}
    for section, keys in _SECTIONS:
        changes = {key: given[key] for key in keys if key in given}
        if changes:
            profile = replace(profile, **{section: replace(getattr(profile, section), **changes)})
    if "grace_s" in given:
        profile = replace(profile, grace_s=given["grace_s"])
    calls = profile.calls
    if "grades_wait_s" in given:  # the call logs keep their margin past the delay
        wait_s = given["grades_wait_s"]
        profile = replace(profile, grades=replace(profile.grades, wait_s=wait_s))
        calls = replace(calls, delay_s=wait_s, wait_s=wait_s + calls.wait_s - calls.delay_s)
    if given.get("transcripts"):
        calls = replace(calls, fetch=True, transcripts=True)
    if "calls" in given:
        calls = replace(calls, fetch=given["calls"], transcripts=calls.transcripts and given["calls"])
    if calls != profile.calls:
        profile = replace(profile, calls=calls)
    try:
        if overrides.rate is not None:
            profile = scale_rate(profile, overrides.rate)
    except ValueError as exc:
        raise RunError(f"--rate {overrides.rate.text}: {exc}", ExitCode.USAGE) from None
    try:
        if overrides.duration_s is not None:
            profile = scale_duration(profile, overrides.duration_s)
    except ValueError as exc:
        raise RunError(f"--duration: {exc}", ExitCode.USAGE) from None
    return profile


@dataclass(frozen=True, slots=True)
class Outputs:
    """Where a run writes: results, runs log, calls log (None: call logs are not fetched) and the reports asked
    for."""

    results: Path
    runs_log: Path
    hlog: Path | None = None
    junit: Path | None = None
    html: Path | None = None
    calls_log: Path | None = None

    def by_flag(self) -> tuple[tuple[str, Path | None], ...]:
        return (
            ("--out", self.results),
            ("--runs-log", self.runs_log),
            ("--calls-log", self.calls_log),
            ("--hlog", self.hlog),
            ("--junit", self.junit),
            ("--html", self.html),
        )


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What the user asked of a run, flags parsed (but not yet checked against the profile). ``calls_log``:
    the path given with --calls-log (the calls log's own default is beside the results)."""

    outputs: Outputs
    overrides: Overrides = Overrides()
    thresholds: tuple[str, ...] = ()  # added to the profile's
    api_key: str | None = None
    webhook_secrets: tuple[str, ...] = ()  # from WEBHOOK_SECRET_ENV, for a real API
    webhook_allow_remote: bool = False
    simulator: Mapping[str, Any] = field(default_factory=dict)  # --sim-* settings given (None: not given)
    scale: Scale | None = None
    calls_log: Path | None = None


@dataclass(frozen=True, slots=True)
class PreparedRun:
    """A run ready to go: the profile with its overrides, where it goes, its gates and outputs."""

    profile: Profile
    where: Where
    thresholds: tuple[Threshold, ...]
    outputs: Outputs
    scale: Scale | None = None
    warnings: tuple[str, ...] = ()  # said before the run starts

    @property
    def embedded(self) -> bool:
        """Against the embedded simulator (no real API: no key, no bill)."""
        return self.where.base_url is None

    @property
    def aborts(self) -> tuple[Threshold, ...]:
        return tuple(t for t in self.thresholds if t.abort)


def prepare(profile: Profile, request: RunRequest) -> PreparedRun:
    """Merge the profile and the flags and check them before anything starts: thresholds, webhooks, the key and
    the cost guard against a real API, the output paths (their directories are created). Raises ``RunError``
    (exit 2) with one sentence naming what is wrong."""
    profile = with_overrides(profile, request.overrides)
    try:
        thresholds = tuple(parse_thresholds([*profile.thresholds, *request.thresholds]))
    except ThresholdError as exc:
        raise RunError(str(exc), ExitCode.USAGE) from None
    hooks = profile.webhooks
    if request.scale is not None and hooks.enabled:
        raise RunError(
            "--workers and --cluster follow runs by polling: webhooks would reach one receiver and not the worker "
            "that follows each run; run with --no-webhooks, or in one process",
            ExitCode.USAGE,
        )
    if hooks.enabled and not request.webhook_allow_remote and not is_loopback(hooks.listen_host):
        raise RunError(
            f"the webhook receiver would listen on {hooks.listen_host}:{hooks.listen_port}, which is not loopback: "
            "pass --webhook-allow-remote to open that port to the network, or listen on 127.0.0.1",
            ExitCode.USAGE,
        )
    where = target_of(profile, request.api_key, request.simulator)
    warnings: list[str] = []
    if where.base_url is not None:
        if hooks.enabled and not request.webhook_secrets:
            secret = f"webhooks against a real API need the signing secret in {WEBHOOK_SECRET_ENV}"
            raise RunError(secret, ExitCode.USAGE)
        where = replace(where, webhook_secrets=request.webhook_secrets)
        fractional = sorted({s.batch.stagger_s for s in profile.stages if not float(s.batch.stagger_s).is_integer()})
        if fractional:
            # the API documents stagger_seconds as 0..60 without saying whether fractions are accepted
            warnings.append(
                f"stagger {', '.join(f'{v:g}s' for v in fractional)} is not a whole number of seconds: the API "
                "may refuse it (400) or round it; the simulator accepts fractions"
            )
    where = replace(where, webhook_allow_remote=request.webhook_allow_remote)
    outputs = replace(request.outputs, calls_log=calls_log_of(profile, request))
    for flag, path in outputs.by_flag():
        check_output(path, flag)
    return PreparedRun(profile, where, thresholds, outputs, request.scale, tuple(warnings))


def calls_log_of(profile: Profile, request: RunRequest) -> Path | None:
    """Where the calls log goes: --calls-log, else beside the results (``<out>.calls.jsonl``); None when call
    logs are not fetched (then --calls-log is refused: it would write nothing)."""
    if not profile.calls.fetch:
        if request.calls_log is not None:
            raise RunError(
                f"--calls-log {request.calls_log}: call logs are not fetched; add --calls (or [calls] fetch = true "
                f"to {profile.source})",
                ExitCode.USAGE,
            )
        return None
    return request.calls_log or request.outputs.results.with_suffix(".calls.jsonl")


def target_of(
    profile: Profile, api_key: str | None, simulator: Mapping[str, Any], *, billed: Profile | None = None
) -> Where:
    """Where a run of ``profile`` goes: the embedded simulator (the profile's [simulator] table, then the
    ``--sim-*`` settings) when it names no base URL; else the API, with a key and past the cost guard on
    ``billed`` (the profile itself unless the caller bills another shape of it)."""
    from stressor.session import EMBEDDED_API_KEY, Where

    base_url = profile.target.base_url
    if base_url is None:
        return Where(base_url=None, api_key=EMBEDDED_API_KEY, simulator=simulator_config(profile, simulator))
    if not api_key:
        raise RunError(NO_KEY, ExitCode.USAGE)
    cost_guard(billed or profile)
    return Where(base_url=base_url, api_key=api_key)


def simulator_config(profile: Profile, settings: Mapping[str, Any]) -> SimConfig:
    """The embedded simulator's settings: the profile's [simulator] table, then the --sim-* flags given."""
    from stressor.session import EMBEDDED_API_KEY
    from stressor.sim.config import SimConfig, SimConfigError

    given = {k: v for k, v in settings.items() if v is not None}
    try:
        return SimConfig.from_mapping({**profile.simulator, **given, "api_key": EMBEDDED_API_KEY})
    except SimConfigError as exc:
        flag = f"--sim-{exc.setting.replace('_', '-')}"
        where = flag if exc.setting in given else f"{profile.source}: simulator.{exc.setting}"
        raise RunError(f"{where}: {exc}", ExitCode.USAGE) from None


def cost_guard(profile: Profile) -> None:
    """Against a real API every run is billed: demand consent and a budget the plan fits in."""
    from stressor.estimate import estimate

    cost = profile.cost
    if not cost.consent_to_charge:
        raise RunError(
            f"{profile.source}: cost.consent_to_charge: must be true to drive a real API "
            "(every run is a billed call at the test-call multiplier)",
            ExitCode.USAGE,
        )
    if cost.budget_cents is None:
        raise RunError(
            f"{profile.source}: cost.budget_cents: is required against a real API (the most the run may spend)",
            ExitCode.USAGE,
        )
    _, total = estimate(profile)
    if total.cost_cents > cost.budget_cents:
        raise RunError(
            f"{profile.source}: the plan is estimated at {total.cost_cents:.0f} cents ({total.runs} runs), "
            f"over cost.budget_cents = {cost.budget_cents:.0f}; lower the load or raise the budget",
            ExitCode.USAGE,
        )


def check_output(path: Path | None, flag: str) -> None:
    """Refuse, before anything runs, an output path that cannot be written: a run whose results are lost at its
    end wastes the whole run. Missing parent directories are created (as the writers do)."""
    if path is None:
        return
    if path.is_dir():
        raise RunError(f"{flag} {path}: is a directory; give the path of a file in it", ExitCode.USAGE)
    parent = path.parent
    blocking = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise RunError(f"{flag} {path}: {blocking} is a file, not a directory", ExitCode.USAGE)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or exc
        raise RunError(f"{flag} {path}: cannot create its directory {parent} ({reason})", ExitCode.USAGE) from None
    # Try it: os.access says yes to root on a read-only file system like /proc.
    probe = path.with_name(f".{path.name}.probe")
    try:
        probe.touch()
        probe.unlink()
        if path.exists():
            path.open("ab").close()
    except OSError as exc:
        raise RunError(f"{flag} {path}: cannot be written ({exc.strerror or exc})", ExitCode.USAGE) from None


# ---------------------------------------------------------------------------------------------------- execute

LiveFigures = Callable[["Runner", Profile], Mapping[str, Any]]  # the figures so far, as abort thresholds read them
Watcher = Callable[["Session"], Awaitable[None]]  # runs beside the session until it ends (live progress)


def execute(
    prepared: PreparedRun,
    *,
    live_figures: LiveFigures,
    notice: Callable[[str], None],
    watchers: Sequence[Watcher] = (),
) -> SessionResult:
    """Run the prepared run to its end, its runs log written as runs end: Ctrl-C / SIGTERM stop it in order,
    thresholds marked ``abort`` are checked every interval. Raises ``RunError`` (exit 3) when the target, the
    cluster or what the run needs cannot be started."""
    from stressor.calllogs import CallsLog
    from stressor.runlog import RunLog
    from stressor.session import Session

    log = RunLog(prepared.outputs.runs_log)
    calls_path = prepared.outputs.calls_log
    calls = CallsLog(calls_path, warn=notice) if calls_path is not None else None
    session = Session(
        prepared.profile,
        prepared.where,
        enforce_budget=not prepared.embedded,
        runs_log=log,
        calls_log=calls,
        scale=prepared.scale,
        warn=notice,
    )

    def interrupted() -> None:
        notice("interrupted; writing what was gathered")
        session.interrupt()

    beside = [partial(watch, session) for watch in watchers]
    if prepared.aborts:
        beside.append(partial(abort_on_breach, session, prepared.aborts, live_figures))
    try:
        return _run_with_signals(session.run, interrupted, "the run", beside)
    finally:
        log.close()
        if calls is not None:
            calls.close()


async def abort_on_breach(session: Session, aborts: Sequence[Threshold], live_figures: LiveFigures) -> None:
    """Stop the run (cause ``threshold``) at the first breach of an abort threshold, checked every interval once
    enough runs settled."""
    profile = session.profile
    while True:
        await anyio.sleep(profile.interval_s)
        runner = session.engine
        if runner is None:
            continue
        live = live_figures(runner, profile)
        if live.runs.settled < MIN_RUNS_TO_ABORT:
            continue
        breaches = abort_breaches(aborts, live)
        if breaches:
            runner.stop(f"threshold breached: {breaches[0].sentence}", cause="threshold")
            return


def _run_with_signals(
    body: Callable[[], Awaitable[T]],
    on_signal: Callable[[], None],
    what: str,
    beside: Sequence[Callable[[], Awaitable[None]]] = (),
) -> T:
    """``body`` on stressor's event loop, ``beside`` running until it ends, the first SIGINT / SIGTERM handed to
    ``on_signal``; a target, cluster or start-up failure becomes a ``RunError`` (exit 3)."""
    from stressor.distributed.cluster import ClusterUnavailable
    from stressor.targets.base import TargetUnavailable

    async def watched() -> T:
        failure: TargetUnavailable | ClusterUnavailable | OSError | None = None
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_on_first_signal, on_signal)
            for task in beside:
                tasks.start_soon(task)
            try:
                result = await body()
            except (TargetUnavailable, ClusterUnavailable, OSError) as exc:
                failure = exc  # raised outside the task group, or it would come wrapped in an ExceptionGroup
            tasks.cancel_scope.cancel()
        if failure is not None:
            raise failure
        return result

    try:
        return runtime.run(watched)
    except (TargetUnavailable, ClusterUnavailable) as exc:
        raise RunError(str(exc), ExitCode.TARGET) from None
    except OSError as exc:
        raise RunError(f"could not start what {what} needs: {exc}", ExitCode.TARGET) from None


async def _on_first_signal(on_signal: Callable[[], None]) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            on_signal()
            return


# ---------------------------------------------------------------------------------------------------- capacity


@dataclass(frozen=True, slots=True)
class Search:
    """A capacity search: the profile, where it goes, the plan of levels, each step a run of ``duration_s``."""

    profile: Profile
    where: Where
    plan: SearchPlan
    duration_s: float


@dataclass(frozen=True, slots=True)
class Searched:
    """The measurements taken, in order (re-checks and narrowing included), and whether Ctrl-C / SIGTERM cut
    the search short."""

    steps: tuple[Step, ...]
    interrupted: bool


Measure = Callable[[float, Profile, "SessionResult"], "Step"]  # a step's figures and verdicts from its outcome


def search_capacity(
    search: Search, *, measure: Measure, notice: Callable[[str], None], on_step: Callable[[Step], None]
) -> Searched:
    """Measure level after level as ``capacity.next_try`` says (climb, re-check a break, narrow the knee) until
    it says the search is over. Ctrl-C / SIGTERM stops the step that runs (its partial figures are not a step)
    and keeps the steps measured so far. Raises ``RunError`` (exit 3) as ``execute`` does."""
    from stressor.capacity import next_try, step_profile
    from stressor.session import Session
    from stressor.sim.server import SimulatorProcess

    steps: list[Step] = []
    running: list[Session] = []  # the step's session, for the signal to interrupt
    interrupted = False

    def on_signal() -> None:
        nonlocal interrupted
        notice("interrupted; keeping the steps measured so far")
        interrupted = True
        for session in running:
            session.interrupt()

    async def search_until_narrowed() -> None:
        async with AsyncExitStack() as stack:
            here = search.where
            if here.base_url is None:  # one simulator for every step, so the search measures the load, not boots
                assert here.simulator is not None
                here = replace(here, base_url=await stack.enter_async_context(SimulatorProcess(here.simulator)))
            while not interrupted and (attempt := next_try(search.plan, steps)) is not None:
                step_run = step_profile(search.profile, attempt.level, search.plan.model, search.duration_s)
                session = Session(step_run, here, enforce_budget=False)
                running[:] = [session]
                outcome = await session.run()
                if outcome.engine.interrupted or interrupted:
                    return
                step = replace(measure(attempt.level, step_run, outcome), phase=attempt.phase, recheck=attempt.recheck)
                steps.append(step)
                on_step(step)

    _run_with_signals(search_until_narrowed, on_signal, "the search")
    return Searched(tuple(steps), interrupted)
