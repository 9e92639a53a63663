"""The console summary, rendered from a results document (so ``stressor report`` prints the same). It fits 80
columns: tables are laid out for it, and a longer line of prose is wrapped."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

from stressor.document import Figures, LimitsReport, Results, ScenarioVerdict, Server, Slice
from stressor.tiers import LABELS, sentences
from stressor.units import format_duration

_COLUMNS = ("p50", "p90", "p99", "max")
WIDTH = 80
_SLICE_NAME = 15  # the widest name a by-variant / by-scenario row has room for at 80 columns
SHOWN_SCENARIOS = 20  # failing scenarios named one a line; the rest are counted
GOAL_SHOWN = 100  # characters of a failing scenario's goal


def _duration(value: float | None) -> str:
    return "-" if value is None else format_duration(value)


def _measure_lines(results: Results) -> list[str]:
    measures = results.measures
    if not measures:
        return []
    width = max(len(name) for name in measures)
    header = f"  {'measure':<{width}}  {'count':>7}" + "".join(f"  {c:>8}" for c in _COLUMNS)
    lines = [header]
    for name, figures in measures.items():
        cells = "".join(f"  {_duration(getattr(figures, c)):>8}" for c in _COLUMNS)
        lines.append(f"  {name:<{width}}  {figures.count or 0:>7}{cells}")
        # what the measure runs from and to, under its figures: beside them it would take 160 columns
        clamped = f" ({figures.clamped} clamped)" if figures.clamped else ""
        if figures.source or clamped:
            lines.append(f"      {figures.source or ''}{clamped}")
    return lines


def _breakdown_lines(title: str, pieces: Mapping[str, Slice]) -> list[str]:
    if len(pieces) < 2:
        return []
    width = min(max(len(title), *(len(name) for name in pieces)), _SLICE_NAME)
    rows, verdicts = [], []
    for name, piece in pieces.items():
        outcomes, q2c = piece.outcomes, piece.queue_to_completion
        cells = "".join(f"  {_duration(getattr(q2c, c)):>8}" for c in _COLUMNS)
        failed = (outcomes.failed or 0) + (outcomes.errored or 0)
        shown = name if len(name) <= width else name[: width - 1] + "…"
        rows.append(f"  {shown:<{width}}  {outcomes.completed or 0:>6}  {failed:>6}  {outcomes.open or 0:>5}{cells}")
        verdict = piece.verdict is not None
        verdicts.append(f"{_verdict_word(piece)} (expected {piece.expected_outcome})" if verdict else "")
    # A verdict beside its row when every row has room for it in 80 columns, else under its row.
    beside = all(len(row) + 2 + len(verdict) <= WIDTH for row, verdict in zip(rows, verdicts, strict=True))
    lines = [
        "",
        f"by {title} (queue-to-completion):",
        f"  {title:<{width}}  {'done':>6}  {'failed':>6}  {'open':>5}"
        + "".join(f"  {c:>8}" for c in _COLUMNS)
        + ("  verdict" if beside and any(verdicts) else ""),
    ]
    for row, verdict in zip(rows, verdicts, strict=True):
        if beside or not verdict:
            lines.append(f"{row}  {verdict}" if verdict else row)
        else:
            lines.extend([row, f"      verdict: {verdict}"])
    return lines


def _value(unit: str | None, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if unit == "score" else format_duration(value)


def comparison_lines(results: Results) -> list[str]:
    """The variants side by side per measure (their completed runs' exact p50 and p90), then a sentence per
    variant saying how it differs from the reference at p50, and how sure that is."""
    comparison = results.variant_comparison
    if comparison is None or not comparison.measures:
        return []
    reference = comparison.reference or "?"
    names = {name for measure in comparison.measures.values() for name in measure.variants}
    width = max(len(name) for name in names | {"variant"})
    label_width = max(len(LABELS.get(name, name)) for name in comparison.measures)
    lines = [
        "",
        f"variants compared with {reference}, the first ({comparison.runs or 'completed'} runs, exact percentiles):",
        f"  {'measure':<{label_width}}  {'variant':<{width}}  {'runs':>6}  {'p50':>8}  {'p90':>8}  {'mean':>8}",
    ]
    for name, measure in comparison.measures.items():
        label = LABELS.get(name, name)
        for variant, figures in measure.variants.items():
            cells = "".join(f"  {_value(measure.unit, getattr(figures, key)):>8}" for key in ("p50", "p90", "mean"))
            lines.append(f"  {label:<{label_width}}  {variant:<{width}}  {figures.count or 0:>6}{cells}")
            label = ""
    lines.extend(f"  {said}" for said in sentences(comparison))
    return lines


def _verdict_word(piece: Slice) -> str:
    status = piece.verdict.status if piece.verdict is not None else None
    return "FAILED" if status == "failed" else status or "?"


def _observed(verdict: ScenarioVerdict) -> str:
    return ", ".join(f"{what} {count}" for what, count in (verdict.observed or {}).items()) or "no run"


def verdict_lines(results: Results) -> list[str]:
    """The scenarios' verdicts against their expected outcomes: the count, then each failing scenario named with
    what its runs came to, then the undecided ones named."""
    summary = results.scenario_verdicts
    if summary is None:
        return []
    passed, failed, undecided = summary.passed or 0, summary.failed or 0, summary.undecided or 0
    lines = [
        f"scenarios: {passed} of {passed + failed + undecided} passed their expected outcome, "
        f"{f'FAILED {failed}' if failed else 'failed 0'}, undecided {undecided}"
    ]
    judged = [(name, piece) for name, piece in results.scenarios.items() if piece.verdict is not None]
    failing = [(name, piece) for name, piece in judged if piece.verdict and piece.verdict.status == "failed"]
    for name, piece in failing[:SHOWN_SCENARIOS]:
        verdict = piece.verdict
        assert verdict is not None
        lines.append(
            f"  FAILED {name}: expected outcome {verdict.expected}, {verdict.mismatched or 0} of "
            f"{(verdict.matched or 0) + (verdict.mismatched or 0) + (verdict.undecided or 0)} runs did not match "
            f"({_observed(verdict)})"
        )
        if piece.goal:
            goal = " ".join(piece.goal.split())
            lines.append(f"    goal: {goal if len(goal) <= GOAL_SHOWN else goal[: GOAL_SHOWN - 3] + '...'}")
    if len(failing) > SHOWN_SCENARIOS:
        lines.append(f"  ... and {len(failing) - SHOWN_SCENARIOS} more failed (results: scenarios.*.verdict)")
    waiting = [name for name, piece in judged if piece.verdict and piece.verdict.status == "undecided"]
    if waiting:
        shown = ", ".join(waiting[:SHOWN_SCENARIOS]) + (
            f" and {len(waiting) - SHOWN_SCENARIOS} more" if len(waiting) > SHOWN_SCENARIOS else ""
        )
        lines.append(f"  undecided (no run ended, or no grade came where the expected outcome needs one): {shown}")
    return lines


def _limits_lines(limits: LimitsReport) -> list[str]:
    """Throttling, retries and the breaker: shown only when something happened."""
    lines = []
    if limits.breaker:
        lines.append(f"BREAKER: {limits.breaker}")
    responses = limits.responses or {}
    refusals = [f"{status} x{responses[status]}" for status in ("429", "503") if responses.get(status)]
    shown = [f"refused {', '.join(refusals)}"] if refusals else []
    # Wall time the client was held (results from before the split have only the combined throttle figure).
    client = limits.client_wait_s if limits.client_wait_s is not None else limits.throttle_wait_s
    waits = [
        (limits.server_pause_s, "paused by the server"),
        (limits.server_rate_wait_s, "held to the server's rate"),
        (client, "held by client rate limits"),
        (limits.capacity_wait_s, "waited for room in flight"),
    ]
    shown += [f"{what} {_duration(seconds)}" for seconds, what in waits if seconds is not None and seconds > 0]
    # per kind of request refused; one rate in older results
    rates = [f"{kind} {rate:.3g}/s" for kind, rate in (limits.learned_rates or {}).items() if rate is not None]
    if limits.learned_rate is not None:
        rates.append(f"{limits.learned_rate:.3g}/s")
    if rates:
        shown.append("rate learned from refusals " + ", ".join(rates))
    if limits.retries:
        shown.append("retries " + ", ".join(f"{cause} {n}" for cause, n in sorted(limits.retries.items())))
    retry_after = limits.retry_after or Figures()
    if retry_after.count:
        shown.append(f"Retry-After seen {retry_after.count}x (max {_duration(retry_after.max)})")
    if shown:
        lines.append(f"limits ({limits.mode or '?'}): " + "; ".join(shown))
    return lines


def _webhook_and_grade_lines(results: Results) -> list[str]:
    lines = []
    hooks = results.webhooks
    if hooks is not None:
        bad = sum((hooks.bad_signature or {}).values())
        lines.append(
            f"webhooks: {hooks.accepted or 0} accepted, {hooks.duplicates or 0} duplicates, "
            f"{bad} bad signatures, {hooks.batches_polled_late or 0} batches polled for late events"
        )
    grades = results.grades
    if grades.count or grades.ungraded:
        threshold = grades.threshold
        quality = (
            f", {grades.below_threshold or 0} below {threshold:g} (quality failures)" if threshold is not None else ""
        )
        shown_mean = f"{grades.mean:.2f}" if grades.mean is not None else "-"
        p10 = grades.p10 if grades.p10 is not None else "-"
        p50 = grades.p50 if grades.p50 is not None else "-"
        lines.append(
            f"grades: {grades.count or 0} graded, mean {shown_mean}, p10 {p10}, "
            f"p50 {p50}{quality}, {grades.ungraded or 0} ungraded"
        )
    return lines


def render_summary(results: Results) -> str:
    """The summary a user reads at the end of a run: counts, failure rate, percentiles in human units."""
    runs, target = results.runs, results.target
    where = "the embedded simulator" if target.embedded_simulator else (target.base_url or "?")
    name = results.profile.name if results.profile.name is not None else "?"
    took = f"{results.elapsed_s:.1f}s" if results.elapsed_s is not None else "?s"
    lines = [f"stressor: profile {name!r}, {took} against {where}"]
    if results.interrupted:
        lines.append("INTERRUPTED: the figures cover what was gathered until then.")
    elif results.stop_reason:
        lines.append(f"STOPPED EARLY: {results.stop_reason}")
    not_started = runs.not_started or {}
    counts = [
        f"{label} {getattr(runs, label) or 0}"
        for label in ("planned", "submitted", "completed", "failed", "errored", "rejected", "open")
    ]
    unknown = runs.unknown or 0
    counts += [f"UNKNOWN {unknown}"] if unknown else []
    lines.extend(_packed("runs: ", [*counts, f"not started {sum(not_started.values())}"]))
    if unknown:
        lines.append(
            f"UNKNOWN: {unknown} runs: their creates' answers were lost and no listing settled whether they exist "
            "(they may, and be billed), or the run list stopped showing them; see errors below"
        )
    rate, load, cost = results.failure_rate, results.load, results.estimated_cost_cents
    per_run = load.requests_per_ended_run
    lines.append(
        f"failure rate: {f'{rate:.1%}' if rate is not None else '-'}"
        f"   load: offered {_rate(load.offered_runs_per_s)} runs/s, achieved {_rate(load.achieved_runs_per_s)}"
    )
    lines.append(
        f"HTTP requests: {sum((results.requests or {}).values())}"
        + (f" ({per_run:.1f} per ended run)" if per_run is not None else "")
        + (f"   estimated cost: {cost / 100:.2f} USD" if cost is not None else "")
    )
    lines.extend(_limits_lines(results.limits))
    if results.server is not None:
        lines.extend(_server_lines(results.server))
    lines.extend(_webhook_and_grade_lines(results))
    lines.extend(verdict_lines(results))
    generator = results.generator
    if generator.behind:
        lines.append(
            f"WARNING: the generator fell behind its schedule: dispatch lag p99 "
            f"{_duration(generator.dispatch_lag_p99)} > {_duration(generator.limit)}; "
            "latencies include client-side delay and less load was offered than planned."
        )
    details = [f"{cause} {count}" for cause, count in sorted((results.errors or {}).items())]
    details += [f"not started ({cause}) {count}" for cause, count in sorted(not_started.items())]
    if details:
        lines.append("errors: " + ", ".join(details))
    lines.append("")
    lines.extend(_measure_lines(results))
    lines.extend(_breakdown_lines("variant", results.variants))
    lines.extend(comparison_lines(results))
    lines.extend(_breakdown_lines("scenario", results.scenarios))
    return "\n".join(fitted for line in lines for fitted in fit_line(line))


def _packed(head: str, fields: list[str], width: int = WIDTH) -> list[str]:
    """``head`` and the fields, comma-separated, in lines of ``width``: a line breaks between fields only."""
    lines = [head]
    for number, field in enumerate(fields):
        text = field + ("," if number < len(fields) - 1 else "")
        if len(lines[-1]) > len(head) and len(lines[-1]) + 1 + len(text) > width:
            lines.append("  " + text)
        else:
            lines[-1] += text if lines[-1] in (head, "  ") else " " + text
    return lines


def fit_line(line: str, width: int = WIDTH) -> list[str]:
    """A line of at most ``width`` columns, or the line wrapped between words, its continuations indented."""
    if len(line) <= width:
        return [line]
    indent = " " * (len(line) - len(line.lstrip()) + 2)
    return textwrap.wrap(line, width, subsequent_indent=indent, break_on_hyphens=False, break_long_words=True)


CLOCK_OFFSET_SHOWN_S = 1.0  # a server clock further off than this is worth a line


def _server_lines(server: Server) -> list[str]:
    """What the server did where the docs are silent, when it differs from their reading."""
    lines = []
    lists = server.run_list
    quirks = []
    if lists.order == "oldest_first":
        quirks.append("lists oldest first")
    if lists.order == "unsorted":
        quirks.append("is not sorted")
    if lists.offset == "ignored":
        quirks.append("ignores offset")
    if lists.page_cap is not None:
        quirks.append(f"holds at most {lists.page_cap} runs a page")
    if lists.names in ("truncated", "absent", "changed"):
        quirks.append(f"batch names come back {lists.names}")
    if quirks:
        lines.append("server: the run list " + ", ".join(quirks) + " (followed accordingly)")
    offset = server.clock_offset
    if offset is not None and offset.offset_s is not None and offset.error_s is not None:
        value, error = offset.offset_s, offset.error_s
        if abs(value) > CLOCK_OFFSET_SHOWN_S:
            lines.append(
                f"server: its clock is {abs(value):.2f} s {'ahead of' if value > 0 else 'behind'} this one "
                f"(± {error:.2f} s, from {offset.source}); server stamps are compared on its clock"
            )
    return lines


def _rate(value: float | None) -> str:
    return f"{value:.3g}" if value is not None else "-"
