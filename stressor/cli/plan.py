"""``stressor plan``: what a profile would do, sending nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer

from stressor.cli.flags import DURATION_OPTION, RATE_OPTION, duration_flag, load, rate_scale_flag, refused
from stressor.running import Overrides, RunError, with_overrides
from stressor.units import format_duration

EXAMPLES = (
    "stressor plan profiles/smoke.toml",
    "stressor plan profiles/ramp.toml --json",
    "stressor plan profiles/ramp.toml --duration 1m --rate 2x",
)


def plan(
    profile_path: Annotated[Path, typer.Argument(metavar="PROFILE", help="Profile file (TOML or JSON).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    duration: Annotated[str | None, DURATION_OPTION] = None,
    rate: Annotated[str | None, RATE_OPTION] = None,
) -> None:
    """Show what a profile would do, sending nothing: batches, runs, peak in flight, requests, cost."""
    from stressor.estimate import assumptions_line, estimate, plan_document

    overrides = Overrides(rate=rate_scale_flag(rate), duration_s=duration_flag(duration, "--duration"))
    try:
        profile = with_overrides(load(profile_path), overrides)  # what 'stressor run' with these flags would do
    except RunError as exc:
        raise refused(exc) from None
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
