"""What the commands share: flag parsing (one sentence and exit 2 for a bad value), loading a profile, and
saying an error the one way: ``stressor: <sentence>`` on stderr."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import typer

from stressor.running import ExitCode, RunError
from stressor.units import parse_duration, parse_rate

if TYPE_CHECKING:
    from stressor.document import Results
    from stressor.profile import Profile, RateScale
    from stressor.session import Scale

T = TypeVar("T")

SIM_HELP = "Embedded simulator (overrides the profile's \\[simulator] table): "
# The --sim-* flags run and capacity share: the setting, its placeholder and what it is.
_SIM_FLAGS = {
    "slots": ("N", "concurrent call slots (20)."),
    "failure_rate": ("P", "probability (0..1) that a call ends failed (0)."),
    "call_duration": ("DIST", "call duration distribution in API seconds (lognormal(45,0.3))."),
    "time_scale": ("S", "real seconds per API second of call (0.001)."),
    "seed": ("N", "random seed."),
    "agent_versions": (
        "ID=VERSION,...",
        "behaviour version of agents, e.g. 201=2: a version above 1 stands for a prompt change that rewords or "
        "breaks some scenarios (every agent at 1).",
    ),
}
SIM_SETTINGS = tuple(_SIM_FLAGS)


# The overrides of the profile's target and limits that run and capacity share.
POLL_INTERVAL_OPTION: Any = typer.Option(metavar="DURATION", help="Override target.poll_interval, e.g. 250ms or 2s.")
GRACE_OPTION: Any = typer.Option(
    metavar="DURATION", help="Override grace: how long to wait for runs in flight after the last stage."
)
MODE_OPTION: Any = typer.Option(
    help="Override limits.mode: 'obey' (honour 429/503 and rate-limit headers, back off, breaker) or "
    "'stress' (keep the offered load; 429/503 are recorded as rejected runs)."
)
CREATE_RATE_OPTION: Any = typer.Option(
    metavar="RATE", help="Override limits.create_rate: run-creating requests per time, e.g. 5/s."
)
POLL_RATE_OPTION: Any = typer.Option(metavar="RATE", help="Override limits.poll_rate: polls per time, e.g. 50/s.")
MAX_RUNS_OPTION: Any = typer.Option(metavar="N", help="Override limits.max_runs_in_flight.", min=1)
MAX_BATCHES_OPTION: Any = typer.Option(metavar="N", help="Override limits.max_batches_in_flight.", min=1)

# --duration and --rate: the profile's stages scaled (run, plan).
DURATION_OPTION: Any = typer.Option(
    metavar="DURATION",
    help="Stretch or shrink every stage in proportion so that the stages last this long in all, e.g. 2m "
    "(rates, targets and the grace period are kept).",
)
RATE_OPTION: Any = typer.Option(
    metavar="FACTOR|RATE",
    help="Scale the load: 2x (or 0.5x) multiplies every open stage's rate and every closed stage's runs in flight "
    "(rounded to whole runs, at least 1); 30/s scales the open stages so that their highest rate is 30 batches a "
    "second (closed stages unchanged).",
)


def rate_scale_flag(value: str | None) -> RateScale | None:
    from stressor.profile import parse_rate_scale

    return flag(parse_rate_scale, value, "--rate")


def sim_option(setting: str) -> Any:
    """The ``--sim-<setting>`` option: one of the embedded simulator's settings, as run and capacity take it."""
    metavar, what = _SIM_FLAGS[setting]
    return typer.Option(f"--sim-{setting.replace('_', '-')}", metavar=metavar, help=SIM_HELP + what)


def fail(message: str, code: ExitCode) -> typer.Exit:
    """Say ``message`` on stderr; the exit to raise."""
    typer.echo(f"stressor: {message}", err=True)
    return typer.Exit(code)


def refused(error: RunError) -> typer.Exit:
    """A use-case error said on stderr; the exit to raise."""
    return fail(str(error), error.code)


def warn(message: str) -> None:
    typer.echo(f"stressor: {message}", err=True)


def load(path: Path) -> Profile:
    """The profile at ``path``, its [simulator] table checked; exit 2 with one sentence when it is not one."""
    from stressor.profile import ProfileError, load_profile
    from stressor.sim.config import check_simulator_table

    try:
        profile = load_profile(path)
        check_simulator_table(profile)
        return profile
    except ProfileError as exc:
        raise fail(str(exc), ExitCode.USAGE) from None


def flag(convert: Callable[[str], T], value: str | None, name: str) -> T | None:
    """``convert(value)``, a ValueError turned into typer's usage error (exit 2) naming the flag."""
    if value is None:
        return None
    try:
        return convert(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=name) from None


def duration_flag(value: str | None, name: str) -> float | None:
    return flag(_positive(parse_duration), value, name)


def rate_flag(value: str | None, name: str) -> float | None:
    return flag(_positive(parse_rate), value, name)


def _positive(parse: Callable[[str], float]) -> Callable[[str], float]:
    def positive(value: str) -> float:
        number = parse(value)
        if number <= 0:
            raise ValueError("must be greater than zero")
        return number

    return positive


def url_flag(value: str) -> str:
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


def listen_flag(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"must be host:port like 127.0.0.1:8090 (port 0: any free one), got {value!r}")
    return host.strip("[]"), int(port)


def fallback_flag(value: str) -> float | str:
    if value in ("auto", "off"):
        return value
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("must be 'auto', 'off' or a duration greater than zero")
    return seconds


def scale_flags(workers: str | None, cluster: str | None) -> Scale | None:
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


def load_results(path: Path) -> Results:
    """A results file (or one rebuilt from a ``.runs.jsonl`` runs log), checked once; exit 2 with one sentence
    when it is neither, or holds a field of the wrong type."""
    from stressor.document import ResultsError
    from stressor.report.results import read_results

    try:
        return read_results(path)
    except ResultsError as exc:
        raise fail(str(exc), ExitCode.USAGE) from None


def write_or_fail(path: Path, what: str, write: Callable[[], T]) -> T:
    """Run a writer; a file that cannot be written is a usage error (exit 2), not a traceback."""
    try:
        return write()
    except OSError as exc:
        raise fail(f"{path}: cannot write the {what} ({exc.strerror or exc}).", ExitCode.USAGE) from None


def write_reported(path: Path, text: str, what: str) -> None:
    """Write a report's text (its directory created), say where on stderr; exit 2 when it cannot be written."""

    def write() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    write_or_fail(path, what, write)
    typer.echo(f"{what}: {path}", err=True)
