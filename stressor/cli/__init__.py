"""The ``stressor`` command line: one command a file, flags shared in ``flags``, the commands registered in
``app``; the exit codes are ``stressor.running.ExitCode``.

Start-up CPU counts against every run, so what only some commands need is imported inside them; this module
imports nothing, so that ``python -m stressor.sim`` (the embedded simulator's process) loads its command alone.
"""


def main() -> None:
    """Console entry point (``stressor``)."""
    from stressor.cli.app import main as run_app

    run_app()
