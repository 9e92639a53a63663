"""``stressor report``: a results file (or a runs log) summarised again, its thresholds checked, reports written."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stressor.cli.flags import fail, load_results, write_or_fail, write_reported
from stressor.running import ExitCode
from stressor.thresholds import ThresholdError, breached, evaluate, parse_thresholds, render_verdicts

# The writers are imported inside the command, the results reader (which imports the whole session) inside
# flags.load_results.

EXAMPLES = (
    "stressor report results.json --html report.html",
    "stressor report results.runs.jsonl",
    "stressor report results.json -t 'scenario[*].failure_rate < 5%' --junit junit.xml",
)


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
        raise fail(f"{results}: a saved threshold cannot be read: {exc}", ExitCode.USAGE) from None
    try:
        parsed += [t for t in parse_thresholds(thresholds or []) if t.text not in texts]
    except ThresholdError as exc:
        raise fail(str(exc), ExitCode.USAGE) from None
    verdicts = evaluate(parsed, document)
    typer.echo(render_summary(document))
    if verdicts:
        typer.echo("")
        typer.echo(render_verdicts(verdicts))
    if html is not None:
        from stressor.report.html import render_html

        write_reported(html, render_html(document, verdicts), "HTML report")
    if junit is not None:
        from stressor.report.junit import junit_xml

        write_reported(junit, junit_xml(document, verdicts), "JUnit XML")
    if hgrm_dir is not None:
        from stressor.report.exports import write_hgrm

        written = write_or_fail(hgrm_dir, "percentile distributions", lambda: write_hgrm(document, hgrm_dir))
        typer.echo(f"percentile distributions: {len(written)} files in {hgrm_dir}", err=True)
    if csv_dir is not None:
        from stressor.report.exports import write_csv

        write_or_fail(csv_dir, "CSV files", lambda: write_csv(document, csv_dir))
        typer.echo(f"CSV: runs.csv, intervals.csv in {csv_dir}", err=True)
    if breached(verdicts):
        failed = sum(not v.passed for v in verdicts)
        raise fail(f"{failed} of {len(verdicts)} thresholds failed.", ExitCode.THRESHOLDS)
