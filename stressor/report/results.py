"""The JSON results file: every figure of the summary, the encoded histograms, and one record per run.

Schema ``stressor.results/1`` is documented in ``docs/results.md``. Durations are in seconds. The file is
written atomically (a temporary file, then a rename), so a reader never sees half a file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from stressor.engine import EngineResult
from stressor.governor import KINDS, Governor, GovernorReport
from stressor.intervals import Interval
from stressor.metrics import MEASURE_SOURCES, Breakdown, LatencyRecorder, Measure, Metrics, Outcome, Summary
from stressor.plan import peak_batch_rate, stage_windows
from stressor.profile import ClosedLoad, Limits, OpenLoad, Profile, TargetSpec
from stressor.runlog import LoggedRecords, read_runs_log
from stressor.session import SessionResult
from stressor.timestamps import NS_PER_S

SCHEMA = "stressor.results/1"
GENERATOR_LAG_FLOOR_S = 0.002
NOT_IN_RUNS_LOG = "not in the runs log"  # what a summary rebuilt from the log says of figures the log lacks
PREFLIGHT_PURPOSE = "check"  # the requests of the target's check before the run (see TestCallsTarget.check)


def _percentile_key(p: float) -> str:
    return f"p{p:g}".replace(".", "_")


def recorder_json(recorder: LatencyRecorder, *, with_histogram: bool = True) -> dict[str, Any]:
    """Count, min, mean, max, percentiles (seconds) and, optionally, the encoded HDR histogram."""
    summary = recorder.summary()
    data: dict[str, Any] = {
        "count": summary.count,
        "min": summary.min_s,
        "mean": summary.mean_s,
        "max": summary.max_s,
        **{_percentile_key(p): v for p, v in summary.percentiles_s.items()},
        "clamped": summary.clamped,
    }
    if with_histogram:
        data["hdr"] = recorder.encode() if summary.count else None
    return data


def _breakdown_json(pieces: Mapping[str, Breakdown]) -> dict[str, Any]:
    empty = LatencyRecorder()  # for a measure a slice never had a value of (its recorders are made on use)
    return {
        name: {
            "outcomes": {str(o): piece.outcomes[o] for o in Outcome},
            "queue_to_completion": recorder_json(piece.queue_to_completion, with_histogram=False),
            "time_in_progress": recorder_json(piece.time_in_progress, with_histogram=False),
            "measures": {str(m): recorder_json(piece.measures.get(m, empty), with_histogram=False) for m in Measure},
            "not_started": dict(piece.not_started),
            "submitted": piece.submitted_runs,
            "estimated_cost_cents": piece.cost_cents,
            "grades": piece.grades.to_json(),
        }
        for name, piece in sorted(pieces.items())
    }


def generator_check(metrics: Metrics, profile: Profile) -> dict[str, Any]:
    """Did the client keep to the schedule? Behind when the dispatch lag (due time -> the batch's task ran,
    limits and throttling apart) has a p99 above max(2 ms, 10 % of the shortest inter-arrival time): then
    latencies include the client's own delay, and less load was offered than planned."""
    rate = peak_batch_rate(profile)
    limit = max(GENERATOR_LAG_FLOOR_S, 0.1 / rate) if rate > 0 else GENERATOR_LAG_FLOOR_S
    p99 = metrics.dispatch_lag.summary().percentiles_s.get(99.0)
    return {"dispatch_lag_p99": p99, "limit": limit, "behind": p99 is not None and p99 > limit}


def limits_json(report: GovernorReport) -> dict[str, Any]:
    """What the governor did: throttling, retries, the server's Retry-After values, the breaker."""
    return {
        "mode": report.mode,
        "throttle_wait_s": report.throttle_wait_s,
        "client_wait_s": report.client_wait_s,
        "server_rate_wait_s": report.server_rate_wait_s,
        "server_pause_s": report.server_pause_s,
        "capacity_wait_s": report.capacity_wait_s,
        "responses": report.responses,
        "learned_rates": {kind: report.learned_rates.get(kind) for kind in KINDS},
        "retries": report.retries,
        "retry_after": recorder_json(report.retry_after_s, with_histogram=False),
        "unparseable_headers": report.unparseable_headers,
        "runs_in_flight_limit": report.run_limit,
        "breaker": report.trip.describe() if report.trip is not None else None,
    }


def load_json(metrics: Metrics, profile: Profile, elapsed_s: float) -> dict[str, Any]:
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
    return {
        "offered_runs_per_s": max(0, offered_runs) / offered_s if offered_s > 0 else 0.0,
        # Never over a shorter span than the offered load's: n batches a gap apart span n - 1 gaps, and a run
        # that kept up must read "achieved = offered", not a few per cent more.
        "achieved_runs_per_s": metrics.submitted_runs / span if (span := max(submitting_s, offered_s)) > 0 else 0.0,
        "requests_per_ended_run": requests / ended if ended else None,
    }


def _summary_json(summary: Summary) -> dict[str, Any]:
    return {
        "count": summary.count,
        "max": summary.max_s,
        **{_percentile_key(p): v for p, v in summary.percentiles_s.items() if p in (50.0, 90.0, 99.0)},
    }


def intervals_json(intervals: Iterable[Interval]) -> list[dict[str, Any]]:
    """The interval series for the results (the histograms themselves go to the ``.hlog``)."""
    return [
        {
            "start": i.start_s,
            "end": i.end_s,
            "runs": {
                "queued": i.queued,
                "in_progress": i.in_progress,
                "completed": i.completed,
                "failed": i.failed,
                "errored": i.errored,
                "rejected": i.rejected,
                "open": i.open,
                "in_flight": i.in_flight,
            },
            "requests_per_s": i.requests_per_s,
            "throttled_s": i.throttled_s,
            "queue_to_completion": _summary_json(i.queue_to_completion),
        }
        for i in intervals
    ]


def stages_json(profile: Profile) -> list[dict[str, Any]]:
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
            {
                "name": window.stage.name,
                "start_s": window.start_s,
                "end_s": window.end_s,
                "model": model,
                "target": None if ramp is None else {"start": ramp.start, "end": ramp.end, "unit": unit},
                "runs_per_batch": window.stage.batch.runs,
            }
        )
    return stages


def webhooks_json(session: SessionResult) -> dict[str, Any] | None:
    """How completion by webhook went: what the receiver got and how many batches fell back to polling."""
    stats = session.webhooks
    if stats is None:
        return None
    return {
        "url": session.webhook_url,
        "received": stats.received,
        "accepted": stats.accepted,
        "duplicates": stats.duplicates + stats.replayed,
        "bad_signature": dict(stats.bad_signature),
        "rejected_other": stats.too_large + stats.bad_json + stats.bad_shape + stats.incomplete,
        "slow_body": stats.slow_body,
        "wrong_path": stats.wrong_path,
        "unknown_type": stats.unknown_type,
        "by_type": dict(stats.accepted_by_type),
        "batches_polled_late": session.late_polls,
    }


def figures(
    metrics: Metrics,
    governor: Governor,
    profile: Profile,
    elapsed_s: float,
    *,
    with_histograms: bool = True,
) -> dict[str, Any]:
    """The figures of a run, finished or still going (thresholds marked ``abort`` read these live)."""
    return {
        "runs": {
            "planned": metrics.planned_runs,
            "submitted": metrics.submitted_runs,
            **{str(o): metrics.outcomes[o] for o in Outcome},
            "not_started": dict(metrics.not_started),
        },
        "failure_rate": metrics.failure_rate,
        "generator": generator_check(metrics, profile),
        "load": load_json(metrics, profile, elapsed_s),
        "limits": limits_json(governor.report()),
        "errors": dict(metrics.errors),
        "requests": dict(sorted(metrics.requests.items())),
        "estimated_cost_cents": metrics.cost_cents,
        "measures": {
            str(measure): {
                "source": MEASURE_SOURCES[measure],
                **recorder_json(metrics.recorders[measure], with_histogram=with_histograms),
            }
            for measure in Measure
        },
        "grades": {"threshold": profile.grades.threshold, **metrics.grades.to_json()},
        "variants": _breakdown_json(metrics.by_variant),
        "scenarios": _scenarios_json(metrics, profile),
    }


def _scenarios_json(metrics: Metrics, profile: Profile) -> dict[str, Any]:
    """The per-scenario slices, each with the outcome its corpus entry expects (when it states one)."""
    slices = _breakdown_json(metrics.by_scenario)
    for scenario in profile.scenarios:
        if scenario.expected_outcome is not None and scenario.name in slices:
            slices[scenario.name]["expected_outcome"] = scenario.expected_outcome
    return slices


def build_results(
    result: EngineResult,
    profile: Profile,
    target: Mapping[str, Any],
    intervals: Sequence[Interval] = (),
    webhooks: Mapping[str, Any] | None = None,
    server: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The results document of one run. ``target`` describes where it ran (never holds the key); ``server``
    what was learned of the server where the docs are silent (its lists, its clock)."""
    anchor = result.metrics.anchor
    return {
        "schema": SCHEMA,
        "profile": {"name": profile.name, "source": profile.source},
        "target": dict(target),
        "started_at": anchor.to_wall_s(result.t0_ns),
        "ended_at": anchor.to_wall_s(result.ended_ns),
        "elapsed_s": result.elapsed_s,
        "interrupted": result.interrupted,
        "stop_reason": result.stop_reason,
        **figures(result.metrics, result.governor, profile, result.elapsed_s),
        "webhooks": webhooks,
        "server": dict(server) if server is not None else None,
        "stages": stages_json(profile),
        "interval_s": profile.interval_s,
        "intervals": intervals_json(intervals),
        "run_records": _run_records(result),
    }


def _run_records(result: EngineResult) -> list[dict[str, Any]]:
    records = result.records
    if isinstance(records, LoggedRecords):
        return list(records.as_json())  # written by this run as to_json made them
    return [record.to_json(result.metrics.anchor, result.t0_ns) for record in records]


def results_from_runs_log(path: Path) -> dict[str, Any]:
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
    for measure in (Measure.START_LATENESS, Measure.SUBMIT_RTT):  # counted per batch, never per run
        document["measures"][str(measure)]["source"] = NOT_IN_RUNS_LOG
    return document


def write_results(path: Path, document: Mapping[str, Any]) -> None:
    """Write the document atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
        os.replace(temporary, path)
    except OSError:
        # Leave nothing behind: a failed write must not strew hidden temporary files (the caller reports it).
        temporary.unlink(missing_ok=True)
        raise
