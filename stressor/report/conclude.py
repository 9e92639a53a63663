"""The end of a run, pure: from the session's result to the results document, the threshold verdicts, what is
printed and the exit code; the same for a capacity search. Writing the files is the caller's (the CLI's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stressor.calllogs import CallsReport
from stressor.capacity import Knee, Step, deciding, knee, measure_step, needs_recheck
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
from stressor.thresholds import Status, Threshold, Verdict, breached, evaluate, render_verdicts
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


def _seconds(value: float | None) -> str:
    return "-" if value is None else format_duration(value)


def capacity_header(load_label: str) -> str:
    """The header of the step table (stdout), above the rows of ``capacity_row``."""
    return (
        f"  {load_label:>14}  {'step':<8}  {'p50':>8}  {'p95':>8}  {'p99':>8}  {'failures':>8}  {'runs/s':>7}"
        "  SLO"
    )


def capacity_row(step: Step) -> str:
    """The line printed as a step ends, under ``capacity_header``."""
    rate = "-" if step.failure_rate is None else f"{step.failure_rate:.1%}"
    kind = "re-check" if step.recheck else step.phase
    verdict = "held" if step.held else "BROKE: " + "; ".join(v.sentence for v in step.verdicts if not v.passed)
    return (
        f"  {step.level:>14g}  {kind:<8}  {_seconds(step.p50_s):>8}  {_seconds(step.p95_s):>8}"
        f"  {_seconds(step.p99_s):>8}  {rate:>8}  {step.runs_per_s:>7.3g}  {verdict}"
    )


def about(runs_per_s: float) -> str:
    """A throughput to two significant figures, as said in a sentence: ``19 runs/s``, ``1.2 runs/s``."""
    shown = f"{runs_per_s:.0f}" if runs_per_s >= 10 else f"{runs_per_s:.2g}"
    return f"{shown} runs/s"


def sustained_sentence(
    found: Knee, *, model: str, load_label: str, slos: Sequence[Threshold], max_level: float
) -> str:
    """The load the search found sustained, in one sentence."""
    within = " and ".join(t.text for t in slos)
    held, broke = found.last_held, found.first_broke
    if held is None:
        if broke is None:
            return "no step ran to its end: nothing is known of the load sustained"
        return f"sustains none of the loads tried: even {broke.level:g} {load_label} broke {within}"
    at = f"{model}: {held.level:g} {load_label}"
    if broke is None:
        top = ", the highest tried" if held.level >= max_level else ""
        return (
            f"sustains at least about {about(held.runs_per_s)} ({at}{top}) with {within}; no step broke it"
            + ("; raise --max to find the knee" if top else "")
        )
    return f"sustains about {about(held.runs_per_s)} ({at}) with {within}"


def _knee_line(found: Knee, pending: Step | None, load_label: str, max_level: float, interrupted: bool) -> str:
    held = found.last_held.level if found.last_held else None
    broke = found.first_broke.level if found.first_broke else None
    so_far = "knee so far (interrupted): " if interrupted else "knee: "
    if broke is not None:
        where_held = f"held at {held:g}" if held is not None else "broke at the lowest level tried"
        return f"{so_far}{where_held}, broke at {broke:g} {load_label}"
    if held is None:
        return "no step ran to its end"
    if interrupted:
        unchecked = f"{pending.level:g} broke once and was not re-checked" if pending else "no step broke the SLO yet"
        return f"{so_far}held up to {held:g} {load_label}; {unchecked}"
    return f"no step broke the SLO up to {max_level:g} {load_label}; the last held at {held:g}"


def _step_row(step: Step, decides: bool) -> dict[str, Any]:
    return {
        "level": step.level,
        "phase": step.phase,
        "recheck": step.recheck,
        "decides": decides,  # the measurement the level's verdict rests on (a break's is its re-check)
        "p50": step.p50_s,
        "p95": step.p95_s,
        "p99": step.p99_s,
        "failure_rate": step.failure_rate,
        "completed_per_s": step.completed_per_s,
        "runs_per_s": step.runs_per_s,
        "offered_per_s": step.results.load.offered_runs_per_s if step.results is not None else None,
        "held": step.held,
        "broken": [v.sentence for v in step.verdicts if not v.passed],
    }


@dataclass(frozen=True, slots=True)
class CapacityConclusion:
    """A finished search: the --out document; the levels by their deciding measurement, in order of load (for
    the chart); the lines said at the end (the knee, the load sustained, the thresholds); the sustained step's
    results and verdicts (for --junit); and the ending."""

    document: dict[str, Any]
    rows: list[dict[str, Any]]
    lines: tuple[str, ...]
    sustained: Results | None
    verdicts: tuple[Verdict, ...]
    ending: Ending


def conclude_capacity(
    searched: Searched,
    *,
    model: str,
    load_label: str,
    slos: Sequence[Threshold],
    max_level: float,
    resolution: float,
    thresholds: Sequence[Threshold] = (),
) -> CapacityConclusion:
    """Where the knee lies and what load is sustained, from every measurement (re-checks and narrowing
    included); ``thresholds`` are checked on the sustained step's results (exit 5 when one fails or no step
    held), and an interrupted search ends 130."""
    steps = searched.steps
    found = knee(steps)
    decided = deciding(steps)
    deciders = {id(step) for step in decided.values() if step is not None}
    every = [_step_row(step, id(step) in deciders) for step in steps]
    by_level = sorted((row for row in every if row["decides"]), key=lambda row: row["level"])
    sentence = sustained_sentence(found, model=model, load_label=load_label, slos=slos, max_level=max_level)
    sustained = found.last_held.results if found.last_held is not None else None
    verdicts = tuple(_gate(thresholds, sustained))
    lines = [_knee_line(found, needs_recheck(steps), load_label, max_level, searched.interrupted), sentence]
    if verdicts:
        lines.append("\n" + render_verdicts(verdicts))
    held = found.last_held
    document = {
        "model": model,
        "load": load_label,
        "slos": [t.text for t in slos],
        "resolution": resolution,
        "steps": every,
        "knee": {
            "last_held": held.level if held else None,
            "first_broke": found.first_broke.level if found.first_broke else None,
        },
        "sustained": {"level": held.level, "runs_per_s": held.runs_per_s} if held else None,
        "sentence": sentence,
        "thresholds": [{"threshold": v.threshold.text, "passed": v.passed, "detail": v.detail} for v in verdicts],
        "interrupted": searched.interrupted,
    }
    if searched.interrupted:
        ending = Ending(ExitCode.INTERRUPTED)
    elif breached(verdicts):
        failed = sum(not v.passed for v in verdicts)
        ending = Ending(ExitCode.THRESHOLDS, f"{failed} of {len(verdicts)} thresholds failed on the sustained step")
    else:
        ending = Ending(ExitCode.OK)
    return CapacityConclusion(document, by_level, tuple(lines), sustained, verdicts, ending)


def _gate(thresholds: Sequence[Threshold], sustained: Results | None) -> list[Verdict]:
    """The thresholds on the sustained step; with no step held, each has no data (a gate never passes on none)."""
    if sustained is not None:
        return evaluate(thresholds, sustained)
    note = "no step held the SLO, so no load is sustained"
    return [
        Verdict(t, Status.MISSING, None, f"no data, {note}; a gate never passes on no data", note) for t in thresholds
    ]
