"""``stressor compare``: a new run against a base run, figure by figure, or scenario by scenario with
``--scenarios`` (the baseline diff of a prompt change); exit 6 on a regression."""

from __future__ import annotations

from contextlib import ExitStack
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from stressor.cli.flags import fail, load_results, write_reported
from stressor.report.compare import DEFAULT_RULES, RuleError, comparison_json, parse_rules, render_markdown, render_text
from stressor.report.compare import compare as compare_documents
from stressor.running import ExitCode

if TYPE_CHECKING:
    from stressor.document import Results

EXAMPLES = (
    "stressor compare base.json new.json",
    "stressor compare base.json new.json -r 'queue_to_completion.p99 +10%' -r 'failure_rate +1pt' --markdown pr.md",
    "stressor compare base.json new.json --scenarios --markdown pr.md",
)
DEFAULT_TOLERANCE = 0.05
DEFAULT_GRADE_DROP = 0.05


class OutputFormat(StrEnum):
    """How ``compare`` prints to stdout."""

    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"


def compare(
    base: Annotated[Path, typer.Argument(metavar="BASE", help="The results.json to compare against (the baseline).")],
    new: Annotated[Path, typer.Argument(metavar="NEW", help="The results.json of the run under judgement.")],
    rules: Annotated[
        list[str] | None,
        typer.Option(
            "--rule",
            "-r",
            metavar="RULE",
            help="A regression rule like 'queue_to_completion.p99 +10%', 'failure_rate +1pt' or "
            "'grade.mean -0.05' (repeatable; given rules replace the defaults: " + ", ".join(DEFAULT_RULES) + ").",
        ),
    ] = None,
    json_out: Annotated[
        Path | None,
        typer.Option("--json", metavar="PATH", help="Also write the comparison as JSON here."),
    ] = None,
    markdown: Annotated[
        Path | None,
        typer.Option("--markdown", metavar="PATH", help="Also write a Markdown summary (for a PR comment) here."),
    ] = None,
    fmt: Annotated[
        OutputFormat,
        typer.Option("--format", "-f", help="What to print: a text table, JSON, or Markdown."),
    ] = OutputFormat.TEXT,
    tolerance: Annotated[
        float | None,
        typer.Option(
            "--tolerance",
            metavar="FRACTION",
            min=0.0,
            max=1.0,
            show_default=False,
            help=f"Relative change below which a difference is noise (it grows for small samples); default "
            f"{DEFAULT_TOLERANCE}.",
        ),
    ] = None,
    raw_rules: Annotated[
        bool,
        typer.Option(
            "--raw-rules",
            help="Let regression rules fire on the raw change, even one judged within noise (by default a rule "
            "fires only on a change beyond the noise of the two runs' sample sizes).",
        ),
    ] = False,
    scenarios: Annotated[
        bool,
        typer.Option(
            "--scenarios",
            help="Compare scenario by scenario (the baseline diff of a prompt change): verdicts, each run's outcome, "
            "grades and call duration, and transcripts from the calls logs; exit 6 when a verdict went passed -> "
            "failed or a grade fell beyond noise.",
        ),
    ] = False,
    grade_drop: Annotated[
        float | None,
        typer.Option(
            "--grade-drop",
            metavar="SCORE",
            min=0.0,
            max=1.0,
            show_default=False,
            help="With --scenarios: the fall of a scenario's median grade (0..1) beyond which, and beyond noise, it "
            f"regressed; default {DEFAULT_GRADE_DROP}.",
        ),
    ] = None,
    base_calls: Annotated[
        Path | None,
        typer.Option(
            "--base-calls",
            metavar="PATH",
            help="With --scenarios: the base run's calls log (default: the one its results name, or beside them).",
        ),
    ] = None,
    new_calls: Annotated[
        Path | None,
        typer.Option(
            "--new-calls",
            metavar="PATH",
            help="With --scenarios: the new run's calls log (default: the one its results name, or beside them).",
        ),
    ] = None,
) -> None:
    """Compare a new run against a base run: better, worse or noise per figure (or per scenario, --scenarios);
    exit 6 on a regression."""
    figures_only = {"--rule": bool(rules), "--tolerance": tolerance is not None, "--raw-rules": raw_rules}
    scenarios_only = {"--grade-drop": grade_drop is not None, "--base-calls": base_calls is not None}
    scenarios_only["--new-calls"] = new_calls is not None
    misplaced = [name for name, given in (scenarios_only if not scenarios else figures_only).items() if given]
    if misplaced and scenarios:
        raise fail(
            f"{misplaced[0]} judges the figures, not --scenarios (a scenario regresses by its verdict and its "
            "grade: --grade-drop).",
            ExitCode.USAGE,
        )
    if misplaced:
        raise fail(f"{misplaced[0]} goes with --scenarios.", ExitCode.USAGE)
    base_doc, new_doc = load_results(base), load_results(new)
    if scenarios:
        drop = DEFAULT_GRADE_DROP if grade_drop is None else grade_drop
        _compare_scenarios(base, new, base_doc, new_doc, (base_calls, new_calls), drop, fmt, json_out, markdown)
        return
    try:
        parsed = parse_rules(rules) if rules else None
    except RuleError as exc:
        raise fail(str(exc), ExitCode.USAGE) from None
    noise = DEFAULT_TOLERANCE if tolerance is None else tolerance
    comparison = compare_documents(base_doc, new_doc, parsed, noise, significant_only=not raw_rules)
    _print(comparison_json(comparison), render_markdown(comparison), render_text(comparison), fmt, json_out, markdown)
    if comparison.regressed:
        fired = len(comparison.regressions)
        raise fail(f"{fired} regression rule{'s' if fired > 1 else ''} fired.", ExitCode.REGRESSION)


def _print(
    as_json: dict[str, Any],
    as_markdown: str,
    as_text: str,
    fmt: OutputFormat,
    json_out: Path | None,
    markdown: Path | None,
) -> None:
    """Print the comparison in the format asked; write the JSON and Markdown files asked for."""
    if fmt is OutputFormat.JSON:
        typer.echo(orjson.dumps(as_json, option=orjson.OPT_INDENT_2).decode())
    elif fmt is OutputFormat.MARKDOWN:
        typer.echo(as_markdown, nl=False)
    else:
        typer.echo(as_text)
    if json_out is not None:
        write_reported(json_out, orjson.dumps(as_json, option=orjson.OPT_INDENT_2).decode() + "\n", "comparison JSON")
    if markdown is not None:
        write_reported(markdown, as_markdown, "comparison Markdown")


def _compare_scenarios(
    base: Path,
    new: Path,
    base_doc: Results,
    new_doc: Results,
    calls: tuple[Path | None, Path | None],
    grade_drop: float,
    fmt: OutputFormat,
    json_out: Path | None,
    markdown: Path | None,
) -> None:
    from stressor.report.baseline import compare_scenarios, scenario_comparison_json
    from stressor.report.baseline_render import (
        regression_sentence,
        render_scenarios_markdown,
        render_scenarios_text,
    )
    from stressor.report.callslog import CallsLogError, open_said

    with ExitStack() as stack:
        try:
            base_said, base_state = open_said(base, base_doc, calls[0], "base", stack)
            new_said, new_state = open_said(new, new_doc, calls[1], "new", stack)
        except CallsLogError as exc:
            raise fail(str(exc), ExitCode.USAGE) from None
        comparison = compare_scenarios(
            base_doc,
            new_doc,
            base_said,
            new_said,
            base_state=base_state,
            new_state=new_state,
            grade_drop=grade_drop,
        )
    if not any(s.pairs and any(p.base and p.new for p in s.pairs) for s in comparison.scenarios):
        raise fail(
            f"{base} and {new} have no run of a scenario in common: nothing to pair (compare two runs of one corpus).",
            ExitCode.USAGE,
        )
    _print(
        scenario_comparison_json(comparison),
        render_scenarios_markdown(comparison),
        render_scenarios_text(comparison),
        fmt,
        json_out,
        markdown,
    )
    if comparison.regressed:
        raise fail(regression_sentence(comparison), ExitCode.REGRESSION)
