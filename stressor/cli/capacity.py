"""``stressor capacity``: climb the load until an SLO breaks, re-check the break, narrow the knee; the use case's
pieces (``stressor.capacity``: the plan and the next level; ``stressor.running``: where to run, the cost guard,
the output checks, the loop; ``stressor.report.conclude``: the step table, the knee, the load sustained)
around the flags, the files and the exit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import orjson
import typer

from stressor.cli.flags import (
    CREATE_RATE_OPTION,
    GRACE_OPTION,
    MAX_BATCHES_OPTION,
    MAX_RUNS_OPTION,
    MODE_OPTION,
    POLL_INTERVAL_OPTION,
    POLL_RATE_OPTION,
    duration_flag,
    fail,
    flag,
    load,
    rate_flag,
    refused,
    sim_option,
    url_flag,
    warn,
    write_or_fail,
)
from stressor.running import ExitCode, Overrides, RunError, with_overrides
from stressor.units import format_duration

if TYPE_CHECKING:
    from stressor.capacity import SearchPlan, TimeEstimate
    from stressor.profile import Profile
    from stressor.report.conclude import CapacityConclusion
    from stressor.thresholds import Threshold

EXAMPLES = (
    "stressor capacity profiles/closed-concurrency.toml --slo 'queue_to_completion.p95 < 500ms' --max 20 "
    "--step-duration 5s --html knee.html",
    "stressor capacity profiles/smoke.toml --model open --start 1 --step 4 --max 40 --resolution 0.5 "
    "-t 'achieved_runs_per_s >= 15' --junit capacity.xml",
)
DEFAULT_SLOS = ("queue_to_completion.p95 < 90s", "failure_rate < 5%")


def capacity(
    profile_path: Annotated[Path, typer.Argument(metavar="PROFILE", help="Profile file (TOML or JSON).")],
    slo: Annotated[
        list[str] | None,
        typer.Option(
            "--slo",
            metavar="EXPR",
            help="A service level every step must hold, as a threshold: 'queue_to_completion.p95 < 90s', "
            "'failure_rate < 5%' (repeatable). Default: both of these.",
        ),
    ] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold",
            "-t",
            metavar="EXPR",
            help="A gate on the step that sustained the most load (the last that held), like "
            "'achieved_runs_per_s >= 15' (repeatable). Any failed, or no step held: exit 5.",
        ),
    ] = None,
    model: Annotated[
        Literal["closed", "open"],
        typer.Option(help="Step runs in flight ('closed') or batch arrivals per second ('open')."),
    ] = "closed",
    start: Annotated[float, typer.Option(metavar="LEVEL", help="First load level.", min=0.001)] = 2,
    step: Annotated[float, typer.Option(metavar="LEVEL", help="Load added at each step.", min=0.001)] = 2,
    max_level: Annotated[
        float, typer.Option("--max", metavar="LEVEL", help="Highest load level tried.", min=0.001)
    ] = 64,
    resolution: Annotated[
        float | None,
        typer.Option(
            metavar="LEVEL",
            show_default=False,
            help="After the first level that breaks, bisect between it and the last that held until they are this "
            "close (default: 1 run in flight closed, a quarter of --step open).",
        ),
    ] = None,
    step_duration: Annotated[
        str, typer.Option(metavar="DURATION", help="How long each step runs, e.g. 30s or 5m.")
    ] = "30s",
    html: Annotated[
        Path | None, typer.Option(metavar="PATH", help="Write the chart of latency and failures against load.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(metavar="PATH", help="Write every step, the knee and the load sustained as JSON.")
    ] = None,
    junit: Annotated[
        Path | None,
        typer.Option(metavar="PATH", help="Write JUnit XML of the --threshold gates on the sustained step."),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            envvar="STRESSOR_BASE_URL",
            metavar="URL",
            help="API to search; default: the embedded simulator.",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="THUNDERPHONE_API_KEY", show_default=False, metavar="KEY", help="API key."),
    ] = None,
    poll_interval: Annotated[str | None, POLL_INTERVAL_OPTION] = None,
    grace: Annotated[str | None, GRACE_OPTION] = None,
    mode: Annotated[Literal["obey", "stress"] | None, MODE_OPTION] = None,
    create_rate: Annotated[str | None, CREATE_RATE_OPTION] = None,
    poll_rate: Annotated[str | None, POLL_RATE_OPTION] = None,
    max_runs_in_flight: Annotated[int | None, MAX_RUNS_OPTION] = None,
    max_batches_in_flight: Annotated[int | None, MAX_BATCHES_OPTION] = None,
    sim_slots: Annotated[int | None, sim_option("slots")] = None,
    sim_failure_rate: Annotated[float | None, sim_option("failure_rate")] = None,
    sim_call_duration: Annotated[str | None, sim_option("call_duration")] = None,
    sim_time_scale: Annotated[float | None, sim_option("time_scale")] = None,
    sim_seed: Annotated[int | None, sim_option("seed")] = None,
) -> None:
    """Step the load up until an SLO breaks, re-check the break, narrow the knee; say the load sustained."""
    # Imported here, not at the top: only this command needs them (and all of them before the search starts).
    from stressor.capacity import search_plan, time_estimate
    from stressor.report.conclude import capacity_header, capacity_row, conclude_capacity, step_of
    from stressor.running import Search, check_output, search_capacity, target_of
    from stressor.thresholds import ThresholdError, parse_thresholds

    profile = load(profile_path)
    overrides = Overrides(
        base_url=flag(url_flag, base_url, "--base-url") if base_url else None,
        poll_interval_s=duration_flag(poll_interval, "--poll-interval"),
        grace_s=duration_flag(grace, "--grace"),
        mode=mode,
        create_rate=rate_flag(create_rate, "--create-rate"),
        poll_rate=rate_flag(poll_rate, "--poll-rate"),
        max_runs_in_flight=max_runs_in_flight,
        max_batches_in_flight=max_batches_in_flight,
    )
    profile = with_overrides(profile, overrides)
    duration_s = duration_flag(step_duration, "--step-duration")
    assert duration_s is not None
    try:
        slos = parse_thresholds(slo or DEFAULT_SLOS)
        gates = parse_thresholds(threshold or ())
        plan = search_plan(model, start, step, max_level, resolution)
    except (ThresholdError, ValueError) as exc:
        raise fail(str(exc), ExitCode.USAGE) from None
    simulator = {
        "slots": sim_slots,
        "failure_rate": sim_failure_rate,
        "call_duration": sim_call_duration,
        "time_scale": sim_time_scale,
        "seed": sim_seed,
    }
    try:
        where = target_of(profile, api_key, simulator, billed=_billed(profile, plan, duration_s))
        for path, name in ((out, "--out"), (html, "--html"), (junit, "--junit")):
            check_output(path, name)
    except RunError as exc:
        raise refused(exc) from None
    load_label = "runs in flight" if model == "closed" else "batches per second"
    estimate = time_estimate(plan, duration_s, profile.grace_s)
    typer.echo(_announcement(profile, plan, duration_s, load_label, [t.text for t in slos]), err=True)
    typer.echo(_time_line(estimate, duration_s, profile.grace_s), err=True)
    typer.echo(capacity_header(load_label))
    search = Search(profile, where, plan, duration_s)
    try:
        searched = search_capacity(
            search,
            measure=lambda level, step_run, outcome: step_of(level, step_run, outcome, slos),
            notice=warn,
            on_step=lambda measured: typer.echo(capacity_row(measured)),
        )
    except RunError as exc:
        raise refused(exc) from None
    conclusion = conclude_capacity(
        searched,
        model=model,
        load_label=load_label,
        slos=slos,
        max_level=max_level,
        resolution=plan.resolution,
        thresholds=gates,
    )
    _write_outputs(conclusion, profile, load_label, slos, out=out, html=html, junit=junit)
    typer.echo("")
    for line in conclusion.lines:
        typer.echo(line)
    ending = conclusion.ending
    if ending.sentence is not None:
        raise fail(ending.sentence, ending.code)
    if ending.code is not ExitCode.OK:
        raise typer.Exit(ending.code)


def _billed(profile: Profile, plan: SearchPlan, duration_s: float) -> Profile:
    """What the cost guard checks against a real API: the most the search can run, every step at its level
    twice (a break's re-check) and each narrowing step at the top level, one stage after another."""
    from stressor.capacity import narrowing_steps, step_profile

    top = plan.ladder[-1]
    levels = [*plan.ladder, *plan.ladder, *[top] * (2 * narrowing_steps(plan))]
    stages = tuple(step_profile(profile, level, plan.model, duration_s).stages[0] for level in levels)
    return replace(profile, stages=stages)


def _announcement(profile: Profile, plan: SearchPlan, duration_s: float, load_label: str, slos: list[str]) -> str:
    ladder = plan.ladder
    by = f" by {ladder[1] - ladder[0]:g}" if len(ladder) > 1 else ""
    return (
        f"capacity search of {profile.name!r}: {load_label} from {ladder[0]:g}{by} up to {ladder[-1]:g} "
        f"({len(ladder)} levels), the knee narrowed to {plan.resolution:g}, {format_duration(duration_s)} a step; "
        f"SLO: {', '.join(slos)}"
    )


def _time_line(estimate: TimeEstimate, duration_s: float, grace_s: float) -> str:
    return (
        f"time: {format_duration(estimate.climb_s)} to climb every level ({estimate.climb_steps} steps of "
        f"{format_duration(duration_s)}); at most {format_duration(estimate.most_s)} ({estimate.most_steps} steps, "
        f"each break re-checked and the knee narrowed, each with up to {format_duration(grace_s)} of grace)"
    )


def _write_outputs(
    conclusion: CapacityConclusion,
    profile: Profile,
    load_label: str,
    slos: Sequence[Threshold],
    *,
    out: Path | None,
    html: Path | None,
    junit: Path | None,
) -> None:
    """--out, --html and --junit; a file that cannot be written is one sentence and exit 2."""
    if out is not None:
        document = orjson.dumps(conclusion.document, option=orjson.OPT_INDENT_2)
        write_or_fail(out, "capacity JSON", lambda: out.write_bytes(document))
    if html is not None:
        from stressor.report.capacity_html import render_capacity_html

        said = conclusion.document
        page = render_capacity_html(
            f"Capacity of {profile.name}",
            load_label,
            said["steps"],
            slos,
            sentence=said["sentence"],
            interrupted=said["interrupted"],
        )
        write_or_fail(html, "capacity chart", lambda: html.write_text(page, encoding="utf-8"))
    if junit is not None:
        from stressor.document import load_results
        from stressor.report.junit import junit_xml

        sustained = conclusion.sustained if conclusion.sustained is not None else load_results({})
        xml = junit_xml(sustained, conclusion.verdicts)
        write_or_fail(junit, "JUnit XML", lambda: junit.write_text(xml, encoding="utf-8"))
