"""``stressor compare``: a new run against a base run, figure by figure; exit 6 on a regression."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import orjson
import typer

from stressor.cli.flags import fail, load_results, write_reported
from stressor.report.compare import DEFAULT_RULES, RuleError, comparison_json, parse_rules, render_markdown, render_text
from stressor.report.compare import compare as compare_documents
from stressor.running import ExitCode

EXAMPLES = (
    "stressor compare base.json new.json",
    "stressor compare base.json new.json -r 'queue_to_completion.p99 +10%' -r 'failure_rate +1pt' --markdown pr.md",
)


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
        float,
        typer.Option(
            "--tolerance",
            metavar="FRACTION",
            min=0.0,
            max=1.0,
            help="Relative change below which a difference is noise (it grows for small samples).",
        ),
    ] = 0.05,
    raw_rules: Annotated[
        bool,
        typer.Option(
            "--raw-rules",
            help="Let regression rules fire on the raw change, even one judged within noise (by default a rule "
            "fires only on a change beyond the noise of the two runs' sample sizes).",
        ),
    ] = False,
) -> None:
    """Compare a new run against a base run: better, worse or noise per figure; exit 6 on a regression."""
    base_doc, new_doc = load_results(base), load_results(new)
    try:
        parsed = parse_rules(rules) if rules else None
    except RuleError as exc:
        raise fail(str(exc), ExitCode.USAGE) from None
    comparison = compare_documents(base_doc, new_doc, parsed, tolerance, significant_only=not raw_rules)
    as_json = comparison_json(comparison)
    as_markdown = render_markdown(comparison)
    if fmt is OutputFormat.JSON:
        typer.echo(orjson.dumps(as_json, option=orjson.OPT_INDENT_2).decode())
    elif fmt is OutputFormat.MARKDOWN:
        typer.echo(as_markdown, nl=False)
    else:
        typer.echo(render_text(comparison))
    if json_out is not None:
        write_reported(json_out, orjson.dumps(as_json, option=orjson.OPT_INDENT_2).decode() + "\n", "comparison JSON")
    if markdown is not None:
        write_reported(markdown, as_markdown, "comparison Markdown")
    if comparison.regressed:
        fired = len(comparison.regressions)
        raise fail(f"{fired} regression rule{'s' if fired > 1 else ''} fired.", ExitCode.REGRESSION)
