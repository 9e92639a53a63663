"""The ``stressor`` command line. Nothing else imports this module.

Exit codes (documented in the README): 0 success, 1 a crash (a bug), 2 bad input (profile, flags, an output path
that cannot be written, cost guard), 3 the target
cannot be used (unreachable, key refused, stopped by a fatal answer), 4 stopped by the breaker (sustained
failure), 5 a threshold failed, 6 ``compare`` found a regression, 7 a worker was lost (``--workers``,
``--cluster``), 8 some runs are unknown (a lost create answer no listing settled, or a run the list stopped
showing), 130 interrupted (Ctrl-C). Results gathered
so far are written in every case where a run started.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from urllib.parse import urlsplit

import anyio
import orjson
import typer

from stressor import runtime
from stressor.report.commands import compare, report
from stressor.secrets import mask_secret
from stressor.sim.command import sim
from stressor.units import format_duration, parse_duration, parse_rate

# 'import httpx' imports httpx's own command line (click, rich, pygments: ~70 ms of CPU) whenever those are
# installed, as typer installs rich; stressor never runs it, and start-up CPU is charged to every run. httpx2
# has made that import lazy (pydantic/httpx2#947); until httpx does, the stressor command blocks it (httpx
# then defines a 'main' that says its CLI is not installed).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

# Start-up CPU counts against every run (a benchmark charges the whole process): what only some commands or
# options need (the session and its engine, simulator, workers and cluster; the report writers; the capacity
# search) is imported inside the command or function that needs it, so that --help, plan, report and compare
# do not pay for a run, and a run does not pay for the writers it is not asked for.
if TYPE_CHECKING:
    from stressor.capacity import Step
    from stressor.document import Results
    from stressor.profile import Profile
    from stressor.session import Scale, Session, SessionResult, Where
    from stressor.sim.config import SimConfig
    from stressor.thresholds import Threshold

EXIT_USAGE = 2
EXIT_TARGET = 3
EXIT_BREAKER = 4
EXIT_THRESHOLDS = 5
EXIT_WORKER_LOST = 7
EXIT_UNKNOWN = 8
EXIT_INTERRUPTED = 130
MIN_RUNS_TO_ABORT = 20  # an abort threshold waits for this many settled runs: a rate over 3 says nothing
WEBHOOK_SECRET_ENV = "STRESSOR_WEBHOOK_SECRET"

T = TypeVar("T")

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
    from stressor.profile import ProfileError, load_profile
    from stressor.sim.config import check_simulator_table

    try:
        profile = load_profile(path)
        check_simulator_table(profile)
        return profile
    except ProfileError as exc:
        raise _fail(str(exc), EXIT_USAGE) from None


def _check_output(path: Path | None, flag: str) -> None:
    """Refuse, before anything runs, an output path that cannot be written: a run whose results are lost at its
    end wastes the whole run. Missing parent directories are created (as the writers do)."""
    if path is None:
        return
    if path.is_dir():
        raise _fail(f"{flag} {path}: is a directory; give the path of a file in it", EXIT_USAGE)
    parent = path.parent
    blocking = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise _fail(f"{flag} {path}: {blocking} is a file, not a directory", EXIT_USAGE)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or exc
        raise _fail(f"{flag} {path}: cannot create its directory {parent} ({reason})", EXIT_USAGE) from None
    # Try it: os.access says yes to root on a read-only file system like /proc.
    probe = path.with_name(f".{path.name}.probe")
    try:
        probe.touch()
        probe.unlink()
        if path.exists():
            path.open("ab").close()
    except OSError as exc:
        raise _fail(f"{flag} {path}: cannot be written ({exc.strerror or exc})", EXIT_USAGE) from None


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


def _cost_guard(profile: Profile) -> None:
    """Against a real API every run is billed: demand consent and a budget the plan fits in."""
    from stressor.estimate import estimate

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


async def _run_session(
    session: Session, progress_every_s: float | None, aborts: Sequence[Threshold] = ()
) -> SessionResult:
    """The session, with Ctrl-C / SIGTERM turned into an orderly stop, live progress, and the thresholds
    marked ``abort`` checked every interval."""
    # Imported here, not at the top, to spare other commands. 'run' has imported all of them (itself or through
    # the session) before runtime.run, so that they are loaded (and frozen by its gc tuning) before the load
    # starts: here they are only looked up.
    from rich.console import Console
    from rich.live import Live

    from stressor.distributed.cluster import ClusterUnavailable
    from stressor.progress import ProgressWindow
    from stressor.report.progress import progress_line, progress_table
    from stressor.report.results import figures
    from stressor.targets.base import TargetUnavailable
    from stressor.thresholds import abort_breaches

    async def abort_on_breach() -> None:
        profile = session.profile
        while True:
            await anyio.sleep(profile.interval_s)
            engine = session.engine
            if engine is None:
                continue
            live = figures(engine.metrics, engine.governor, profile, engine.elapsed_s(), with_histograms=False)
            if live.runs.settled < MIN_RUNS_TO_ABORT:
                continue
            breaches = abort_breaches(aborts, live)
            if breaches:
                engine.stop(f"threshold breached: {breaches[0].sentence}", cause="threshold")
                return

    async def interrupt_on_signal() -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                typer.echo("stressor: interrupted; writing what was gathered", err=True)
                session.interrupt()
                return

    async def report_progress(every_s: float) -> None:
        # A live table on a terminal; plain lines every few seconds when stderr is a log (CI).
        console = Console(stderr=True)
        window = ProgressWindow()  # rates and percentiles of the last few seconds, not the whole run's
        if console.is_terminal:
            with Live(console=console, refresh_per_second=2, transient=True) as live:
                while True:
                    await anyio.sleep(0.5)
                    if session.engine is not None:
                        live.update(progress_table(window.read(session.engine)))
        while True:
            await anyio.sleep(every_s)
            if session.engine is not None:
                typer.echo(progress_line(window.read(session.engine)), err=True)

    failure: TargetUnavailable | ClusterUnavailable | OSError | None = None
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(interrupt_on_signal)
        if progress_every_s:
            tasks.start_soon(report_progress, progress_every_s)
        if aborts:
            tasks.start_soon(abort_on_breach)
        try:
            result = await session.run()
        except (TargetUnavailable, ClusterUnavailable, OSError) as exc:
            failure = exc  # raised outside the task group, or it would come wrapped in an ExceptionGroup
        tasks.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return result


def _rate_flag(value: str | None, flag: str) -> float | None:
    if value is None:
        return None
    try:
        rate = parse_rate(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=flag) from None
    if rate <= 0:
        raise typer.BadParameter("must be greater than zero", param_hint=flag)
    return rate


def _simulator_config(profile: Profile, flags: dict[str, Any]) -> SimConfig:
    """The embedded simulator's settings: the profile's [simulator] table, then the --sim-* flags."""
    from stressor.session import EMBEDDED_API_KEY
    from stressor.sim.config import SimConfig, SimConfigError

    settings = {**profile.simulator, **{k: v for k, v in flags.items() if v is not None}}
    try:
        return SimConfig.from_mapping({**settings, "api_key": EMBEDDED_API_KEY})
    except SimConfigError as exc:
        from_flag = flags.get(exc.setting) is not None
        where = f"--sim-{exc.setting.replace('_', '-')}" if from_flag else f"{profile.source}: simulator.{exc.setting}"
        raise _fail(f"{where}: {exc}", EXIT_USAGE) from None


def _with_flags(profile: Profile, **flags: Any) -> Profile:
    """The profile with the run command's overrides applied (flags left out are None)."""
    given = {key: value for key, value in flags.items() if value is not None}
    sections = {
        "target": ("base_url", "poll_interval_s"),
        "limits": ("mode", "create_rate", "poll_rate", "max_runs_in_flight", "max_batches_in_flight"),
        "webhooks": ("enabled", "public_url", "fallback", "listen_host", "listen_port"),
    }
    for section, keys in sections.items():
        changes = {key: given[key] for key in keys if key in given}
        if changes:
            profile = replace(profile, **{section: replace(getattr(profile, section), **changes)})
    if "grace_s" in given:
        profile = replace(profile, grace_s=given["grace_s"])
    return profile


SIM_HELP = "Embedded simulator (overrides the profile's \\[simulator] table): "


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
    hlog: Annotated[
        Path | None,
        typer.Option(help="Also write an HDR interval log (.hlog) of queue-to-completion, one histogram per interval."),
    ] = None,
    runs_log: Annotated[
        Path | None,
        typer.Option(
            help="The runs log: one JSON line per run as it ends, flushed every second (default: the results "
            "path with .runs.jsonl); 'stressor report' rebuilds the summary from it after a crash or kill -9."
        ),
    ] = None,
    poll_interval: Annotated[str | None, typer.Option(help="Override target.poll_interval, e.g. 250ms or 2s.")] = None,
    grace: Annotated[
        str | None,
        typer.Option(help="Override grace: how long to wait for runs in flight after the last stage."),
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            help="Override limits.mode: 'obey' (honour 429/503 and rate-limit headers, back off, breaker) or "
            "'stress' (keep the offered load; 429/503 are recorded as rejected runs)."
        ),
    ] = None,
    create_rate: Annotated[
        str | None, typer.Option(help="Override limits.create_rate: run-creating requests per time, e.g. 5/s.")
    ] = None,
    poll_rate: Annotated[str | None, typer.Option(help="Override limits.poll_rate: polls per time, e.g. 50/s.")] = None,
    max_runs_in_flight: Annotated[int | None, typer.Option(help="Override limits.max_runs_in_flight.", min=1)] = None,
    max_batches_in_flight: Annotated[
        int | None, typer.Option(help="Override limits.max_batches_in_flight.", min=1)
    ] = None,
    webhooks: Annotated[
        bool | None,
        typer.Option(
            "--webhooks/--no-webhooks",
            help="Override webhooks.enabled: end runs by signed webhooks (a receiver is started) instead of polling.",
        ),
    ] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold",
            "-t",
            help="A threshold on the results, like 'queue_to_completion.p95 < 90s' or 'failure_rate < 1%' "
            "(repeatable; added to the profile's thresholds). Add 'abort' to stop the run as soon as it breaks. "
            "Any failed: exit 5.",
        ),
    ] = None,
    junit: Annotated[
        Path | None, typer.Option(help="Write JUnit XML (a test case per threshold and scenario).")
    ] = None,
    html: Annotated[Path | None, typer.Option(help="Write a self-contained HTML report.")] = None,
    webhook_listen: Annotated[
        str | None, typer.Option(help="Override webhooks.listen: where the receiver binds, host:port (0: free port).")
    ] = None,
    webhook_url: Annotated[
        str | None,
        typer.Option(help="Override webhooks.public_url: the URL the API must call (register it with the API)."),
    ] = None,
    webhook_fallback: Annotated[
        str | None,
        typer.Option(help="Override webhooks.fallback: poll a run whose webhook is this late ('auto', '5s', 'off')."),
    ] = None,
    webhook_allow_remote: Annotated[
        bool,
        typer.Option(
            "--webhook-allow-remote",
            help="Let the webhook receiver bind an address that is not loopback (e.g. --webhook-listen 0.0.0.0:8090), "
            "opening a port to the network; without it such an address is refused.",
        ),
    ] = False,
    progress: Annotated[
        float,
        typer.Option(
            help="Live progress on stderr: a table on a terminal, else a line every this many seconds (0: none).",
            min=0,
        ),
    ] = 5.0,
    sim_slots: Annotated[int | None, typer.Option(help=SIM_HELP + "concurrent call slots (20).")] = None,
    sim_failure_rate: Annotated[
        float | None, typer.Option(help=SIM_HELP + "probability that a call ends failed (0).")
    ] = None,
    sim_call_duration: Annotated[
        str | None, typer.Option(help=SIM_HELP + "call duration distribution in API seconds (lognormal(45,0.3)).")
    ] = None,
    sim_time_scale: Annotated[
        float | None, typer.Option(help=SIM_HELP + "real seconds per API second of call (0.001).")
    ] = None,
    sim_seed: Annotated[int | None, typer.Option(help=SIM_HELP + "random seed.")] = None,
    workers: Annotated[
        str | None,
        typer.Option(
            help="Run on this many worker processes ('auto': one per core, or per thread of the --cluster): "
            "each starts its share of the batches and takes its share of every limit; results are merged.",
        ),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            help="Run the workers on the Dask cluster whose scheduler is at this address, e.g. "
            "tcp://10.0.0.5:8786 (needs stressor\\[dask] here and on every worker).",
        ),
    ] = None,
) -> None:
    """Run a profile: against the API at --base-url, or against an embedded simulator when none is given."""
    # What every run needs, imported before it starts (not at the top: other commands do not need it). The
    # session imports the engine, targets, workers and simulator; the report writers are imported below, only
    # for the outputs asked for.
    from stressor.distributed.cluster import ClusterUnavailable
    from stressor.distributed.tally import WORKER_LOST
    from stressor.intervals import interval_series
    from stressor.loopback import is_loopback
    from stressor.metrics import Outcome
    from stressor.report.console import render_summary
    from stressor.report.results import build_results, webhooks_figures
    from stressor.runlog import RunLog, stamps_of
    from stressor.session import EMBEDDED_API_KEY, Session, Where
    from stressor.targets.base import TargetUnavailable
    from stressor.thresholds import (
        ThresholdError,
        breached,
        evaluate,
        parse_thresholds,
        render_verdicts,
    )

    if mode is not None and mode not in ("obey", "stress"):
        raise typer.BadParameter("must be 'obey' or 'stress'", param_hint="--mode")
    scale = _scale(workers, cluster)
    listen = _flag(_listen_flag, webhook_listen, "--webhook-listen")
    profile = _with_flags(
        _load(profile_path),
        base_url=_flag(_url_flag, base_url, "--base-url") if base_url else None,
        poll_interval_s=_duration_flag(poll_interval, "--poll-interval"),
        grace_s=_duration_flag(grace, "--grace"),
        mode=mode,
        create_rate=_rate_flag(create_rate, "--create-rate"),
        poll_rate=_rate_flag(poll_rate, "--poll-rate"),
        max_runs_in_flight=max_runs_in_flight,
        max_batches_in_flight=max_batches_in_flight,
        enabled=webhooks,
        public_url=webhook_url,
        fallback=_flag(_fallback_flag, webhook_fallback, "--webhook-fallback"),
        listen_host=listen[0] if listen else None,
        listen_port=listen[1] if listen else None,
    )
    try:
        thresholds = parse_thresholds([*profile.thresholds, *(threshold or [])])
    except ThresholdError as exc:
        raise _fail(str(exc), EXIT_USAGE) from None
    if scale is not None and profile.webhooks.enabled:
        raise _fail(
            "--workers and --cluster follow runs by polling: webhooks would reach one receiver and not the worker "
            "that follows each run; run with --no-webhooks, or in one process",
            EXIT_USAGE,
        )
    hooks = profile.webhooks
    if hooks.enabled and not webhook_allow_remote and not is_loopback(hooks.listen_host):
        raise _fail(
            f"the webhook receiver would listen on {hooks.listen_host}:{hooks.listen_port}, which is not loopback: "
            "pass --webhook-allow-remote to open that port to the network, or listen on 127.0.0.1",
            EXIT_USAGE,
        )
    embedded = profile.target.base_url is None
    if embedded:
        simulator = _simulator_config(
            profile,
            {
                "slots": sim_slots,
                "failure_rate": sim_failure_rate,
                "call_duration": sim_call_duration,
                "time_scale": sim_time_scale,
                "seed": sim_seed,
            },
        )
        where = Where(base_url=None, api_key=EMBEDDED_API_KEY, simulator=simulator)
    else:
        if not api_key:
            raise _fail("no API key: set THUNDERPHONE_API_KEY (or pass --api-key)", EXIT_USAGE)
        _cost_guard(profile)
        secrets_ = tuple(s.strip() for s in os.environ.get(WEBHOOK_SECRET_ENV, "").split(",") if s.strip())
        if profile.webhooks.enabled and not secrets_:
            raise _fail(f"webhooks against a real API need the signing secret in {WEBHOOK_SECRET_ENV}", EXIT_USAGE)
        where = Where(base_url=profile.target.base_url, api_key=api_key, webhook_secrets=secrets_)
        fractional = sorted({s.batch.stagger_s for s in profile.stages if not float(s.batch.stagger_s).is_integer()})
        if fractional:
            # the API documents stagger_seconds as 0..60 without saying whether fractions are accepted
            _warn(
                f"stagger {', '.join(f'{v:g}s' for v in fractional)} is not a whole number of seconds: the API "
                "may refuse it (400) or round it; the simulator accepts fractions"
            )
    where = replace(where, webhook_allow_remote=webhook_allow_remote)

    log_path = runs_log or out.with_suffix(".runs.jsonl")
    outputs = {"--out": out, "--runs-log": log_path, "--hlog": hlog, "--junit": junit, "--html": html}
    for flag, path in outputs.items():
        _check_output(path, flag)
    log = RunLog(log_path)
    session = Session(
        profile, where, enforce_budget=not embedded, runs_log=log, scale=scale, warn=_warn
    )
    try:
        outcome = runtime.run(_run_session, session, progress or None, [t for t in thresholds if t.abort])
    except (TargetUnavailable, ClusterUnavailable) as exc:
        raise _fail(str(exc), EXIT_TARGET) from None
    except OSError as exc:
        raise _fail(f"could not start what the run needs: {exc}", EXIT_TARGET) from None
    finally:
        log.close()

    result = outcome.engine
    target_info: dict[str, Any] = {
        "kind": profile.target.kind,
        "embedded_simulator": embedded,
        "base_url": outcome.base_url,
    }
    if not embedded:
        target_info["api_key"] = mask_secret(api_key)
    intervals = list(
        interval_series(
            stamps_of(result.records), result.samples, result.metrics.anchor, result.t0_ns, profile.interval_s
        )
    )
    # The run's gates go with its figures, so that 'stressor report' checks them again (and JUnit shows them).
    document = build_results(
        result,
        profile,
        target_info,
        intervals,
        webhooks=webhooks_figures(outcome),
        server=outcome.server,
        thresholds=[t.text for t in thresholds],
    )
    verdicts = evaluate(thresholds, document)
    # The paths were checked before the run, but a disk may fill or a directory vanish while it goes: the
    # summary is printed anyway, and the runs log (written as runs ended) still holds every run.
    writers: list[tuple[str, Path, Callable[[Path], object]]] = [
        ("results", out, lambda path: _write_results(path, document))
    ]
    if hlog is not None:
        from stressor.report.hlog import write_hlog

        writers.append(("HDR log", hlog, lambda path: write_hlog(path, intervals, document.started_at)))
    if junit is not None:
        from stressor.report.junit import junit_xml

        writers.append(("JUnit XML", junit, lambda path: _write_text(path, junit_xml(document, verdicts))))
    if html is not None:
        from stressor.report.html import render_html

        writers.append(("HTML report", html, lambda path: _write_text(path, render_html(document, verdicts))))
    unwritten = [
        f"could not write the {what} to {path}: {error}"
        for what, path, write in writers
        if (error := _write_or_say(path, write)) is not None
    ]
    typer.echo(render_summary(document))
    if verdicts:
        typer.echo("\n" + render_verdicts(verdicts))
    typer.echo(f"\nresults: {out}  runs log: {log.path}")
    if unwritten:
        raise _fail(
            "; ".join(unwritten) + f"; the runs log {log.path} has every run ('stressor report {log.path}' "
            "rebuilds the results)",
            EXIT_USAGE,
        )
    if result.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    if result.stop_cause == "breaker":
        raise _fail(f"stopped early by the breaker: {result.stop_reason}", EXIT_BREAKER)
    if result.stop_cause == WORKER_LOST:
        raise _fail(str(result.stop_reason), EXIT_WORKER_LOST)
    if result.stop_reason is not None and result.stop_cause not in ("threshold", "budget"):
        raise _fail(f"stopped early: {result.stop_reason}", EXIT_TARGET)
    if unknown := result.metrics.outcomes[Outcome.UNKNOWN]:
        raise _fail(
            f"{unknown} runs are unknown: stressor could not tell whether they exist or how they ended "
            "(the summary's errors say why); the figures leave them out",
            EXIT_UNKNOWN,
        )
    if breached(verdicts) or result.stop_cause == "threshold":
        failed = sum(not v.passed for v in verdicts)
        raise _fail(f"{failed} of {len(verdicts)} thresholds failed", EXIT_THRESHOLDS)


def _write_or_say(path: Path, write: Callable[[Path], object]) -> str | None:
    """Run a writer; the reason it failed, or None."""
    try:
        write(path)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _write_results(path: Path, document: Results) -> None:
    """write_results, without leaving its temporary file behind when the final rename fails."""
    from stressor.report.results import write_results

    try:
        write_results(path, document)
    except OSError:
        path.with_name(f".{path.name}.tmp").unlink(missing_ok=True)
        raise


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _scale(workers: str | None, cluster: str | None) -> Scale | None:
    """Where the run's workers go: None for one process (no --workers, no --cluster)."""
    if workers is None and cluster is None:
        return None
    from stressor.session import Scale

    count = None
    if workers not in (None, "auto"):
        if not workers.isdigit() or int(workers) < 1:
            raise typer.BadParameter(
                f"must be a whole number of workers >= 1 or 'auto', got {workers!r}", param_hint="--workers"
            )
        count = int(workers)
    if cluster is not None and not cluster.strip():
        raise typer.BadParameter(
            "must be the address of a Dask scheduler, like tcp://10.0.0.5:8786", param_hint="--cluster"
        )
    return Scale(workers=count, cluster=cluster, lead_s=2.0 if cluster is None else 4.0)


def _warn(message: str) -> None:
    typer.echo(f"stressor: {message}", err=True)


def _flag(convert: Callable[[str], T], value: str | None, flag: str) -> T | None:
    if value is None:
        return None
    try:
        return convert(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=flag) from None


def _url_flag(value: str) -> str:
    """An API base URL (from --base-url or STRESSOR_BASE_URL): http(s), a host, a port that exists."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL like https://api.example.com, got {value!r}")
    try:
        port = parts.port  # urlsplit checks the port only when asked for it
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError(f"has a port that is not a number from 1 to 65535, in {value!r}")
    return value.strip().rstrip("/")


def _listen_flag(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"must be host:port like 127.0.0.1:8090 (port 0: any free one), got {value!r}")
    return host.strip("[]"), int(port)


def _fallback_flag(value: str) -> float | str:
    if value in ("auto", "off"):
        return value
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("must be 'auto', 'off' or a duration greater than zero")
    return seconds


# ---------------------------------------------------------------------------------------------------- plan


@app.command()
def plan(
    profile_path: Annotated[Path, typer.Argument(metavar="PROFILE", help="Profile file (TOML or JSON).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Show what a profile would do, sending nothing: batches, runs, peak in flight, requests, cost."""
    from stressor.estimate import assumptions_line, estimate, plan_document

    profile = _load(profile_path)
    if as_json:
        typer.echo(orjson.dumps(plan_document(profile), option=orjson.OPT_INDENT_2).decode())
        return
    stages, total = estimate(profile)
    typer.echo(f"plan of {profile.name!r} ({profile.source}): sends nothing")
    typer.echo(f"  {assumptions_line(profile)}")
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


# ---------------------------------------------------------------------------------------------------- capacity


@dataclass
class _Search:
    """The capacity search's state, shared between its steps and the signal watcher (one per search)."""

    steps: list[Step] = field(default_factory=list)
    session: Session | None = None
    interrupted: bool = False


async def _capacity_steps(
    profile: Profile, where: Where, model: str, step_levels: list[float], duration_s: float, slos: list[Threshold]
) -> _Search:
    """Run the steps until one breaks. Ctrl-C / SIGTERM stops the step that runs (its partial figures are not
    a step) and keeps the steps measured so far."""
    # 'capacity' has imported these (itself or through the session) before runtime.run: only looked up here.
    from stressor.capacity import measure_step, step_profile
    from stressor.report.results import build_results
    from stressor.session import Session
    from stressor.sim.server import SimulatorProcess
    from stressor.targets.base import TargetUnavailable

    search = _Search()

    async def interrupt_on_signal() -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                typer.echo("stressor: interrupted; keeping the steps measured so far", err=True)
                search.interrupted = True
                if search.session is not None:
                    search.session.interrupt()
                return

    async def search_steps() -> None:
        async with AsyncExitStack() as stack:
            here = where
            if here.base_url is None:  # one simulator for every step, so the search measures the load, not boots
                assert here.simulator is not None
                here = replace(here, base_url=await stack.enter_async_context(SimulatorProcess(here.simulator)))
            for level in step_levels:
                if search.interrupted:
                    return
                step_run = step_profile(profile, level, model, duration_s)  # type: ignore[arg-type]
                search.session = Session(step_run, here, enforce_budget=False)
                outcome = await search.session.run()
                if outcome.engine.interrupted or search.interrupted:
                    return
                document = build_results(outcome.engine, step_run, {"base_url": outcome.base_url})
                step = measure_step(level, document, slos)
                search.steps.append(step)
                typer.echo(_capacity_row(step), err=True)
                if not step.held:
                    return

    failure: TargetUnavailable | OSError | None = None
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(interrupt_on_signal)
        try:
            await search_steps()
        except (TargetUnavailable, OSError) as exc:
            failure = exc  # raised outside the task group, or it would come wrapped in an ExceptionGroup
        tasks.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return search


def _capacity_row(step: Step) -> str:
    def fmt(value: float | None) -> str:
        return "-" if value is None else format_duration(value)

    rate = "-" if step.failure_rate is None else f"{step.failure_rate:.1%}"
    verdict = "held" if step.held else "BROKE: " + "; ".join(v.sentence for v in step.verdicts if not v.passed)
    return (
        f"  {step.level:>8g}  p50 {fmt(step.p50_s):>8}  p95 {fmt(step.p95_s):>8}  p99 {fmt(step.p99_s):>8}"
        f"  failures {rate:>6}  completed {step.completed_per_s:6.3g}/s  {verdict}"
    )


@app.command()
def check(
    profile_path: Annotated[
        Path | None,
        typer.Argument(
            metavar="[PROFILE]",
            help="Profile whose target (or [simulator] table, for the embedded simulator) is checked.",
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            envvar="STRESSOR_BASE_URL",
            help="API to check. Default: the profile's target.base_url, else an embedded simulator.",
        ),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="THUNDERPHONE_API_KEY", show_default=False, help="API key.")
    ] = None,
    webhook_url: Annotated[
        str | None, typer.Option(help="Also check that this webhook receiver answers (a GET: nothing is delivered).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """Check what a run relies on, sending nothing billable: the key, the lists' order, offset and page size,
    batch names, the server's clock and rate-limit headers (and a webhook receiver). Exit 3 when a run could
    not start or could not follow its runs there.

    Example: THUNDERPHONE_API_KEY=sk_live_... stressor check --base-url https://api.thunderphone.com
    """
    from stressor.session import EMBEDDED_API_KEY

    profile = _load(profile_path) if profile_path is not None else None
    url = _flag(_url_flag, base_url, "--base-url") if base_url else (profile.target.base_url if profile else None)
    simulator = None
    if url is None:
        simulator = _simulator_config(profile, {}) if profile is not None else _default_simulator()
        api_key = EMBEDDED_API_KEY
    elif not api_key:
        raise _fail("no API key: set THUNDERPHONE_API_KEY (or pass --api-key)", EXIT_USAGE)
    hook = _flag(_url_flag, webhook_url, "--webhook-url") if webhook_url else None
    try:
        rows = runtime.run(_check_rows, url, api_key, simulator, hook, tune_gc=False)
    except OSError as exc:
        raise _fail(f"could not start what the check needs: {exc}", EXIT_TARGET) from None
    if as_json:
        typer.echo(orjson.dumps([{"check": r.what, "verdict": r.verdict, "seen": r.seen} for r in rows]).decode())
    else:
        width = max(len(row.what) for row in rows)
        typer.echo(f"{'check':<{width}}  {'verdict':<7}  seen")
        for row in rows:
            typer.echo(f"{row.what:<{width}}  {row.verdict:<7}  {row.seen}")
    if any(row.verdict in ("fail", "refuses") for row in rows):
        raise typer.Exit(EXIT_TARGET)


def _default_simulator() -> SimConfig:
    from stressor.session import EMBEDDED_API_KEY
    from stressor.sim.config import SimConfig

    return SimConfig(api_key=EMBEDDED_API_KEY)


async def _check_rows(url: str | None, api_key: str, simulator: SimConfig | None, hook: str | None) -> list[Any]:
    import httpx

    from stressor.metrics import Metrics
    from stressor.targets.testcalls.preflight import CheckRow, check_rows
    from stressor.targets.testcalls.target import TestCallsTarget
    from stressor.timestamps import ClockAnchor

    async with AsyncExitStack() as stack:
        if url is None:
            from stressor.sim.server import SimulatorProcess

            url = await stack.enter_async_context(SimulatorProcess(simulator))
        target = TestCallsTarget(url, api_key, Metrics(ClockAnchor.now()))
        stack.push_async_callback(target.aclose)
        rows = check_rows(await target.inspect())
        if hook is not None:
            try:
                async with httpx.AsyncClient(timeout=10.0) as client:
                    answer = await client.get(hook)
                rows.append(CheckRow("webhook receiver", f"{hook} answered {answer.status_code} to a GET", "ok"))
            except httpx.HTTPError as exc:
                rows.append(CheckRow("webhook receiver", f"{hook} could not be reached ({type(exc).__name__})", "fail"))
        return rows


@app.command()
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
        str, typer.Option(help="Step runs in flight ('closed') or batch arrivals per second ('open').")
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
    from stressor.capacity import knee, levels, step_profile
    from stressor.report.results import build_results  # noqa: F401 (for _capacity_steps)
    from stressor.session import EMBEDDED_API_KEY, Where
    from stressor.sim.server import SimulatorProcess  # noqa: F401 (for _capacity_steps)
    from stressor.targets.base import TargetUnavailable
    from stressor.thresholds import ThresholdError, parse_thresholds

    if model not in ("closed", "open"):
        raise _fail("--model must be 'closed' or 'open'", EXIT_USAGE)
    profile = _with_flags(_load(profile_path), base_url=_flag(_url_flag, base_url, "--base-url") if base_url else None)
    duration_s = _duration_flag(step_duration, "--step-duration")
    assert duration_s is not None
    try:
        slos = parse_thresholds(slo or ["queue_to_completion.p95 < 90s", "failure_rate < 5%"])
        step_levels = levels(start, step, max_level)
    except (ThresholdError, ValueError) as exc:
        raise _fail(str(exc), EXIT_USAGE) from None
    if profile.target.base_url is None:
        simulator = _simulator_config(profile, {"slots": sim_slots, "call_duration": sim_call_duration})
        where = Where(base_url=None, api_key=EMBEDDED_API_KEY, simulator=simulator)
    else:
        if not api_key:
            raise _fail("no API key: set THUNDERPHONE_API_KEY (or pass --api-key)", EXIT_USAGE)
        _cost_guard(
            replace(profile, stages=tuple(step_profile(profile, lv, model, duration_s).stages[0] for lv in step_levels))
        )  # type: ignore[arg-type]
        where = Where(base_url=profile.target.base_url, api_key=api_key)
    _check_output(out, "--out")
    _check_output(html, "--html")
    load_label = "runs in flight" if model == "closed" else "batches per second"
    typer.echo(
        f"capacity search of {profile.name!r}: {load_label} from {start:g} by {step:g} up to {max_level:g}, "
        f"{format_duration(duration_s)} a step; SLO: {', '.join(t.text for t in slos)}",
        err=True,
    )
    try:
        search = runtime.run(_capacity_steps, profile, where, model, step_levels, duration_s, slos)
    except TargetUnavailable as exc:
        raise _fail(str(exc), EXIT_TARGET) from None
    except OSError as exc:
        raise _fail(f"could not start what the search needs: {exc}", EXIT_TARGET) from None
    steps = search.steps
    found = knee(steps)
    rows = [
        {
            "level": s.level,
            "p50": s.p50_s,
            "p95": s.p95_s,
            "p99": s.p99_s,
            "failure_rate": s.failure_rate,
            "completed_per_s": s.completed_per_s,
            "held": s.held,
            "broken": [v.sentence for v in s.verdicts if not v.passed],
        }
        for s in steps
    ]
    held = found.last_held.level if found.last_held else None
    broke = found.first_broke.level if found.first_broke else None
    if out is not None:
        out.write_bytes(
            orjson.dumps(
                {
                    "model": model,
                    "load": load_label,
                    "slos": [t.text for t in slos],
                    "steps": rows,
                    "knee": {"last_held": held, "first_broke": broke},
                    "interrupted": search.interrupted,
                },
                option=orjson.OPT_INDENT_2,
            )
        )
    if html is not None:
        from stressor.report.html import render_capacity_html

        html.write_text(render_capacity_html(f"Capacity of {profile.name}", load_label, rows, slos), encoding="utf-8")
    if broke is None:
        if held is None:
            typer.echo("no step ran to its end")
        elif search.interrupted:
            typer.echo(f"knee so far (interrupted): held up to {held:g} {load_label}; no step broke the SLO yet")
        else:
            typer.echo(f"no step broke the SLO up to {max_level:g} {load_label}; the last held at {held:g}")
    else:
        where_held = f"held at {held:g}" if held is not None else "broke at the first step"
        typer.echo(f"knee: {where_held}, broke at {broke:g} {load_label}")
    if search.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)


# ---------------------------------------------------------------------------------------------------- report

app.command("report")(report)
app.command("compare")(compare)


def main() -> None:
    """Console entry point."""
    app(prog_name="stressor")
