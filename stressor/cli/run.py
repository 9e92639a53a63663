"""``stressor run``: parse the flags, then the use case (``stressor.running``: prepare, execute; then
``stressor.report.conclude``), write the outputs, print, exit."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from stressor.cli.flags import (
    CREATE_RATE_OPTION,
    DURATION_OPTION,
    GRACE_OPTION,
    MAX_BATCHES_OPTION,
    MAX_RUNS_OPTION,
    MODE_OPTION,
    POLL_INTERVAL_OPTION,
    POLL_RATE_OPTION,
    RATE_OPTION,
    duration_flag,
    fail,
    fallback_flag,
    flag,
    listen_flag,
    load,
    rate_flag,
    rate_scale_flag,
    refused,
    scale_flags,
    sim_option,
    url_flag,
    warn,
)
from stressor.running import WEBHOOK_SECRET_ENV, ExitCode, Outputs, Overrides, RunError, RunRequest
from stressor.units import parse_duration

if TYPE_CHECKING:
    from stressor.document import Results
    from stressor.profile import Profile
    from stressor.report.conclude import Conclusion
    from stressor.session import Runner, Session
    from stressor.thresholds import Threshold

EXAMPLES = (
    "stressor run profiles/smoke.toml",
    "stressor run profiles/smoke.toml --sim-failure-rate 0.2 -t 'failure_rate < 25%' --junit junit.xml",
    "stressor run profiles/ramp.toml --duration 1m --rate 2x",
    "THUNDERPHONE_API_KEY=sk_live_... stressor run my-profile.toml --base-url https://api.thunderphone.com",
)


def run(
    profile_path: Annotated[Path, typer.Argument(metavar="PROFILE", help="Profile file (TOML or JSON).")],
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            envvar="STRESSOR_BASE_URL",
            metavar="URL",
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
            metavar="KEY",
            help="API key (Bearer). Prefer the environment variable: a flag shows in the process list. "
            "Never printed or written to results.",
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", metavar="PATH", help="Where to write the JSON results.")] = Path(
        "results.json"
    ),
    hlog: Annotated[
        Path | None,
        typer.Option(
            metavar="PATH",
            help="Also write an HDR interval log (.hlog) of queue-to-completion, one histogram per interval.",
        ),
    ] = None,
    runs_log: Annotated[
        Path | None,
        typer.Option(
            metavar="PATH",
            help="The runs log: one JSON line per run as it ends, flushed every half second (default: the results "
            "path with .runs.jsonl); 'stressor report' rebuilds the summary from it after a crash or kill -9.",
        ),
    ] = None,
    calls: Annotated[
        bool | None,
        typer.Option(
            "--calls/--no-calls",
            help="Override calls.fetch: fetch each ended run's call log (GET /v1/calls/{id}: duration, end reason, "
            "product, billing, grade) as runs end, into the calls log and the run records.",
        ),
    ] = None,
    transcripts: Annotated[
        bool,
        typer.Option(
            "--transcripts",
            help="Also fetch each call's transcript into the calls log (calls.transcripts; implies --calls).",
        ),
    ] = False,
    calls_log: Annotated[
        Path | None,
        typer.Option(
            help="The calls log: one JSON line per call fetched, with its transcript when asked (default: the "
            "results path with .calls.jsonl)."
        ),
    ] = None,
    poll_interval: Annotated[str | None, POLL_INTERVAL_OPTION] = None,
    grace: Annotated[str | None, GRACE_OPTION] = None,
    grades_wait: Annotated[
        str | None,
        typer.Option(
            metavar="DURATION",
            help="Override grades.wait: how long after the last run ended grades are waited for, and calls.delay "
            "with it, e.g. 0s against the embedded simulator, which grades a call as it ends.",
        ),
    ] = None,
    duration: Annotated[str | None, DURATION_OPTION] = None,
    rate: Annotated[str | None, RATE_OPTION] = None,
    mode: Annotated[Literal["obey", "stress"] | None, MODE_OPTION] = None,
    create_rate: Annotated[str | None, CREATE_RATE_OPTION] = None,
    poll_rate: Annotated[str | None, POLL_RATE_OPTION] = None,
    max_runs_in_flight: Annotated[int | None, MAX_RUNS_OPTION] = None,
    max_batches_in_flight: Annotated[int | None, MAX_BATCHES_OPTION] = None,
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
            metavar="EXPR",
            help="A threshold on the results, like 'queue_to_completion.p95 < 90s' or 'failure_rate < 1%' "
            "(repeatable; added to the profile's thresholds). Add 'abort' to stop the run as soon as it breaks. "
            "Any failed: exit 5.",
        ),
    ] = None,
    junit: Annotated[
        Path | None, typer.Option(metavar="PATH", help="Write JUnit XML (a test case per threshold and scenario).")
    ] = None,
    html: Annotated[Path | None, typer.Option(metavar="PATH", help="Write a self-contained HTML report.")] = None,
    webhook_listen: Annotated[
        str | None,
        typer.Option(
            metavar="HOST:PORT", help="Override webhooks.listen: where the receiver binds, host:port (0: free port)."
        ),
    ] = None,
    webhook_url: Annotated[
        str | None,
        typer.Option(
            metavar="URL", help="Override webhooks.public_url: the URL the API must call (register it with the API)."
        ),
    ] = None,
    webhook_fallback: Annotated[
        str | None,
        typer.Option(
            metavar="auto|off|DURATION",
            help="Override webhooks.fallback: poll a run whose webhook is this late ('auto', '5s', 'off').",
        ),
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
            metavar="SECONDS",
            help="Live progress on stderr: a view redrawn in place on a terminal (80 columns at most), else a line "
            "every this many seconds (0: none).",
            min=0,
        ),
    ] = 5.0,
    dashboard: Annotated[
        bool,
        typer.Option(
            "--dashboard",
            help="Serve a live dashboard while the run goes: the HTML report's charts, updated every interval, on "
            "loopback (its URL is printed on stderr); it stops with the run.",
        ),
    ] = False,
    dashboard_listen: Annotated[
        str | None,
        typer.Option(
            metavar="HOST:PORT",
            help="Where the dashboard listens, host:port on loopback (default 127.0.0.1:0: a free port); implies "
            "--dashboard.",
        ),
    ] = None,
    sim_slots: Annotated[int | None, sim_option("slots")] = None,
    sim_failure_rate: Annotated[float | None, sim_option("failure_rate")] = None,
    sim_call_duration: Annotated[str | None, sim_option("call_duration")] = None,
    sim_time_scale: Annotated[float | None, sim_option("time_scale")] = None,
    sim_seed: Annotated[int | None, sim_option("seed")] = None,
    sim_agent_versions: Annotated[str | None, sim_option("agent_versions")] = None,
    workers: Annotated[
        str | None,
        typer.Option(
            metavar="N|auto",
            help="Run on this many worker processes ('auto': one per core, or per thread of the --cluster): "
            "each starts its share of the batches and takes its share of every limit; results are merged.",
        ),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            metavar="ADDRESS",
            help="Run the workers on the Dask cluster whose scheduler is at this address, e.g. "
            "tcp://10.0.0.5:8786 (needs stressor\\[dask] here and on every worker).",
        ),
    ] = None,
) -> None:
    """Run a profile: against the API at --base-url, or against an embedded simulator when none is given."""
    # What every run needs, imported before it starts (not at the top: other commands do not need it), so that
    # it is loaded (and frozen by the run's gc tuning) before the load starts. The session imports the engine
    # and the targets (the simulator's process and the workers only when a run uses them); the report writers
    # are imported below, only for the outputs asked for.
    from stressor.report.conclude import after_writes, conclude
    from stressor.running import execute, prepare

    if transcripts and calls is False:
        raise typer.BadParameter("transcripts come with the call logs: drop --no-calls", param_hint="--transcripts")
    scale = scale_flags(workers, cluster)
    listen = flag(listen_flag, webhook_listen, "--webhook-listen")
    board = _dashboard_address(dashboard_listen) if dashboard or dashboard_listen is not None else None
    profile = load(profile_path)
    overrides = Overrides(
        base_url=flag(url_flag, base_url, "--base-url") if base_url else None,
        poll_interval_s=duration_flag(poll_interval, "--poll-interval"),
        grace_s=duration_flag(grace, "--grace"),
        grades_wait_s=flag(parse_duration, grades_wait, "--grades-wait"),
        rate=rate_scale_flag(rate),
        duration_s=duration_flag(duration, "--duration"),
        mode=mode,
        create_rate=rate_flag(create_rate, "--create-rate"),
        poll_rate=rate_flag(poll_rate, "--poll-rate"),
        max_runs_in_flight=max_runs_in_flight,
        max_batches_in_flight=max_batches_in_flight,
        enabled=webhooks,
        public_url=webhook_url,
        fallback=flag(fallback_flag, webhook_fallback, "--webhook-fallback"),
        listen_host=listen[0] if listen else None,
        listen_port=listen[1] if listen else None,
        calls=calls,
        transcripts=True if transcripts else None,
    )
    outputs = Outputs(out, runs_log or out.with_suffix(".runs.jsonl"), hlog=hlog, junit=junit, html=html)
    request = RunRequest(
        outputs=outputs,
        overrides=overrides,
        thresholds=tuple(threshold or ()),
        api_key=api_key,
        webhook_secrets=tuple(s.strip() for s in os.environ.get(WEBHOOK_SECRET_ENV, "").split(",") if s.strip()),
        webhook_allow_remote=webhook_allow_remote,
        simulator={
            "slots": sim_slots,
            "failure_rate": sim_failure_rate,
            "call_duration": sim_call_duration,
            "time_scale": sim_time_scale,
            "seed": sim_seed,
            "agent_versions": sim_agent_versions,
        },
        scale=scale,
        calls_log=calls_log,
    )
    try:
        prepared = prepare(profile, request)
        for warning in prepared.warnings:
            warn(warning)
        watchers = [_progress_watcher(progress)] if progress else []
        if board is not None:
            watchers.append(_dashboard_watcher(*board, outputs, prepared.thresholds))
        outcome = execute(prepared, live_figures=_live_figures, notice=warn, watchers=watchers)
    except RunError as exc:
        raise refused(exc) from None

    conclusion = conclude(outcome, prepared)
    # The paths were checked before the run, but a disk may fill or a directory vanish while it goes: the
    # summary is printed anyway, and the runs log (written as runs ended) still holds every run.
    unwritten = [
        f"could not write the {what} to {path}: {error}"
        for what, path, write in _writers(outputs, conclusion)
        if (error := _write_or_say(path, write)) is not None
    ]
    for line in conclusion.lines:
        typer.echo(line)
    ending = after_writes(conclusion, unwritten, outputs.runs_log)
    if ending.sentence is not None:
        raise fail(ending.sentence, ending.code)
    if ending.code is not ExitCode.OK:
        raise typer.Exit(ending.code)


def _live_figures(runner: Runner, profile: Profile) -> Results:
    """The figures so far, as abort thresholds read them (no histograms: only their summaries are checked)."""
    from stressor.report.results import figures

    return figures(runner.metrics, runner.governor, profile, runner.elapsed_s(), with_histograms=False)


def _progress_watcher(every_s: float) -> Callable[[Session], Any]:
    """Live progress on stderr: on a terminal a view redrawn twice a second, as wide as the terminal up to 80
    columns (never wrapped); plain lines every ``every_s`` when stderr is a log (CI)."""
    import anyio
    from rich.console import Console
    from rich.live import Live

    from stressor.progress import ProgressWindow
    from stressor.report.progress import WIDTH, progress_line, progress_view

    async def report_progress(session: Session) -> None:
        console = Console(stderr=True)
        window = ProgressWindow()  # rates and percentiles of the last few seconds, not the whole run's
        if console.is_terminal:
            with Live(console=console, refresh_per_second=2, transient=True) as live:
                while True:
                    await anyio.sleep(0.5)
                    if session.engine is not None:
                        # the terminal's width is read each time: a resized window gets a view that fits
                        live.update(progress_view(window.read(session.engine), min(console.width, WIDTH)))
        while True:
            await anyio.sleep(every_s)
            if session.engine is not None:
                typer.echo(progress_line(window.read(session.engine)), err=True)

    return report_progress


def _dashboard_address(listen: str | None) -> tuple[str, int]:
    """Where the dashboard listens: loopback only (else one sentence, exit 2), and free (checked before the run
    starts when a port is given)."""
    from stressor.asgi_server import bind
    from stressor.loopback import is_loopback

    if listen is None:
        return "127.0.0.1", 0
    address = flag(listen_flag, listen, "--dashboard-listen")
    assert address is not None
    host, port = address
    if not is_loopback(host):
        raise fail(
            f"--dashboard-listen {listen}: the dashboard serves on loopback only (127.0.0.1, ::1 or localhost), "
            f"not on {host}",
            ExitCode.USAGE,
        )
    if port:
        try:
            bind(host, port).close()
        except OSError as exc:
            reason = exc.strerror or exc
            raise fail(f"--dashboard-listen {listen}: cannot listen there ({reason})", ExitCode.USAGE) from None
    return host, port


def _dashboard_watcher(
    host: str, port: int, outputs: Outputs, thresholds: Sequence[Threshold]
) -> Callable[[Session], Any]:
    """The live dashboard, served beside the run on host:port."""
    from stressor.report.dashboard import ending_note, serve_dashboard

    ending = ending_note(outputs.html, outputs.results)

    async def dashboard(session: Session) -> None:
        await serve_dashboard(session, host, port, ending=ending, say=warn, thresholds=thresholds)

    return dashboard


def _writers(outputs: Outputs, conclusion: Conclusion) -> list[tuple[str, Path, Callable[[Path], object]]]:
    """The files to write at the end: the results, and the reports asked for."""
    document, verdicts = conclusion.document, conclusion.verdicts
    writers: list[tuple[str, Path, Callable[[Path], object]]] = [
        ("results", outputs.results, lambda path: _write_results(path, document))
    ]
    if outputs.hlog is not None:
        from stressor.report.hlog import write_hlog

        writers.append(
            ("HDR log", outputs.hlog, lambda path: write_hlog(path, conclusion.intervals, document.started_at))
        )
    if outputs.junit is not None:
        from stressor.report.junit import junit_xml

        writers.append(("JUnit XML", outputs.junit, lambda path: _write_text(path, junit_xml(document, verdicts))))
    if outputs.html is not None:
        from stressor.report.html import render_html

        writers.append(("HTML report", outputs.html, lambda path: _write_text(path, render_html(document, verdicts))))
    return writers


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
