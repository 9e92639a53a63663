"""The ``stressor`` application: every command registered, in the order ``--help`` lists them, each with its
examples, and the exit codes said at the end of ``--help``; ``--version`` and shell completion."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from stressor.cli import capacity, check, compare, plan, report, run, sim
from stressor.cli.plain import PlainCommand, PlainGroup
from stressor.running import ExitCode

# 'import httpx' (done by the commands that need it) imports httpx's own command line (click, rich, pygments)
# whenever those are installed, as typer installs rich; stressor never runs it. httpx2 has made
# that import lazy (pydantic/httpx2#947); until httpx does, the stressor command blocks it (httpx then defines a
# 'main' that says its CLI is not installed).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

EXAMPLES = (
    "stressor plan profiles/smoke.toml",
    "stressor run profiles/smoke.toml -t 'failure_rate < 1%'",
    "stressor capacity profiles/closed-concurrency.toml --slo 'queue_to_completion.p95 < 500ms'",
)


def examples_help(examples: Sequence[str]) -> str:
    """The examples that end a command's ``--help``, one a line; typer renders help as Rich markup, where
    ``scenario[refund]`` would be a style tag: brackets are escaped (rich itself is not imported at start-up)."""
    return "Examples:\n" + "\n".join("  " + example.replace("[", "\\[") for example in examples)


def exit_codes_help() -> str:
    """The exit codes, one a line, as ``stressor --help`` ends."""
    return "Exit codes:\n" + "\n".join(f"{code.value}: {code.meaning}" for code in ExitCode)


def version() -> str:
    """``stressor <version>``, as installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return f"stressor {installed('stressor')}"
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "stressor (not installed)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version())
        raise typer.Exit()


app = typer.Typer(
    name="stressor",
    cls=PlainGroup,
    help="Load and concurrency stress tester for asynchronous job APIs (submit -> queued -> done).",
    epilog=examples_help(EXAMPLES) + "\n\n" + exit_codes_help(),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    _version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print stressor's version and exit."),
    ] = False,
) -> None:
    """Load and concurrency stress tester for asynchronous job APIs (submit -> queued -> done)."""


for module in (sim, run, plan, check, capacity, report, compare):
    command = getattr(module, module.__name__.rsplit(".", 1)[1])
    app.command(cls=PlainCommand, epilog=examples_help(module.EXAMPLES))(command)


def main() -> None:
    """Console entry point."""
    app(prog_name="stressor")
