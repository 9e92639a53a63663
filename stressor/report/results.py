"""The results document of a run, built from its figures (typed: ``stressor.document``), and its file.

Schema ``stressor.results/1`` is documented in ``docs/results.md``. Durations are in seconds. The file is
written atomically (a temporary file, then a rename), so a reader never sees half a file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from stressor.document import (
    SCHEMA,
    Calls,
    Figures,
    Generator,
    GradeFigures,
    Grades,
    IntervalFigures,
    IntervalLatency,
    IntervalRuns,
    LimitsReport,
    Load,
    MeasureFigures,
    Outcomes,
    ProfileInfo,
    Results,
    ResultsError,
    RunEntry,
    Runs,
    Server,
    Slice,
    Stage,
    StageTarget,
    TargetInfo,
    Webhooks,
    load_part,
    load_results,
    readonly,
    run_entry,
)
from stressor.engine import EngineResult
from stressor.governor import KINDS, Governor, GovernorReport
from stressor.intervals import Interval
from stressor.metrics import MEASURE_SOURCES, Breakdown, LatencyRecorder, Measure, Metrics, Outcome, Summary
from stressor.plan import peak_batch_rate, stage_windows
from stressor.profile import ClosedLoad, Limits, OpenLoad, Profile, TargetSpec
from stressor.runlog import LoggedRecords, RunLogError, read_runs_log
from stressor.session import SessionResult
from stressor.tiers import compare_variants
from stressor.timestamps import NS_PER_S
from stressor.verdicts import judge
from stressor.verdicts import summary as verdict_summary

GENERATOR_LAG_FLOOR_S = 0.002
NOT_IN_RUNS_LOG = "not in the runs log"  # what a summary rebuilt from the log says of figures the log lacks
PREFLIGHT_PURPOSE = "check"  # the requests of the target's check before the run (see TestCallsTarget.check)


def _percentile_key(p: float) -> str:
    return f"p{p:g}".replace(".", "_")


def _summary_fields(summary: Summary) -> dict[str, Any]:
    return {
        "count": summary.count,
        "min": summary.min_s,
        "mean": summary.mean_s,
        "max": summary.max_s,
        **{_percentile_key(p): v for p, v in summary.percentiles_s.items()},
        "clamped": summary.clamped,
    }


def recorder_figures(recorder: LatencyRecorder) -> Figures:
    """Count, min, mean, max and percentiles (seconds) of a recorder."""
    return Figures(**_summary_fields(recorder.summary()))


def measure_figures(recorder: LatencyRecorder, source: str, *, with_histogram: bool = True) -> MeasureFigures:
    """A measure of the document: its figures, its source and, optionally, the encoded HDR histogram."""
    summary = recorder.summary()
    hdr = recorder.encode() if with_histogram and summary.count else None
    return MeasureFigures(source=source, hdr=hdr, **_summary_fields(summary))


def _slices(pieces: Mapping[str, Breakdown]) -> dict[str, Slice]:
    empty = LatencyRecorder()  # for a measure a slice never had a value of (its recorders are made on use)
    return {
        name: Slice(
            outcomes=Outcomes(**{str(o): piece.outcomes[o] for o in Outcome}),
            queue_to_completion=recorder_figures(piece.queue_to_completion),
            time_in_progress=recorder_figures(piece.time_in_progress),
            measures=readonly({str(m): recorder_figures(piece.measures.get(m, empty)) for m in Measure}),
            not_started=readonly(piece.not_started),
            submitted=piece.submitted_runs,
            estimated_cost_cents=piece.cost_cents,
            grades=GradeFigures(**piece.grades.to_json()),
        )
        for name, piece in sorted(pieces.items())
    }


def generator_check(metrics: Metrics, profile: Profile) -> Generator:
    """Did the client keep to the schedule? Behind when the dispatch lag (due time -> the batch's task ran,
    limits and throttling apart) has a p99 above max(2 ms, 10 % of the shortest inter-arrival time): then
    latencies include the client's own delay, and less load was offered than planned."""
    rate = peak_batch_rate(profile)
    limit = max(GENERATOR_LAG_FLOOR_S, 0.1 / rate) if rate > 0 else GENERATOR_LAG_FLOOR_S
    p99 = metrics.dispatch_lag.summary().percentiles_s.get(99.0)
    return Generator(dispatch_lag_p99=p99, limit=limit, behind=p99 is not None and p99 > limit)


def limits_report(report: GovernorReport) -> LimitsReport:
    """What the governor did: throttling, retries, the server's Retry-After values, the breaker."""
    return LimitsReport(
        mode=report.mode,
        throttle_wait_s=report.throttle_wait_s,
        client_wait_s=report.client_wait_s,
        server_rate_wait_s=report.server_rate_wait_s,
        server_pause_s=report.server_pause_s,
        capacity_wait_s=report.capacity_wait_s,
        responses=readonly(report.responses),
        learned_rates=readonly({kind: report.learned_rates.get(kind) for kind in KINDS}),
        retries=readonly(report.retries),
        retry_after=recorder_figures(report.retry_after_s),
        unparseable_headers=readonly(report.unparseable_headers),
        runs_in_flight_limit=report.run_limit,
        breaker=report.trip.describe() if report.trip is not None else None,
    )


def offered_load(metrics: Metrics, profile: Profile, elapsed_s: float) -> Load:
    """Offered load (runs the plan made due, per second of the plan that ran: to its end, or to an early stop)
    beside achieved load (runs the server accepted, per second of the time they were being submitted: from the
    first due batch to the last create's answer, or the offered load's span if longer), and what following
    them cost in HTTP requests."""
    # The rest of the plan after a stop was never due: neither its runs nor its time are offered load.
    offered_runs = metrics.planned_runs - metrics.never_due_runs
    first, last_submit = metrics.first_due_ns, metrics.last_submit_ns
    offered_s = metrics.plan_ran_s if metrics.plan_ran_s is not None else min(profile.duration_s, elapsed_s)
    submitting_s = (last_submit - first) / NS_PER_S if first is not None and last_submit is not None else 0.0
    ended = metrics.outcomes[Outcome.COMPLETED] + metrics.outcomes[Outcome.FAILED]
    # What following the runs cost: the pre-flight check's requests are counted in ``requests``, not here.
    requests = sum(n for key, n in metrics.requests.items() if not key.startswith(f"{PREFLIGHT_PURPOSE} "))
    return Load(
        offered_runs_per_s=max(0, offered_runs) / offered_s if offered_s > 0 else 0.0,
        # Never over a shorter span than the offered load's: n batches a gap apart span n - 1 gaps, and a run
        # that kept up must read "achieved = offered", not a few per cent more.
        achieved_runs_per_s=metrics.submitted_runs / span if (span := max(submitting_s, offered_s)) > 0 else 0.0,
        requests_per_ended_run=requests / ended if ended else None,
    )


def _interval_latency(summary: Summary) -> IntervalLatency:
    percentiles = {_percentile_key(p): v for p, v in summary.percentiles_s.items() if p in (50.0, 90.0, 99.0)}
    return IntervalLatency(count=summary.count, max=summary.max_s, **percentiles)


def interval_figures(intervals: Iterable[Interval]) -> tuple[IntervalFigures, ...]:
    """The interval series for the results (the histograms themselves go to the ``.hlog``)."""
    return tuple(
        IntervalFigures(
            start=i.start_s,
            end=i.end_s,
            runs=IntervalRuns(
                queued=i.queued,
                in_progress=i.in_progress,
                completed=i.completed,
                failed=i.failed,
                errored=i.errored,
                rejected=i.rejected,
                open=i.open,
                in_flight=i.in_flight,
            ),
            requests_per_s=i.requests_per_s,
            throttled_s=i.throttled_s,
            queue_to_completion=_interval_latency(i.queue_to_completion),
        )
        for i in intervals
    )


def plan_stages(profile: Profile) -> tuple[Stage, ...]:
    """The plan's stages, in order (a run record's ``stage`` indexes this list): name, where each sits on the
    timeline, its load model and target (batches per second, or runs in flight; a ramp goes start -> end)."""
    stages = []
    for window in stage_windows(profile):
        load = window.stage.load
        model, ramp, unit = (
            ("open", load.batches_per_s, "batches/s")
            if isinstance(load, OpenLoad)
            else ("closed", load.runs_in_flight, "runs in flight")
            if isinstance(load, ClosedLoad)
            else ("pause", None, None)
        )
        stages.append(
            Stage(
                name=window.stage.name,
                start_s=window.start_s,
                end_s=window.end_s,
                model=model,
                target=None if ramp is None else StageTarget(start=ramp.start, end=ramp.end, unit=unit),
                runs_per_batch=window.stage.batch.runs,
            )
        )
    return tuple(stages)


def webhooks_figures(session: SessionResult) -> Webhooks | None:
    """How completion by webhook went: what the receiver got and how many batches fell back to polling."""
    stats = session.webhooks
    if stats is None:
        return None
    return Webhooks(
        url=session.webhook_url,
        received=stats.received,
        accepted=stats.accepted,
        duplicates=stats.duplicates + stats.replayed,
        bad_signature=readonly(stats.bad_signature),
        rejected_other=stats.too_large + stats.bad_json + stats.bad_shape + stats.incomplete,
        slow_body=stats.slow_body,
        wrong_path=stats.wrong_path,
        unknown_type=stats.unknown_type,
        by_type=readonly(stats.accepted_by_type),
        batches_polled_late=session.late_polls,
    )


def calls_figures(session: SessionResult) -> Calls | None:
    """What came of fetching the call logs, when they were fetched."""
    calls = session.calls
    if calls is None:
        return None
    return Calls(
        log=calls.log,
        fetched=calls.fetched,
        failed=readonly(calls.failed),
        transcripts=calls.transcripts,
        transcripts_failed=readonly(calls.transcripts_failed),
    )


def figures(
    metrics: Metrics,
    governor: Governor,
    profile: Profile,
    elapsed_s: float,
    *,
    with_histograms: bool = True,
) -> Results:
    """The figures of a run, finished or still going (thresholds marked ``abort`` read these live): a document
    without its header, run records or interval series."""
    return Results(
        runs=Runs(
            planned=metrics.planned_runs,
            submitted=metrics.submitted_runs,
            **{str(o): metrics.outcomes[o] for o in Outcome},
            not_started=readonly(metrics.not_started),
        ),
        failure_rate=metrics.failure_rate,
        generator=generator_check(metrics, profile),
        load=offered_load(metrics, profile, elapsed_s),
        limits=limits_report(governor.report()),
        errors=readonly(metrics.errors),
        requests=readonly(dict(sorted(metrics.requests.items()))),
        estimated_cost_cents=metrics.cost_cents,
        measures=readonly(
            {
                str(measure): measure_figures(
                    metrics.recorders[measure], MEASURE_SOURCES[measure], with_histogram=with_histograms
                )
                for measure in Measure
            }
        ),
        grades=Grades(threshold=profile.grades.threshold, **metrics.grades.to_json()),
        variants=readonly(_slices(metrics.by_variant)),
        scenarios=readonly(_scenario_slices(metrics, profile)),
    )


def _scenario_slices(metrics: Metrics, profile: Profile) -> dict[str, Slice]:
    """The per-scenario slices, each with the outcome its corpus entry expects and its goal (when it states
    them)."""
    slices = _slices(metrics.by_scenario)
    for scenario in profile.scenarios:
        if scenario.name in slices and (scenario.expected_outcome is not None or scenario.goal is not None):
            stated = {"expected_outcome": scenario.expected_outcome, "goal": scenario.goal}
            slices[scenario.name] = replace(slices[scenario.name], **stated)
    return slices


def with_verdicts(document: Results, profile: Profile) -> Results:
    """The document with a verdict for every scenario that states an expected outcome (a scenario no run was
    dealt to gets an empty slice, undecided) and their summary; as it is when none states one."""
    stated = [s for s in profile.scenarios if s.expected_outcome is not None]
    if not stated:
        return document
    verdicts = judge(document.run_records, {s.name: str(s.expected_outcome) for s in stated})
    scenarios = dict(document.scenarios)
    for scenario in stated:
        piece = scenarios.get(scenario.name)
        if piece is None:  # its figures all empty, as a slice's with no value are
            empty = _slices({scenario.name: Breakdown()})[scenario.name]
            piece = replace(empty, expected_outcome=scenario.expected_outcome, goal=scenario.goal)
        scenarios[scenario.name] = replace(piece, verdict=verdicts[scenario.name])
    ordered = dict(sorted(scenarios.items()))  # as _slices orders them, those no run was dealt to among them
    return replace(document, scenarios=readonly(ordered), scenario_verdicts=verdict_summary(verdicts.values()))


def build_results(
    result: EngineResult,
    profile: Profile,
    target: Mapping[str, Any],
    intervals: Sequence[Interval] = (),
    webhooks: Webhooks | None = None,
    server: Mapping[str, Any] | None = None,
    thresholds: Sequence[str] | None = None,
    calls: Calls | None = None,
) -> Results:
    """The results document of one run. ``target`` describes where it ran (never holds the key); ``server``
    what was learned of the server where the docs are silent (its lists, its clock); ``thresholds`` the gates
    the run is held to, as written (``stressor report`` checks them again); ``calls`` what came of fetching
    the call logs."""
    anchor = result.metrics.anchor
    document = replace(
        figures(result.metrics, result.governor, profile, result.elapsed_s),
        schema=SCHEMA,
        profile=ProfileInfo(name=profile.name, source=profile.source),
        target=load_part(TargetInfo, target, "target"),
        started_at=anchor.to_wall_s(result.t0_ns),
        ended_at=anchor.to_wall_s(result.ended_ns),
        elapsed_s=result.elapsed_s,
        interrupted=result.interrupted,
        stop_reason=result.stop_reason,
        webhooks=webhooks,
        server=load_part(Server, server, "server") if server is not None else None,
        calls=calls,
        stages=plan_stages(profile),
        interval_s=profile.interval_s,
        intervals=interval_figures(intervals),
        run_records=_run_records(result),
        thresholds=tuple(thresholds) if thresholds is not None else None,
    )
    comparison = compare_variants(document.run_records, [variant.name for variant in profile.variants])
    return with_verdicts(replace(document, variant_comparison=comparison), profile)


def _run_records(result: EngineResult) -> tuple[RunEntry, ...]:
    records = result.records
    if isinstance(records, LoggedRecords):
        return tuple(map(run_entry, records.as_json()))  # written by this run as to_json made them
    return tuple(run_entry(record.to_json(result.metrics.anchor, result.t0_ns)) for record in records)


def results_from_runs_log(path: Path) -> Results:
    """A results document rebuilt from a runs log alone (after a kill, say): every run-level figure, and the
    request counts and runs not started as of the log's last counters line; the batch-level measures (start
    lateness, submit round trip), the limits and the interval series are not in the log, and say so."""
    log = read_runs_log(path)
    records, end, counters = log.records, log.end, log.counters or {}
    metrics = Metrics(log.anchor)
    for record in records:
        metrics.record_run(record)
    metrics.planned_runs = max(len(records), int(counters.get("planned", 0)))
    metrics.submitted_runs = max(sum(1 for r in records if r.run_id is not None), int(counters.get("submitted", 0)))
    metrics.not_started.update(counters.get("not_started") or {})
    metrics.requests.update(counters.get("requests") or {})
    metrics.cost_cents = max(sum(r.cost_cents or 0.0 for r in records), float(counters.get("cost_cents", 0.0)))
    ended_ns = max((r.detected_ns or r.due_ns for r in records), default=0)
    if end is not None:
        ended_ns = log.anchor.to_mono_ns(float(end["ended_at"]))
    result = EngineResult(
        metrics=metrics,
        records=records,
        t0_ns=0,
        ended_ns=ended_ns,
        interrupted=bool(end and end.get("interrupted")),
        stop_reason=(end or {}).get("stop_reason") or (None if end else "the runs log has no end: stressor was killed"),
        stop_cause=None,
        governor=Governor(Limits()),
        samples=(),
    )
    profile = Profile(
        name=str(log.start.get("profile", "?")),
        source=str(log.start.get("source", path)),
        target=TargetSpec(),
        stages=(),
        variants=(),
        scenarios=(),
    )
    document = build_results(result, profile, log.start.get("target", {}))
    batch_level = (str(Measure.START_LATENESS), str(Measure.SUBMIT_RTT))  # counted per batch, never per run
    measures = {
        name: replace(figures, source=NOT_IN_RUNS_LOG) if name in batch_level else figures
        for name, figures in document.measures.items()
    }
    return replace(document, measures=readonly(measures))


def read_results(path: Path) -> Results:
    """A results file, or the results rebuilt from a ``.runs.jsonl`` runs log; raises ResultsError with one
    sentence naming the file and what is wrong with it."""
    if path.suffix == ".jsonl":
        try:
            return results_from_runs_log(path)
        except RunLogError as exc:
            raise ResultsError(str(exc)) from None
        except ResultsError as exc:
            raise ResultsError(f"{path}: {exc}") from None
    try:
        document = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read it ({exc.strerror or exc}).") from None
    except orjson.JSONDecodeError as exc:
        raise ResultsError(f"{path}: is not JSON ({exc}).") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise ResultsError(f"{path}: is not a stressor results file (schema {SCHEMA}).")
    try:
        return load_results(document)
    except ResultsError as exc:
        raise ResultsError(f"{path}: {exc}") from None


def write_results(path: Path, document: Results) -> None:
    """Write the document atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_bytes(
            orjson.dumps(document.to_json(), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
        )
        os.replace(temporary, path)
    except OSError:
        # Leave nothing behind: a failed write must not strew hidden temporary files (the caller reports it).
        temporary.unlink(missing_ok=True)
        raise
