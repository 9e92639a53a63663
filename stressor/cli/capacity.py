"""``stressor capacity``: step the load up until an SLO breaks; the use case's pieces (``stressor.running``:
where to run, the cost guard, the output checks, the search loop; ``stressor.report.conclude``: each step's
figures and the knee) around the flags, the files and the exit."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import orjson
import typer

from stressor.cli.flags import SIM_HELP, duration_flag, fail, flag, load, refused, url_flag, warn
from stressor.running import ExitCode, Overrides, RunError, with_overrides
from stressor.units import format_duration

if TYPE_CHECKING:
    from stressor.capacity import Model

EXAMPLES = (
    "stressor capacity profiles/closed-concurrency.toml --slo 'queue_to_completion.p95 < 500ms' --max 20 "
    "--step-duration 5s --html knee.html",
)


def capacity(
    profile_path: Annotated[Path, typer.Argument(metavar="PROFILE", help="Profile file (TOML or JSON).")],
    slo: Annotated[
        list[str] | None,
        typer.Option(
            "--slo",
            help="A service level that must hold, as a threshold: 'queue_to_completion.p95 < 90s', "
            "'failure_rate < 5%' (repeatable). Default: both of these.",
        ),
    ] = None,
    model: Annotated[
        Literal["closed", "open"],
        typer.Option(help="Step runs in flight ('closed') or batch arrivals per second ('open')."),
    ] = "closed",
    start: Annotated[float, typer.Option(help="First load level.", min=0.001)] = 2,
    step: Annotated[float, typer.Option(help="Load added at each step.", min=0.001)] = 2,
    max_level: Annotated[float, typer.Option("--max", help="Highest load level tried.", min=0.001)] = 64,
    step_duration: Annotated[str, typer.Option(help="How long each step runs, e.g. 30s or 5m.")] = "30s",
    html: Annotated[Path | None, typer.Option(help="Write the chart of latency and failures against load.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the steps and the knee as JSON.")] = None,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", envvar="STRESSOR_BASE_URL", help="API to search; default: the embedded simulator."),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="THUNDERPHONE_API_KEY", show_default=False, help="API key.")
    ] = None,
    sim_slots: Annotated[int | None, typer.Option(help=SIM_HELP + "concurrent call slots (20).")] = None,
    sim_call_duration: Annotated[str | None, typer.Option(help=SIM_HELP + "call duration distribution.")] = None,
) -> None:
    """Step the load up until an SLO breaks; report the last step that held, the first that broke (the knee)."""
    # Imported here, not at the top: only this command needs them (and all of them before the search starts).
    from stressor.capacity import levels, step_profile
    from stressor.report.conclude import capacity_row, conclude_capacity, step_of
    from stressor.running import Search, check_output, search_capacity, target_of
    from stressor.thresholds import ThresholdError, parse_thresholds

    shape: Model = model
    profile = load(profile_path)
    profile = with_overrides(profile, Overrides(base_url=flag(url_flag, base_url, "--base-url") if base_url else None))
    duration_s = duration_flag(step_duration, "--step-duration")
    assert duration_s is not None
    try:
        slos = parse_thresholds(slo or ["queue_to_completion.p95 < 90s", "failure_rate < 5%"])
        step_levels = levels(start, step, max_level)
    except (ThresholdError, ValueError) as exc:
        raise fail(str(exc), ExitCode.USAGE) from None
    # against a real API the whole search is billed: every step's stage, one after the other
    steps = tuple(step_profile(profile, level, shape, duration_s).stages[0] for level in step_levels)
    billed = replace(profile, stages=steps)
    try:
        where = target_of(profile, api_key, {"slots": sim_slots, "call_duration": sim_call_duration}, billed=billed)
        check_output(out, "--out")
        check_output(html, "--html")
    except RunError as exc:
        raise refused(exc) from None
    load_label = "runs in flight" if model == "closed" else "batches per second"
    typer.echo(
        f"capacity search of {profile.name!r}: {load_label} from {start:g} by {step:g} up to {max_level:g}, "
        f"{format_duration(duration_s)} a step; SLO: {', '.join(t.text for t in slos)}",
        err=True,
    )
    search = Search(profile, where, shape, tuple(step_levels), duration_s)
    try:
        searched = search_capacity(
            search,
            measure=lambda level, step_run, outcome: step_of(level, step_run, outcome, slos),
            notice=warn,
            on_step=lambda measured: typer.echo(capacity_row(measured), err=True),
        )
    except RunError as exc:
        raise refused(exc) from None
    conclusion = conclude_capacity(searched, model=model, load_label=load_label, slos=slos, max_level=max_level)
    if out is not None:
        out.write_bytes(orjson.dumps(conclusion.document, option=orjson.OPT_INDENT_2))
    if html is not None:
        from stressor.report.html import render_capacity_html

        chart = render_capacity_html(f"Capacity of {profile.name}", load_label, conclusion.rows, slos)
        html.write_text(chart, encoding="utf-8")
    typer.echo(conclusion.line)
    if conclusion.ending.code is not ExitCode.OK:
        raise typer.Exit(conclusion.ending.code)
