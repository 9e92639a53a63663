"""``stressor sim``: run the test-calls simulator in the foreground until Ctrl-C.

``stressor.cli`` registers it with ``app.command("sim")(sim)``; ``python -m stressor.sim`` runs it on its
own. It prints one line, ``stressor-sim listening on http://HOST:PORT``, that ``SimulatorProcess`` waits for.

Exit codes (as in ``stressor.cli``): 0 after Ctrl-C / SIGTERM, 2 for a bad option (one sentence, no
traceback), 3 when the address cannot be used (port taken, host unknown). A host that is not loopback is
refused unless ``--allow-remote`` is given: the simulator accepts any key by default and is meant for local
load only.
"""

from __future__ import annotations

import ipaddress
import signal
from typing import Annotated

import anyio
import typer

from stressor.sim.config import DEFAULT_CALL_DURATION, PRODUCTS, SimConfig, SimConfigError
from stressor.sim.server import API_KEY_ENV, LISTENING_PREFIX, serve

EXIT_UNAVAILABLE = 3


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def _serve_until_stopped(config: SimConfig, host: str, port: int) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with serve(config, host, port) as running:
            typer.echo(f"{LISTENING_PREFIX}{running.base_url}")
            async for _ in signals:
                break


def sim(
    *,
    host: Annotated[
        str, typer.Option(help="Address to listen on; only loopback unless --allow-remote is given.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port to listen on (0 picks a free one).")] = 8080,
    slots: Annotated[
        int, typer.Option(help="Org-wide concurrent call slots: at most this many runs in progress at once.")
    ] = 20,
    call_duration: Annotated[
        str,
        typer.Option(
            help="Call length in API seconds: fixed(x), uniform(a,b), lognormal(median,sigma) or exponential(mean)."
        ),
    ] = str(DEFAULT_CALL_DURATION),
    time_scale: Annotated[
        float,
        typer.Option(
            help="Real seconds per API second of call (0.001: a 45 s call lasts 45 ms); stagger is not scaled."
        ),
    ] = 0.001,
    failure_rate: Annotated[float, typer.Option(help="Probability (0..1) that a run ends failed.")] = 0.0,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar=API_KEY_ENV,
            show_default=False,
            help="Accept only this Bearer key (default: any non-empty key).",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of durations, failures, grades and ids (default: random).")
    ] = None,
    estimated_cost_cents: Annotated[int, typer.Option(help="Pre-call cost estimate of one run, in cents.")] = 16,
    charge_multiplier: Annotated[int, typer.Option(help="Test calls cost this many times the normal rate.")] = 2,
    product: Annotated[str, typer.Option(help=f"Product tier on call logs: {', '.join(PRODUCTS)}.")] = "spark",
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
        config = SimConfig.from_text(
            slots=slots,
            call_duration=call_duration,
            time_scale=time_scale,
            failure_rate=failure_rate,
            estimated_cost_cents=estimated_cost_cents,
            charge_multiplier=charge_multiplier,
            api_key=api_key or None,
            seed=seed,
            product=product,
        )
    except SimConfigError as bad:
        raise typer.BadParameter(str(bad), param_hint="--" + bad.setting.replace("_", "-")) from None
    try:
        anyio.run(_serve_until_stopped, config, host, port)
    except OSError as bad:
        typer.echo(f"stressor-sim: cannot listen on {host}:{port}: {bad.strerror or bad}.", err=True)
        raise typer.Exit(EXIT_UNAVAILABLE) from None
    except KeyboardInterrupt:
        # Ctrl-C before the signal receiver was in place: stop quietly all the same
        raise typer.Exit(130) from None


def main() -> None:
    """Entry point of ``python -m stressor.sim``."""
    app = typer.Typer(add_completion=False)
    app.command()(sim)
    app(prog_name="python -m stressor.sim")
