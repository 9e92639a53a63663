"""The console summary, rendered from a results document (so ``stressor report`` prints the same)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stressor.units import format_duration

_COLUMNS = ("p50", "p90", "p99", "max")


def _duration(value: object) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    return format_duration(value)


def _map(value: object) -> Mapping[str, Any]:
    """A mapping from the document, or an empty one: a partial results file renders what it has."""
    return value if isinstance(value, Mapping) else {}


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _seconds(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _measure_lines(measures: Mapping[str, Any]) -> list[str]:
    measures = {name: _map(figures) for name, figures in measures.items()}
    if not measures:
        return []
    width = max(len(name) for name in measures)
    header = f"  {'measure':<{width}}  {'count':>7}" + "".join(f"  {c:>8}" for c in _COLUMNS) + "  source"
    lines = [header]
    for name, figures in measures.items():
        cells = "".join(f"  {_duration(figures.get(c)):>8}" for c in _COLUMNS)
        clamped = f"  ({figures['clamped']} clamped)" if figures.get("clamped") else ""
        source = figures.get("source", "")
        lines.append(f"  {name:<{width}}  {_count(figures.get('count')):>7}{cells}  {source}{clamped}")
    return lines


def _breakdown_lines(title: str, pieces: Mapping[str, Any]) -> list[str]:
    pieces = {name: _map(piece) for name, piece in pieces.items()}
    if len(pieces) < 2:
        return []
    width = max(len(name) for name in pieces)
    lines = [
        "",
        f"by {title} (queue-to-completion):",
        f"  {title:<{width}}  {'done':>6}  {'failed':>6}  {'open':>5}" + "".join(f"  {c:>8}" for c in _COLUMNS),
    ]
    for name, piece in pieces.items():
        outcomes, q2c = _map(piece.get("outcomes")), _map(piece.get("queue_to_completion"))
        cells = "".join(f"  {_duration(q2c.get(c)):>8}" for c in _COLUMNS)
        failed = _count(outcomes.get("failed")) + _count(outcomes.get("errored"))
        lines.append(
            f"  {name:<{width}}  {_count(outcomes.get('completed')):>6}  {failed:>6}"
            f"  {_count(outcomes.get('open')):>5}{cells}"
        )
    return lines


def _limits_lines(limits: Mapping[str, Any]) -> list[str]:
    """Throttling, retries and the breaker: shown only when something happened."""
    lines = []
    if limits.get("breaker"):
        lines.append(f"BREAKER: {limits['breaker']}")
    responses = _map(limits.get("responses"))
    refusals = [f"{status} x{_count(responses.get(status))}" for status in ("429", "503") if responses.get(status)]
    shown = [f"refused {', '.join(refusals)}"] if refusals else []
    # Wall time the client was held (results from before the split have only the combined throttle figure).
    client = limits.get("client_wait_s", limits.get("throttle_wait_s"))
    waits = [
        (limits.get("server_pause_s"), "paused by the server"),
        (limits.get("server_rate_wait_s"), "held to the server's rate"),
        (client, "held by client rate limits"),
        (limits.get("capacity_wait_s"), "waited for room in flight"),
    ]
    shown += [f"{what} {_duration(_seconds(seconds))}" for seconds, what in waits if _seconds(seconds) > 0]
    learned = _map(limits.get("learned_rates"))  # per kind of request refused; one rate in older results
    rates = [f"{kind} {rate:.3g}/s" for kind, rate in learned.items() if isinstance(rate, int | float)]
    if isinstance(single := limits.get("learned_rate"), int | float):
        rates.append(f"{single:.3g}/s")
    if rates:
        shown.append("rate learned from refusals " + ", ".join(rates))
    retries = _map(limits.get("retries"))
    if retries:
        shown.append("retries " + ", ".join(f"{cause} {n}" for cause, n in sorted(retries.items())))
    retry_after = _map(limits.get("retry_after"))
    if retry_after.get("count"):
        shown.append(f"Retry-After seen {retry_after['count']}x (max {_duration(retry_after.get('max'))})")
    if shown:
        lines.append(f"limits ({limits.get('mode', '?')}): " + "; ".join(shown))
    return lines


def _webhook_and_grade_lines(results: Mapping[str, Any]) -> list[str]:
    lines = []
    hooks = _map(results.get("webhooks"))
    if hooks:
        bad = sum(_count(n) for n in _map(hooks.get("bad_signature")).values())
        lines.append(
            f"webhooks: {_count(hooks.get('accepted'))} accepted, {_count(hooks.get('duplicates'))} duplicates, "
            f"{bad} bad signatures, {_count(hooks.get('batches_polled_late'))} batches polled for late events"
        )
    grades = _map(results.get("grades"))
    if grades.get("count") or grades.get("ungraded"):
        threshold = grades.get("threshold")
        quality = (
            f", {_count(grades.get('below_threshold'))} below {threshold:g} (quality failures)"
            if isinstance(threshold, int | float)
            else ""
        )
        mean = grades.get("mean")
        shown_mean = f"{mean:.2f}" if isinstance(mean, int | float) else "-"
        lines.append(
            f"grades: {_count(grades.get('count'))} graded, mean {shown_mean}, p10 {grades.get('p10', '-')}, "
            f"p50 {grades.get('p50', '-')}{quality}, {_count(grades.get('ungraded'))} ungraded"
        )
    return lines


def render_summary(results: Mapping[str, Any]) -> str:
    """The summary a user reads at the end of a run: counts, failure rate, percentiles in human units."""
    runs = _map(results.get("runs"))
    target = _map(results.get("target"))
    where = "the embedded simulator" if target.get("embedded_simulator") else target.get("base_url", "?")
    name = _map(results.get("profile")).get("name", "?")
    elapsed = results.get("elapsed_s")
    took = f"{elapsed:.1f}s" if isinstance(elapsed, int | float) else "?s"
    lines = [f"stressor: profile {name!r}, {took} against {where}"]
    if results.get("interrupted"):
        lines.append("INTERRUPTED: the figures cover what was gathered until then.")
    elif results.get("stop_reason"):
        lines.append(f"STOPPED EARLY: {results['stop_reason']}")
    not_started = _map(runs.get("not_started"))
    counts = ", ".join(
        f"{label} {_count(runs.get(key))}"
        for label, key in (
            ("planned", "planned"),
            ("submitted", "submitted"),
            ("completed", "completed"),
            ("failed", "failed"),
            ("errored", "errored"),
            ("rejected", "rejected"),
            ("open", "open"),
        )
    )
    unknown = _count(runs.get("unknown"))
    lines.append(
        f"runs: {counts}{f', UNKNOWN {unknown}' if unknown else ''}, "
        f"not started {sum(_count(n) for n in not_started.values())}"
    )
    if unknown:
        lines.append(
            f"UNKNOWN: {unknown} runs: their creates' answers were lost and no listing settled whether they exist "
            "(they may, and be billed), or the run list stopped showing them; see errors below"
        )
    rate = results.get("failure_rate")
    load = _map(results.get("load"))
    per_run = load.get("requests_per_ended_run")
    offered, achieved = load.get("offered_runs_per_s"), load.get("achieved_runs_per_s")
    cost = results.get("estimated_cost_cents")
    lines.append(
        f"failure rate: {f'{rate:.1%}' if isinstance(rate, int | float) else '-'}"
        f"   load: offered {_rate(offered)} runs/s, achieved {_rate(achieved)}"
        f"   HTTP requests: {sum(_count(n) for n in _map(results.get('requests')).values())}"
        + (f" ({per_run:.1f} per ended run)" if isinstance(per_run, int | float) else "")
        + (f"   estimated cost: {cost / 100:.2f} USD" if isinstance(cost, int | float) else "")
    )
    lines.extend(_limits_lines(_map(results.get("limits"))))
    lines.extend(_server_lines(_map(results.get("server"))))
    lines.extend(_webhook_and_grade_lines(results))
    generator = _map(results.get("generator"))
    if generator.get("behind"):
        lines.append(
            f"WARNING: the generator fell behind its schedule: dispatch lag p99 "
            f"{_duration(generator.get('dispatch_lag_p99'))} > {_duration(generator.get('limit'))}; "
            "latencies include client-side delay and less load was offered than planned."
        )
    details = [f"{cause} {count}" for cause, count in sorted(_map(results.get("errors")).items())]
    details += [f"not started ({cause}) {count}" for cause, count in sorted(not_started.items())]
    if details:
        lines.append("errors: " + ", ".join(details))
    lines.append("")
    lines.extend(_measure_lines(_map(results.get("measures"))))
    lines.extend(_breakdown_lines("variant", _map(results.get("variants"))))
    lines.extend(_breakdown_lines("scenario", _map(results.get("scenarios"))))
    return "\n".join(lines)


CLOCK_OFFSET_SHOWN_S = 1.0  # a server clock further off than this is worth a line


def _server_lines(server: Mapping[str, Any]) -> list[str]:
    """What the server did where the docs are silent, when it differs from their reading."""
    lines = []
    lists = _map(server.get("run_list"))
    quirks = []
    if lists.get("order") == "oldest_first":
        quirks.append("lists oldest first")
    if lists.get("order") == "unsorted":
        quirks.append("is not sorted")
    if lists.get("offset") == "ignored":
        quirks.append("ignores offset")
    if isinstance(lists.get("page_cap"), int):
        quirks.append(f"holds at most {lists['page_cap']} runs a page")
    if lists.get("names") in ("truncated", "absent", "changed"):
        quirks.append(f"batch names come back {lists['names']}")
    if quirks:
        lines.append("server: the run list " + ", ".join(quirks) + " (followed accordingly)")
    offset = _map(server.get("clock_offset"))
    value, error = offset.get("offset_s"), offset.get("error_s")
    if isinstance(value, int | float) and isinstance(error, int | float) and abs(value) > CLOCK_OFFSET_SHOWN_S:
        lines.append(
            f"server: its clock is {abs(value):.2f} s {'ahead of' if value > 0 else 'behind'} this one "
            f"(± {error:.2f} s, from {offset.get('source')}); server stamps are compared on its clock"
        )
    return lines


def _rate(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, int | float) and not isinstance(value, bool) else "-"
