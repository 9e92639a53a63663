"""``stressor sim``: run the test-calls simulator in the foreground until Ctrl-C.

``python -m stressor.sim`` runs it on its own (``main``), as ``SimulatorProcess`` starts it. Every option but
``--host``, ``--port`` and ``--allow-remote`` is a ``SimConfig`` setting of the same name (snake_case); the API
key and the webhook secret are best given by environment, and are never printed.
"""

from __future__ import annotations

import os
import signal
from typing import Annotated

import anyio
import typer

from stressor.loopback import is_loopback
from stressor.running import ExitCode
from stressor.sim.config import (
    API_KEY_ENV,
    DEFAULT_CALL_DURATION,
    DEFAULT_GRADE_SCORE,
    GRADE_SCALES,
    PRODUCTS,
    RATE_LIMIT_STATUSES,
    REORDER_WINDOW_S,
    WEBHOOK_SECRET_ENV,
    BatchNameForm,
    IdForm,
    ListOffset,
    ListOrder,
    RateLimitHeaders,
    RateLimitScope,
    RetryAfterForm,
    SimConfig,
    SimConfigError,
    WebhookPayload,
)
from stressor.sim.windows import ErrorStatus

# Every stressor command imports this module (to register the command): the server (uvicorn, httpx, the ASGI
# app) is imported only when the simulator is started.

EXAMPLES = (
    "stressor sim --port 8080 --slots 5 --failure-rate 0.1",
    "stressor sim --port 0 --list-order oldest --rate-limit 5 --rate-limit-scope create --retry-after none",
)


def _one_of(choices: tuple[object, ...]) -> str:
    return "|".join(str(choice) for choice in choices)


async def _serve_until_stopped(config: SimConfig, host: str, port: int) -> None:
    from stressor.sim.server import LISTENING_PREFIX, PARENT_PID_ENV, serve

    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with serve(config, host, port) as running, anyio.create_task_group() as watchers:
            typer.echo(f"{LISTENING_PREFIX}{running.base_url}")
            parent = os.environ.get(PARENT_PID_ENV)
            if parent and parent.isdigit():
                watchers.start_soon(_exit_with_parent, int(parent))
            async for _ in signals:
                break
            watchers.cancel_scope.cancel()


async def _exit_with_parent(parent_pid: int) -> None:
    """An embedded simulator must not outlive the stressor that started it, even one killed with -9."""
    while os.getppid() == parent_pid:
        await anyio.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)


def sim(
    *,
    host: Annotated[
        str, typer.Option(metavar="HOST", help="Address to listen on; only loopback unless --allow-remote is given.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(metavar="PORT", min=0, max=65535, help="TCP port to listen on (0 picks a free one).")
    ] = 8080,
    slots: Annotated[
        int,
        typer.Option(metavar="N", help="Org-wide concurrent call slots: at most this many runs in progress at once."),
    ] = 20,
    call_duration: Annotated[
        str,
        typer.Option(
            metavar="DIST",
            help="Call length in API seconds: fixed(x), uniform(a,b), lognormal(median,sigma) or exponential(mean).",
        ),
    ] = str(DEFAULT_CALL_DURATION),
    time_scale: Annotated[
        float,
        typer.Option(
            metavar="S",
            help="Real seconds per API second of call (0.001: a 45 s call lasts 45 ms); stagger is not scaled.",
        ),
    ] = 0.001,
    failure_rate: Annotated[float, typer.Option(metavar="P", help="Probability (0..1) that a run ends failed.")] = 0.0,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar=API_KEY_ENV,
            show_default=False,
            metavar="KEY",
            help="Accept only this Bearer key (default: any non-empty key).",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(metavar="N", help="Seed of durations, failures, grades and ids (default: random).")
    ] = None,
    estimated_cost_cents: Annotated[
        int, typer.Option(metavar="CENTS", help="Pre-call cost estimate of one run, in cents.")
    ] = 16,
    charge_multiplier: Annotated[
        int, typer.Option(metavar="N", help="Test calls cost this many times the normal rate.")
    ] = 2,
    product: Annotated[
        str,
        typer.Option(metavar="PRODUCT", help=f"Product tier of agents --agents does not name: {', '.join(PRODUCTS)}."),
    ] = "spark",
    agents: Annotated[
        str | None,
        typer.Option(
            metavar="ID=TIER,...",
            show_default=False,
            help="Which product tier each agent runs on, e.g. 201=spark,202=bolt,203=storm-base (tiers differ in "
            "call length, time to first audio and grades; default: every agent on --product).",
        ),
    ] = None,
    agent_versions: Annotated[
        str | None,
        typer.Option(
            metavar="ID=VERSION,...",
            show_default=False,
            help="Behaviour version of agents, e.g. 201=2: a version above 1 stands for a prompt change that "
            "rewords or breaks some scenarios (default: every agent at version 1).",
        ),
    ] = None,
    list_order: Annotated[
        ListOrder, typer.Option(help="Order of the run and batch lists: newest (first) or oldest (first).")
    ] = "newest",
    list_offset: Annotated[
        ListOffset,
        typer.Option(help="Whether lists honour offset (honoured) or start every page at the start (ignored)."),
    ] = "honoured",
    page_cap: Annotated[
        int | None,
        typer.Option(
            show_default=False,
            metavar="N",
            help="Most items a list page holds whatever limit asks, so a short page is not the end (default: none).",
        ),
    ] = None,
    batch_name: Annotated[
        BatchNameForm,
        typer.Option(
            help="How batches show their name: whole (as sent), absent (no name key) or truncated "
            "(to --batch-name-length characters)."
        ),
    ] = "whole",
    batch_name_length: Annotated[
        int, typer.Option(metavar="N", help="Characters of a batch name kept with --batch-name truncated.")
    ] = 16,
    clock_offset: Annotated[
        str,
        typer.Option(
            metavar="DURATION",
            help="Seconds the server's clock is ahead (6s) or behind (-6s): added to every stamp it writes and to "
            "Date; ground truth keeps true times.",
        ),
    ] = "0",
    ids: Annotated[
        IdForm,
        typer.Option(help="Ids of runs, batches and calls: int (JSON integers, as the docs) or string (tc_...)."),
    ] = "int",
    rate_limit: Annotated[
        str | None,
        typer.Option(
            show_default=False,
            metavar="RATE",
            help="Requests per second the API admits (10, or 600/min); beyond it requests are refused and create "
            "nothing (default: no limit).",
        ),
    ] = None,
    rate_limit_burst: Annotated[
        int | None,
        typer.Option(
            show_default=False,
            metavar="N",
            help="Requests the rate limit admits back to back after a quiet spell (default: one second's worth).",
        ),
    ] = None,
    rate_limit_scope: Annotated[
        RateLimitScope,
        typer.Option(help="What the rate limit counts: all (every API request) or create (run-creating POSTs)."),
    ] = "all",
    rate_limit_status: Annotated[
        int,
        typer.Option(
            metavar=_one_of(RATE_LIMIT_STATUSES),
            help="Status of a request refused by the rate limit: 429, or 503 as some gateways answer.",
        ),
    ] = 429,
    retry_after: Annotated[
        RetryAfterForm,
        typer.Option(help="Retry-After on refused requests and 503 bursts: seconds, http-date or none."),
    ] = "seconds",
    rate_limit_headers: Annotated[
        RateLimitHeaders,
        typer.Option(
            help="Quota headers on every answer the rate limit counts: none, x-ratelimit (X-RateLimit-Limit/"
            "-Remaining/-Reset, Reset a delay in seconds), x-ratelimit-epoch (the same, Reset an epoch time) or "
            "ietf (RateLimit-Policy and RateLimit)."
        ),
    ] = "none",
    error_rate: Annotated[
        float, typer.Option(metavar="P", help="Probability (0..1) that an API request is answered 500/503 instead.")
    ] = 0.0,
    error_status: Annotated[
        ErrorStatus, typer.Option(help="Status of --error-rate faults: 500, 503 or mixed.")
    ] = "mixed",
    error_burst: Annotated[
        str | None,
        typer.Option(
            show_default=False,
            metavar="SPEC",
            help="Periodic windows in which every API request fails, e.g. every=5s,length=1s,status=503 (the "
            "first opens one period after start; start= moves it).",
        ),
    ] = None,
    fault_after_create: Annotated[
        float,
        typer.Option(
            metavar="P",
            help="Probability (0..1) that a run-creating POST answered 500 or reset created its runs before "
            "failing (a 503 or a rate-limit refusal never creates).",
        ),
    ] = 0.0,
    slow_after_create: Annotated[
        float,
        typer.Option(
            metavar="P",
            help="Probability (0..1) that a create that created its runs is answered only --slow-after-create-delay "
            "later (a client with a shorter timeout sees a timeout).",
        ),
    ] = 0.0,
    slow_after_create_delay: Annotated[
        float, typer.Option(metavar="S", help="Real seconds such a create's answer is held.")
    ] = 15.0,
    latency: Annotated[
        str | None,
        typer.Option(
            show_default=False,
            metavar="DIST",
            help="Extra real seconds before every API answer, as a distribution: fixed(0.2), uniform(0.05,0.3)... "
            "(not scaled by --time-scale).",
        ),
    ] = None,
    reset_rate: Annotated[
        float,
        typer.Option(
            metavar="P", help="Probability (0..1) that an API request's connection is reset without an answer."
        ),
    ] = 0.0,
    stall: Annotated[
        str | None,
        typer.Option(
            show_default=False,
            metavar="SPEC",
            help="A window in which requests are held until it ends, in seconds since start: at=2s,for=2s.",
        ),
    ] = None,
    webhook_url: Annotated[
        str | None,
        typer.Option(
            show_default=False,
            metavar="URL",
            help="POST test-call.completed and call.graded events here, signed (needs --webhook-secret).",
        ),
    ] = None,
    webhook_secret: Annotated[
        str | None,
        typer.Option(
            envvar=WEBHOOK_SECRET_ENV,
            show_default=False,
            metavar="SECRET",
            help="The whsec_... secret that signs webhooks (prefer the environment variable; never printed).",
        ),
    ] = None,
    webhook_duplicate_rate: Annotated[
        float, typer.Option(metavar="P", help="Probability (0..1) that a delivered webhook is delivered once more.")
    ] = 0.0,
    webhook_delay: Annotated[
        str | None,
        typer.Option(
            show_default=False,
            metavar="DIST",
            help="Extra real seconds before a webhook's first attempt, as a distribution (e.g. uniform(0,0.5)).",
        ),
    ] = None,
    webhook_reorder: Annotated[
        bool,
        typer.Option(
            "--webhook-reorder/--no-webhook-reorder",
            help=f"Hold each webhook a random moment (up to {REORDER_WINDOW_S:g} s) so they arrive out of order.",
        ),
    ] = False,
    webhook_drop_rate: Annotated[
        float, typer.Option(metavar="P", help="Probability (0..1) that a webhook is lost (never sent).")
    ] = 0.0,
    webhook_max_attempts: Annotated[
        int,
        typer.Option(metavar="N", help="Attempts per webhook before giving up (retries follow any non-2xx or error)."),
    ] = 8,
    webhook_retry_base: Annotated[
        float,
        typer.Option(metavar="S", help="Real seconds before a webhook's first retry; each retry waits twice as long."),
    ] = 0.05,
    webhook_retry_cap: Annotated[
        float, typer.Option(metavar="S", help="Longest wait between two webhook attempts, in seconds.")
    ] = 2.0,
    webhook_payload: Annotated[
        WebhookPayload,
        typer.Option(
            help="Where test-call.completed puts the run: nested (under data.test_call_run, as the API docs' CI "
            "handler reads it) or flat (directly under data)."
        ),
    ] = "nested",
    grade_score: Annotated[
        str, typer.Option(metavar="DIST", help="Distribution of grade scores on 0..1 (draws above 1 count as 1).")
    ] = str(DEFAULT_GRADE_SCORE),
    grade_scale: Annotated[
        int,
        typer.Option(
            metavar=_one_of(GRADE_SCALES),
            help="How scores are written: 100 (integers 0..100, as the SDK) or 1 (0..1, as the docs).",
        ),
    ] = 100,
    grade_delay: Annotated[
        float,
        typer.Option(metavar="S", help="Real seconds from a completed call's end to its grade and call.graded event."),
    ] = 0.0,
    grade_twice: Annotated[
        bool,
        typer.Option(
            "--grade-twice/--no-grade-twice",
            help="Grade each completed call twice: a fast grade after --grade-delay, the full one after twice that.",
        ),
    ] = False,
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Allow a --host that is not loopback.")] = False,
) -> None:
    """Run the simulator of the test-calls API on loopback until Ctrl-C."""
    if not allow_remote and not is_loopback(host):
        raise typer.BadParameter(
            f"{host!r} is not a loopback address; the simulator is meant for local load, pass --allow-remote "
            "to listen there anyway.",
            param_hint="--host",
        )
    try:
        config = SimConfig.from_mapping(
            {
                "slots": slots,
                "call_duration": call_duration,
                "time_scale": time_scale,
                "failure_rate": failure_rate,
                "estimated_cost_cents": estimated_cost_cents,
                "charge_multiplier": charge_multiplier,
                "api_key": api_key or None,
                "seed": seed,
                "product": product,
                "agents": agents or {},
                "agent_versions": agent_versions or {},
                "list_order": list_order,
                "list_offset": list_offset,
                "page_cap": page_cap,
                "batch_name": batch_name,
                "batch_name_length": batch_name_length,
                "clock_offset": clock_offset,
                "ids": ids,
                "rate_limit": rate_limit,
                "rate_limit_burst": rate_limit_burst,
                "rate_limit_scope": rate_limit_scope,
                "rate_limit_status": rate_limit_status,
                "retry_after": retry_after,
                "rate_limit_headers": rate_limit_headers,
                "error_rate": error_rate,
                "error_status": error_status,
                "error_burst": error_burst,
                "fault_after_create": fault_after_create,
                "slow_after_create": slow_after_create,
                "slow_after_create_delay": slow_after_create_delay,
                "latency": latency,
                "reset_rate": reset_rate,
                "stall": stall,
                "webhook_url": webhook_url,
                "webhook_secret": webhook_secret or None,
                "webhook_duplicate_rate": webhook_duplicate_rate,
                "webhook_delay": webhook_delay,
                "webhook_reorder": webhook_reorder,
                "webhook_drop_rate": webhook_drop_rate,
                "webhook_max_attempts": webhook_max_attempts,
                "webhook_retry_base": webhook_retry_base,
                "webhook_retry_cap": webhook_retry_cap,
                "webhook_payload": webhook_payload,
                "grade_score": grade_score,
                "grade_scale": grade_scale,
                "grade_delay": grade_delay,
                "grade_twice": grade_twice,
            }
        )
    except SimConfigError as bad:
        raise typer.BadParameter(str(bad), param_hint="--" + bad.setting.replace("_", "-")) from None
    try:
        anyio.run(_serve_until_stopped, config, host, port)
    except OSError as bad:
        typer.echo(f"stressor-sim: cannot listen on {host}:{port}: {bad.strerror or bad}.", err=True)
        raise typer.Exit(ExitCode.TARGET) from None
    except KeyboardInterrupt:
        # Ctrl-C before the signal receiver was in place: stop quietly all the same
        raise typer.Exit(ExitCode.INTERRUPTED) from None


def main() -> None:
    """Entry point of ``python -m stressor.sim``."""
    from stressor.cli.plain import PlainCommand

    app = typer.Typer(add_completion=False)
    app.command(cls=PlainCommand)(sim)
    app(prog_name="python -m stressor.sim")
