"""The ``stressor`` command line. Nothing else imports this module.

Exit codes (documented in the README): 0 success, 2 bad input (profile, flags, cost guard), 3 the target
cannot be used (unreachable, key refused, stopped by a fatal answer), 130 interrupted (Ctrl-C). Results
gathered so far are written in every case where a run started.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Annotated, Any

import anyio
import orjson
import typer

from stressor.engine import Engine, EngineResult
from stressor.metrics import Metrics
from stressor.plan import estimate
from stressor.profile import Profile, ProfileError, load_profile
from stressor.report.console import render_summary
from stressor.report.results import build_results, write_results
from stressor.secrets import mask_secret
from stressor.sim.command import sim
from stressor.sim.config import SimConfig
from stressor.sim.server import SimulatorProcess
from stressor.targets.base import TargetUnavailable
from stressor.targets.testcalls import TestCallsTarget
from stressor.timestamps import ClockAnchor
from stressor.units import format_duration, parse_duration

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_TARGET = 3
EXIT_INTERRUPTED = 130

EMBEDDED_API_KEY = "sk_test_stressor_embedded_simulator"

app = typer.Typer(
    name="stressor",
    help="Load and concurrency stress tester for asynchronous job APIs (submit -> queued -> done).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("sim")(sim)


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"stressor: {message}", err=True)
    return typer.Exit(code)


def _load(path: Path) -> Profile:
    try:
        return load_profile(path)
    except ProfileError as exc:
        raise _fail(str(exc), EXIT_USAGE) from None


def _duration_flag(value: str | None, flag: str) -> float | None:
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=flag) from None
    if seconds <= 0:
        raise typer.BadParameter("must be greater than zero", param_hint=flag)
    return seconds


# ---------------------------------------------------------------------------------------------------- run


@contextmanager
def _embedded_simulator(config: SimConfig) -> Iterator[str]:
    try:
        with SimulatorProcess(config) as base_url:
            yield base_url
    except OSError as exc:
        raise _fail(f"could not start the embedded simulator: {exc}", EXIT_TARGET) from None


def _cost_guard(profile: Profile) -> None:
    """Against a real API every run is billed: demand consent and a budget the plan fits in."""
    cost = profile.cost
    if not cost.consent_to_charge:
        raise _fail(
            f"{profile.source}: cost.consent_to_charge: must be true to drive a real API "
            "(every run is a billed call at the test-call multiplier)",
            EXIT_USAGE,
        )
    if cost.budget_cents is None:
        raise _fail(
            f"{profile.source}: cost.budget_cents: is required against a real API (the most the run may spend)",
            EXIT_USAGE,
        )
    _, total = estimate(profile)
    if total.cost_cents > cost.budget_cents:
        raise _fail(
            f"{profile.source}: the plan is estimated at {total.cost_cents:.0f} cents ({total.runs} runs), "
            f"over cost.budget_cents = {cost.budget_cents:.0f}; lower the load or raise the budget",
            EXIT_USAGE,
        )


async def _drive(engine: Engine, progress_every_s: float | None) -> EngineResult:
    async def interrupt_on_signal() -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                typer.echo("stressor: interrupted; writing what was gathered", err=True)
                engine.interrupt()
                return

    async def report_progress(every_s: float) -> None:
        while True:
            await anyio.sleep(every_s)
            metrics = engine.metrics
            ended = metrics.outcomes["completed"] + metrics.outcomes["failed"]
            typer.echo(
                f"[{engine.elapsed_s():7.1f}s] submitted {metrics.submitted_runs}  ended {ended}"
                f"  in flight {engine.runs_in_flight}  errored {metrics.outcomes['errored']}",
                err=True,
            )

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(interrupt_on_signal)
        if progress_every_s:
            tasks.start_soon(report_progress, progress_every_s)
        result = await engine.run()
        tasks.cancel_scope.cancel()
    return result


async def _run_against(
    profile: Profile, base_url: str, api_key: str, enforce_budget: bool, progress: float | None
) -> EngineResult:
    metrics = Metrics(ClockAnchor.now())
    target = TestCallsTarget(
        base_url,
        api_key,
        requests=metrics,
        submit_mode=profile.target.submit,
        poll_interval_s=profile.target.poll_interval_s,
        timeout_s=profile.target.request_timeout_s,
    )
    try:
        await target.check()
        engine = Engine(profile, target, metrics=metrics, enforce_budget=enforce_budget)
        return await _drive(engine, progress)
    finally:
        await target.aclose()


@app.command()
def run(
    profile_path: Annotated[Path, typer.Argument(metavar="PROFILE", help="Profile file (TOML or JSON).")],
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            envvar="STRESSOR_BASE_URL",
            help="API to drive, e.g. https://api.thunderphone.com. Default: the profile's target.base_url, "
            "else an embedded simulator started on a free loopback port.",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="THUNDERPHONE_API_KEY",
            show_default=False,
            help="API key (Bearer). Prefer the environment variable: a flag shows in the process list. "
            "Never printed or written to results.",
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the JSON results.")] = Path("results.json"),
    poll_interval: Annotated[str | None, typer.Option(help="Override target.poll_interval, e.g. 250ms or 2s.")] = None,
    grace: Annotated[
        str | None,
        typer.Option(help="Override grace: how long to wait for runs in flight after the last stage."),
    ] = None,
    progress: Annotated[float, typer.Option(help="Seconds between progress lines on stderr (0: none).", min=0)] = 5.0,
    sim_slots: Annotated[int, typer.Option(help="Embedded simulator: concurrent call slots.", min=1)] = 20,
    sim_failure_rate: Annotated[
        float, typer.Option(help="Embedded simulator: probability that a call ends failed.", min=0.0, max=1.0)
    ] = 0.0,
    sim_call_duration: Annotated[
        str, typer.Option(help="Embedded simulator: call duration distribution in API seconds.")
    ] = "lognormal(45,0.3)",
    sim_time_scale: Annotated[
        float, typer.Option(help="Embedded simulator: real seconds per API second of call.", min=0.0)
    ] = 0.001,
    sim_seed: Annotated[int | None, typer.Option(help="Embedded simulator: random seed.")] = None,
) -> None:
    """Run a profile: against the API at --base-url, or against an embedded simulator when none is given."""
    profile = _load(profile_path)
    profile = profile.with_overrides(
        poll_interval_s=_duration_flag(poll_interval, "--poll-interval"),
        base_url=base_url.rstrip("/") if base_url else None,
    )
    if grace is not None:
        profile = replace(profile, grace_s=_duration_flag(grace, "--grace"))
    embedded = profile.target.base_url is None
    if not embedded:
        if not api_key:
            raise _fail("no API key: set THUNDERPHONE_API_KEY (or pass --api-key)", EXIT_USAGE)
        _cost_guard(profile)
    try:
        sim_config = SimConfig.from_text(
            slots=sim_slots,
            call_duration=sim_call_duration,
            time_scale=sim_time_scale,
            failure_rate=sim_failure_rate,
            seed=sim_seed,
            api_key=EMBEDDED_API_KEY,
        )
    except ValueError as exc:
        raise _fail(str(exc), EXIT_USAGE) from None

    def drive(url: str, key: str) -> EngineResult:
        return anyio.run(_run_against, profile, url, key, not embedded, progress or None)

    target_info: dict[str, Any] = {"kind": profile.target.kind, "embedded_simulator": embedded}
    try:
        if embedded:
            with _embedded_simulator(sim_config) as url:
                target_info["base_url"] = url
                result = drive(url, EMBEDDED_API_KEY)
        else:
            assert profile.target.base_url is not None and api_key is not None
            target_info["base_url"] = profile.target.base_url
            target_info["api_key"] = mask_secret(api_key)
            result = drive(profile.target.base_url, api_key)
    except TargetUnavailable as exc:
        raise _fail(str(exc), EXIT_TARGET) from None

    document = build_results(result, profile, target_info)
    write_results(out, document)
    typer.echo(render_summary(document))
    typer.echo(f"\nresults: {out}")
    if result.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    if result.stop_reason is not None:
        raise _fail(f"stopped early: {result.stop_reason}", EXIT_TARGET)


# ---------------------------------------------------------------------------------------------------- plan


@app.command()
def plan(
    profile_path: Annotated[Path, typer.Argument(metavar="PROFILE", help="Profile file (TOML or JSON).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Show what a profile would do, sending nothing: batches, runs, peak in flight, requests, cost."""
    profile = _load(profile_path)
    stages, total = estimate(profile)
    if as_json:
        document = {"profile": profile.name, "stages": [asdict(s) for s in stages], "total": asdict(total)}
        typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
        return
    typer.echo(f"plan of {profile.name!r} ({profile.source}): sends nothing")
    typer.echo(
        f"  mean call duration {format_duration(profile.mean_call_duration_s)} (profile: mean_call_duration), "
        f"poll interval {format_duration(profile.target.poll_interval_s)}, "
        f"{profile.cost.run_cost_cents:g} cents per run"
    )
    typer.echo(
        f"  {'stage':<16} {'model':<6} {'duration':>9} {'batches':>8} {'runs':>8}"
        f" {'peak':>8} {'requests':>9} {'cost':>10}"
    )
    for row in [*stages, total]:
        typer.echo(
            f"  {row.name:<16} {row.model:<6} {format_duration(row.duration_s):>9} {row.batches:>8} {row.runs:>8}"
            f" {row.peak_in_flight:>8.1f} {row.requests:>9} {row.cost_cents / 100:>9.2f}$"
        )
    typer.echo(f"  then up to {format_duration(profile.grace_s)} of grace for runs in flight")


# ---------------------------------------------------------------------------------------------------- report


@app.command()
def report(
    results_path: Annotated[Path, typer.Argument(metavar="RESULTS", help="A results.json written by run.")],
) -> None:
    """Print the summary of a results file again."""
    try:
        document = orjson.loads(results_path.read_bytes())
    except OSError as exc:
        raise _fail(f"{results_path}: cannot read ({exc.strerror})", EXIT_USAGE) from None
    except orjson.JSONDecodeError as exc:
        raise _fail(f"{results_path}: is not JSON ({exc})", EXIT_USAGE) from None
    if not isinstance(document, dict) or document.get("schema") != "stressor.results/1":
        raise _fail(f"{results_path}: is not a stressor results file (schema stressor.results/1)", EXIT_USAGE)
    typer.echo(render_summary(document))


def main() -> None:
    """Console entry point."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app(prog_name="stressor")
    sys.exit(0)
