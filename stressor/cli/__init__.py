"""The ``stressor`` command line: one command a file, flags shared in ``flags``, the commands registered in
``app``. Nothing imports it but the ``python -m`` entry points; the exit codes are ``stressor.running.ExitCode``.

Start-up CPU counts against every run (a benchmark charges the whole process): what only some commands or
options need (the session and its engine, simulator, workers and cluster; the report writers; the capacity
search) is imported inside the command or function that needs it, so that --help, plan, report and compare do
not pay for a run, and a run does not pay for the writers it is not asked for. This module imports nothing, so
that ``python -m stressor.sim`` (the embedded simulator's process) loads its own command alone.
"""


def main() -> None:
    """Console entry point (``stressor``)."""
    from stressor.cli.app import main as run_app

    run_app()
