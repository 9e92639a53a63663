"""Start-up: ``import stressor.cli`` (done by every ``stressor`` command, ``--help`` included) leaves out what only
some commands or options need, because start-up CPU counts against every run. Checked by the modules imported,
never by timing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Imported by the command or option that needs them, never by ``import stressor.cli``.
LAZY = (
    "dask",  # --cluster (stressor.distributed.cluster imports it when the cluster starts)
    "distributed",
    "stressor.distributed",  # --workers / --cluster, through the session
    "stressor.session",  # run, capacity
    "stressor.engine",
    "stressor.targets",
    "stressor.plan",  # plan, and run's cost guard
    "stressor.capacity",  # capacity
    "stressor.sim.server",  # the embedded simulator, stressor sim
    "stressor.sim.app",
    "stressor.asgi_server",
    "uvicorn",
    "httpx",
    "stressor.report.results",  # run, capacity, report of a runs log
    "stressor.report.html",  # --html
    "stressor.report.junit",  # --junit
    "stressor.report.hlog",  # --hlog
    "stressor.report.exports",  # report --hgrm-dir / --csv-dir
    "xml",
)


def _imported_by(statement: str) -> set[str]:
    code = f"{statement}; import json, sys; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(done.stdout))


@pytest.fixture(scope="module")
def cli_modules() -> set[str]:
    return _imported_by("import stressor.cli")


@pytest.mark.parametrize("name", LAZY)
def test_importing_the_cli_leaves_out(cli_modules: set[str], name: str) -> None:
    loaded = sorted(m for m in cli_modules if m == name or m.startswith(name + "."))
    assert not loaded, f"import stressor.cli imports {loaded}: import it where it is needed"


def test_the_commands_are_registered_all_the_same(cli_modules: set[str]) -> None:
    assert {"stressor.cli", "stressor.report.commands", "stressor.sim.command", "typer"} <= cli_modules
