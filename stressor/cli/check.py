"""``stressor check``: what a run relies on at the target, checked without sending anything billable."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from stressor import runtime
from stressor.cli.flags import fail, flag, load, refused, url_flag
from stressor.running import NO_KEY, ExitCode, RunError

if TYPE_CHECKING:
    from stressor.sim.config import SimConfig

EXAMPLES = (
    "stressor check",
    "THUNDERPHONE_API_KEY=sk_live_... stressor check --base-url https://api.thunderphone.com",
    "stressor check my-profile.toml --webhook-url https://ci.example.com/hooks",
)


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
            metavar="URL",
            help="API to check. Default: the profile's target.base_url, else an embedded simulator.",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="THUNDERPHONE_API_KEY", show_default=False, metavar="KEY", help="API key."),
    ] = None,
    webhook_url: Annotated[
        str | None,
        typer.Option(
            metavar="URL", help="Also check that this webhook receiver answers (a GET: nothing is delivered)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """Check what a run relies on, sending nothing billable: the key, the lists' order, offset and page size,
    batch names, the server's clock and rate-limit headers (and a webhook receiver). Exit 3 when a run could
    not start or could not follow its runs there."""
    from stressor.running import simulator_config
    from stressor.session import EMBEDDED_API_KEY
    from stressor.sim.config import SimConfig

    profile = load(profile_path) if profile_path is not None else None
    url = flag(url_flag, base_url, "--base-url") if base_url else (profile.target.base_url if profile else None)
    simulator = None
    if url is None:
        try:
            simulator = simulator_config(profile, {}) if profile is not None else SimConfig(api_key=EMBEDDED_API_KEY)
        except RunError as exc:
            raise refused(exc) from None
        api_key = EMBEDDED_API_KEY
    elif not api_key:
        raise fail(NO_KEY, ExitCode.USAGE)
    hook = flag(url_flag, webhook_url, "--webhook-url") if webhook_url else None
    try:
        rows = runtime.run(_check_rows, url, api_key, simulator, hook, tune_gc=False)
    except OSError as exc:
        raise fail(f"could not start what the check needs: {exc}", ExitCode.TARGET) from None
    if as_json:
        typer.echo(orjson.dumps([{"check": r.what, "verdict": r.verdict, "seen": r.seen} for r in rows]).decode())
    else:
        width = max(len(row.what) for row in rows)
        typer.echo(f"{'check':<{width}}  {'verdict':<7}  seen")
        for row in rows:
            typer.echo(f"{row.what:<{width}}  {row.verdict:<7}  {row.seen}")
    if any(row.verdict in ("fail", "refuses") for row in rows):
        raise typer.Exit(ExitCode.TARGET)


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
