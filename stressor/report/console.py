"""The console summary, rendered from a results document (so ``stressor report`` prints the same)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stressor.units import format_duration

_COLUMNS = ("p50", "p90", "p99", "max")


def _duration(value: float | None) -> str:
    return "-" if value is None else format_duration(value)


def _measure_lines(measures: Mapping[str, Mapping[str, Any]]) -> list[str]:
    width = max(len(name) for name in measures)
    header = f"  {'measure':<{width}}  {'count':>7}" + "".join(f"  {c:>8}" for c in _COLUMNS) + "  source"
    lines = [header]
    for name, figures in measures.items():
        cells = "".join(f"  {_duration(figures.get(c)):>8}" for c in _COLUMNS)
        clamped = f"  ({figures['clamped']} clamped)" if figures.get("clamped") else ""
        lines.append(f"  {name:<{width}}  {figures['count']:>7}{cells}  {figures['source']}{clamped}")
    return lines


def _breakdown_lines(title: str, pieces: Mapping[str, Mapping[str, Any]]) -> list[str]:
    if len(pieces) < 2:
        return []
    width = max(len(name) for name in pieces)
    lines = [
        "",
        f"by {title} (queue-to-completion):",
        f"  {title:<{width}}  {'done':>6}  {'failed':>6}  {'open':>5}" + "".join(f"  {c:>8}" for c in _COLUMNS),
    ]
    for name, piece in pieces.items():
        outcomes, q2c = piece["outcomes"], piece["queue_to_completion"]
        cells = "".join(f"  {_duration(q2c.get(c)):>8}" for c in _COLUMNS)
        lines.append(
            f"  {name:<{width}}  {outcomes['completed']:>6}  {outcomes['failed'] + outcomes['errored']:>6}"
            f"  {outcomes['open']:>5}{cells}"
        )
    return lines


def _limits_lines(limits: Mapping[str, Any]) -> list[str]:
    """Throttling, retries and the breaker: shown only when something happened."""
    lines = []
    if limits.get("breaker"):
        lines.append(f"BREAKER: {limits['breaker']}")
    waits = [
        (limits["server_pause_s"], "paused by the server"),
        (limits["throttle_wait_s"], "waited on client rate limits"),
        (limits["capacity_wait_s"], "waited for room in flight"),
    ]
    shown = [f"{what} {_duration(seconds)}" for seconds, what in waits if seconds > 0]
    if limits["retries"]:
        shown.append("retries " + ", ".join(f"{cause} {n}" for cause, n in sorted(limits["retries"].items())))
    retry_after = limits["retry_after"]
    if retry_after["count"]:
        shown.append(f"Retry-After seen {retry_after['count']}x (max {_duration(retry_after['max'])})")
    if shown:
        lines.append(f"limits ({limits['mode']}): " + "; ".join(shown))
    return lines


def _webhook_and_grade_lines(results: Mapping[str, Any]) -> list[str]:
    lines = []
    hooks = results.get("webhooks")
    if hooks:
        bad = sum(hooks["bad_signature"].values())
        lines.append(
            f"webhooks: {hooks['accepted']} accepted, {hooks['duplicates']} duplicates, {bad} bad signatures, "
            f"{hooks['batches_polled_late']} batches polled for late events"
        )
    grades = results.get("grades") or {}
    if grades.get("count") or grades.get("ungraded"):
        threshold = grades.get("threshold")
        quality = (
            f", {grades['below_threshold']} below {threshold:g} (quality failures)" if threshold is not None else ""
        )
        mean = "-" if grades["mean"] is None else f"{grades['mean']:.2f}"
        lines.append(
            f"grades: {grades['count']} graded, mean {mean}, p10 {grades['p10']}, p50 {grades['p50']}"
            f"{quality}, {grades['ungraded']} ungraded"
        )
    return lines


def render_summary(results: Mapping[str, Any]) -> str:
    """The summary a user reads at the end of a run: counts, failure rate, percentiles in human units."""
    runs = results["runs"]
    target = results["target"]
    where = "the embedded simulator" if target.get("embedded_simulator") else target.get("base_url", "?")
    lines = [f"stressor: profile {results['profile']['name']!r}, {results['elapsed_s']:.1f}s against {where}"]
    if results.get("interrupted"):
        lines.append("INTERRUPTED: the figures cover what was gathered until then.")
    elif results.get("stop_reason"):
        lines.append(f"STOPPED EARLY: {results['stop_reason']}")
    not_started = sum(runs["not_started"].values())
    lines.append(
        f"runs: planned {runs['planned']}, submitted {runs['submitted']}, completed {runs['completed']}, "
        f"failed {runs['failed']}, errored {runs['errored']}, rejected {runs['rejected']}, open {runs['open']}, "
        f"not started {not_started}"
    )
    rate = results["failure_rate"]
    load = results["load"]
    per_run = load["requests_per_ended_run"]
    lines.append(
        f"failure rate: {'-' if rate is None else f'{rate:.1%}'}"
        f"   load: offered {load['offered_runs_per_s']:.3g} runs/s, achieved {load['achieved_runs_per_s']:.3g}"
        f"   HTTP requests: {sum(results['requests'].values())}"
        + (f" ({per_run:.1f} per ended run)" if per_run is not None else "")
        + f"   estimated cost: {results['estimated_cost_cents'] / 100:.2f} USD"
    )
    lines.extend(_limits_lines(results["limits"]))
    lines.extend(_webhook_and_grade_lines(results))
    generator = results.get("generator") or {}
    if generator.get("behind"):
        lines.append(
            f"WARNING: the generator fell behind its schedule: dispatch lag p99 "
            f"{_duration(generator['dispatch_lag_p99'])} > {_duration(generator['limit'])}; "
            "latencies include client-side delay and less load was offered than planned."
        )
    details = [f"{cause} {count}" for cause, count in sorted(results["errors"].items())]
    details += [f"not started ({cause}) {count}" for cause, count in sorted(runs["not_started"].items())]
    if details:
        lines.append("errors: " + ", ".join(details))
    lines.append("")
    lines.extend(_measure_lines(results["measures"]))
    lines.extend(_breakdown_lines("variant", results["variants"]))
    lines.extend(_breakdown_lines("scenario", results["scenarios"]))
    return "\n".join(lines)
