"""The ``stressor`` application: every command registered, in the order ``--help`` lists them, and the exit
codes said at the end of ``--help``."""

from __future__ import annotations

import sys

import typer

from stressor.cli.capacity import capacity
from stressor.cli.check import check
from stressor.cli.compare import compare
from stressor.cli.plan import plan
from stressor.cli.report import report
from stressor.cli.run import run
from stressor.cli.sim import sim
from stressor.running import ExitCode

# 'import httpx' (done by the commands that need it) imports httpx's own command line (click, rich, pygments)
# whenever those are installed, as typer installs rich; stressor never runs it. httpx2 has made
# that import lazy (pydantic/httpx2#947); until httpx does, the stressor command blocks it (httpx then defines a
# 'main' that says its CLI is not installed).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def exit_codes_help() -> str:
    """The exit codes, one a line, as ``stressor --help`` ends."""
    return "Exit codes:\n" + "\n".join(f"{code.value}: {code.meaning}" for code in ExitCode)


app = typer.Typer(
    name="stressor",
    help="Load and concurrency stress tester for asynchronous job APIs (submit -> queued -> done).",
    epilog=exit_codes_help(),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for command in (sim, run, plan, check, capacity, report, compare):
    app.command()(command)


def main() -> None:
    """Console entry point."""
    app(prog_name="stressor")
