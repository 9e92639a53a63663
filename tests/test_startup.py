"""Start-up: ``import stressor.cli.app`` (done by every ``stressor`` command, ``--help`` included) leaves out what only
some commands or options need, because start-up CPU counts against every run. Checked by the modules imported,
never by timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Imported by the command or option that needs them, never by ``import stressor.cli.app``.
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
    "rich",  # --help (typer draws it with rich); usage errors are plain lines
)


def _imported_by(statement: str) -> set[str]:
    code = f"{statement}; import json, sys; print(json.dumps(sorted(m for m, v in sys.modules.items() if v)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(done.stdout))


@pytest.fixture(scope="module")
def cli_modules() -> set[str]:
    return _imported_by("import stressor.cli.app")


@pytest.mark.parametrize("name", LAZY)
def test_importing_the_cli_leaves_out(cli_modules: set[str], name: str) -> None:
    loaded = sorted(m for m in cli_modules if m == name or m.startswith(name + "."))
    assert not loaded, f"import stressor.cli.app imports {loaded}: import it where it is needed"


def test_the_commands_are_registered_all_the_same(cli_modules: set[str]) -> None:
    commands = {f"stressor.cli.{name}" for name in ("run", "check", "plan", "capacity", "sim", "report", "compare")}
    assert {*commands, "stressor.running", "typer"} <= cli_modules


def test_the_simulators_process_loads_its_command_alone() -> None:
    # `python -m stressor.sim` (every embedded simulator's process) pays for the sim command, not the others
    loaded = _imported_by("import stressor.cli.sim")
    assert "stressor.cli.sim" in loaded
    assert not {"stressor.cli.app", "stressor.cli.run", "stressor.report.compare"} & loaded


def test_a_run_against_a_url_leaves_out_the_asgi_server_and_httpx_cli(tmp_path: Path) -> None:
    # uvicorn is the simulator's and the webhook receiver's, imported when one of them starts. The run is
    # refused at once (nothing listens on port 9); its imports are done by then.
    profile = tmp_path / "one.toml"
    profile.write_text(
        '[target]\nkind = "test-calls"\n[target.request]\ntarget_type = "agent"\ntarget_id = 1\n'
        '[scenarios]\nprompts = ["Hello."]\n[cost]\nconsent_to_charge = true\nbudget_cents = 100\n'
        '[[stages]]\nduration = "1s"\nrate = "1/s"\n'
    )
    code = (
        "import atexit, json, sys; "
        "atexit.register(lambda: print(json.dumps(sorted(m for m, v in sys.modules.items() if v)))); "
        "from stressor.cli import main; "
        f"sys.argv = ['stressor', 'run', {str(profile)!r}, '--base-url', 'http://127.0.0.1:9', "
        f"'--out', {str(tmp_path / 'r.json')!r}, '--progress', '0']; "
        "main()"
    )
    env = {**os.environ, "THUNDERPHONE_API_KEY": "sk_test_startup"}
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 3, done.stderr
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert "stressor.session" in loaded
    assert not {"uvicorn", "stressor.asgi_server", "stressor.sim.server"} & loaded
    assert "httpx" in loaded
    assert not {"httpx._main", "pygments"} & loaded  # httpx's own CLI, blocked by stressor.cli
