"""The end of a run, pure: from the session's result to the results document, the threshold verdicts, what is
printed and the exit code; the same for a capacity search. Writing the files is the caller's (the CLI's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stressor.calllogs import CallsReport
from stressor.capacity import Step, knee, measure_step
from stressor.distributed.tally import WORKER_LOST
from stressor.document import Results
from stressor.engine import EngineResult
from stressor.intervals import Interval, interval_series
from stressor.metrics import Outcome
from stressor.profile import Profile
from stressor.report.console import render_summary
from stressor.report.results import build_results, calls_figures, webhooks_figures
from stressor.runlog import stamps_of
from stressor.running import ExitCode, PreparedRun, Searched
from stressor.secrets import mask_secret
from stressor.session import SessionResult
from stressor.thresholds import Threshold, Verdict, breached, evaluate, render_verdicts
from stressor.units import format_duration


@dataclass(frozen=True, slots=True)
class Ending:
    """How a command ends: its exit code and the sentence said on stderr (None: nothing to say)."""

    code: ExitCode
    sentence: str | None = None


@dataclass(frozen=True, slots=True)
class Conclusion:
    """A finished run: its results document (and interval series, for the .hlog), the threshold verdicts, the
    lines printed on stdout and how the command ends if every output is written."""

    document: Results
    intervals: tuple[Interval, ...]
    verdicts: tuple[Verdict, ...]
    lines: tuple[str, ...]
    ending: Ending


def conclude(outcome: SessionResult, prepared: PreparedRun) -> Conclusion:
    """The results of a run, checked against its thresholds. Does no I/O of its own (a run's records may be read
    back from its runs log as they are walked)."""
    result, profile = outcome.engine, prepared.profile
    target: dict[str, Any] = {
        "kind": profile.target.kind,
        "embedded_simulator": prepared.embedded,
        "base_url": outcome.base_url,
    }
    if not prepared.embedded:
        target["api_key"] = mask_secret(prepared.where.api_key)
    intervals = tuple(
        interval_series(
            stamps_of(result.records), result.samples, result.metrics.anchor, result.t0_ns, profile.interval_s
        )
    )
    # The run's gates go with its figures, so that 'stressor report' checks them again (and JUnit shows them).
    document = build_results(
        result,
        profile,
        target,
        intervals,
        webhooks=webhooks_figures(outcome),
        server=outcome.server,
        thresholds=[t.text for t in prepared.thresholds],
        calls=calls_figures(outcome),
    )
    verdicts = tuple(evaluate(prepared.thresholds, document))
    lines = [render_summary(document)]
    if verdicts:
        lines.append("\n" + render_verdicts(verdicts))
    written = f"\nresults: {prepared.outputs.results}  runs log: {prepared.outputs.runs_log}"
    if outcome.calls is not None:
        written += f"  calls log: {outcome.calls.log or 'none written'} ({_calls_said(outcome.calls)})"
    lines.append(written)
    return Conclusion(document, intervals, verdicts, tuple(lines), ending_of(result, verdicts))


def _calls_said(calls: CallsReport) -> str:
    """What came of the call logs, in a few words: ``58 call logs, 2 failed: http_404 1, timeout 1``."""
    said = f"{calls.fetched} call logs"
    if failed := sum(calls.failed.values()):
        said += f", {failed} failed: {', '.join(f'{cause} {n}' for cause, n in calls.failed.items())}"
    if calls.transcripts or calls.transcripts_failed:
        said += f"; {calls.transcripts} transcripts"
        if missing := sum(calls.transcripts_failed.values()):
            said += f", {missing} failed"
    return said


def ending_of(result: EngineResult, verdicts: Sequence[Verdict]) -> Ending:
    """The exit code of a run whose outputs were written, the first cause that applies: interrupted (130), the
    breaker (4), a worker lost (7), a fatal stop (3), unknown runs (8), a threshold (5); else 0. A budget stop is
    a success: the run did what it was allowed to."""
    if result.interrupted:
        return Ending(ExitCode.INTERRUPTED)
    if result.stop_cause == "breaker":
        return Ending(ExitCode.BREAKER, f"stopped early by the breaker: {result.stop_reason}")
    if result.stop_cause == WORKER_LOST:
        return Ending(ExitCode.WORKER_LOST, str(result.stop_reason))
    if result.stop_reason is not None and result.stop_cause not in ("threshold", "budget"):
        return Ending(ExitCode.TARGET, f"stopped early: {result.stop_reason}")
    if unknown := result.metrics.outcomes[Outcome.UNKNOWN]:
        return Ending(
            ExitCode.UNKNOWN_RUNS,
            f"{unknown} runs are unknown: stressor could not tell whether they exist or how they ended "
            "(the summary's errors say why); the figures leave them out",
        )
    if breached(verdicts) or result.stop_cause == "threshold":
        failed = sum(not v.passed for v in verdicts)
        return Ending(ExitCode.THRESHOLDS, f"{failed} of {len(verdicts)} thresholds failed")
    return Ending(ExitCode.OK)


def after_writes(conclusion: Conclusion, unwritten: Sequence[str], runs_log: Path) -> Ending:
    """How the command ends once its outputs were written: an output that could not be written comes first
    (exit 2, naming the runs log that holds every run), else the run's own ending."""
    if not unwritten:
        return conclusion.ending
    return Ending(
        ExitCode.USAGE,
        "; ".join(unwritten) + f"; the runs log {runs_log} has every run ('stressor report {runs_log}' "
        "rebuilds the results)",
    )


# ---------------------------------------------------------------------------------------------------- capacity


def step_of(level: float, step_run: Profile, outcome: SessionResult, slos: Sequence[Threshold]) -> Step:
    """One capacity step's figures and SLO verdicts, from the run of its level."""
    document = build_results(outcome.engine, step_run, {"base_url": outcome.base_url})
    return measure_step(level, document, slos)


def capacity_row(step: Step) -> str:
    """The line said on stderr as a step ends."""

    def fmt(value: float | None) -> str:
        return "-" if value is None else format_duration(value)

    rate = "-" if step.failure_rate is None else f"{step.failure_rate:.1%}"
    verdict = "held" if step.held else "BROKE: " + "; ".join(v.sentence for v in step.verdicts if not v.passed)
    return (
        f"  {step.level:>8g}  p50 {fmt(step.p50_s):>8}  p95 {fmt(step.p95_s):>8}  p99 {fmt(step.p99_s):>8}"
        f"  failures {rate:>6}  completed {step.completed_per_s:6.3g}/s  {verdict}"
    )


@dataclass(frozen=True, slots=True)
class CapacityConclusion:
    """A finished search: the --out document, its step rows (for the chart), the knee line and the ending."""

    document: dict[str, Any]
    rows: list[dict[str, Any]]
    line: str
    ending: Ending


def conclude_capacity(
    searched: Searched, *, model: str, load_label: str, slos: Sequence[Threshold], max_level: float
) -> CapacityConclusion:
    """Where the knee lies, from the steps measured (exit 130 when the search was interrupted, else 0)."""
    steps = searched.steps
    found = knee(steps)
    rows = [
        {
            "level": s.level,
            "p50": s.p50_s,
            "p95": s.p95_s,
            "p99": s.p99_s,
            "failure_rate": s.failure_rate,
            "completed_per_s": s.completed_per_s,
            "held": s.held,
            "broken": [v.sentence for v in s.verdicts if not v.passed],
        }
        for s in steps
    ]
    held = found.last_held.level if found.last_held else None
    broke = found.first_broke.level if found.first_broke else None
    document = {
        "model": model,
        "load": load_label,
        "slos": [t.text for t in slos],
        "steps": rows,
        "knee": {"last_held": held, "first_broke": broke},
        "interrupted": searched.interrupted,
    }
    if broke is not None:
        where_held = f"held at {held:g}" if held is not None else "broke at the first step"
        line = f"knee: {where_held}, broke at {broke:g} {load_label}"
    elif held is None:
        line = "no step ran to its end"
    elif searched.interrupted:
        line = f"knee so far (interrupted): held up to {held:g} {load_label}; no step broke the SLO yet"
    else:
        line = f"no step broke the SLO up to {max_level:g} {load_label}; the last held at {held:g}"
    ending = Ending(ExitCode.INTERRUPTED if searched.interrupted else ExitCode.OK)
    return CapacityConclusion(document, rows, line, ending)
