"""The ``report`` and ``compare`` commands, as typer command functions the CLI registers. The only I/O here.

Exit codes: 0 fine; 2 bad input (a results file that cannot be read, a bad threshold or rule, a file that
cannot be written); 5 a threshold failed or had no data (``report``); 6 a regression rule fired (``compare``).
Errors end in one sentence on stderr, ``stressor: <sentence>``.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TypeVar

import orjson
import typer

from stressor.document import Results, ResultsError
from stressor.report.compare import DEFAULT_RULES, RuleError, comparison_json, parse_rules, render_markdown, render_text
from stressor.report.compare import compare as compare_documents
from stressor.thresholds import ThresholdError, breached, evaluate, parse_thresholds, render_verdicts

# stressor.cli imports this module for every command (to register these two): the writers and the runs-log
# reader (which imports the whole session) are imported inside the functions that use them.

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_THRESHOLDS = 5
EXIT_REGRESSION = 6

T = TypeVar("T")


class OutputFormat(StrEnum):
    """How ``compare`` prints to stdout."""

    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    typer.echo(f"stressor: {message}", err=True)
    return typer.Exit(code)


def load_results(path: Path) -> Results:
    """Read a results file (or rebuild one from a ``.runs.jsonl`` runs log); exit 2 with one sentence when it
    is neither, or holds a field of the wrong type."""
    from stressor.report.results import read_results

    try:
        return read_results(path)
    except ResultsError as exc:
        raise _fail(str(exc)) from None


def _write(path: Path, what: str, write: Callable[[], T]) -> T:
    """Run a writer; a file that cannot be written is a usage error (exit 2), not a traceback."""
    try:
        return write()
    except OSError as exc:
        raise _fail(f"{path}: cannot write the {what} ({exc.strerror or exc}).") from None


def _write_text(path: Path, text: str, what: str) -> None:
    def write() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    _write(path, what, write)
    typer.echo(f"{what}: {path}", err=True)


def report(
    results: Annotated[Path, typer.Argument(metavar="RESULTS", help="A results.json written by `stressor run`.")],
    html: Annotated[
        Path | None,
        typer.Option("--html", metavar="PATH", help="Write a self-contained HTML report (charts, tables) here."),
    ] = None,
    hgrm_dir: Annotated[
        Path | None,
        typer.Option(
            "--hgrm-dir",
            metavar="DIR",
            help="Write one <measure>.hgrm percentile distribution per measure here (values in milliseconds).",
        ),
    ] = None,
    csv_dir: Annotated[
        Path | None,
        typer.Option("--csv-dir", metavar="DIR", help="Write runs.csv (one row per run) and intervals.csv here."),
    ] = None,
    junit: Annotated[
        Path | None,
        typer.Option(
            "--junit",
            metavar="PATH",
            help="Write JUnit XML for CI here: a test case per threshold, per scenario and for the run.",
        ),
    ] = None,
    thresholds: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold",
            "-t",
            metavar="EXPR",
            help="A threshold like 'queue_to_completion.p95 < 90s', 'failure_rate < 1%' or "
            # typer renders help with rich markup, where [refund] would be a style tag: escape it.
            "'scenario\\[refund].grade.mean >= 0.8' (repeatable; checked with the run's own). Any failed, or with "
            "no data: exit 5.",
        ),
    ] = None,
    saved_thresholds: Annotated[
        bool,
        typer.Option(
            "--saved-thresholds/--no-saved-thresholds",
            help="Check again the thresholds the run was gated on (saved in the results as 'thresholds').",
        ),
    ] = True,
) -> None:
    """Print the summary of a results file again, check thresholds, and write reports (HTML, .hgrm, CSV, JUnit)."""
    from stressor.report.console import render_summary

    document = load_results(results)
    texts = list(document.thresholds or ()) if saved_thresholds else []
    try:
        parsed = parse_thresholds(texts)
    except ThresholdError as exc:
        raise _fail(f"{results}: a saved threshold cannot be read: {exc}") from None
    try:
        parsed += [t for t in parse_thresholds(thresholds or []) if t.text not in texts]
    except ThresholdError as exc:
        raise _fail(str(exc)) from None
    verdicts = evaluate(parsed, document)
    typer.echo(render_summary(document))
    if verdicts:
        typer.echo("")
        typer.echo(render_verdicts(verdicts))
    if html is not None:
        from stressor.report.html import render_html

        _write_text(html, render_html(document, verdicts), "HTML report")
    if junit is not None:
        from stressor.report.junit import junit_xml

        _write_text(junit, junit_xml(document, verdicts), "JUnit XML")
    if hgrm_dir is not None:
        from stressor.report.exports import write_hgrm

        written = _write(hgrm_dir, "percentile distributions", lambda: write_hgrm(document, hgrm_dir))
        typer.echo(f"percentile distributions: {len(written)} files in {hgrm_dir}", err=True)
    if csv_dir is not None:
        from stressor.report.exports import write_csv

        _write(csv_dir, "CSV files", lambda: write_csv(document, csv_dir))
        typer.echo(f"CSV: runs.csv, intervals.csv in {csv_dir}", err=True)
    if breached(verdicts):
        failed = sum(not v.passed for v in verdicts)
        raise _fail(f"{failed} of {len(verdicts)} thresholds failed.", EXIT_THRESHOLDS)


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
        raise _fail(str(exc)) from None
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
        _write_text(json_out, orjson.dumps(as_json, option=orjson.OPT_INDENT_2).decode() + "\n", "comparison JSON")
    if markdown is not None:
        _write_text(markdown, as_markdown, "comparison Markdown")
    if comparison.regressed:
        fired = len(comparison.regressions)
        raise _fail(f"{fired} regression rule{'s' if fired > 1 else ''} fired.", EXIT_REGRESSION)
