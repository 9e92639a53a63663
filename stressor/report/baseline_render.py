"""The baseline diff per scenario as text for a terminal (80 columns where it can) and as Markdown for a pull
request: a table of the scenarios, then what changed in each that did, with the transcripts' diff."""

from __future__ import annotations

import html
import math
import re
import textwrap
from collections.abc import Sequence

from stressor.report.baseline import Change, RunPair, RunSide, ScenarioComparison, ScenarioDiff, Shift, Transcripts
from stressor.report.compare import md_escape as _md
from stressor.stats import MIN_RANKED, Difference

WIDTH = 80
NAME_WIDTH = 24  # a longer scenario name is cut in the text table
RUN_LINES = 3  # pairs listed per scenario in text
RUN_ROWS = 20  # and in Markdown
MD_LINE = 200  # a transcript line in Markdown is cut past this
_ORDER = (Change.REGRESSED, Change.IMPROVED, Change.CHANGED, Change.ONLY_BASE, Change.ONLY_NEW, Change.SAME)
_MARK = {
    Change.REGRESSED: "❌",
    Change.IMPROVED: "✅",
    Change.CHANGED: "✏️",
    Change.ONLY_BASE: "➖",
    Change.ONLY_NEW: "➕",
    Change.SAME: "",
}


def ordered(comparison: ScenarioComparison) -> list[ScenarioDiff]:
    """Regressions first, then improvements, other changes, scenarios on one side only, and the same last."""
    return sorted(comparison.scenarios, key=lambda s: _ORDER.index(s.change))


# ------------------------------------------------------------------------------------------------- values


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _seconds(value: float, sign: str = "") -> str:
    """Seconds to a tenth, a whole number without its ``.0``: ``45s``, ``+17.5s``."""
    tenths = round(value, 1) + 0.0
    return f"{tenths:{sign}.0f}s" if tenths == round(tenths) else f"{tenths:{sign}.1f}s"


def _signed(value: float, unit: str) -> str:
    if value == 0:
        return "0"
    return _seconds(value, "+") if unit == "s" else f"{value:+.2f}"


def _plain(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return _seconds(value) if unit == "s" else f"{value:.2f}"


def similar(value: float | None) -> str:
    """A similarity rounded down, so only the same words read 1.00."""
    return "-" if value is None else f"{math.floor(value * 100) / 100:.2f}"


def _delta(measure: Shift, unit: str) -> str:
    """The change of the medians: ``-0.40``, ``~+0.01`` within noise, ``?-0.40`` too few runs to tell, ``0``,
    ``-`` when a side has none."""
    estimate = measure.estimate
    if estimate is None:
        return "-"
    text = _signed(estimate, unit)
    if measure.beyond_noise or estimate == 0:
        return text
    return f"?{text}" if measure.difference is None else f"~{text}"


def _interval(found: Difference, unit: str) -> str:
    return f"{found.confidence * 100:g} % CI [{_signed(found.low, unit)}, {_signed(found.high, unit)}]"


def _p(found: Difference) -> str:
    if found.p_value is None:
        few = min(found.a_count, found.b_count) < MIN_RANKED
        return "too few for the rank test" if few else "no rank test: every value ties"
    return "Mann-Whitney p < 0.001" if found.p_value < 0.001 else f"Mann-Whitney p = {found.p_value:.2g}"


def shift_sentence(measure: Shift, unit: str) -> str:
    """``median 0.85 → 0.45: -0.40, 95 % CI [-0.44, -0.36], Mann-Whitney p < 0.001``, and whether that is noise."""
    base, new = measure.base, measure.new
    if not base.count and not new.count:
        return "none on either side"
    said = f"median {_plain(base.median, unit)} → {_plain(new.median, unit)} ({base.count} and {new.count} runs)"
    found = measure.difference
    if found is None:
        return f"{said}: too few to tell (3 a side at least)"
    judged = "beyond noise" if measure.beyond_noise else "within noise"
    return f"{said}: {_signed(found.estimate, unit)}, {_interval(found, unit)}, {_p(found)}: {judged}"


def _side_label(side: RunSide | None) -> str:
    return "-" if side is None else str(side.run_id or "?")


def _pair_change(pair: RunPair) -> str:
    """What changed in a pair: ``completed/success → completed/failure, grade 0.85 → 0.45, said 0.41``."""
    base, new = pair.base, pair.new
    if base is None or new is None:
        side = new if base is None else base
        assert side is not None
        return f"only in {'new' if base is None else 'base'}: {side.observed}"
    parts = []
    if pair.outcome_changed:
        parts.append(f"{base.observed} → {new.observed}")
    if pair.grade_delta:
        parts.append(f"grade {_score(base.grade)} → {_score(new.grade)}")
    if pair.duration_delta:
        parts.append(f"call {_plain(base.call_duration_s, 's')} → {_plain(new.call_duration_s, 's')}")
    if pair.similarity is not None and pair.similarity < 1:
        parts.append(f"said {similar(pair.similarity)}")
    return ", ".join(parts)


def _said(found: Transcripts | None) -> str:
    if found is None or not found.compared:
        return "-"
    return similar(found.mean)


def _said_sentence(found: Transcripts) -> str:
    if not found.compared:
        return f"no pair had a transcript on both sides ({found.missing} had one on a side)"
    same = found.compared - found.differing
    said = (
        f"the same words in all {found.compared} pairs"
        if not found.differing
        else f"similarity {similar(found.mean)} (mean of {found.compared} pairs, lowest {similar(found.lowest)});"
        f" {found.differing} differ, {same} the same"
    )
    return said + (f"; {found.missing} pairs lack a transcript on a side" if found.missing else "")


# --------------------------------------------------------------------------------------------------- text


def _header(comparison: ScenarioComparison) -> str:
    regressed, total = len(comparison.regressions), len(comparison.scenarios)
    if regressed:
        return f"{regressed} of {total} scenario{'s' if total != 1 else ''} regressed"
    changed = total - comparison.count(Change.SAME)
    return f"no regression; {changed} of {total} scenario{'s' if total != 1 else ''} changed"


def _transcripts_lines(comparison: ScenarioComparison) -> list[str]:
    lines = []
    for which, state in (("base", comparison.base_said), ("new", comparison.new_said)):
        if state.problem:
            lines.append(f"note: {state.problem}")
        elif state.path:
            lines.append(f"  {which} transcripts: {state.path}")
        if state.caveat:
            lines.append(f"note: {state.caveat}")
    return lines


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _verdict_detail(scenario: ScenarioDiff) -> str:
    expected = f" (expected {scenario.expected})" if scenario.expected else ""
    return f"{scenario.verdict_change}{expected}"


def _moved(pair: RunPair) -> bool:
    """Whether a pair's outcome, grade or call duration moved, or it has a side only."""
    return (
        pair.base is None or pair.new is None or pair.outcome_changed or bool(pair.grade_delta or pair.duration_delta)
    )


def _runs_detail(scenario: ScenarioDiff) -> list[str]:
    moved = [p for p in scenario.pairs if _moved(p)]
    if not moved:
        return []
    said = f"{len(moved)} of {len(scenario.pairs)} pairs moved"
    if scenario.outcomes:
        said += "; outcomes " + ", ".join(f"{b} → {n} ({c})" for b, n, c in scenario.outcomes)
    if scenario.unpaired_base or scenario.unpaired_new:
        said += f"; {scenario.unpaired_base} only in base, {scenario.unpaired_new} only in new"
    lines = _wrapped("runs", said)
    variants = {p.variant for p in scenario.pairs}
    for pair in moved[:RUN_LINES]:
        variant = f"{pair.variant} " if len(variants) > 1 else ""
        where = f"{variant}#{pair.k} {_side_label(pair.base)} → {_side_label(pair.new)}: "
        lines += _wrap(where + _pair_change(pair), "    ", " " * 6)
    if len(moved) > RUN_LINES:
        lines.append(f"    ... {len(moved) - RUN_LINES} more (--format json lists every pair)")
    return lines


def _wrap(text: str, first: str = "", rest: str = "") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False)


def _wrapped(label: str, text: str) -> list[str]:
    """``  label    text``, wrapped at 80 columns under the text."""
    return _wrap(text, f"  {label:<8} ", " " * 11)


def _scenario_text(scenario: ScenarioDiff) -> list[str]:
    title = f"{scenario.name}: {str(scenario.change).upper() if scenario.regressed else scenario.change}"
    if scenario.reasons:
        title += f" ({'; '.join(scenario.reasons)})"
    lines = _wrap(title, "", "  ")
    if scenario.change in (Change.ONLY_BASE, Change.ONLY_NEW):
        return lines
    lines += _wrapped("verdict", _verdict_detail(scenario))
    lines += _wrapped("grade", shift_sentence(scenario.grade, "score"))
    if scenario.duration.base.count or scenario.duration.new.count:
        lines += _wrapped("call", shift_sentence(scenario.duration, "s"))
    lines += _runs_detail(scenario)
    found = scenario.transcripts
    if found is not None:
        lines += _wrapped("said", _said_sentence(found))
        if found.diff is not None:
            base_run, new_run = found.diff_runs
            lines.append(f"    base run {base_run} against new run {new_run}:")
            lines += [f"    {_cut(line, WIDTH - 4)}" for line in found.diff.lines]
            if found.diff.omitted:
                lines.append(f"    ... {found.diff.omitted} more lines")
    return lines


def render_scenarios_text(comparison: ScenarioComparison) -> str:
    """The diff for a terminal: a table of every scenario, then each one that changed in detail, the verdict
    last."""
    lines = [
        f"stressor compare --scenarios: {_header(comparison)}",
        f"  base: {comparison.base.label}",
        f"  new:  {comparison.new.label}",
        *_transcripts_lines(comparison),
    ]
    lines += [f"note: {note}" for note in comparison.notes]
    scenarios = ordered(comparison)
    width = min(max([len(s.name) for s in scenarios] + [8]), NAME_WIDTH)
    verdict_width = max([len(s.verdict_change) for s in scenarios] + [7])
    lines += [
        "",
        f"  {'scenario':<{width}}  {'change':<9}  {'verdict':<{verdict_width}}  {'grade Δ':>7}  {'call Δ':>6}  said",
    ]
    for s in scenarios:
        change = str(s.change).upper() if s.regressed else str(s.change)
        lines.append(
            f"  {_cut(s.name, width):<{width}}  {change:<9}  {s.verdict_change:<{verdict_width}}"
            f"  {_delta(s.grade, 'score'):>7}  {_delta(s.duration, 's'):>6}  {_said(s.transcripts):>4}"
        )
    lines.append("  Δ: median new - base, ~ within noise, ? too few runs; said: transcripts alike")
    for s in scenarios:
        if s.change is not Change.SAME:
            lines += ["", *_scenario_text(s)]
    lines += ["", _verdict_line(comparison)]
    return "\n".join(lines)


def _verdict_line(comparison: ScenarioComparison) -> str:
    regressions = comparison.regressions
    if not regressions:
        return "no regression"
    names = ", ".join(s.name for s in regressions)
    return f"REGRESSED: {len(regressions)} scenario{'s' if len(regressions) > 1 else ''} ({names})"


def regression_sentence(comparison: ScenarioComparison) -> str:
    """One sentence for stderr when scenarios regressed."""
    count = len(comparison.regressions)
    return f"{count} scenario{'s' if count > 1 else ''} regressed."


# ----------------------------------------------------------------------------------------------- Markdown


def _md_shift(measure: Shift, unit: str) -> str:
    found = measure.difference
    if found is None:
        return _delta(measure, unit)
    value = _signed(found.estimate, unit)
    value = f"**{value}**" if measure.beyond_noise and found.estimate else value
    return f"{value} [{_signed(found.low, unit)}, {_signed(found.high, unit)}]"


def _md_said(found: Transcripts | None) -> str:
    if found is None or not found.compared:
        return "-"
    if not found.differing:
        return "1.00"
    return f"{similar(found.mean)} ({found.differing}/{found.compared} differ)"


def _fence(lines: Sequence[str]) -> str:
    """A code fence longer than any run of backticks in the lines."""
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    return "`" * max(3, longest + 1)


def _both(base: str, new: str) -> str:
    return base if base == new else f"{base} → {new}"


def _md_pair(pair: RunPair) -> str:
    base, new = pair.base, pair.new
    runs = f"{_side_label(base)} → {_side_label(new)}"
    if base is None or new is None:
        side = new if base is None else base
        assert side is not None
        cells = [f"only in {'new' if base is None else 'base'}: {side.observed}", _score(side.grade)]
        cells += [_plain(side.call_duration_s, "s"), "-"]
    else:
        cells = [
            _both(base.observed, new.observed),
            _both(_score(base.grade), _score(new.grade)),
            _both(_plain(base.call_duration_s, "s"), _plain(new.call_duration_s, "s")),
            similar(pair.similarity),
        ]
    return f"| {_md(pair.variant)} | {pair.k} | {_md(runs)} | " + " | ".join(_md(cell) for cell in cells) + " |"


def _md_runs(scenario: ScenarioDiff) -> list[str]:
    changed = [p for p in scenario.pairs if _moved(p)]
    if not changed:
        return []
    lines = [
        "",
        f"{len(changed)} of {len(scenario.pairs)} pairs of runs moved (outcome, grade or call duration):",
        "",
        "| variant | # | run (base → new) | outcome | grade | call | said |",
        "|---|---:|---|---|---:|---:|---:|",
        *(_md_pair(pair) for pair in changed[:RUN_ROWS]),
    ]
    if len(changed) > RUN_ROWS:
        lines += ["", f"And {len(changed) - RUN_ROWS} more (`--format json` lists every pair)."]
    return lines


def _md_scenario(scenario: ScenarioDiff) -> list[str]:
    summary = f"{_MARK[scenario.change]} <b>{html.escape(scenario.name)}</b>: {html.escape(str(scenario.change))}"
    if scenario.reasons:
        summary += " (" + html.escape("; ".join(scenario.reasons)) + ")"
    lines = ["", f"<details><summary>{summary}</summary>", ""]
    lines.append(f"- verdict: {_md(_verdict_detail(scenario))}")
    lines.append(f"- grade: {_md(shift_sentence(scenario.grade, 'score'))}")
    if scenario.duration.base.count or scenario.duration.new.count:
        lines.append(f"- call duration: {_md(shift_sentence(scenario.duration, 's'))}")
    found = scenario.transcripts
    if found is not None:
        lines.append(f"- transcripts: {_md(_said_sentence(found))}")
    lines += _md_runs(scenario)
    if found is not None and found.diff is not None:
        base_run, new_run = found.diff_runs
        body = [_cut(line, MD_LINE) for line in found.diff.lines]
        if found.diff.omitted:
            body.append(f"... {found.diff.omitted} more lines")
        fence = _fence(body)
        lines += [
            "",
            f"What was said, base run {_md(str(base_run))} against new run {_md(str(new_run))} "
            f"(the pair least alike, similarity {similar(found.lowest)}):",
            "",
            f"{fence}diff",
            *body,
            fence,
        ]
    return [*lines, "", "</details>"]


def render_scenarios_markdown(comparison: ScenarioComparison) -> str:
    """The diff for a pull request: a table of every scenario, then a folded section per changed one."""
    status = "❌ " + _header(comparison) if comparison.regressed else "✅ " + _header(comparison)
    lines = [
        f"### stressor compare --scenarios: {status}",
        "",
        f"base {_md(comparison.base.label)} · new {_md(comparison.new.label)}",
    ]
    for state in (comparison.base_said, comparison.new_said):
        lines += [f"> {_md(text)}" for text in (state.problem, state.caveat) if text]
    lines += [f"> {_md(note)}" for note in comparison.notes]
    lines += [
        "",
        "| | scenario | verdict | grade: median Δ [95 % CI] | call duration: median Δ [95 % CI] "
        "| transcripts: similarity |",
        "|---|---|---|---:|---:|---:|",
    ]
    scenarios = ordered(comparison)
    for s in scenarios:
        lines.append(
            f"| {_MARK[s.change]} | {_md(s.name)} | {_md(s.verdict_change)} | {_md_shift(s.grade, 'score')} | "
            f"{_md_shift(s.duration, 's')} | {_md_said(s.transcripts)} |"
        )
    for s in scenarios:
        if s.change is not Change.SAME:
            lines += _md_scenario(s)
    lines += [
        "",
        f"<sub>❌ regressed: its verdict went passed → failed, or its median grade fell more than "
        f"{comparison.grade_drop:g} beyond noise (the 95 % bootstrap interval of the difference of medians leaves "
        "out 0 and Mann-Whitney p &lt; 0.05) · ✅ improved · ✏️ changed (outcomes, durations beyond noise, "
        "transcripts) · ~ within noise · ? too few runs to tell · similarity: the transcripts' words alike, "
        "1.00 the same</sub>",
    ]
    return "\n".join(lines) + "\n"
